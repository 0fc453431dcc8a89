/* approxbp.c: Approx-BP and Memory-Sharing BP (spec 8.2; Yang et al.,
 * ICML 2024, arXiv 2406.16282; code yyyyychen/LowMemoryBP).
 *
 * Backpropagation, keeping less for the backward of each hidden layer:
 *  - GELU / SiLU: the forward is exact, the backward uses the ReGELU2 /
 *    ReSiLU2 step derivative (act.h), so the layer keeps a 2-bit code per
 *    element (4 per byte) instead of Z;
 *  - layer-norm (no affine, after f): the backward is the memory-sharing
 *    one (layernorm_backward_ms) from the output Y, which the next linear
 *    layer keeps anyway for its weight gradient, plus 1/sigma per row; f's
 *    own output is not kept. Then f' comes from the code (GELU / SiLU), a
 *    1-bit sign mask (ReLU, leaky ReLU), or f(Z) itself (tanh, sigmoid);
 *    identity needs nothing;
 *  - without layer-norm, ReLU, leaky ReLU, tanh, sigmoid and identity are
 *    as in BP (H serves as the next layer's input and for f').
 * Same kernels and order as BP, so a model of ReLU layers without norms
 * trains bit for bit as `bp`. Batch-norm layers are refused.
 *
 * A layer list (model.layers) runs BP's pass over its layers with each
 * layer's Approx-BP backward (approxbp_layers.c): GELU / SiLU nodes keep
 * 2-bit codes of their input, layer-norm nodes the memory-sharing backward
 * from their output; other layers, batch-norm included, as BP.
 *
 * Kept (bytes): 4 B C + sum over hidden l of 4 B n_l, plus per layer
 * pack_bytes(B n_l, 2) for GELU/SiLU, 4 B for layer-norm, and with
 * layer-norm pack_bytes(B n_l, 1) for ReLU/leaky ReLU or 4 B n_l for
 * tanh/sigmoid. */
#include <string.h>

#include "common.h"
#include "../act.h"
#include "../dense.h"
#include "../norm.h"
#include "../pack.h"
#include "../spec.h"

#define F4 sizeof(float)

/* What a hidden layer keeps for f' besides its output. */
enum abp_keep {
    ABP_NONE,   /* H (or nothing: identity) */
    ABP_CODE2,  /* 2-bit ReGELU2 / ReSiLU2 codes */
    ABP_MASK,   /* 1-bit [f(Z) > 0], ReLU / leaky ReLU before a layer-norm */
    ABP_ACT,    /* f(Z) in FP32, tanh / sigmoid before a layer-norm */
};

static enum abp_keep keep_kind(const struct mt_model_desc *d, int l)
{
    enum mt_act a = d->act[l];
    if (act_has_code2(a))
        return ABP_CODE2;
    if (d->norm[l] != MT_NK_LAYER || a == MT_ACT_IDENTITY)
        return ABP_NONE;
    return a == MT_ACT_RELU || a == MT_ACT_LEAKY_RELU ? ABP_MASK : ABP_ACT;
}

/* The kept tensors of one step. */
struct abp_kept {
    float *H[MT_MAX_LAYERS + 1];     /* layer output (Y for layer-norm layers) */
    float *A[MT_MAX_LAYERS + 1];     /* ABP_ACT: f(Z) */
    float *rstd[MT_MAX_LAYERS + 1];  /* layer-norm: 1/sigma per row (B) */
    uint8_t *code[MT_MAX_LAYERS + 1];/* ABP_CODE2 / ABP_MASK: packed codes */
    float *logits;                   /* (B, C), then E */
};

/* The byte counts of hidden layer l's kept tensors, in push order. */
static size_t layer_kept_bytes(const struct mt_model_desc *d, int l, int B)
{
    size_t cnt = (size_t)B * d->width[l], bytes = cnt * F4;
    switch (keep_kind(d, l)) {
    case ABP_CODE2: bytes += pack_bytes(cnt, 2); break;
    case ABP_MASK: bytes += pack_bytes(cnt, 1); break;
    case ABP_ACT: bytes += cnt * F4; break;
    default: break;
    }
    if (d->norm[l] == MT_NK_LAYER)
        bytes += (size_t)B * F4;
    return bytes;
}

static size_t approxbp_acts_bytes(const struct mt_model_desc *d, int B)
{
    size_t bytes = (size_t)B * d->width[d->n_layers] * F4;
    for (int l = 1; l < d->n_layers; l++)
        bytes += layer_kept_bytes(d, l, B);
    return bytes;
}

static void approxbp_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    if (model_is_graph(&s->model)) {
        rule_graph_plan(s, 0, 1, p);
        return;
    }
    memset(p, 0, sizeof *p);
    rule_plan_full_grads(s, p);
    size_t acts = approxbp_acts_bytes(&s->model, s->batch);
    size_t ws = rule_chain_ws_bytes(&s->model, s->batch);
    p->cat[MT_MEM_ACTS] = acts;
    p->cat[MT_MEM_WORKSPACE] = ws;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS], acts, acts + ws, 0);
}

static int approxbp_check(const struct mt_spec *s, struct mt_err *err)
{
    const struct mt_model_desc *d = &s->model;
    for (int l = 1; l < d->n_layers; l++)
        if (d->norm[l] == MT_NK_BATCH)
            return mt_err_set(err, MT_E_INVAL,
                              "rule approxbp: layer %d has batch-norm, which approxbp does not "
                              "support (it takes layer-norm; use rule bp for batch-norm)", l);
    return 0;
}

