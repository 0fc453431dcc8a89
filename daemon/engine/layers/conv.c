/* layers/conv.c: 2-D convolution, NCHW, weights (c_out, c_in, kh, kw) as
 * PyTorch lays them out, then the bias (c_out) when it has one; zero padding
 * on each side, one stride for both axes.
 *
 * One image at a time, through im2col and one sgemm (spec 0.2): the
 * image's patches col (K = c_in kh kw, P = h_out w_out) and
 *   forward   Y_b (c_out, P)  = W (c_out, K) col (K, P)
 *   weights   dW  (c_out, K) += dY_b (c_out, P) col^T
 *   input     dcol (K, P)     = W^T dY_b, then col2im adds it into dX_b.
 * The workspace is two (K, P) buffers, whatever the batch (a 1x1 conv of
 * stride 1 without padding reads the image itself). Its backward reads its
 * input. */
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

static size_t conv_ws(const struct mt_layer *L, int B)
{
    (void)B;
    return direct(L) ? 0 : 2 * patch(L) * (size_t)L->out.h * L->out.w;
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

/* col (K, P) from one image x (c, h, w). */
static void im2col(const struct mt_layer *L, const float *x, float *col)
{
    int C = L->in.c, H = L->in.h, W = L->in.w, kh = L->s.kh, kw = L->s.kw;
    int S = L->s.stride, pad = L->s.pad, Ho = L->out.h, Wo = L->out.w;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                float *row = col + (((size_t)c * kh + i) * kw + j) * Ho * Wo;
                for (int oy = 0; oy < Ho; oy++) {
                    int y = oy * S - pad + i;
                    float *r = row + (size_t)oy * Wo;
                    if (y < 0 || y >= H) {
                        memset(r, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *xr = x + ((size_t)c * H + y) * W;
                    for (int ox = 0; ox < Wo; ox++) {
                        int xx = ox * S - pad + j;
                        r[ox] = xx >= 0 && xx < W ? xr[xx] : 0.0f;
                    }
                }
            }
}

/* dx (c, h, w) += col2im(dcol). */
static void col2im_add(const struct mt_layer *L, const float *dcol, float *dx)
{
    int C = L->in.c, H = L->in.h, W = L->in.w, kh = L->s.kh, kw = L->s.kw;
    int S = L->s.stride, pad = L->s.pad, Ho = L->out.h, Wo = L->out.w;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                const float *row = dcol + (((size_t)c * kh + i) * kw + j) * Ho * Wo;
                for (int oy = 0; oy < Ho; oy++) {
                    int y = oy * S - pad + i;
                    if (y < 0 || y >= H)
                        continue;
                    const float *r = row + (size_t)oy * Wo;
                    float *xr = dx + ((size_t)c * H + y) * W;
                    for (int ox = 0; ox < Wo; ox++) {
                        int xx = ox * S - pad + j;
                        if (xx >= 0 && xx < W)
                            xr[xx] += r[ox];
                    }
                }
            }
}

static void conv_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out);
    const float *bias = L->s.bias ? f->p + conv_n_weights(L) : NULL;
    for (int b = 0; b < f->B; b++) {
        const float *x = f->x + (size_t)b * in_n, *col = x;
        float *y = f->y + (size_t)b * out_n;
        if (!direct(L)) {
            im2col(L, x, f->ws);
            col = f->ws;
        }
        blas_gemm(0, 0, M, P, K, 1.0f, f->p, col, 0.0f, y);
        if (bias)
            for (int c = 0; c < M; c++) {
                float *yc = y + (size_t)c * P, v = bias[c];
                for (int i = 0; i < P; i++)
                    yc[i] += v;
            }
    }
}

static void conv_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out);
    float *dW = b->dp, *db = b->dp && L->s.bias ? b->dp + conv_n_weights(L) : NULL;
    float *col = b->ws, *dcol = b->ws + (size_t)K * P;
    if (db)
        for (int c = 0; c < M; c++)
            db[c] = b->beta == 0.0f ? 0.0f : db[c] * b->beta;
    if (b->dx)
        memset(b->dx, 0, (size_t)b->B * in_n * sizeof(float));
    for (int n = 0; n < b->B; n++) {
        const float *dy = b->dy + (size_t)n * out_n;
        if (dW) {
            const float *xc = b->x + (size_t)n * in_n;
            if (!direct(L)) {
                im2col(L, xc, col);
                xc = col;
            }
            blas_gemm(0, 1, M, K, P, 1.0f, dy, xc, n == 0 ? b->beta : 1.0f, dW);
            if (db)
                for (int c = 0; c < M; c++) {
                    const float *d = dy + (size_t)c * P;
                    float s = 0.0f;
                    for (int i = 0; i < P; i++)
                        s += d[i];
                    db[c] += s;
                }
        }
        if (b->dx) {
            float *dx = b->dx + (size_t)n * in_n;
            if (direct(L)) {
                blas_gemm(1, 0, K, P, M, 1.0f, b->back, dy, 0.0f, dx);
            } else {
                blas_gemm(1, 0, K, P, M, 1.0f, b->back, dy, 0.0f, dcol);
                col2im_add(L, dcol, dx);
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
