/* layers/conv.c: 2-D convolution, NCHW, weights (c_out, c_in, kh, kw) as
 * PyTorch lays them out, then the bias (c_out) when it has one; zero padding
 * on each side, one stride for both axes.
 *
 * A slice of S images at a time, through im2col and one sgemm each way
 * (spec 0.2): the slice's patches col (K = c_in kh kw, S P), P = h_out
 * w_out, and
 *   forward   Y' (c_out, S P)  = W (c_out, K) col
 *   weights   dW (c_out, K)   += dY' col^T
 *   input     dcol (K, S P)    = W^T dY', then col2im adds it into dX,
 * with Y' and dY' the slice's outputs laid out channel-major. The
 * workspace is (2K + c_out) S P floats with S as many images as fit 8 MiB
 * (at least one): it does not grow with the batch past that bound. Its
 * backward reads its input. */
#include <string.h>

#include "kinds.h"
#include "../act.h"
#include "../blas.h"

static int out_size(int n, int k, int stride, int pad)
{
    return (n + 2 * pad - k) / stride + 1;
}

static int conv_shape(struct mt_layer *L, struct mt_err *err)
{
    const struct mt_layer_spec *s = &L->s;
    if (s->units <= 0 || s->kh <= 0 || s->kw <= 0 || s->stride <= 0 || s->pad < 0)
        return mt_err_set(err, MT_E_INVAL, "channels, kernel and stride must be positive");
    if (s->pad >= s->kh || s->pad >= s->kw)
        return mt_err_set(err, MT_E_INVAL, "padding %d must be smaller than the %dx%d kernel",
                          s->pad, s->kh, s->kw);
    if (L->in.h + 2 * s->pad < s->kh || L->in.w + 2 * s->pad < s->kw)
        return mt_err_set(err, MT_E_INVAL, "smaller than its %dx%d kernel (padding %d)", s->kh,
                          s->kw, s->pad);
    L->out = (struct mt_shape){s->units, out_size(L->in.h, s->kh, s->stride, s->pad),
                               out_size(L->in.w, s->kw, s->stride, s->pad)};
    return 0;
}

static size_t patch(const struct mt_layer *L)
{
    return (size_t)L->in.c * L->s.kh * L->s.kw;
}

static size_t conv_n_weights(const struct mt_layer *L)
{
    return (size_t)L->s.units * patch(L);
}

static size_t conv_n_params(const struct mt_layer *L)
{
    return conv_n_weights(L) + (L->s.bias ? (size_t)L->s.units : 0);
}

static int direct(const struct mt_layer *L)
{
    return L->s.kh == 1 && L->s.kw == 1 && L->s.stride == 1 && L->s.pad == 0;
}

/* Images per slice: as many as fit CONV_WS_CAP floats of workspace (the
 * backward's col, dcol and gathered dY, (2K + M) P floats per image), at
 * least one. */
#define CONV_WS_CAP ((size_t)1 << 21)   /* 8 MiB */

static size_t per_image(const struct mt_layer *L)
{
    return (2 * patch(L) + (size_t)L->s.units) * L->out.h * L->out.w;
}

static int slice_images(const struct mt_layer *L, int B)
{
    size_t n = CONV_WS_CAP / per_image(L);
    if (n < 1)
        n = 1;
    return n < (size_t)B ? (int)n : B;
}

static size_t conv_ws(const struct mt_layer *L, int B)
{
    return (size_t)slice_images(L, B) * per_image(L);
}

static void conv_init(const struct mt_layer *L, float *p, float *stats, struct mt_rng *rng,
                      int init, int act)
{
    (void)stats;
    int k = L->s.kh * L->s.kw;
    layer_init_uniform(p, conv_n_weights(L), L->in.c * k, L->s.units * k, rng, init, act);
    if (L->s.bias)
        memset(p + conv_n_weights(L), 0, (size_t)L->s.units * sizeof(float));
}

/* Image n of a slice of S into col (K, S P): row k holds that patch value
 * for every output pixel of every image of the slice. */
