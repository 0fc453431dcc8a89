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
#include "../par.h"

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

#include <stdlib.h>
static int slice_images(const struct mt_layer *L, int B)
{
    static size_t cap;
    if (!cap) cap = getenv("CAPF") ? (size_t)atol(getenv("CAPF")) : CONV_WS_CAP;
    size_t n = cap / per_image(L);
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

/* Stride 1 and output as wide as the input (padding (kw - 1) / 2): the
 * output pixels q of kernel tap (i, j) read the input plane at q + off,
 * off = (i - pad) W + (j - pad), so each tap's row of col is one shifted
 * copy of the plane with its border columns (ox < lo or ox >= hi, where the
 * tap falls in the padding) and rows set to zero. */
static int same_width(const struct mt_layer *L)
{
    return L->s.stride == 1 && L->out.w == L->in.w;
}

struct tap {
    int oy0, oy1;       /* output rows whose input row is inside */
    int lo, hi;         /* output columns whose input column is inside */
    long off;           /* input index - output index */
    size_t q0, q1;      /* output indices copied: rows [oy0, oy1) clipped to the plane */
};

static struct tap tap_of(const struct mt_layer *L, int i, int j)
{
    int H = L->in.h, W = L->in.w, pad = L->s.pad, Ho = L->out.h;
    struct tap t;
    t.oy0 = pad - i > 0 ? pad - i : 0;
    t.oy1 = H + pad - i < Ho ? H + pad - i : Ho;
    if (t.oy1 < t.oy0)
        t.oy1 = t.oy0;
    t.lo = pad - j > 0 ? pad - j : 0;
    t.hi = W + pad - j < W ? W + pad - j : W;
    t.off = (long)(i - pad) * W + (j - pad);
    long q0 = (long)t.oy0 * W, q1 = (long)t.oy1 * W, n = (long)H * W;
    if (q0 + t.off < 0)
        q0 = -t.off;
    if (q1 + t.off > n)
        q1 = n - t.off;
    t.q0 = (size_t)q0;
    t.q1 = (size_t)(q1 > q0 ? q1 : q0);
    return t;
}

/* Zero the tap's border columns in rows [oy0, oy1) of a (Ho, W) plane. */
static void zero_border(float *r, const struct tap *t, int W)
{
    for (int oy = t->oy0; oy < t->oy1; oy++) {
        for (int ox = 0; ox < t->lo; ox++)
            r[(size_t)oy * W + ox] = 0.0f;
        for (int ox = t->hi; ox < W; ox++)
            r[(size_t)oy * W + ox] = 0.0f;
    }
}

static void im2col_plane_same(const struct mt_layer *L, const float *x, float *r, int i, int j)
{
    int W = L->in.w, Ho = L->out.h;
    struct tap t = tap_of(L, i, j);
    memset(r, 0, (size_t)t.oy0 * W * sizeof(float));
    memset(r + (size_t)t.oy1 * W, 0, (size_t)(Ho - t.oy1) * W * sizeof(float));
    memcpy(r + t.q0, x + t.q0 + t.off, (t.q1 - t.q0) * sizeof(float));
    zero_border(r, &t, W);
}

/* dx (H, W) += the tap's row of dcol, shifted back; the border entries of
 * the row (padding taps) are zeroed first so the one contiguous sum adds
 * nothing where a row wraps into the next. */
static void col2im_plane_same(const struct mt_layer *L, float *restrict r, float *restrict dx,
                              int i, int j)
{
    struct tap t = tap_of(L, i, j);
    zero_border(r, &t, L->in.w);
    float *d = dx + t.off;
    for (size_t q = t.q0; q < t.q1; q++)
        d[q] += r[q];
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
                if (same_width(L)) {
                    im2col_plane_same(L, x + (size_t)c * H * W, row, i, j);
                    continue;
                }
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
static void col2im_add(const struct mt_layer *L, float *dcol, float *dx, int n, int S)
{
    int C = L->in.c, H = L->in.h, W = L->in.w, kh = L->s.kh, kw = L->s.kw;
    int st = L->s.stride, pad = L->s.pad, Ho = L->out.h, Wo = L->out.w;
    size_t P = (size_t)Ho * Wo, ld = (size_t)S * P;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                float *row = dcol + (((size_t)c * kh + i) * kw + j) * ld + (size_t)n * P;
                if (same_width(L)) {
                    col2im_plane_same(L, row, dx + (size_t)c * H * W, i, j);
                    continue;
                }
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

/* Between NCHW (images [lo, hi) of a slice of S, each (M, P)) and the
 * slice's (M, S P) layout. */
static void to_slice_images(const float *nchw, float *wide, int M, size_t P, int S, size_t lo,
                            size_t hi)
{
    for (size_t n = lo; n < hi; n++)
        for (int m = 0; m < M; m++)
            memcpy(wide + ((size_t)m * S + n) * P, nchw + (n * M + m) * P, P * sizeof(float));
}

static void from_slice_images(const float *wide, float *nchw, int M, size_t P, int S, size_t lo,
                              size_t hi)
{
    for (size_t n = lo; n < hi; n++)
        for (int m = 0; m < M; m++)
            memcpy(nchw + (n * M + m) * P, wide + ((size_t)m * S + n) * P, P * sizeof(float));
}

/* One slice of S images (from b0) as the workers share it: images [lo, hi)
 * of the slice for im2col, the products' columns, col2im and the layout
 * copies; the weights' gradient by columns of dW (ranges of K), the bias
 * gradient by channels. With one worker every product is the whole slice's,
 * as before the pool. */
struct conv_slice {
    const struct mt_layer *L;
    const struct mt_layer_fwd *f;
    const struct mt_layer_bwd *b;
    int b0, S;
    float *col, *wide, *dcol;   /* (K, S P), (M, S P), (K, S P) */
};

static void slice_fwd(void *ctx, int w, int nw)
{
    const struct conv_slice *c = ctx;
    const struct mt_layer *L = c->L;
    const struct mt_layer_fwd *f = c->f;
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w, S = c->S;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out), lo, hi;
    par_range((size_t)S, w, nw, &lo, &hi);
    if (lo == hi)
        return;
    float *y = f->y + (size_t)c->b0 * out_n;
    if (direct(L)) {
        for (size_t n = lo; n < hi; n++)
            blas_gemm(0, 0, M, P, K, 1.0f, f->p, f->x + (c->b0 + n) * in_n, 0.0f, y + n * out_n);
    } else {
        for (size_t n = lo; n < hi; n++)
            im2col(L, f->x + (c->b0 + n) * in_n, c->col, (int)n, S);
        int ld = S * P, cols = (int)(hi - lo) * P;
        blas_gemm_ld(0, 0, M, cols, K, 1.0f, f->p, K, c->col + lo * P, ld, 0.0f,
                     c->wide + lo * P, ld);
        from_slice_images(c->wide, y, M, (size_t)P, S, lo, hi);
    }
    if (L->s.bias) {
        const float *bias = f->p + conv_n_weights(L);
        for (size_t n = lo; n < hi; n++)
            for (int ch = 0; ch < M; ch++) {
                float *yc = y + n * out_n + (size_t)ch * P, v = bias[ch];
                for (int i = 0; i < P; i++)
                    yc[i] += v;
            }
    }
}

/* Forward, a slice of S images at a time: col (K, S P), then one sgemm
 * Y' (M, S P) = W col, put back as NCHW with the bias. A 1x1 conv of
 * stride 1 without padding reads each image as its own col. */
static void conv_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    int K = (int)patch(L), P = L->out.h * L->out.w;
    int SL = slice_images(L, f->B);
    for (int b0 = 0; b0 < f->B; b0 += SL) {
        int S = f->B - b0 < SL ? f->B - b0 : SL;
        struct conv_slice c = {.L = L, .f = f, .b0 = b0, .S = S, .col = f->ws,
                               .wide = f->ws + (size_t)K * S * P};
        par_run(slice_fwd, &c);
    }
}

/* Backward, first half: the slice's dY' (M, S P) gathered from NCHW and,
 * when the weights' gradient is wanted, its col (im2col, or the images'
 * channels for a 1x1 conv), image by image. */
static void slice_gather(void *ctx, int w, int nw)
{
    const struct conv_slice *c = ctx;
    const struct mt_layer *L = c->L;
    const struct mt_layer_bwd *b = c->b;
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w, S = c->S;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out), lo, hi;
    par_range((size_t)S, w, nw, &lo, &hi);
    to_slice_images(b->dy + (size_t)c->b0 * out_n, c->wide, M, (size_t)P, S, lo, hi);
    if (!b->dp)
        return;
    const float *x = b->x + (size_t)c->b0 * in_n;
    if (direct(L)) /* col's rows are the images' channels */
        to_slice_images(x, c->col, K, (size_t)P, S, lo, hi);
    else
        for (size_t n = lo; n < hi; n++)
            im2col(L, x + n * in_n, c->col, (int)n, S);
}

