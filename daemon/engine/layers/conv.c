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
 * with Y' and dY' the slice's outputs laid out channel-major. For a square
 * odd kernel with "same" padding at stride 1 the input's gradient is the
 * same kind of convolution of dY with the flipped filters instead (one
 * product per image into dX, no col2im). The workers (par.h) take ranges of
 * images; the workspace (conv_ws) is bounded whatever the batch and the
 * thread count. Its backward reads its input. */
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

/* A square odd kernel with "same" padding at stride 1: the input's
 * gradient is itself such a convolution, of dY with the flipped, transposed
 * filters (conv_transposed), which needs no col2im. */
static int same_conv(const struct mt_layer *L)
{
    return L->s.stride == 1 && L->s.kh == L->s.kw && L->s.kh % 2 == 1 &&
           L->s.pad == (L->s.kh - 1) / 2 && L->s.kh > 1;
}

/* Rows of the backward's second col: dY's patches (c_out kh kw) for a
 * same conv, else dcol's (K). */
static size_t dcol_rows(const struct mt_layer *L)
{
    return same_conv(L) ? (size_t)L->s.units * L->s.kh * L->s.kw : patch(L);
}

/* The workers (par.h) take contiguous ranges of a batch's images, up to
 * CONV_WORKERS of them, each in slices of S images in its own part of the
 * workspace; the weights' gradient of every worker but the first goes to a
 * partial sum in the workspace, added in worker order at the end (so a run
 * is the same run after run; one worker writes the gradient directly, in the
 * order it always did). A slice is as many images as fit CONV_WS_CAP floats
 * (the backward's col, its dcol or dY patches and its gathered dY per image),
 * at least one: 1 MiB keeps a slice's patches in the core's L2 cache between
 * im2col and the product that reads them (8 MiB ran 13 % slower on one
 * thread). The workspace is then
 *   CONV_WORKERS S per_image + (CONV_WORKERS - 1) params (+ a same conv's
 *   flipped filters),
 * whatever the thread count, so the plan does not depend on it. */
#define CONV_WS_CAP ((size_t)1 << 18)   /* 1 MiB per worker */
#define CONV_WORKERS 4

static size_t per_image(const struct mt_layer *L)
{
    return (patch(L) + dcol_rows(L) + (size_t)L->s.units) * L->out.h * L->out.w;
}

/* Images per slice for a batch of B split over CONV_WORKERS. */
static int slice_images(const struct mt_layer *L, int B)
{
    size_t n = CONV_WS_CAP / per_image(L), share = ((size_t)B + CONV_WORKERS - 1) / CONV_WORKERS;
    if (n < 1)
        n = 1;
    return (int)(n < share ? n : share);
}

static size_t conv_ws(const struct mt_layer *L, int B)
{
    return (size_t)CONV_WORKERS * slice_images(L, B) * per_image(L) +
           (CONV_WORKERS - 1) * conv_n_params(L) + (same_conv(L) ? conv_n_weights(L) : 0);
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

/* Zero columns [lo, hi) in rows [oy0, oy1) of a plane W wide. Column by
 * column: the columns are one or two wide, and a row-by-row loop becomes a
 * memset call per row of 4 or 8 bytes (gcc's loop distribution): those calls
 * were 7-11 % of a ResNet step's perf samples. */
static void zero_columns(float *r, int W, int oy0, int oy1, int lo, int hi)
{
    for (int ox = lo; ox < hi; ox++)
        for (int oy = oy0; oy < oy1; oy++)
            r[(size_t)oy * W + ox] = 0.0f;
}

/* Zero the tap's border columns in rows [oy0, oy1) of a (Ho, W) plane. */
static void zero_border(float *r, const struct tap *t, int W)
{
    zero_columns(r, W, t->oy0, t->oy1, 0, t->lo);
    zero_columns(r, W, t->oy0, t->oy1, t->hi, W);
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
                    if (st == 1)
                        memcpy(r + lo, xr + lo, (size_t)(hi - lo) * sizeof(float));
                    else
                        for (int ox = lo; ox < hi; ox++)
                            r[ox] = xr[ox * st];
                }
                zero_columns(row, Wo, 0, Ho, 0, lo); /* padding columns, every row */
                zero_columns(row, Wo, 0, Ho, hi, Wo);
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

/* A conv call as its workers share it. */
struct conv_job {
    const struct mt_layer *L;
    const struct mt_layer_fwd *f;
    const struct mt_layer_bwd *b;
    int SL;         /* images per slice */
    int nw;         /* workers taking images: min(par_threads(), CONV_WORKERS, B) */
    float *wt;      /* a same conv's flipped filters, or NULL */
    float *partial; /* (CONV_WORKERS - 1) params: workers 1.. gradients */
};

static int conv_workers(int B)
{
    int n = par_threads();
    if (n > CONV_WORKERS)
        n = CONV_WORKERS;
    return n < B ? n : B;
}

/* Worker w's part of the workspace: S images' col, wide and dcol. */
static float *worker_ws(const struct conv_job *j, float *ws, int w)
{
    return ws + (size_t)w * j->SL * per_image(j->L);
}

/* Forward of images [b0, b0 + S): col (K, S P), Y' (M, S P) = W col, put
 * back as NCHW with the bias. A 1x1 conv of stride 1 without padding reads
 * each image as its own col. */
static void fwd_slice(const struct mt_layer *L, const struct mt_layer_fwd *f, int b0, int S,
                      float *ws)
{
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out);
    float *y = f->y + (size_t)b0 * out_n;
    if (direct(L)) {
        for (int n = 0; n < S; n++)
            blas_gemm(0, 0, M, P, K, 1.0f, f->p, f->x + (size_t)(b0 + n) * in_n, 0.0f,
                      y + (size_t)n * out_n);
    } else {
        /* one image's (M, P) slice layout is its NCHW layout: no copy */
        float *col = ws, *wide = S == 1 ? y : ws + (size_t)K * S * P;
        for (int n = 0; n < S; n++)
            im2col(L, f->x + (size_t)(b0 + n) * in_n, col, n, S);
        blas_gemm(0, 0, M, S * P, K, 1.0f, f->p, col, 0.0f, wide);
        if (S > 1)
            from_slice(wide, y, M, (size_t)P, S);
    }
    if (L->s.bias) {
        const float *bias = f->p + conv_n_weights(L);
        for (int n = 0; n < S; n++)
            for (int ch = 0; ch < M; ch++) {
                float *yc = y + (size_t)n * out_n + (size_t)ch * P, v = bias[ch];
                for (int i = 0; i < P; i++)
                    yc[i] += v;
            }
    }
}

