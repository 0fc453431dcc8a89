/* binary.h: binarised weights and activations (spec 7.3), shared by TinyFoA
 * (tinyfoa.c) and BP with binary weights and activations (bpbin.c).
 *
 * Forward: W^b = alpha sign(W), alpha = mean|W| (one scalar per matrix);
 * Z = H (W^b)^T + b; Z^b = beta sign(Z), beta = mean|Z| over the batch
 * tensor; H = ReLU(Z^b), so H is 0 or beta. Backward with the
 * straight-through estimator, scales constant: the error reaching Z is the
 * error at H times [Z^b > 0] [|Z| < 1] = [0 < Z < 1] (one bit per element),
 * and the weight gradient is masked by [|W| < 1]. After the optimizer step
 * the parameters are clamped to [-1, 1] (BinaryConnect).
 *
 * What is binary is stored packed (pack.h layout, 1 bit per element):
 *  - weights: bit r*IN + c = [W[r][c] > 0] (sign(0) counts as -1: one bit
 *    holds no zero, and latent weights are never exactly 0 in practice);
 *  - activations, in the feature-major ("transposed") layout these rules
 *    use throughout: Ht is (n, B), bit f*B + i belongs to feature f of
 *    sample i. Feature-major rows make every row block of W^b meet a
 *    contiguous block of rows of the activations, and blas_gemm takes no
 *    leading dimensions.
 *
 * A product with W^b never builds the FP32 copy of W^b: binary_forward_t
 * and binary_backward_t unpack at most BINARY_PANEL_ROWS rows of signs at a
 * time into `panel` (binary_panel_floats floats, the caller's workspace)
 * and multiply with blas_gemm, alpha as the gemm's scalar. No allocation in
 * this file. */
#ifndef MT_RULES_BINARY_H
#define MT_RULES_BINARY_H

#include <stddef.h>
#include <stdint.h>

#include "../arena.h"
#include "memtrain/err.h"

struct mt_spec;
struct mt_trainer;
struct mt_step_result;

/* Rows of W^b unpacked at a time. */
#define BINARY_PANEL_ROWS 32

/* Floats of the unpack panel for products with an (out, in) binary matrix. */
size_t binary_panel_floats(int out, int in);

/* Sum of |W| over rows [r0, r1) and columns [c0, c1) of a matrix with rows
 * of `ld` floats, in double, row by row: every alpha of these rules is a sum
 * of these over a fixed tiling divided by the element count, so it is the
 * same number however the weights got where they are. */
double binary_abs_sum(const float *W, int ld, int r0, int r1, int c0, int c1);

/* Sign bits of W's rows [r0, r1) and columns [c0, c1) into `bits`, the
 * packed signs of the whole matrix (rows of ld bits); other bits untouched. */
void binary_pack_block(uint8_t *bits, const float *W, int ld, int r0, int r1, int c0, int c1);

/* out[k] = bit (first + k) of src ? one : zero, for k < n. */
void binary_unpack(float *out, const uint8_t *src, size_t first, size_t n, float one, float zero);

/* Zt (OUT, B) = alpha sign(W) H^T: the layer's pre-activation, feature-major.
 * wbits: packed signs of W (OUT, IN). H is the input: the data batch
 * (B, IN) when batch_major, else feature-major activations Ht (IN, B).
 * panel: binary_panel_floats(OUT, IN) floats. */
void binary_forward_t(float *Zt, const uint8_t *wbits, float alpha, const float *H,
                      int batch_major, int B, int IN, int OUT, float *panel);
/* dHt (IN, B) = (alpha sign(W))^T dZt, dZt (OUT, B): the error one layer
 * down, feature-major. */
void binary_backward_t(float *dHt, const uint8_t *wbits, float alpha, const float *dZt, int B,
                       int IN, int OUT, float *panel);

/* Zt (n, B) += b per feature row. */
void binary_add_bias_t(float *Zt, const float *b, int n, int B);

/* The binary activation over Z (count elements), in place: returns
 * beta = mean|Z| and turns Z into H = beta [Z > 0]. hbits (may be NULL)
 * gets [Z > 0] and ste (may be NULL) the STE mask [0 < Z < 1], bit k at
 * bit k of each array; *live (may be NULL) gets the count of |Z| < 1. */
float binary_activate(float *Z, size_t count, uint8_t *hbits, uint8_t *ste, long *live);

/* dZ[k] = bit (first + k) of ste ? dZ[k] : 0, for k < n. */
void binary_ste_apply(float *dZ, const uint8_t *ste, size_t first, size_t n);

/* G (rows, cols) *= [|W| < 1] elementwise, W with rows of ld floats. */
void binary_weight_ste(float *G, const float *W, int ld, int rows, int cols);

/* Clamp n floats to [-1, 1]. */
void binary_clamp(float *w, size_t n);

/* out (rows) = sums of each row of A (rows, cols): the bias gradient from a
 * feature-major error. */
void binary_row_sums(float *out, const float *A, int rows, int cols);

/* dst (cols, rows) = src (rows, cols)^T. */
void binary_transpose(float *dst, const float *src, int rows, int cols);

/* ---- BP with binary weights and activations (bpbin.c) -----------------
 * The `bp` rule with `binary: true`: bp.c hands over to these when
 * t->spec.rule.binary == 1. */

/* bp's defaults: rule_optim_defaults, and binary 0 when unset. */
void bpbin_defaults(struct mt_spec *s);
void bpbin_plan(const struct mt_spec *s, struct mt_mem_plan *p);
/* With binary: true, ReLU hidden layers and no norms (a spec's check). */
int bpbin_check(const struct mt_spec *s, struct mt_err *err);
int bpbin_init(struct mt_trainer *t, struct mt_err *err);
int bpbin_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
               struct mt_step_result *r, struct mt_err *err);
/* The binarised forward (beta from the evaluated batch); with binary off,
 * the plain forward (rule_forward_rolling), so bp can use it as its infer hook. */
const float *bpbin_infer(struct mt_trainer *t, float *x, int B, float *buf0, float *buf1);
/* Frees t->rs.priv (accepts NULL), so bp can use it as its fini hook. */
void bpbin_fini(struct mt_trainer *t);

/* ---- TinyFoA (tinyfoa.c) ------------------------------------------------
 * The stage (hidden layer 1..L-1) whose model the last evaluation ran:
 * layers 1..stage binarised, then that stage's local classifier (W_L once
 * stage = L-1). For describing a model (describe.c). */
int tinyfoa_eval_stage(const struct mt_trainer *t);

#endif