static void im2col(const struct mt_layer *L, const float *x, float *col, int n, int S)
{
    int C = L->in.c, H = L->in.h, W = L->in.w, kh = L->s.kh, kw = L->s.kw;
    int st = L->s.stride, pad = L->s.pad, Ho = L->out.h, Wo = L->out.w;
    size_t P = (size_t)Ho * Wo, ld = (size_t)S * P;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                float *row = col + (((size_t)c * kh + i) * kw + j) * ld + (size_t)n * P;
                /* output columns whose input column is inside: ox in [lo, hi) */
                int lo = pad - j > 0 ? (pad - j + st - 1) / st : 0;
                int hi = (W - 1 + pad - j) / st + 1;
                if (hi > Wo)
                    hi = Wo;
                if (lo > hi)
                    lo = hi;
                for (int oy = 0; oy < Ho; oy++) {
                    int y = oy * st - pad + i;
                    float *r = row + (size_t)oy * Wo;
                    if (y < 0 || y >= H) {
                        memset(r, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *xr = x + ((size_t)c * H + y) * W - pad + j;
                    for (int ox = 0; ox < lo; ox++)
                        r[ox] = 0.0f;
                    if (st == 1)
                        memcpy(r + lo, xr + lo, (size_t)(hi - lo) * sizeof(float));
                    else
                        for (int ox = lo; ox < hi; ox++)
                            r[ox] = xr[ox * st];
                    for (int ox = hi; ox < Wo; ox++)
                        r[ox] = 0.0f;
                }
            }
}

/* dx (c, h, w) += col2im of image n's columns of dcol (K, S P). */
static void col2im_add(const struct mt_layer *L, const float *dcol, float *dx, int n, int S)
{
    int C = L->in.c, H = L->in.h, W = L->in.w, kh = L->s.kh, kw = L->s.kw;
    int st = L->s.stride, pad = L->s.pad, Ho = L->out.h, Wo = L->out.w;
    size_t P = (size_t)Ho * Wo, ld = (size_t)S * P;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                const float *row = dcol + (((size_t)c * kh + i) * kw + j) * ld + (size_t)n * P;
                int lo = pad - j > 0 ? (pad - j + st - 1) / st : 0;
                int hi = (W - 1 + pad - j) / st + 1;
                if (hi > Wo)
                    hi = Wo;
                for (int oy = 0; oy < Ho; oy++) {
                    int y = oy * st - pad + i;
                    if (y < 0 || y >= H)
                        continue;
                    const float *restrict r = row + (size_t)oy * Wo;
                    float *restrict xr = dx + ((size_t)c * H + y) * W - pad + j;
                    if (st == 1)
                        for (int ox = lo; ox < hi; ox++)
                            xr[ox] += r[ox];
                    else
                        for (int ox = lo; ox < hi; ox++)
                            xr[ox * st] += r[ox];
                }
            }
}

/* Sum of n floats in eight running sums (vectorisable; the order is fixed,
 * so the result is the same run to run). */
static float row_sum(const float *restrict d, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += d[i + k];
    float s = 0.0f;
    for (int k = 0; k < 8; k++)
        s += acc[k];
    for (; i < n; i++)
        s += d[i];
    return s;
}

/* Between NCHW (S images of (M, P)) and the slice's (M, S P) layout. */
static void to_slice(const float *nchw, float *wide, int M, size_t P, int S)
{
    for (int n = 0; n < S; n++)
        for (int m = 0; m < M; m++)
            memcpy(wide + ((size_t)m * S + n) * P, nchw + ((size_t)n * M + m) * P,
                   P * sizeof(float));
}

static void from_slice(const float *wide, float *nchw, int M, size_t P, int S)
{
    for (int n = 0; n < S; n++)
        for (int m = 0; m < M; m++)
            memcpy(nchw + ((size_t)n * M + m) * P, wide + ((size_t)m * S + n) * P,
                   P * sizeof(float));
}

/* Forward, a slice of S images at a time: col (K, S P), then one sgemm
 * Y' (M, S P) = W col, put back as NCHW with the bias. A 1x1 conv of
 * stride 1 without padding reads each image as its own col. */
