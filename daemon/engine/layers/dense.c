/* layers/dense.c: the fully connected layer over a (c, h, w) input read as
 * its c h w features (dense.h holds the sgemm mapping, spec 0.1).
 * Parameters: W (units, in) then b (units) when it has a bias. Its backward
 * reads its input (the weight gradient dW = dY^T X). */
#include <string.h>

#include "kinds.h"
#include "../act.h"
#include "../blas.h"
#include "../dense.h"

static int in_features(const struct mt_layer *L)
{
    return (int)shape_count(L->in);
}

static int dense_shape(struct mt_layer *L, struct mt_err *err)
{
    if (L->s.units <= 0 || L->s.units > (1 << 20))
        return mt_err_set(err, MT_E_INVAL, "units %d out of range (1..%d)", L->s.units, 1 << 20);
    if (shape_count(L->in) > (1u << 24))
        return mt_err_set(err, MT_E_INVAL, "%zu input features: at most %d", shape_count(L->in),
                          1 << 24);
    L->out = (struct mt_shape){L->s.units, 1, 1};
    return 0;
}

static size_t dense_n_weights(const struct mt_layer *L)
{
    return (size_t)L->s.units * (size_t)in_features(L);
}

static size_t dense_n_params(const struct mt_layer *L)
{
    return dense_n_weights(L) + (L->s.bias ? (size_t)L->s.units : 0);
}

static void dense_init(const struct mt_layer *L, float *p, float *stats, struct mt_rng *rng,
                       int init, int act)
{
    (void)stats;
    int in = in_features(L), out = L->s.units;
    layer_init_uniform(p, dense_n_weights(L), in, out, rng, init, act);
    if (L->s.bias)
        memset(p + dense_n_weights(L), 0, (size_t)out * sizeof(float));
}

/* Samples [lo, hi) (layer_split): Y = X W^T + b. */
static void dense_fwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_fwd *f = io;
    int in = in_features(L), out = L->s.units, B = (int)(hi - lo);
    float *y = f->y + lo * out;
    dense_forward(y, f->x + lo * in, f->p, B, in, out);
    if (L->s.bias)
        act_forward_bias(y, f->p + dense_n_weights(L), (size_t)B, (size_t)out, MT_ACT_IDENTITY);
}

static void dense_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    layer_split(L, f, (size_t)f->B, 1, dense_fwd_part);
}

/* Output units [lo, hi) (layer_split): dW[lo:hi] (+)= dY[:, lo:hi]^T X and
 * the bias's. */
static void dense_params_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_bwd *b = io;
    int in = in_features(L), out = L->s.units, n = (int)(hi - lo);
    blas_gemm_ld(1, 0, n, in, b->B, 1.0f, b->dy + lo, out, b->x, in, b->beta, b->dp + lo * in,
                 in);
    if (L->s.bias)
        colsum_acc_ld(b->dp + dense_n_weights(L) + lo, b->beta, b->dy + lo, b->B, n, out);
}

/* Samples [lo, hi): dX = dY M, M the weights or FA's fixed matrix. */
static void dense_input_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_bwd *b = io;
    int in = in_features(L), out = L->s.units;
    dense_backward_input(b->dx + lo * in, b->dy + lo * out, b->back, (int)(hi - lo), in, out);
}

static void dense_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (b->dp)
        layer_split(L, b, (size_t)L->s.units, 16, dense_params_part);
    if (b->dx)
        layer_split(L, b, (size_t)b->B, 1, dense_input_part);
}

static double dense_flops(const struct mt_layer *L)
{
    return 2.0 * (double)dense_n_weights(L);
}

const struct mt_layer_ops layer_dense = {
    .name = "dense",
    .flags = MT_LAYER_NEEDS_IN | MT_LAYER_WEIGHTS,
    .shape = dense_shape,
    .n_params = dense_n_params,
    .n_weights = dense_n_weights,
    .init = dense_init,
    .forward = dense_fwd,
    .backward = dense_bwd,
    .flops = dense_flops,
};
