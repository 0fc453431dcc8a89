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

static void act_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    size_t n = shape_count(L->in);
    if (f->y != f->x)
        memcpy(f->y, f->x, (size_t)f->B * n * sizeof(float));
    act_forward_bias(f->y, NULL, (size_t)f->B, n, L->s.act);
}

static void act_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    size_t count = (size_t)b->B * shape_count(L->in);
    if (!b->dx)
        return;
    if (b->dx != b->dy)
        memcpy(b->dx, b->dy, count * sizeof(float));
    act_backward(b->dx, act_backward_needs_z(L->s.act) ? b->x : b->y, count, L->s.act);
}

static void act_approx_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    size_t count = (size_t)b->B * shape_count(L->in);
    if (!act_has_code2(L->s.act) || !b->dx) {
        act_bwd(L, b);
        return;
    }
    if (b->dx != b->dy)
        memcpy(b->dx, b->dy, count * sizeof(float));
    act_code2_backward_z(b->dx, b->x, count, L->s.act);
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
