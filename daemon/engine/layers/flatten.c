/* layers/flatten.c: (c, h, w) -> (c h w, 1, 1), the same bytes: the graph
 * gives its output the input's storage, so it computes nothing. */
#include <string.h>

#include "kinds.h"

static int flatten_shape(struct mt_layer *L, struct mt_err *err)
{
    (void)err;
    L->out = (struct mt_shape){(int)shape_count(L->in), 1, 1};
    return 0;
}

/* The graph gives y the storage of x; a rule scheduling its own storage
 * (MEM-DFA) gets a copy. */
static void flatten_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    if (f->y != f->x)
        memcpy(f->y, f->x, (size_t)f->B * shape_count(L->in) * sizeof(float));
}

static void flatten_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (b->dx && b->dx != b->dy)
        memcpy(b->dx, b->dy, (size_t)b->B * shape_count(L->in) * sizeof(float));
}

const struct mt_layer_ops layer_flatten = {
    .name = "flatten",
    .flags = MT_LAYER_RESHAPE,
    .shape = flatten_shape,
    .forward = flatten_fwd,
    .backward = flatten_bwd,
};
