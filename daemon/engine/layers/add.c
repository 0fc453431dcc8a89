/* layers/add.c: y = x + x2, the join of a residual block. Its backward
 * reads nothing: both inputs get dy. */
#include <string.h>

#include "kinds.h"

static int add_shape(struct mt_layer *L, struct mt_err *err)
{
    (void)err; /* the graph checks that both inputs have one shape */
    L->out = L->in;
    return 0;
}

static void add_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    size_t n = (size_t)f->B * shape_count(L->in);
    for (size_t i = 0; i < n; i++)
        f->y[i] = f->x[i] + f->x2[i];
}

static void add_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    size_t bytes = (size_t)b->B * shape_count(L->in) * sizeof(float);
    if (b->dx && b->dx != b->dy)
        memcpy(b->dx, b->dy, bytes);
    if (b->dx2 && b->dx2 != b->dy)
        memcpy(b->dx2, b->dy, bytes);
}

const struct mt_layer_ops layer_add = {
    .name = "add",
    .flags = MT_LAYER_ELEMENTWISE,
    .shape = add_shape,
    .forward = add_fwd,
    .backward = add_bwd,
};
