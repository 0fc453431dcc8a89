/* layers/batchnorm.c: batch-norm per channel over (batch, h, w); on a
 * (n, 1, 1) tensor that is per feature over the batch (norm.h, the MLP's
 * batch-norm, bit for bit). Conventions as norm.h: biased variance in the
 * normalisation, unbiased in the running variance, momentum 0.1. Parameters gamma then beta (c each); running
 * mean then variance (c each) in the statistics block. Keeps what
 * autograd keeps: its input, and the batch mean and 1/sigma per channel
 * (aux, 2c floats); the backward recomputes xhat from them. Takes beta 0
 * only: gamma's and beta's gradients are written. */
#include <math.h>

#include "kinds.h"
#include "../norm.h"
#include "../par.h"
#include "../simd.h"

static int bn_shape(struct mt_layer *L, struct mt_err *err)
{
    (void)err;
    L->out = L->in;
    return 0;
}

/* ---- per channel over (batch, h, w): maps ------------------------------- */

/* Sums over one plane in eight double lanes, in a fixed order (the same
 * bits on every run and clone, simd.h). */
MT_CLONES static double plane_sum(const float *restrict p, size_t n)
{
    double a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            a[k] += p[i + k];
    for (; i < n; i++)
        a[i & 7] += p[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

MT_CLONES static double plane_sqdev(const float *restrict p, size_t n, float mu)
{
    double a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            double d = (double)p[i + k] - mu;
            a[k] += d * d;
        }
    for (; i < n; i++) {
        double d = (double)p[i] - mu;
        a[i & 7] += d * d;
    }
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* sum dy xhat and sum dy over one plane, xhat = (x - mu) r. */
MT_CLONES static void plane_dots(const float *restrict d, const float *restrict x, size_t n,
                                 float mu, float r, double *sg, double *sb)
{
    double g[8] = {0}, b[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            g[k] += (double)d[i + k] * ((x[i + k] - mu) * r);
            b[k] += d[i + k];
        }
    for (; i < n; i++) {
        g[i & 7] += (double)d[i] * ((x[i] - mu) * r);
        b[i & 7] += d[i];
    }
    *sg += ((g[0] + g[1]) + (g[2] + g[3])) + ((g[4] + g[5]) + (g[6] + g[7]));
    *sb += ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

MT_CLONES static void plane_affine(float *restrict y, const float *restrict x, size_t n, float g,
                                   float o)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * g + o;
}

MT_CLONES static void plane_bwd(float *o, const float *d, const float *x, size_t n, float sc,
                                float mb, float mu, float r, float mg)
{
    for (size_t i = 0; i < n; i++)
        o[i] = sc * (d[i] - mb - ((x[i] - mu) * r) * mg);
}

/* Channel c of a batch: B planes of hw values, C hw apart. */
static void map_stats(const float *x, int B, int C, size_t hw, int c, float *mean, float *rstd,
                      float *uvar)
{
    double s = 0.0, v = 0.0, n = (double)B * (double)hw;
    for (int b = 0; b < B; b++)
        s += plane_sum(x + ((size_t)b * C + c) * hw, hw);
    float mu = (float)(s / n);
    for (int b = 0; b < B; b++)
        v += plane_sqdev(x + ((size_t)b * C + c) * hw, hw, mu);
    *mean = mu;
    *rstd = (float)(1.0 / sqrt(v / n + MT_NORM_EPS));
    *uvar = (float)(n > 1 ? v / (n - 1) : v / n);
}

/* Channels are independent: the workers (par.h) take ranges of them, each
 * channel computed as one worker alone would. */
struct bn_job {
    const struct mt_layer *L;
    const struct mt_layer_fwd *f;
    const struct mt_layer_bwd *b;
};

static void map_forward_part(void *ctx, int w, int nw)
{
    const struct bn_job *j = ctx;
    const struct mt_layer *L = j->L;
    const struct mt_layer_fwd *f = j->f;
    int C = L->in.c;
    size_t hw = (size_t)L->in.h * L->in.w, lo, hi;
    par_range((size_t)C, w, nw, &lo, &hi);
    for (int c = (int)lo; c < (int)hi; c++) {
        float g, o;
        if (f->train) {
            float mu, r, uvar;
            map_stats(f->x, f->B, C, hw, c, &mu, &r, &uvar);
            if (f->aux) {
                f->aux[c] = mu;
                f->aux[C + c] = r;
            }
            if (f->stats) {
                f->stats[c] = (1.0f - MT_BN_MOMENTUM) * f->stats[c] + MT_BN_MOMENTUM * mu;
                f->stats[C + c] =
                    (1.0f - MT_BN_MOMENTUM) * f->stats[C + c] + MT_BN_MOMENTUM * uvar;
            }
            g = f->p[c] * r;
            o = f->p[C + c] - mu * g;
        } else {
            float r = 1.0f / sqrtf(f->stats[C + c] + MT_NORM_EPS);
            g = f->p[c] * r;
            o = f->p[C + c] - f->stats[c] * g;
        }
        for (int b = 0; b < f->B; b++) {
            size_t at = ((size_t)b * C + c) * hw;
            plane_affine(f->y + at, f->x + at, hw, g, o);
        }
    }
}

/* dx = rstd gamma (dy - mean(dy) - xhat mean(dy xhat)), xhat from the input. */
static void map_backward_part(void *ctx, int w, int nw)
{
    const struct bn_job *j = ctx;
    const struct mt_layer *L = j->L;
    const struct mt_layer_bwd *b = j->b;
    int C = L->in.c;
    size_t hw = (size_t)L->in.h * L->in.w, lo, hi;
    double n = (double)b->B * (double)hw;
    par_range((size_t)C, w, nw, &lo, &hi);
    for (int c = (int)lo; c < (int)hi; c++) {
        float mu = b->aux[c], r = b->aux[C + c];
        double sg = 0.0, sb = 0.0;
        for (int k = 0; k < b->B; k++) {
            size_t at = ((size_t)k * C + c) * hw;
            plane_dots(b->dy + at, b->x + at, hw, mu, r, &sg, &sb);
        }
        if (b->dp) {
            b->dp[c] = (float)sg;
            b->dp[C + c] = (float)sb;
        }
        if (!b->dx)
            continue;
        float mg = (float)(sg / n), mb = (float)(sb / n), sc = r * b->p[c];
        for (int k = 0; k < b->B; k++) {
            size_t at = ((size_t)k * C + c) * hw;
            plane_bwd(b->dx + at, b->dy + at, b->x + at, hw, sc, mb, mu, r, mg);
        }
    }
}

static size_t bn_n_params(const struct mt_layer *L)
{
    return 2 * (size_t)L->in.c;
}

static size_t bn_aux(const struct mt_layer *L, int B)
{
    (void)B;
    return 2 * (size_t)L->in.c;
}

static void bn_init(const struct mt_layer *L, float *p, float *stats, struct mt_rng *rng, int init,
                    int act)
{
    (void)rng, (void)init, (void)act;
    int c = L->in.c;
    for (int j = 0; j < c; j++) {
        p[j] = 1.0f;
        p[c + j] = 0.0f;
        stats[j] = 0.0f;
        stats[c + j] = 1.0f;
    }
}

static void bn_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    int c = L->in.c;
    if (L->in.h * L->in.w > 1) {
        par_run(map_forward_part, &(struct bn_job){.L = L, .f = f});
        return;
    }
    const float *gamma = f->p, *beta = f->p + c;
    if (f->train) /* stats NULL: a replayed forward, whose statistics moved already */
        batchnorm_forward_train(f->y, NULL, f->x, gamma, beta, f->B, c, f->aux,
                                f->aux ? f->aux + c : NULL, f->stats,
                                f->stats ? f->stats + c : NULL);
    else
        batchnorm_forward_infer(f->y, f->x, gamma, beta, f->stats, f->stats + c, f->B, c);
}

static void bn_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    int c = L->in.c;
    if (L->in.h * L->in.w > 1) {
        par_run(map_backward_part, &(struct bn_job){.L = L, .b = b});
        return;
    }
    float *dg = b->dp ? b->dp : NULL, *db = b->dp ? b->dp + c : NULL;
    if (b->dx || b->dp) /* without dx, dy takes the input gradient nobody reads */
        batchnorm_backward_input(b->dx ? b->dx : b->dy, dg, db, b->dy, b->x, b->aux, b->p,
                                 b->aux + c, b->B, c);
}

const struct mt_layer_ops layer_batchnorm = {
    .name = "batchnorm",
    .flags = MT_LAYER_NEEDS_IN,
    .shape = bn_shape,
    .n_params = bn_n_params,
    .n_stats = bn_n_params,
    .init = bn_init,
    .aux_floats = bn_aux,
    .forward = bn_fwd,
    .backward = bn_bwd,
};
