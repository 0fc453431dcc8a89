/* asa_layers.c: ASA over a layer list (spec 5 and 0.2a, the authors'
 * Conv2d_ASA; asa.c is the MLP form, with the same math).
 *
 * Every weight layer (conv, dense) reads, in training and in evaluation
 * alike (graph_keep.weight_input),
 *   x~ = x + eps S,   S = code(x),
 * where code(x) is [x > 0] (1 or 0) when x is non-negative by construction
 * (a ReLU's output, or max / average / global pooling or a flatten of one:
 * spec 5(a)'s `relu` flag) and +1 / -1 (x > 0 / x <= 0) otherwise. Its
 * backward reads kappa eps S in place of its input, so its weight gradient
 * is kappa eps dy^T S (a conv's through im2col) and its bias gradient the
 * sums of dy; the gradient at its input is exact (dy through W; the sign
 * term's derivative, zero almost everywhere, is ignored). A weight layer
 * reading the data (the first) reads it exactly, as asa.c does.
 *
 * What is kept, per tensor t some backward reads (graph.h), from the kinds
 * of the layers that read it:
 *  - when every backward that reads t is a weight layer's, or t's producer
 *    is a ReLU reading its own output: one packed bit per element, [t > 0].
 *    It is S for the weight layers and exactly the ReLU's mask, so a ReLU
 *    output feeding a conv keeps one bit for both (spec 5(b)); a ReLU output
 *    feeding only a pool keeps its mask the same way;
 *  - when some backward needs t's values (batch-norm's input, a non-ReLU
 *    activation, layer-norm): t is kept in FP32 as BP keeps it, and a weight
 *    layer reading it gets S computed from those values (graph.h: decode is
 *    called for a weight layer's FP32 input when transforms_input). This is
 *    the paper's "batch-norm keeps its own input" (spec 0.2a); in a
 *    pre-activation ResNet every conv reads a ReLU output, so every conv
 *    input is one bit and batch-norm's inputs (the residual stream, the
 *    convs' outputs) stay FP32.
 *  - a ReLU output whose ReLU reads a batch-norm's output (of a feature
 *    map), as every conv input of a pre-activation ResNet: 0 bytes. Its bit
 *    is [gamma xhat + beta > 0], recomputed from what batch-norm keeps
 *    anyway (its FP32 input, batch mean and 1/sigma) with the forward's own
 *    arithmetic, so it is the forward's bit exactly (the build turns FP
 *    contraction off). Without it the ResNet would keep 1/32 more than the
 *    batch-norm inputs, just over half of BP's.
 *    The weight layers reading such a tensor get their forward input
 *    x + eps S exactly, recomputed the same way (rule.recompute_inputs,
 *    default true): it costs no byte more than the bit, and their weight
 *    gradient is then the exact one of the ASA model. This is ARA's idea
 *    (spec 5, 0.2a: take the weight gradient's input from a tensor kept
 *    anyway) in a pre-activation net, where what is kept anyway is
 *    batch-norm's input. With recompute_inputs: false they read kappa eps S
 *    as Conv2d_ASA does (the Fashion-MNIST ResNet reached 82.6 % so, BP
 *    92.6 %; docs/rules/asa.md).
 * Max pooling's argmax, batch-norm's statistics and the logits are kept as
 * BP keeps them.
 *
 * Learning indicator (spec 5(a)): per weight layer l whose input carries the
 * sign term and per training sample, LI = 1 - |h|^2 / |h + a|^2 (h the
 * sample's input, a = eps S), averaged over the epoch as "li.<l>" by asa.c. */
#include "asa.h"

#include <string.h>

#include "../graph.h"
#include "../pack.h"

static int has_weights(const struct mt_model_desc *d, int i)
{
    return (layer_flags(&d->node[i]) & MT_LAYER_WEIGHTS) != 0;
}

static int is_relu(const struct mt_layer *L)
{
    return L->s.kind == MT_LK_ACT && L->s.act == MT_ACT_RELU;
}

/* Whether tensor t is >= 0 by construction: S is then [t > 0]. */
static int nonneg(const struct mt_model_desc *d, int t)
{
    while (t > 0) {
        const struct mt_layer *L = &d->node[t - 1];
        switch (L->s.kind) {
        case MT_LK_MAXPOOL:
        case MT_LK_AVGPOOL:
        case MT_LK_GAP:
        case MT_LK_FLATTEN:
            t = L->src + 1;
            break;
        default:
            return is_relu(L);
        }
    }
    return 0; /* the data */
}

