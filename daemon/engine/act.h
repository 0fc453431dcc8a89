/* act.h: elementwise nonlinearities and their derivatives.
 *
 * Each activation reads either the pre-activation Z or its output H for the
 * backward: ReLU, leaky ReLU, tanh and sigmoid need only H (so BP keeps H
 * alone, spec section 1(a)); GELU and SiLU need Z (act_backward_needs_z). */
#ifndef MT_ACT_H
#define MT_ACT_H

#include <stddef.h>
#include <stdint.h>

enum mt_act {
    MT_ACT_RELU,
    MT_ACT_LEAKY_RELU,  /* slope MT_LEAKY_SLOPE below zero */
    MT_ACT_TANH,
    MT_ACT_SIGMOID,
    MT_ACT_GELU,        /* tanh approximation */
    MT_ACT_IDENTITY,
    MT_ACT_SILU,        /* z * sigmoid(z) */
    MT_ACT_N
};

#define MT_LEAKY_SLOPE 0.01f

const char *act_name(enum mt_act a);
/* Activation by name ("relu", "leaky_relu", "tanh", "sigmoid", "gelu",
 * "identity", "silu"); -1 when unknown. */
int act_from_name(const char *name);
int act_backward_needs_z(enum mt_act a);

/* H = f(Z + bias) in place over Z (B, n), bias (n) may be NULL. */
void act_forward_bias(float *z, const float *bias, size_t B, size_t n, enum mt_act a);
/* dZ = dH * f'(.) in place over dH (count elements); reads H, or Z where
 * act_backward_needs_z. */
void act_backward(float *dh, const float *h_or_z, size_t count, enum mt_act a);
/* Scalar f and f' for references and tests. */
float act_f(float z, enum mt_act a);
float act_df(float z, enum mt_act a);

/* ReGELU2 / ReSiLU2 (spec 8.2, Approx-BP): the forward stays the exact
 * GELU (this engine's GELU is the tanh approximation) or SiLU; the backward
 * replaces f' by the step function sum_{i=1..3} a_i [z > c_i], so a 2-bit
 * code per element, the number of thresholds c_1 < c_2 < c_3 that z
 * exceeds, is all the backward needs. Constants from the authors' code:
 *   ReGELU2: a = (-0.04922, 1.09796, -0.04874), c = (-3.18588, -0.00118, 3.19083)
 *   ReSiLU2: a = (-0.04060, 1.08093, -0.04032), c = (-6.30505, -0.00087, 6.32582)
 * Only for MT_ACT_GELU and MT_ACT_SILU (act_has_code2). */

int act_has_code2(enum mt_act a);
/* The code of z: [z > c_1] + [z > c_2] + [z > c_3] (0 for NaN). */
unsigned act_code2(float z, enum mt_act a);
/* The step derivative of a code: sum_{i <= code} a_i (0 for code 0). */
float act_code2_deriv(unsigned code, enum mt_act a);
/* Forward over count pre-activations z: codes (pack_bytes(count, 2) bytes,
 * packed 4 per byte as pack.h lays them out) get each element's code, then
 * z = f(z) in place (the same values as act_f). */
void act_code2_forward(float *z, uint8_t *codes, size_t count, enum mt_act a);
/* Backward: dh[i] *= act_code2_deriv(code i) over count elements. */
void act_code2_backward(float *dh, const uint8_t *codes, size_t count, enum mt_act a);
/* The codes of count pre-activations z alone (z unchanged). */
void act_code2_pack(uint8_t *codes, const float *z, size_t count, enum mt_act a);
/* A pre-activation on each code's step (act_code2 gives the code back), for
 * a backward that reads z: what 2-bit codes decode to. */
void act_code2_unpack(float *z, const uint8_t *codes, size_t count, enum mt_act a);
/* Backward from z: dh[i] *= act_code2_deriv(act_code2(z[i])). */
void act_code2_backward_z(float *dh, const float *z, size_t count, enum mt_act a);

#endif