static int approxbp_init(struct mt_trainer *t, struct mt_err *err)
{
    int rc = rule_graph_init(t, err);
    return rc ? rc : rule_alloc_full_grads(t, err);
}

static int push_kept(struct mt_trainer *t, int B, struct abp_kept *k, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers;
    memset(k, 0, sizeof *k);
    for (int l = 1; l < L; l++) {
        size_t cnt = (size_t)B * d->width[l];
        if (!(k->H[l] = arena_push(t->arena, MT_MEM_ACTS, cnt * F4, err)))
            return arena_error(t->arena);
        enum abp_keep kk = keep_kind(d, l);
        if (kk == ABP_CODE2 || kk == ABP_MASK) {
            if (!(k->code[l] = arena_push(t->arena, MT_MEM_ACTS,
                                          pack_bytes(cnt, kk == ABP_CODE2 ? 2 : 1), err)))
                return arena_error(t->arena);
        } else if (kk == ABP_ACT && !(k->A[l] = arena_push(t->arena, MT_MEM_ACTS, cnt * F4, err))) {
            return arena_error(t->arena);
        }
        if (d->norm[l] == MT_NK_LAYER &&
            !(k->rstd[l] = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * F4, err)))
            return arena_error(t->arena);
    }
    if (!(k->logits = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * d->width[L] * F4, err)))
        return arena_error(t->arena);
    return 0;
}

/* Hidden layer l: f(Z) into A or H, the codes, then layer-norm into H. */
static void hidden_forward(struct mt_trainer *t, int l, const float *in, struct abp_kept *k,
                           int B)
{
    const struct mt_model_desc *d = &t->net.d;
    int n = d->width[l];
    size_t cnt = (size_t)B * n;
    float *a = k->A[l] ? k->A[l] : k->H[l];
    dense_forward(a, in, t->net.W[l], B, d->width[l - 1], n);
    switch (keep_kind(d, l)) {
    case ABP_CODE2:
        act_forward_bias(a, t->net.b[l], (size_t)B, (size_t)n, MT_ACT_IDENTITY);
        act_code2_forward(a, k->code[l], cnt, d->act[l]);
        break;
    case ABP_MASK:
        act_forward_bias(a, t->net.b[l], (size_t)B, (size_t)n, d->act[l]);
        pack_sign(k->code[l], a, cnt);
        break;
    default:
        act_forward_bias(a, t->net.b[l], (size_t)B, (size_t)n, d->act[l]);
    }
    if (d->norm[l] == MT_NK_LAYER)
        layernorm_forward(k->H[l], a, k->rstd[l], B, n);
}

/* The chain's hook: g, the gradient of hidden layer l's output, becomes
 * dZ_l in place, from what push_kept kept (c->ctx, struct abp_kept). */
static void hidden_backward(struct mt_trainer *t, const struct rule_chain *c, int l, float *g,
                            int B)
{
    const struct mt_model_desc *d = &t->net.d;
    const struct abp_kept *k = c->ctx;
    int n = d->width[l];
    size_t cnt = (size_t)B * n;
    if (d->norm[l] == MT_NK_LAYER)
        layernorm_backward_ms(g, g, k->H[l], k->rstd[l], B, n);
    switch (keep_kind(d, l)) {
    case ABP_CODE2:
        act_code2_backward(g, k->code[l], cnt, d->act[l]);
        break;
    case ABP_MASK: {
        float below = d->act[l] == MT_ACT_LEAKY_RELU ? MT_LEAKY_SLOPE : 0.0f;
        for (size_t i = 0; i < cnt; i++)
            if (!pack_get(k->code[l], i, 1))
                g[i] *= below;
        break;
    }
    case ABP_ACT:
        act_backward(g, k->A[l], cnt, d->act[l]);
        break;
    default:
        act_backward(g, k->H[l], cnt, d->act[l]);
    }
}

static int approxbp_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                         struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    if (model_is_graph(d))
        return rule_graph_bp_step(t, x, y, B, NULL, r, err); /* approxbp_keep: approxbp_layers.c */
    size_t mark = arena_mark(t->arena);
    struct abp_kept k;
    int rc;
    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if ((rc = push_kept(t, B, &k, err)))
        goto out;
    const float *in = x;
    for (int l = 1; l < d->n_layers; l++) {
        hidden_forward(t, l, in, &k, B);
        in = k.H[l];
    }
    rule_layer_forward(&t->net, d->n_layers, in, k.logits, B);
    if ((rc = rule_output_error(t, k.logits, y, B, r, err)))
        goto out;
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    struct rule_chain c = {.x = x, .H = k.H, .hidden_backward = hidden_backward, .ctx = &k};
    if ((rc = rule_backward_chain(t, &c, B, k.logits, err)))
        goto out;
    arena_pop(t->arena, mark); /* the kept tensors are dead once gradients exist */
    rule_update_all(t);
out:
    arena_pop(t->arena, mark);
    return rc;
}

const struct mt_rule rule_approxbp = {
    .name = "approxbp",
    .summary = "Approx-BP / MS-BP: 2-bit ReGELU2/ReSiLU2 codes and memory-sharing layer-norm",
    .defaults = rule_optim_defaults,
    .plan = approxbp_plan,
    .check = approxbp_check,
    .init = approxbp_init,
    .step = approxbp_step,
    .flags = MT_RULE_NORMS | MT_RULE_LAYERS,
    .keep = &approxbp_keep,
};
