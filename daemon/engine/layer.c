/* layer.c: the table of layer kinds and what goes through it (layer.h). */
#include "layer.h"

#include "par.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "rng.h"
#include "layers/kinds.h"

static const struct mt_layer_ops *const kinds[MT_LK_N] = {
    [MT_LK_DENSE] = &layer_dense,
    [MT_LK_CONV] = &layer_conv,
    [MT_LK_MAXPOOL] = &layer_maxpool,
    [MT_LK_AVGPOOL] = &layer_avgpool,
    [MT_LK_GAP] = &layer_gap,
    [MT_LK_FLATTEN] = &layer_flatten,
    [MT_LK_BATCHNORM] = &layer_batchnorm,
    [MT_LK_LAYERNORM] = &layer_layernorm,
    [MT_LK_ACT] = &layer_act,
    [MT_LK_ADD] = &layer_add,
};

const struct mt_layer_ops *layer_ops(enum mt_layer_kind k)
{
    return (unsigned)k < MT_LK_N ? kinds[k] : NULL;
}

const char *layer_kind_name(enum mt_layer_kind k)
{
    if (k == MT_LK_RESIDUAL)
        return "residual";
    const struct mt_layer_ops *o = layer_ops(k);
    return o ? o->name : "?";
}

int layer_kind_from_name(const char *name)
{
    for (int k = 0; k <= MT_LK_RESIDUAL; k++)
        if (strcmp(name, layer_kind_name((enum mt_layer_kind)k)) == 0)
            return k;
    return -1;
}

void shape_format(struct mt_shape s, char *buf, size_t size)
{
    snprintf(buf, size, "%dx%dx%d", s.c, s.h, s.w);
}

size_t layer_n_params(const struct mt_layer *L)
{
    const struct mt_layer_ops *o = layer_ops(L->s.kind);
    return o->n_params ? o->n_params(L) : 0;
}

size_t layer_n_weights(const struct mt_layer *L)
{
    const struct mt_layer_ops *o = layer_ops(L->s.kind);
    return o->n_weights ? o->n_weights(L) : 0;
}

size_t layer_n_stats(const struct mt_layer *L)
{
    const struct mt_layer_ops *o = layer_ops(L->s.kind);
    return o->n_stats ? o->n_stats(L) : 0;
}

size_t layer_aux_floats(const struct mt_layer *L, int B)
{
    const struct mt_layer_ops *o = layer_ops(L->s.kind);
    return o->aux_floats ? o->aux_floats(L, B) : 0;
}

size_t layer_ws_floats(const struct mt_layer *L, int B)
{
    const struct mt_layer_ops *o = layer_ops(L->s.kind);
    return o->ws_floats ? o->ws_floats(L, B) : 0;
}

unsigned layer_flags(const struct mt_layer *L)
{
    const struct mt_layer_ops *o = layer_ops(L->s.kind);
    return o->flags_of ? o->flags_of(L) : o->flags;
}

unsigned layer_flags_for(const struct mt_layer *L, int approx)
{
    const struct mt_layer_ops *o = layer_ops(L->s.kind);
    return approx && o->approx_flags ? o->approx_flags : layer_flags(L);
}

void layer_backward(const struct mt_layer *L, int approx, const struct mt_layer_bwd *b)
{
    const struct mt_layer_ops *o = layer_ops(L->s.kind);
    if (approx && o->approx_backward)
        o->approx_backward(L, b);
    else
        o->backward(L, b);
}

static int relu_family(int a)
{
    return a == MT_ACT_RELU || a == MT_ACT_LEAKY_RELU || a == MT_ACT_GELU || a == MT_ACT_SILU;
}

void layer_init_uniform(float *w, size_t n, int fan_in, int fan_out, struct mt_rng *rng,
                        int init, int act)
{
    int kaiming = init == MT_INIT_KAIMING && (act == LAYER_OUTPUT || relu_family(act));
    float bound = kaiming ? sqrtf(6.0f / (float)fan_in) : sqrtf(6.0f / (float)(fan_in + fan_out));
    if (act == LAYER_OUTPUT && init == MT_INIT_KAIMING)
        bound = sqrtf(3.0f / (float)fan_in); /* linear output: gain 1 */
    for (size_t i = 0; i < n; i++)
        w[i] = rng_uniform_range(rng, -bound, bound);
}

struct split_job {
    const struct mt_layer *L;
    const void *io;
    size_t units, unit, n;
    void (*part)(const struct mt_layer *L, const void *io, size_t lo, size_t hi);
};

static void split_part(void *ctx, int w, int nw)
{
    const struct split_job *j = ctx;
    size_t lo, hi;
    par_range(j->units, w, nw, &lo, &hi);
    lo *= j->unit;
    hi = hi * j->unit < j->n ? hi * j->unit : j->n;
    if (lo < hi)
        j->part(j->L, j->io, lo, hi);
}

void layer_split(const struct mt_layer *L, const void *io, size_t n, size_t unit,
                 void (*part)(const struct mt_layer *L, const void *io, size_t lo, size_t hi))
{
    if (unit < 1)
        unit = 1;
    struct split_job j = {L, io, (n + unit - 1) / unit, unit, n, part};
    if (par_threads() == 1 || j.units < 2) {
        if (n)
            part(L, io, 0, n);
        return;
    }
    par_run(split_part, &j);
}