/* Second half: dW[:, k0:k1] (+)= dY' col[k0:k1]^T and the bias gradient
 * of channels [c0, c1); the input's dcol = W^T dY' and col2im, image by
 * image. */
static void slice_grads(void *ctx, int w, int nw)
{
    const struct conv_slice *c = ctx;
    const struct mt_layer *L = c->L;
    const struct mt_layer_bwd *b = c->b;
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w, S = c->S, ld = S * P;
    size_t in_n = shape_count(L->in), lo, hi;
    if (b->dp) {
        float beta = c->b0 == 0 ? b->beta : 1.0f;
        par_range((size_t)K, w, nw, &lo, &hi);
        if (hi > lo)
            blas_gemm_ld(0, 1, M, (int)(hi - lo), ld, 1.0f, c->wide, ld, c->col + lo * ld, ld,
                         beta, b->dp + lo, K);
        if (L->s.bias) {
            float *db = b->dp + conv_n_weights(L);
            par_range((size_t)M, w, nw, &lo, &hi);
            for (size_t ch = lo; ch < hi; ch++) {
                float v = row_sum(c->wide + ch * ld, (size_t)ld);
                db[ch] = c->b0 == 0 ? (b->beta == 0.0f ? v : b->beta * db[ch] + v) : db[ch] + v;
            }
        }
    }
    if (!b->dx)
        return;
    par_range((size_t)S, w, nw, &lo, &hi);
    if (lo == hi)
        return;
    float *dx = b->dx + (size_t)c->b0 * in_n;
    int cols = (int)(hi - lo) * P;
    blas_gemm_ld(1, 0, K, cols, M, 1.0f, b->back, K, c->wide + lo * P, ld, 0.0f,
                 c->dcol + lo * P, ld);
    if (direct(L)) {
        from_slice_images(c->dcol, dx, K, (size_t)P, S, lo, hi);
    } else {
        memset(dx + lo * in_n, 0, (hi - lo) * in_n * sizeof(float));
        for (size_t n = lo; n < hi; n++)
            col2im_add(L, c->dcol, dx + n * in_n, (int)n, S);
    }
}

/* Backward, slice by slice: dY' (M, S P) gathered from NCHW; the weights'
 * gradient dW += dY' col^T (one sgemm over the slice), the input's
 * dcol = W^T dY' then col2im. */
static void conv_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w;
    int SL = slice_images(L, b->B);
    for (int b0 = 0; b0 < b->B; b0 += SL) {
        int S = b->B - b0 < SL ? b->B - b0 : SL;
        float *wide = b->ws, *col = wide + (size_t)M * S * P;
        struct conv_slice c = {.L = L, .b = b, .b0 = b0, .S = S, .wide = wide, .col = col,
                               .dcol = col + (size_t)K * S * P};
        par_run(slice_gather, &c);
        par_run(slice_grads, &c);
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