/* The global average pool node whose output t is (through flattens), or
 * -1. Of a ReLU map that output is > 0 for almost every sample and channel,
 * so S = [t > 0] is all ones and says nothing: the classifier reading it
 * would get one weight gradient for all its inputs (its LI was 0.0075 on
 * the Fashion-MNIST ResNet, which reached 19-60 % where BP reached 92.6 %).
 * A weight layer reading such a tensor reads it exactly (it is tiny, c
 * values per sample): recomputed from the batch-norm below the pooled ReLU
 * when there is one (gap_from_bn, 0 bytes), else kept as BP keeps it. */
static int pooled_globally(const struct mt_model_desc *d, int t)
{
    while (t > 0 && d->node[t - 1].s.kind == MT_LK_FLATTEN)
        t = d->node[t - 1].src + 1;
    return t > 0 && d->node[t - 1].s.kind == MT_LK_GAP ? t - 1 : -1;
}

/* Whether the bit [t > 0] serves every backward that reads t (t > 0). */
static int bit_serves(const struct mt_model_desc *d, int t)
{
    const struct mt_layer *P = &d->node[t - 1];
    if ((layer_flags(P) & MT_LAYER_NEEDS_OUT) && !is_relu(P))
        return 0;
    for (int i = t; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        int reads = L->src + 1 == t || (L->s.kind == MT_LK_ADD && L->src2 + 1 == t);
        if (reads && (layer_flags(L) & MT_LAYER_NEEDS_IN) && !has_weights(d, i))
            return 0;
    }
    return 1;
}

/* The batch-norm node (of a feature map, its input not the data) whose
 * output the ReLU making t reads, or -1. */
static int bn_below(const struct mt_model_desc *d, int t)
{
    const struct mt_layer *P = &d->node[t - 1];
    if (!is_relu(P) || P->src < 0)
        return -1;
    const struct mt_layer *N = &d->node[P->src];
    return N->s.kind == MT_LK_BATCHNORM && N->src >= 0 && N->in.h * N->in.w > 1 ? P->src : -1;
}

static int asa_coded(const void *ctx, const struct mt_model_desc *d, int t, int B, size_t *bytes)
{
    (void)ctx;
    int g = pooled_globally(d, t);
    if (g >= 0) { /* exact: derived from batch-norm, or kept in FP32 */
        *bytes = 0;
        return bit_serves(d, t) && bn_below(d, d->node[g].src + 1) >= 0;
    }
    if (!bit_serves(d, t))
        return 0;
    *bytes = bn_below(d, t) >= 0 ? 0 : pack_bytes((size_t)B * graph_tensor_count(d, t), 1);
    return 1;
}

/* out (B, c) = global average pool node g's output, whose input is the
 * ReLU of batch-norm q's output: relu(x g + o) averaged per plane with the
 * forward's own arithmetic (layers/batchnorm.c, act, pool.c), from what
 * batch-norm keeps. */
static void gap_from_bn(const struct mt_trainer *tr, const struct graph_step *s, int g, int q,
                        int B, float *out)
{
    const struct mt_layer *N = &tr->net.d.node[q];
    int C = N->in.c;
    size_t hw = (size_t)N->in.h * N->in.w;
    const float *p = tr->net.params + N->param_off, *mu = s->aux[q], *r = s->aux[q] + C;
    const float *x = s->t[N->src + 1];
    (void)g;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float gm = p[c] * r[c], o = p[C + c] - mu[c] * gm, sum = 0.0f;
            const float *xp = x + ((size_t)b * C + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                float v = xp[i] * gm + o;
                sum += v > 0.0f ? v : 0.0f;
            }
            out[(size_t)b * C + c] = sum / (float)hw;
        }
}

/* out (B, c, h, w) from batch-norm node q's output y = x g + o per channel,
 * as layers/batchnorm.c computes it in training (and the ReLU above it):
 * with `exact`, the weight layer's input with its sign term,
 * relu(y) + eps [y > 0], as asa_sign_term makes it in the forward; else
 * `one` where y > 0 and `zero` elsewhere (a mask, or kappa eps S). */