static void conv_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out);
    const float *bias = L->s.bias ? f->p + conv_n_weights(L) : NULL;
    int SL = slice_images(L, f->B);
    for (int b0 = 0; b0 < f->B; b0 += SL) {
        int S = f->B - b0 < SL ? f->B - b0 : SL;
        float *y = f->y + (size_t)b0 * out_n;
        if (direct(L)) {
            for (int n = 0; n < S; n++)
                blas_gemm(0, 0, M, P, K, 1.0f, f->p, f->x + (size_t)(b0 + n) * in_n, 0.0f,
                          y + (size_t)n * out_n);
        } else {
            float *col = f->ws, *wide = f->ws + (size_t)K * S * P;
            for (int n = 0; n < S; n++)
                im2col(L, f->x + (size_t)(b0 + n) * in_n, col, n, S);
            blas_gemm(0, 0, M, S * P, K, 1.0f, f->p, col, 0.0f, wide);
            from_slice(wide, y, M, (size_t)P, S);
        }
        if (bias)
            for (int n = 0; n < S; n++)
                for (int c = 0; c < M; c++) {
                    float *yc = y + (size_t)n * out_n + (size_t)c * P, v = bias[c];
                    for (int i = 0; i < P; i++)
                        yc[i] += v;
                }
    }
}

/* Backward, slice by slice: dY' (M, S P) gathered from NCHW; the weights'
 * gradient dW += dY' col^T (one sgemm over the slice), the input's
 * dcol = W^T dY' then col2im. */
static void conv_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out);
    float *dW = b->dp, *db = b->dp && L->s.bias ? b->dp + conv_n_weights(L) : NULL;
    int SL = slice_images(L, b->B);
    if (db)
        for (int c = 0; c < M; c++)
            db[c] = b->beta == 0.0f ? 0.0f : db[c] * b->beta;
    for (int b0 = 0; b0 < b->B; b0 += SL) {
        int S = b->B - b0 < SL ? b->B - b0 : SL;
        const float *dy = b->dy + (size_t)b0 * out_n;
        float *dyw = b->ws, *col = dyw + (size_t)M * S * P, *dcol = col + (size_t)K * S * P;
        to_slice(dy, dyw, M, (size_t)P, S);
        if (db)
            for (int c = 0; c < M; c++)
                db[c] += row_sum(dyw + (size_t)c * S * P, (size_t)S * P);
        if (dW) {
            if (direct(L)) /* col's rows are the images' channels */
                to_slice(b->x + (size_t)b0 * in_n, col, K, (size_t)P, S);
            else
                for (int n = 0; n < S; n++)
                    im2col(L, b->x + (size_t)(b0 + n) * in_n, col, n, S);
            blas_gemm(0, 1, M, K, S * P, 1.0f, dyw, col, b0 == 0 ? b->beta : 1.0f, dW);
        }
        if (b->dx) {
            float *dx = b->dx + (size_t)b0 * in_n;
            blas_gemm(1, 0, K, S * P, M, 1.0f, b->back, dyw, 0.0f, dcol);
            if (direct(L)) {
                from_slice(dcol, dx, K, (size_t)P, S);
            } else {
                memset(dx, 0, (size_t)S * in_n * sizeof(float));
                for (int n = 0; n < S; n++)
                    col2im_add(L, dcol, dx + (size_t)n * in_n, n, S);
            }
        }
    }
}

static double conv_flops(const struct mt_layer *L)
{
    return 2.0 * (double)conv_n_weights(L) * L->out.h * L->out.w;
}

const struct mt_layer_ops layer_conv = {
    .name = "conv",
    .flags = MT_LAYER_NEEDS_IN | MT_LAYER_WEIGHTS,
    .shape = conv_shape,
    .n_params = conv_n_params,
    .n_weights = conv_n_weights,
    .init = conv_init,
    .ws_floats = conv_ws,
    .forward = conv_fwd,
    .backward = conv_bwd,
    .flops = conv_flops,
};
