/* layers/layernorm.c: each sample normalised over its c h w values, no
 * affine (norm.h, spec 8.2). Keeps its input and 1/sigma per sample; the
 * backward is autograd's, from the input. Approx-BP's backward is
 * MS-LayerNorm's, from the output (which the next layer keeps anyway) and
 * 1/sigma: the input is then not kept. */
#include "kinds.h"
#include "../norm.h"

static int ln_shape(struct mt_layer *L, struct mt_err *err)
{
    (void)err;
    L->out = L->in;
    return 0;
}

static size_t ln_aux(const struct mt_layer *L, int B)
{
    (void)L;
    return (size_t)B; /* rstd per sample */
}

static void ln_fwd(const struct mt_layer *L, const struct mt_layer_fwd *f)
{
    int n = (int)shape_count(L->in);
    if (f->aux) {
        layernorm_forward(f->y, f->x, f->aux, f->B, n);
    } else {
        for (int r = 0; r < f->B; r++) {
            float rstd;
            layernorm_forward(f->y + (size_t)r * n, f->x + (size_t)r * n, &rstd, 1, n);
        }
    }
}

static void ln_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (b->dx)
        layernorm_backward(b->dx, b->dy, b->x, b->aux, b->B, (int)shape_count(L->in));
}

static void ln_ms_bwd(const struct mt_layer *L, const struct mt_layer_bwd *b)
{
    if (b->dx)
        layernorm_backward_ms(b->dx, b->dy, b->y, b->aux, b->B, (int)shape_count(L->in));
}

const struct mt_layer_ops layer_layernorm = {
    .name = "layernorm",
    .flags = MT_LAYER_NEEDS_IN,
    .shape = ln_shape,
    .aux_floats = ln_aux,
    .forward = ln_fwd,
    .backward = ln_bwd,
    .approx_backward = ln_ms_bwd,
    .approx_flags = MT_LAYER_NEEDS_OUT,
};
