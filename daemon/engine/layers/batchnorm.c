/* layers/batchnorm.c: batch-norm per channel over (batch, h, w); on a
 * (n, 1, 1) tensor that is per feature over the batch (norm.h, the MLP's
 * batch-norm, bit for bit). Parameters gamma then beta (c each); running
 * mean then variance (c each) in the statistics block. Keeps what
 * autograd keeps: its input, and the batch mean and 1/sigma per channel
 * (aux, 2c floats); the backward recomputes xhat from them. Takes beta 0
 * only: gamma's and beta's gradients are written. */
#include "kinds.h"
#include "../norm.h"

static int bn_shape(struct mt_layer *L, struct mt_err *err)
{
    if (L->in.h * L->in.w != 1)
        return mt_err_set(err, MT_E_INVAL, "batch-norm over %dx%d maps is not built yet",
                          L->in.h, L->in.w);
    L->out = L->in;
    return 0;
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
