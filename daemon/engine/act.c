/* act.c: nonlinearities, fused with the bias add on the forward (act.h). */
#include "act.h"

#include <math.h>
#include <string.h>

#include "simd.h"

static const char *names[MT_ACT_N] = {"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "identity",
                                         "silu"};

const char *act_name(enum mt_act a)
{
    return (unsigned)a < MT_ACT_N ? names[a] : "?";
}

int act_from_name(const char *name)
{
    for (int i = 0; i < MT_ACT_N; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int act_backward_needs_z(enum mt_act a)
{
    return a == MT_ACT_GELU || a == MT_ACT_SILU;
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

static float gelu(float z)
{
    return 0.5f * z * (1.0f + tanhf(GELU_K * (z + GELU_C * z * z * z)));
}

static float gelu_grad(float z)
{
    float u = GELU_K * (z + GELU_C * z * z * z);
    float t = tanhf(u);
    float du = GELU_K * (1.0f + 3.0f * GELU_C * z * z);
    return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * du;
}

float act_f(float z, enum mt_act a)
{
    switch (a) {
    case MT_ACT_RELU: return z > 0 ? z : 0;
    case MT_ACT_LEAKY_RELU: return z > 0 ? z : MT_LEAKY_SLOPE * z;
    case MT_ACT_TANH: return tanhf(z);
    case MT_ACT_SIGMOID: return 1.0f / (1.0f + expf(-z));
    case MT_ACT_GELU: return gelu(z);
    case MT_ACT_SILU: return z / (1.0f + expf(-z));
    default: return z;
    }
}

float act_df(float z, enum mt_act a)
{
    switch (a) {
    case MT_ACT_RELU: return z > 0 ? 1.0f : 0.0f;
    case MT_ACT_LEAKY_RELU: return z > 0 ? 1.0f : MT_LEAKY_SLOPE;
    case MT_ACT_TANH: { float t = tanhf(z); return 1.0f - t * t; }
    case MT_ACT_SIGMOID: { float s = 1.0f / (1.0f + expf(-z)); return s * (1.0f - s); }
    case MT_ACT_GELU: return gelu_grad(z);
    case MT_ACT_SILU: { float s = 1.0f / (1.0f + expf(-z)); return s * (1.0f + z * (1.0f - s)); }
    default: return 1.0f;
    }
}

MT_CLONES
void act_forward_bias(float *restrict z, const float *restrict bias, size_t B, size_t n,
                      enum mt_act a)
{
    for (size_t r = 0; r < B; r++) {
        float *restrict row = z + r * n;
        if (bias)
            for (size_t j = 0; j < n; j++)
                row[j] += bias[j];
        switch (a) {
        case MT_ACT_RELU:
            for (size_t j = 0; j < n; j++)
                row[j] = row[j] > 0 ? row[j] : 0.0f;
            break;
        case MT_ACT_LEAKY_RELU:
            for (size_t j = 0; j < n; j++)
                row[j] = row[j] > 0 ? row[j] : MT_LEAKY_SLOPE * row[j];
            break;
        case MT_ACT_IDENTITY:
            break;
        default:
            for (size_t j = 0; j < n; j++)
                row[j] = act_f(row[j], a);
        }
    }
}

MT_CLONES
void act_backward(float *restrict dh, const float *restrict v, size_t count, enum mt_act a)
{
    switch (a) {
    case MT_ACT_RELU: /* v = H: f' = [H > 0] */
        for (size_t i = 0; i < count; i++)
            dh[i] = v[i] > 0 ? dh[i] : 0.0f;
        break;
    case MT_ACT_LEAKY_RELU: /* sign of H equals sign of Z */
        for (size_t i = 0; i < count; i++)
            dh[i] = v[i] > 0 ? dh[i] : MT_LEAKY_SLOPE * dh[i];
        break;
    case MT_ACT_TANH: /* f' = 1 - H^2 */
        for (size_t i = 0; i < count; i++)
            dh[i] *= 1.0f - v[i] * v[i];
        break;
    case MT_ACT_SIGMOID: /* f' = H (1 - H) */
        for (size_t i = 0; i < count; i++)
            dh[i] *= v[i] * (1.0f - v[i]);
        break;
    case MT_ACT_GELU: /* v = Z */
        for (size_t i = 0; i < count; i++)
            dh[i] *= gelu_grad(v[i]);
        break;
    case MT_ACT_SILU: /* v = Z */
        for (size_t i = 0; i < count; i++)
            dh[i] *= act_df(v[i], MT_ACT_SILU);
        break;
    default:
        break;
    }
}

/* ReGELU2 / ReSiLU2 (act.h). Thresholds and the cumulative sums of a. */
static const float regelu2_c[3] = {-3.18588f, -0.00118f, 3.19083f};
static const float resilu2_c[3] = {-6.30505f, -0.00087f, 6.32582f};
/* deriv[k] = sum_{i <= k} a_i, summed in double from the spec's a. */
static const float regelu2_d[4] = {0.0f, (float)-0.04922, (float)(-0.04922 + 1.09796),
                                   (float)(-0.04922 + 1.09796 - 0.04874)};
static const float resilu2_d[4] = {0.0f, (float)-0.04060, (float)(-0.04060 + 1.08093),
                                   (float)(-0.04060 + 1.08093 - 0.04032)};

int act_has_code2(enum mt_act a)
{
    return a == MT_ACT_GELU || a == MT_ACT_SILU;
}

static const float *code2_c(enum mt_act a)
{
    return a == MT_ACT_SILU ? resilu2_c : regelu2_c;
}

static const float *code2_d(enum mt_act a)
{
    return a == MT_ACT_SILU ? resilu2_d : regelu2_d;
}

unsigned act_code2(float z, enum mt_act a)
{
    const float *c = code2_c(a);
    return (unsigned)(z > c[0]) + (unsigned)(z > c[1]) + (unsigned)(z > c[2]);
}

float act_code2_deriv(unsigned code, enum mt_act a)
{
    return code2_d(a)[code & 3u];
}

void act_code2_pack(uint8_t *restrict codes, const float *restrict z, size_t count,
                    enum mt_act a)
{
    const float *c = code2_c(a);
    float c0 = c[0], c1 = c[1], c2 = c[2];
    for (size_t b = 0; b < count / 4 + (count % 4 != 0); b++) {
        unsigned byte = 0;
        for (size_t j = 0; j < 4 && 4 * b + j < count; j++) {
            float v = z[4 * b + j];
            unsigned k = (unsigned)(v > c0) + (unsigned)(v > c1) + (unsigned)(v > c2);
            byte |= k << (2 * j);
        }
        codes[b] = (uint8_t)byte;
    }
}

void act_code2_forward(float *restrict z, uint8_t *restrict codes, size_t count, enum mt_act a)
{
    act_code2_pack(codes, z, count, a);
    for (size_t i = 0; i < count; i++)
        z[i] = act_f(z[i], a);
}

void act_code2_unpack(float *restrict z, const uint8_t *restrict codes, size_t count,
                      enum mt_act a)
{
    /* Code k < 3 holds (c_k, c_{k+1}]: c_{k+1} itself; code 3 is above c_3. */
    const float *c = code2_c(a);
    const float at[4] = {c[0], c[1], c[2], c[2] + 1.0f};
    for (size_t i = 0; i < count; i++)
        z[i] = at[(codes[i >> 2] >> (2 * (i & 3))) & 3u];
}

void act_code2_backward_z(float *restrict dh, const float *restrict z, size_t count,
                          enum mt_act a)
{
    const float *d = code2_d(a);
    for (size_t i = 0; i < count; i++)
        dh[i] *= d[act_code2(z[i], a)];
}

void act_code2_backward(float *restrict dh, const uint8_t *restrict codes, size_t count,
                        enum mt_act a)
{
    const float *d = code2_d(a);
    for (size_t i = 0; i < count; i++)
        dh[i] *= d[(codes[i >> 2] >> (2 * (i & 3))) & 3u];
}
