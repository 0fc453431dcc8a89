/* approx.h: K-bit approximate copies of activations (spec section 6,
 * Chakrabarti & Moseley, arXiv 1901.07988) and the pieces of the approx8 /
 * approx4 rules that tests call alone.
 *
 * A hidden layer's pre-activation v (B, n) (Z_l without batch-norm, the
 * batch-norm output y = gamma xhat + beta with it) is stored as one K-bit code
 * per element, packed (pack.h layout: 8-bit one per byte, 4-bit two per
 * byte), with a per-feature window: a bin width step_c and the code s_c of
 * the first bin above zero. Zero is the edge between bins s_c - 1 and s_c:
 *   v > 0:  q = min(s_c + floor(v / step_c), N - 1)
 *   v <= 0: q = max(s_c - 1 - floor(-v / step_c), 0)          N = 2^K
 * so [q >= s_c] == [v > 0] == [ReLU(v) > 0] exactly, for every v (s_c is
 * kept in 1..N-1). Decoding gives the bin centre (q - s_c + 1/2) step_c,
 * within step_c / 2 of v for every v inside the window
 * [-s_c step_c, (N - s_c) step_c); values outside are clipped to the end
 * bins and counted.
 *
 * Windows (spec 6(a), 6(f)):
 *  - without batch-norm: mean mu_c and std sigma_c of Z over the batch,
 *    step_c = 6 sigma_c / N and s_c = clamp(N/2 - floor(mu_c / step_c), 1, N-1):
 *    the window is mu_c +- 3 sigma_c, moved to put zero on a bin edge;
 *  - batch-norm (the paper's): u = y / |gamma_c| = xhat +- beta_c/|gamma_c|
 *    with the fixed step 6/N, i.e. step_c = (6/N) |gamma_c| in y units, and
 *    s_c = clamp(N/2 - floor((beta_c/|gamma_c|) / (6/N)), 1, N-1). */
#ifndef MT_RULES_APPROX_H
#define MT_RULES_APPROX_H

#include <stddef.h>
#include <stdint.h>

#include "../model.h"
#include "memtrain/err.h"

struct mt_trainer;

/* |gamma| below this is taken as this (the paper's code clamps gamma at 1e-8). */
#define APPROX_MIN_GAMMA 1e-8f

/* One layer's window. Either `step` (n) is set, or `gamma` (n) is, and the
 * bin width of feature c is (6/N) max(|gamma_c|, APPROX_MIN_GAMMA). */
struct approx_win {
    const float *step;
    const float *gamma;
    const uint8_t *zero;   /* (n) s_c, in 1..N-1 */
    int n;                 /* features, or channels of a map */
    int bits;              /* K: 8 or 4 */
    size_t hw;             /* values per channel per sample (h w of a map); 0 or 1 =
                              features. Values are (B, n, hw), channel c's window for all hw */
};

/* What the rule keeps of one step, from the forward to the update (all in
 * the arena, MT_MEM_ACTS). For hidden layer l = 1..L-1: the packed codes
 * (pack_bytes(B n_l, K) bytes), s_c (n_l bytes), and step_c (4 n_l), or for
 * a batch-norm layer its exact 1/sigma_c (4 n_l) instead of step_c (which
 * follows from gamma). The logits (B, C) become E. */
struct approx_kept {
    uint8_t *codes[MT_MAX_LAYERS + 1];
    uint8_t *zero[MT_MAX_LAYERS + 1];
    float *step[MT_MAX_LAYERS + 1];     /* NULL for batch-norm layers */
    float *rstd[MT_MAX_LAYERS + 1];     /* batch-norm layers only */
    float *logits;
    size_t clipped[MT_MAX_LAYERS + 1];  /* codes of this step clipped to the end bins */
};

/* Window of each feature from the batch statistics of z (B, n): step (n), zero (n). */
void approx_window_stats(float *step, uint8_t *zero, const float *z, int B, int n, int bits);
/* The same per channel of maps z (B, C, hw): statistics over the batch and the positions. */
void approx_window_stats_map(float *step, uint8_t *zero, const float *z, int B, int C, size_t hw,
                             int bits);
/* Batch-norm window offsets s_c from gamma and beta (n); the step follows from gamma. */
void approx_window_bn(uint8_t *zero, const float *gamma, const float *beta, int n, int bits);
/* Bin width of feature c. */
float approx_step(const struct approx_win *w, int c);

