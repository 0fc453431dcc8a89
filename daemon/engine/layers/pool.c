/* layers/pool.c: max and average pooling (kernel, stride, no padding) and
 * global average pooling, NCHW.
 *
 * Max pooling keeps, per output, the offset of its maximum inside the
 * window (aux), packed (pack.h) in the fewest of 1, 2, 4 or 8 bits that
 * hold every offset (2 bits for a 2x2 window; windows of at most 256), so
 * its backward reads neither its input nor its output; PyTorch keeps an
 * int64 index. Average
 * pooling and the global average keep nothing. */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "kinds.h"
#include "../pack.h"

static int pool_shape(struct mt_layer *L, struct mt_err *err)
{
    const struct mt_layer_spec *s = &L->s;
    if (s->kh <= 0 || s->kw <= 0 || s->stride <= 0)
        return mt_err_set(err, MT_E_INVAL, "kernel and stride must be positive");
    if (s->kh * s->kw > 256)
        return mt_err_set(err, MT_E_INVAL, "a %dx%d window: at most 256 values", s->kh, s->kw);
    if (L->in.h < s->kh || L->in.w < s->kw)
        return mt_err_set(err, MT_E_INVAL, "smaller than its %dx%d kernel", s->kh, s->kw);
    L->out = (struct mt_shape){L->in.c, (L->in.h - s->kh) / s->stride + 1,
                               (L->in.w - s->kw) / s->stride + 1};
    return 0;
}

/* Bits per argmax: 1, 2, 4 or 8, the fewest holding kh kw offsets. */
static int arg_bits(const struct mt_layer *L)
{
    int n = L->s.kh * L->s.kw, b = 1;
    while ((1 << b) < n)
        b *= 2;
    return b;
}

static size_t maxpool_aux(const struct mt_layer *L, int B)
{
    return (pack_bytes((size_t)B * shape_count(L->out), arg_bits(L)) + 3) / 4;
}

/* Plane by plane, planes [lo, hi) of the batch: (h, w) in, (ho, wo) out.
 * The workers take runs of 8 planes (layer_split), so each run's argmax
 * bits start on a byte. */
static void maxpool_fwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_fwd *f = io;
    int H = L->in.h, W = L->in.w, Ho = L->out.h, Wo = L->out.w;
    int kh = L->s.kh, kw = L->s.kw, S = L->s.stride;
    uint8_t *arg = (uint8_t *)f->aux;
    int bits = arg_bits(L);
    size_t first = lo * Ho * Wo * bits / 8; /* lo is a multiple of 8 */
    if (arg)
        memset(arg + first, 0, pack_bytes(hi * Ho * Wo, bits) - first);
    for (size_t p = lo; p < hi; p++) {
        const float *x = f->x + p * H * W;
        float *y = f->y + p * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                const float *w0 = x + (size_t)oy * S * W + (size_t)ox * S;
                float best = w0[0];
                int at = 0;
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        if (w0[i * W + j] > best) { /* first maximum; NaN never wins */
                            best = w0[i * W + j];
                            at = i * kw + j;
                        }
                y[oy * Wo + ox] = best;
                if (arg) {
                    size_t bit = (p * Ho * Wo + (size_t)oy * Wo + ox) * (size_t)bits;
                    arg[bit >> 3] |= (uint8_t)(at << (bit & 7));
                }
            }
    }
}

static void maxpool_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    layer_split(L, f, (size_t)f->B * L->in.c, 8, maxpool_fwd_part);
}

static void maxpool_bwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_bwd *b = io;
    int H = L->in.h, W = L->in.w, Ho = L->out.h, Wo = L->out.w, kw = L->s.kw, S = L->s.stride;
    const uint8_t *arg = (const uint8_t *)b->aux;
    int bits = arg_bits(L);
    memset(b->dx + lo * H * W, 0, (hi - lo) * H * W * sizeof(float));
    for (size_t p = lo; p < hi; p++) {
        float *dx = b->dx + p * H * W;
        const float *dy = b->dy + p * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                int at = (int)pack_get(arg, p * Ho * Wo + (size_t)oy * Wo + ox, bits);
                dx[(size_t)(oy * S + at / kw) * W + ox * S + at % kw] += dy[oy * Wo + ox];
            }
    }
}

