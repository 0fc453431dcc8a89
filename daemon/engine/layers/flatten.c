/* layers/flatten.c: (c, h, w) -> (c h w, 1, 1), the same bytes: the graph
 * gives its output the input's storage, so it computes nothing. */
#include "kinds.h"

static int flatten_shape(struct mt_layer *L, struct mt_err *err)
{
    (void)err;
    L->out = (struct mt_shape){(int)shape_count(L->in), 1, 1};
    return 0;
}

static void flatten_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    (void)L;
    (void)f; /* y is x */
}

static void flatten_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    (void)L;
    (void)b; /* dx is dy */
}

const struct mt_layer_ops layer_flatten = {
    .name = "flatten",
    .flags = MT_LAYER_RESHAPE,
    .shape = flatten_shape,
    .forward = flatten_fwd,
    .backward = flatten_bwd,
};
