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

static int bn_shape(struct mt_layer *L, struct mt_err *err)
{
    (void)err;
    L->out = L->in;
    return 0;
}

/* ---- per channel over (batch, h, w): maps ------------------------------- */

/* Channel c of a batch: B planes of hw values, `stride` apart. */
static void map_stats(const float *x, int B, int C, size_t hw, int c, float *mean, float *rstd,
                      float *uvar)
{
    double s = 0.0, v = 0.0, n = (double)B * (double)hw;
    for (int b = 0; b < B; b++) {
        const float *p = x + ((size_t)b * C + c) * hw;
        for (size_t i = 0; i < hw; i++)
            s += p[i];
    }
    float mu = (float)(s / n);
    for (int b = 0; b < B; b++) {
        const float *p = x + ((size_t)b * C + c) * hw;
        for (size_t i = 0; i < hw; i++) {
            double d = (double)p[i] - mu;
            v += d * d;
        }
    }
    *mean = mu;
    *rstd = (float)(1.0 / sqrt(v / n + MT_NORM_EPS));
    *uvar = (float)(n > 1 ? v / (n - 1) : v / n);
}

static void map_forward_train(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    int C = L->in.c;
    size_t hw = (size_t)L->in.h * L->in.w;
    const float *gamma = f->p, *beta = f->p + C;
    for (int c = 0; c < C; c++) {
        float mu, r, uvar;
        map_stats(f->x, f->B, C, hw, c, &mu, &r, &uvar);
        if (f->aux) {
            f->aux[c] = mu;
            f->aux[C + c] = r;
        }
        if (f->stats) {
            f->stats[c] = (1.0f - MT_BN_MOMENTUM) * f->stats[c] + MT_BN_MOMENTUM * mu;
            f->stats[C + c] = (1.0f - MT_BN_MOMENTUM) * f->stats[C + c] + MT_BN_MOMENTUM * uvar;
        }
        float g = gamma[c] * r, o = beta[c] - mu * g;
        for (int b = 0; b < f->B; b++) {
            const float *x = f->x + ((size_t)b * C + c) * hw;
            float *y = f->y + ((size_t)b * C + c) * hw;
            for (size_t i = 0; i < hw; i++)
                y[i] = x[i] * g + o;
        }
    }
}

static void map_forward_infer(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    int C = L->in.c;
    size_t hw = (size_t)L->in.h * L->in.w;
    for (int c = 0; c < C; c++) {
        float r = 1.0f / sqrtf(f->stats[C + c] + MT_NORM_EPS);
        float g = f->p[c] * r, o = f->p[C + c] - f->stats[c] * g;
        for (int b = 0; b < f->B; b++) {
            const float *x = f->x + ((size_t)b * C + c) * hw;
            float *y = f->y + ((size_t)b * C + c) * hw;
            for (size_t i = 0; i < hw; i++)
                y[i] = x[i] * g + o;
        }
    }
}

/* dx = rstd gamma (dy - mean(dy) - xhat mean(dy xhat)), xhat from the input. */
static void map_backward(const struct mt_layer *L, const struct mt_layer_bwd *b, float *dx)
{
    int C = L->in.c;
    size_t hw = (size_t)L->in.h * L->in.w;
    double n = (double)b->B * (double)hw;
    for (int c = 0; c < C; c++) {
        float mu = b->aux[c], r = b->aux[C + c];
        double sg = 0.0, sb = 0.0;
        for (int k = 0; k < b->B; k++) {
            const float *x = b->x + ((size_t)k * C + c) * hw;
            const float *d = b->dy + ((size_t)k * C + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                sg += (double)d[i] * ((x[i] - mu) * r);
                sb += d[i];
            }
        }
        if (b->dp) {
            b->dp[c] = (float)sg;
            b->dp[C + c] = (float)sb;
        }
        if (!dx)
            continue;
        float mg = (float)(sg / n), mb = (float)(sb / n), sc = r * b->p[c];
        for (int k = 0; k < b->B; k++) {
            const float *x = b->x + ((size_t)k * C + c) * hw;
            const float *d = b->dy + ((size_t)k * C + c) * hw;
            float *o = dx + ((size_t)k * C + c) * hw;
            for (size_t i = 0; i < hw; i++)
                o[i] = sc * (d[i] - mb - ((x[i] - mu) * r) * mg);
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
        if (f->train)
            map_forward_train(L, f);
        else
            map_forward_infer(L, f);
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
        map_backward(L, b, b->dx);
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