static void fwd_worker(void *ctx, int w, int nw)
{
    (void)nw;
    const struct conv_job *j = ctx;
    if (w >= j->nw)
        return;
    size_t lo, hi;
    par_range((size_t)j->f->B, w, j->nw, &lo, &hi);
    float *ws = worker_ws(j, j->f->ws, w);
    for (size_t b0 = lo; b0 < hi; b0 += (size_t)j->SL)
        fwd_slice(j->L, j->f, (int)b0, (int)(hi - b0 < (size_t)j->SL ? hi - b0 : (size_t)j->SL),
                  ws);
}

static void conv_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    struct conv_job j = {.L = L, .f = f, .SL = slice_images(L, f->B), .nw = conv_workers(f->B)};
    if (j.nw <= 1)
        fwd_worker(&j, 0, 1);
    else
        par_run(fwd_worker, &j);
}

/* The input's gradient of a same conv, images [b0, b0 + S): dY's patches
 * (c_out kh kw, S P), as im2col of a same conv over dY, then per image
 * dX_n (c_in, P) = Wt (c_in, c_out kh kw) patches_n, with
 * Wt[c][m, i, j] = back[m][c][kh-1-i][kw-1-j] (conv_flip_filters). */
static void transposed_slice(const struct mt_layer *L, const struct mt_layer_bwd *b,
                             const float *wt, int b0, int S, float *pat)
{
    int C = L->in.c, P = L->out.h * L->out.w, R = (int)dcol_rows(L), ld = S * P;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out);
    struct mt_layer T = *L; /* dY's patches: a same conv over the (c_out, h, w) map */
    T.in = L->out;
    const float *dy = b->dy + (size_t)b0 * out_n;
    for (int n = 0; n < S; n++)
        im2col(&T, dy + (size_t)n * out_n, pat, n, S);
    for (int n = 0; n < S; n++)
        blas_gemm_ld(0, 0, C, P, R, 1.0f, wt, R, pat + (size_t)n * P, ld, 0.0f,
                     b->dx + (size_t)(b0 + n) * in_n, P);
}

/* Wt (c_in, c_out kh kw) from the backward's filters (c_out, c_in, kh, kw),
 * each kernel turned half a turn. */
static void conv_flip_filters(const struct mt_layer *L, const float *w, float *wt)
{
    int M = L->s.units, C = L->in.c, kk = L->s.kh * L->s.kw;
    for (int ch = 0; ch < C; ch++)
        for (int m = 0; m < M; m++)
            for (int t = 0; t < kk; t++)
                wt[((size_t)ch * M + m) * kk + t] = w[((size_t)m * C + ch) * kk + (kk - 1 - t)];
}