/* Codes of v (B, w->n, w->hw) into packed (pack_bytes(B n, K) bytes). Returns how
 * many elements fell outside the window and were clipped. */
size_t approx_encode(uint8_t *packed, const float *v, const struct approx_win *w, int B);
/* v_hat (B, n, hw) = bin centres (q - s_c + 1/2) step_c. */
void approx_decode(float *out, const uint8_t *packed, const struct approx_win *w, int B);
/* h_hat (B, n, hw) = ReLU(v_hat): the bin centre above zero, 0 below. */
void approx_decode_relu(float *out, const uint8_t *packed, const struct approx_win *w, int B);
/* d (B, n, hw) *= [q >= s_c], the exact ReLU derivative. */
void approx_mask(float *d, const uint8_t *packed, const struct approx_win *w, int B);
/* Batch-norm backward with the decoded xhat' = (v_hat - beta) / gamma (spec
 * 6(a)): g = dy * mask; dbeta = sum g; dgamma = sum g xhat';
 * t = gamma g - mean(gamma g); dz = rstd (t - xhat' mean(t xhat')), means
 * over the batch. dz overwrites dy (B, n). */
void approx_bn_backward(float *dy, float *dgamma, float *dbeta, const uint8_t *packed,
                        const struct approx_win *w, const float *beta, const float *rstd,
                        int B);

/* Kept bytes for a batch of B (the MT_MEM_ACTS peak of the rule):
 * sum_{l<L} (pack_bytes(B n_l, K) + 5 n_l) + 4 B C. */
size_t approx_kept_bytes(const struct mt_model_desc *d, int B, int bits);

/* The rule's forward and backward, for tests. approx_forward pushes the kept
 * state (MT_MEM_ACTS) and the shared buffers buf[0..1] (MT_MEM_WORKSPACE,
 * B * max hidden n floats each; buf[1] NULL for one hidden layer) and runs the
 * exact forward, leaving the logits in k->logits. approx_backward turns E (in
 * k->logits) into the full gradient block t->rs.grads. The caller pops. */
int approx_forward(struct mt_trainer *t, const float *x, int B, int bits, struct approx_kept *k,
                   float **buf, struct mt_err *err);
void approx_backward(struct mt_trainer *t, const float *x, int B, int bits,
                     const struct approx_kept *k, float **buf);
/* The window of hidden layer l as the forward left it. */
void approx_layer_win(const struct mt_trainer *t, const struct approx_kept *k, int l, int bits,
                      struct approx_win *w);

/* The rule's state (t->rs.priv): K, and the values clipped and coded this
 * epoch per hidden layer l (MLP) or per site k = 1, 2, ... in forward order
 * (layer lists). */
struct approx_state {
    int bits;
    double clipped[MT_MAX_NODES + 1];
    double coded[MT_MAX_NODES + 1];
};

/* ---- layer lists (approx_layers.c) ----------------------------------------
 * A site is a pre-activation tensor y that only a ReLU reads, made by a
 * layer whose backward does not read y, the ReLU's output not feeding the
 * last weight layer. y is kept as one K-bit code; the ReLU's output and
 * (when only that batch-norm's backward reads it) the input of the
 * batch-norm making y are decoded from it and keep no bytes. */
struct graph_keep;
struct graph_step;
extern const struct graph_keep approx8_keep, approx4_keep;

/* Whether tensor t is a site. */
int approx_layers_site(const struct mt_model_desc *d, int t);
int approx_layers_n_sites(const struct mt_model_desc *d);
/* Bytes of site y's code for a batch of B. */
size_t approx_layers_code_bytes(const struct mt_model_desc *d, int y, int B, int bits);
/* Site y's values x (B, y's values) into its code; params the model's
 * parameter block (a batch-norm's gamma and beta set the window). Returns
 * the values clipped. */
size_t approx_layers_encode(const struct mt_model_desc *d, const float *params, int y, int bits,
                            const float *x, int B, void *code);
/* Tensor t, decoded from its site's code in s->code (and, for a batch-norm
 * input, that batch-norm's aux in s), into out (B, t's values). */
void approx_layers_decode(const struct mt_model_desc *d, const float *params, int t, int bits,
                          const struct graph_step *s, int B, float *out);

#endif
