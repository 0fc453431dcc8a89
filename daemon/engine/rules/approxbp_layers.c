/* approxbp_layers.c: Approx-BP and MS-BP over a layer list (spec 8.2;
 * approxbp.c is the MLP form and holds the rule).
 *
 * BP's pass over the layers (graphstep.c) with each layer's Approx-BP
 * backward (graph_keep.approx, layer.h approx_backward), so what is kept
 * follows from what those backwards read:
 *  - a GELU / SiLU node's backward uses ReGELU2 / ReSiLU2's step
 *    derivative: its input is kept as a 2-bit code (4 per byte) when nothing
 *    else needs it in FP32, and decodes to a value on the code's step;
 *  - a layer-norm node's backward is MS-LayerNorm's, from its output (which
 *    the next layer keeps anyway) and 1/sigma: its input is not kept;
 *  - a ReLU / leaky ReLU whose output is then read by nothing else (a
 *    layer-norm follows) keeps a 1-bit mask of it, decoding to 1 or 0
 *    (its backward reads only the sign);
 *  - every other layer (dense, conv, pools, batch-norm, tanh, sigmoid,
 *    residual joins) keeps what BP keeps.
 * An MLP written as a layer list (dense, f, layernorm, dense, ...) keeps
 * what the MLP form keeps and trains to the same bits. */
#include "common.h"

#include "../act.h"
#include "../graph.h"
#include "../pack.h"

enum abp_code {
    ABP_FP32,   /* kept as BP keeps it */
    ABP_CODE2,  /* a GELU / SiLU input: 2-bit codes */
    ABP_MASK,   /* a ReLU / leaky ReLU output: 1-bit signs */
};

static int is_relu(const struct mt_layer *L)
{
    return L->s.kind == MT_LK_ACT && (L->s.act == MT_ACT_RELU || L->s.act == MT_ACT_LEAKY_RELU);
}

/* How tensor t (1..n_nodes-1) is kept, from what its producer's and its
 * readers' Approx-BP backwards read; *act gets the code's nonlinearity. */
static enum abp_code code_of(const struct mt_model_desc *d, int t, enum mt_act *act)
{
    const struct mt_layer *P = &d->node[t - 1];
    int fp32 = 0, code2 = 0, mask = 0;
    if (graph_node_flags(d, &approxbp_keep, t - 1) & MT_LAYER_NEEDS_OUT) {
        if (is_relu(P))
            mask = 1;
        else
            fp32 = 1;
    }
    int r[MT_MAX_NODES], n = graph_readers(d, t, r);
    for (int k = 0; k < n; k++) {
        const struct mt_layer *R = &d->node[r[k]];
        if (!(graph_node_flags(d, &approxbp_keep, r[k]) & MT_LAYER_NEEDS_IN))
            continue;
        if (R->s.kind == MT_LK_ACT && act_has_code2(R->s.act) && (!code2 || R->s.act == *act)) {
            code2 = 1;
            *act = R->s.act;
        } else {
            fp32 = 1;
        }
    }
    if (fp32 || (code2 && mask))
        return ABP_FP32;
    return code2 ? ABP_CODE2 : mask ? ABP_MASK : ABP_FP32;
}

static int abp_coded(const void *ctx, const struct mt_model_desc *d, int t, int B, size_t *bytes)
{
    (void)ctx;
    enum mt_act act = MT_ACT_IDENTITY;
    enum abp_code c = code_of(d, t, &act);
    size_t n = (size_t)B * graph_tensor_count(d, t);
    *bytes = c == ABP_CODE2 ? pack_bytes(n, 2) : c == ABP_MASK ? pack_bytes(n, 1) : 0;
    return c != ABP_FP32;
}

/* ud is the trainer (graphstep.c). */
static void abp_encode(void *ud, int t, const float *x, int B, void *code,
                       const struct graph_step *s)
{
    const struct mt_model_desc *d = &((struct mt_trainer *)ud)->net.d;
    enum mt_act act = MT_ACT_IDENTITY;
    size_t n = (size_t)B * graph_tensor_count(d, t);
    (void)s;
    if (code_of(d, t, &act) == ABP_CODE2)
        act_code2_pack(code, x, n, act);
    else
        pack_sign(code, x, n);
}

static void abp_decode(void *ud, int t, int reader, int B, float *out, const struct graph_step *s)
{
    const struct mt_model_desc *d = &((struct mt_trainer *)ud)->net.d;
    enum mt_act act = MT_ACT_IDENTITY;
    size_t n = (size_t)B * graph_tensor_count(d, t);
    (void)reader;
    if (code_of(d, t, &act) == ABP_CODE2)
        act_code2_unpack(out, s->code[t], n, act);
    else
        pack_unpack_sign(out, s->code[t], n, 1.0f, 0.0f);
}

const struct graph_keep approxbp_keep = {
    .coded = abp_coded,
    .encode = abp_encode,
    .decode = abp_decode,
    .approx = 1,
};
