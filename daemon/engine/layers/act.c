/* layers/act.c: an elementwise nonlinearity (act.h) over any shape.
 * Its backward reads its output, or its input for GELU and SiLU
 * (act_backward_needs_z); both run in place when the graph lets them.
 * Approx-BP's backward (spec 8.2) takes ReGELU2 / ReSiLU2's step
 * derivative at the input for GELU and SiLU (which then needs only the
 * input's 2-bit code, act_code2_unpack), and is the exact one otherwise. */
#include <string.h>

#include "kinds.h"
#include "../act.h"

static int act_shape(struct mt_layer *L, struct mt_err *err)
{
    if ((unsigned)L->s.act >= MT_ACT_N)
        return mt_err_set(err, MT_E_INVAL, "no valid activation");
    L->out = L->in;
    return 0;
}

static unsigned act_needs(const struct mt_layer *L)
{
    return MT_LAYER_ELEMENTWISE |
           (act_backward_needs_z(L->s.act) ? MT_LAYER_NEEDS_IN : MT_LAYER_NEEDS_OUT);
}

/* Samples [lo, hi) of each, split over the workers (layer_split). */
static void act_fwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_fwd *f = io;
    size_t n = shape_count(L->in);
    float *y = f->y + lo * n;
    if (f->y != f->x)
        memcpy(y, f->x + lo * n, (hi - lo) * n * sizeof(float));
    act_forward_bias(y, NULL, hi - lo, n, L->s.act);
}

static void act_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    layer_split(L, f, (size_t)f->B, 1, act_fwd_part);
}

static void act_bwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_bwd *b = io;
    size_t n = shape_count(L->in), at = lo * n, count = (hi - lo) * n;
    if (b->dx != b->dy)
        memcpy(b->dx + at, b->dy + at, count * sizeof(float));
    act_backward(b->dx + at, (act_backward_needs_z(L->s.act) ? b->x : b->y) + at, count,
                 L->s.act);
}

static void act_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (b->dx)
        layer_split(L, b, (size_t)b->B, 1, act_bwd_part);
}

static void act_approx_bwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    const struct mt_layer_bwd *b = io;
    size_t n = shape_count(L->in), at = lo * n, count = (hi - lo) * n;
    if (b->dx != b->dy)
        memcpy(b->dx + at, b->dy + at, count * sizeof(float));
    act_code2_backward_z(b->dx + at, b->x + at, count, L->s.act);
}

static void act_approx_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (!act_has_code2(L->s.act) || !b->dx) {
        act_bwd(L, b);
        return;
    }
    layer_split(L, b, (size_t)b->B, 1, act_approx_bwd_part);
}

const struct mt_layer_ops layer_act = {
    .name = "act",
    .flags = MT_LAYER_ELEMENTWISE,
    .flags_of = act_needs,
    .shape = act_shape,
    .forward = act_fwd,
    .backward = act_bwd,
    .approx_backward = act_approx_bwd,
};