static void from_bn(const struct mt_trainer *tr, const struct graph_step *s, int q, int B,
                    int exact, float eps, float one, float zero, float *out)
{
    const struct mt_layer *N = &tr->net.d.node[q];
    int C = N->in.c;
    size_t hw = (size_t)N->in.h * N->in.w;
    const float *p = tr->net.params + N->param_off, *mu = s->aux[q], *r = s->aux[q] + C;
    const float *x = s->t[N->src + 1];
    for (int c = 0; c < C; c++) {
        float g = p[c] * r[c], o = p[C + c] - mu[c] * g;
        for (int b = 0; b < B; b++) {
            size_t at = ((size_t)b * C + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                float y = x[at + i] * g + o;
                out[at + i] = exact ? (y > 0 ? y + eps : 0.0f) : (y > 0 ? one : zero);
            }
        }
    }
}

static void asa_encode(void *ud, int t, const float *x, int B, void *code,
                       const struct graph_step *s)
{
    const struct mt_trainer *tr = ud;
    (void)s;
    if (code) /* none when derived from batch-norm */
        pack_sign(code, x, (size_t)B * graph_tensor_count(&tr->net.d, t));
}

/* For a weight layer: kappa eps S (S in {0, 1} or {-1, +1}); for a ReLU
 * reading its output: its mask, 1 or 0. From the code, or from t's FP32
 * values when t is kept whole, or from batch-norm's. */
static void asa_decode(void *ud, int t, int reader, int B, float *out, const struct graph_step *s)
{
    const struct mt_trainer *tr = ud;
    const struct mt_model_desc *d = &tr->net.d;
    const struct asa_state *st = tr->rs.priv;
    size_t n = (size_t)B * graph_tensor_count(d, t);
    float one = 1.0f, zero = 0.0f;
    int g = pooled_globally(d, t);
    if (g >= 0 && has_weights(d, reader)) { /* read exactly (pooled_globally) */
        if (s->t[t])
            memcpy(out, s->t[t], n * sizeof *out);
        else
            gap_from_bn(tr, s, g, bn_below(d, d->node[g].src + 1), B, out);
        return;
    }
    if (has_weights(d, reader)) {
        one = st->kappa * st->eps;
        zero = nonneg(d, t) ? 0.0f : -one;
    }
    if (s->code[t]) {
        pack_unpack_sign(out, s->code[t], n, one, zero);
        return;
    }
    if (!s->t[t]) { /* derived from batch-norm: a weight layer reads it exactly */
        from_bn(tr, s, bn_below(d, t), B, has_weights(d, reader) && st->recompute, st->eps, one,
                zero, out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = s->t[t][i] > 0 ? one : zero;
}

int asa_input_form(const struct mt_model_desc *d, int node)
{
    int t = d->node[node].src + 1;
    if (t == 0 || pooled_globally(d, t) >= 0)
        return ASA_INPUT_EXACT;
    return nonneg(d, t) ? ASA_INPUT_RELU : ASA_INPUT_SIGN;
}

static const float *asa_weight_input(void *ud, int node, const float *x, int B, float *ws)
{
    struct mt_trainer *tr = ud;
    const struct mt_model_desc *d = &tr->net.d;
    struct asa_state *st = tr->rs.priv;
    int t = d->node[node].src + 1, l = graph_weight_layer(d, node);
    if (t == 0 || pooled_globally(d, t) >= 0)
        return x; /* the data, or a globally pooled map: read exactly */
    asa_sign_term(ws, x, B, graph_tensor_count(d, t), st->eps, nonneg(d, t),
                  st->in_step ? &st->li_sum[l] : NULL, st->in_step ? &st->li_n[l] : NULL);
    return ws;
}

const struct graph_keep asa_layers_keep = {
    .coded = asa_coded,
    .encode = asa_encode,
    .decode = asa_decode,
    .weight_input = asa_weight_input,
    .transforms_input = 1,
};

int asa_layers_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                    struct mt_step_result *r, struct mt_err *err)
{
    struct asa_state *st = t->rs.priv;
    st->in_step = 1; /* the LI sums grow in training forwards only */
    int rc = rule_graph_bp_step(t, x, y, B, NULL, r, err);
    st->in_step = 0;
    return rc;
}