static void maxpool_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (b->dx)
        layer_split(L, b, (size_t)b->B * L->in.c, 1, maxpool_bwd_part);
}

static void avgpool_fwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_fwd *f = io;
    int H = L->in.h, W = L->in.w, Ho = L->out.h, Wo = L->out.w;
    int kh = L->s.kh, kw = L->s.kw, S = L->s.stride;
    float inv = 1.0f / (float)(kh * kw);
    for (size_t p = lo; p < hi; p++) {
        const float *x = f->x + p * H * W;
        float *y = f->y + p * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                const float *w0 = x + (size_t)oy * S * W + (size_t)ox * S;
                float s = 0.0f;
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        s += w0[i * W + j];
                y[oy * Wo + ox] = s * inv;
            }
    }
}

static void avgpool_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    layer_split(L, f, (size_t)f->B * L->in.c, 1, avgpool_fwd_part);
}

static void avgpool_bwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_bwd *b = io;
    int H = L->in.h, W = L->in.w, Ho = L->out.h, Wo = L->out.w;
    int kh = L->s.kh, kw = L->s.kw, S = L->s.stride;
    float inv = 1.0f / (float)(kh * kw);
    memset(b->dx + lo * H * W, 0, (hi - lo) * H * W * sizeof(float));
    for (size_t p = lo; p < hi; p++) {
        float *dx = b->dx + p * H * W;
        const float *dy = b->dy + p * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                float g = dy[oy * Wo + ox] * inv;
                float *w0 = dx + (size_t)oy * S * W + (size_t)ox * S;
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        w0[i * W + j] += g;
            }
    }
}

static void avgpool_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (b->dx)
        layer_split(L, b, (size_t)b->B * L->in.c, 1, avgpool_bwd_part);
}

static int gap_shape(struct mt_layer *L, struct mt_err *err)
{
    (void)err;
    L->out = (struct mt_shape){L->in.c, 1, 1};
    return 0;
}

static void gap_fwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_fwd *f = io;
    size_t hw = (size_t)L->in.h * L->in.w;
    for (size_t p = lo; p < hi; p++) {
        const float *x = f->x + p * hw;
        float s = 0.0f;
        for (size_t i = 0; i < hw; i++)
            s += x[i];
        f->y[p] = s / (float)hw;
    }
}

static void gap_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    layer_split(L, f, (size_t)f->B * L->in.c, 1, gap_fwd_part);
}

static void gap_bwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_bwd *b = io;
    size_t hw = (size_t)L->in.h * L->in.w;
    for (size_t p = lo; p < hi; p++) {
        float g = b->dy[p] / (float)hw, *dx = b->dx + p * hw;
        for (size_t i = 0; i < hw; i++)
            dx[i] = g;
    }
}

static void gap_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (b->dx)
        layer_split(L, b, (size_t)b->B * L->in.c, 1, gap_bwd_part);
}

static double pool_flops(const struct mt_layer *L)
{
    return (double)shape_count(L->out) * L->s.kh * L->s.kw;
}

const struct mt_layer_ops layer_maxpool = {
    .name = "maxpool",
    .shape = pool_shape,
    .aux_floats = maxpool_aux,
    .forward = maxpool_fwd,
    .backward = maxpool_bwd,
    .flops = pool_flops,
};

const struct mt_layer_ops layer_avgpool = {
    .name = "avgpool",
    .shape = pool_shape,
    .forward = avgpool_fwd,
    .backward = avgpool_bwd,
    .flops = pool_flops,
};

const struct mt_layer_ops layer_gap = {
    .name = "globalavgpool",
    .shape = gap_shape,
    .forward = gap_fwd,
    .backward = gap_bwd,
};