/* Backward of images [b0, b0 + S): dY' (M, S P) gathered from NCHW; the
 * weights' gradient dW (+)= dY' col^T into dp (beta as `beta`) and the
 * bias's row sums; the input's through the flipped filters (a same conv)
 * or dcol = W^T dY' then col2im. */
static void bwd_slice(const struct conv_job *j, int b0, int S, float *ws, float *dp, float beta)
{
    const struct mt_layer *L = j->L;
    const struct mt_layer_bwd *b = j->b;
    int M = L->s.units, K = (int)patch(L), P = L->out.h * L->out.w, SP = S * P;
    size_t in_n = shape_count(L->in), out_n = shape_count(L->out);
    float *wide = ws, *col = wide + (size_t)M * SP, *dcol = col + (size_t)K * SP;
    /* one image's (c, P) slice layout is its NCHW layout: read it in place */
    const float *dyw = b->dy + (size_t)b0 * out_n;
    if (S > 1) {
        to_slice(dyw, wide, M, (size_t)P, S);
        dyw = wide;
    }
    if (dp) {
        const float *x = b->x + (size_t)b0 * in_n, *cx = col;
        if (direct(L) && S == 1) /* col's rows are the images' channels */
            cx = x;
        else if (direct(L))
            to_slice(x, col, K, (size_t)P, S);
        else
            for (int n = 0; n < S; n++)
                im2col(L, x + (size_t)n * in_n, col, n, S);
        blas_gemm(0, 1, M, K, SP, 1.0f, dyw, cx, beta, dp);
        if (L->s.bias) {
            float *db = dp + conv_n_weights(L);
            for (int ch = 0; ch < M; ch++) {
                float v = row_sum(dyw + (size_t)ch * SP, (size_t)SP);
                db[ch] = beta == 0.0f ? v : beta * db[ch] + v;
            }
        }
    }
    if (!b->dx)
        return;
    if (j->wt) {
        transposed_slice(L, b, j->wt, b0, S, dcol);
        return;
    }
    float *dx = b->dx + (size_t)b0 * in_n;
    if (direct(L) && S == 1) {
        blas_gemm(1, 0, K, SP, M, 1.0f, b->back, dyw, 0.0f, dx);
        return;
    }
    blas_gemm(1, 0, K, SP, M, 1.0f, b->back, dyw, 0.0f, dcol);
    if (direct(L)) {
        from_slice(dcol, dx, K, (size_t)P, S);
    } else {
        memset(dx, 0, (size_t)S * in_n * sizeof(float));
        for (int n = 0; n < S; n++)
            col2im_add(L, dcol, dx + (size_t)n * in_n, n, S);
    }
}

/* Worker w's images; worker 0 accumulates into the gradient itself (beta
 * on its first slice), the others into their partial sums. */
static void bwd_worker(void *ctx, int w, int nw)
{
    (void)nw;
    const struct conv_job *j = ctx;
    if (w >= j->nw)
        return;
    size_t lo, hi;
    par_range((size_t)j->b->B, w, j->nw, &lo, &hi);
    float *ws = worker_ws(j, j->b->ws, w);
    float *dp = !j->b->dp ? NULL : w == 0 ? j->b->dp
                                          : j->partial + (size_t)(w - 1) * conv_n_params(j->L);
    float beta = w == 0 ? j->b->beta : 0.0f;
    for (size_t b0 = lo; b0 < hi; b0 += (size_t)j->SL) {
        bwd_slice(j, (int)b0, (int)(hi - b0 < (size_t)j->SL ? hi - b0 : (size_t)j->SL), ws, dp,
                  beta);
        beta = 1.0f;
    }
}

/* dp += the partial sums of workers 1.., in worker order, over ranges of
 * the parameters. */
static void sum_partials(void *ctx, int w, int nw)
{
    const struct conv_job *j = ctx;
    size_t n = conv_n_params(j->L), lo, hi;
    par_range(n, w, nw, &lo, &hi);
    for (int k = 1; k < j->nw; k++) {
        const float *src = j->partial + (size_t)(k - 1) * n;
        for (size_t i = lo; i < hi; i++)
            j->b->dp[i] += src[i];
    }
}

static void conv_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    int SL = slice_images(L, b->B);
    float *tail = b->ws + (size_t)CONV_WORKERS * SL * per_image(L);
    struct conv_job j = {.L = L, .b = b, .SL = SL, .nw = conv_workers(b->B), .partial = tail};
    if (b->dx && same_conv(L)) {
        j.wt = tail + (CONV_WORKERS - 1) * conv_n_params(L);
        conv_flip_filters(L, b->back, j.wt);
    }
    if (j.nw <= 1) {
        bwd_worker(&j, 0, 1);
        return;
    }
    par_run(bwd_worker, &j);
    if (b->dp)
        par_run(sum_partials, &j);
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
