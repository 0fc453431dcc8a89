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

/* Elements [lo, hi) of the batch, split over the workers (layer_split). */
static void add_fwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    (void)L;
    const struct mt_layer_fwd *f = io;
    for (size_t i = lo; i < hi; i++)
        f->y[i] = f->x[i] + f->x2[i];
}

static void add_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    layer_split(L, f, (size_t)f->B * shape_count(L->in), 4096, add_fwd_part);
}

static void add_bwd_part(const struct mt_layer *L, const void *io, size_t lo, size_t hi)
{
    (void)L;
    const struct mt_layer_bwd *b = io;
    size_t bytes = (hi - lo) * sizeof(float);
    if (b->dx && b->dx != b->dy)
        memcpy(b->dx + lo, b->dy + lo, bytes);
    if (b->dx2 && b->dx2 != b->dy)
        memcpy(b->dx2 + lo, b->dy + lo, bytes);
}

static void add_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    layer_split(L, b, (size_t)b->B * shape_count(L->in), 4096, add_bwd_part);
}

const struct mt_layer_ops layer_add = {
    .name = "add",
    .flags = MT_LAYER_ELEMENTWISE,
    .shape = add_shape,
    .forward = add_fwd,
    .backward = add_bwd,
};
