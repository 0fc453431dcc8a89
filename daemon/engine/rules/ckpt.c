/* ckpt.c: gradient checkpointing (spec section 8.1; Chen, Xu, Zhang,
 * Guestrin, arXiv 1604.06174). Same gradients as BP, fewer activations kept.
 *
 * What a segment is, for an MLP. The L weight layers are cut into k runs of
 * consecutive layers, the segments; segment s covers layers a_s..b_s. Its
 * boundary is the input of its first layer, H_{a_s - 1}. BP's backward
 * through layers b_s..a_s reads H_{a_s - 1}..H_{b_s - 1} (each layer's input
 * for G_l, and f'(Z_{l-1}) for the error sent down, from H or, for GELU and
 * SiLU, from Z), so with its boundary stored the segment can be replayed on
 * its own. The first segment's boundary is the batch x (data category, kept
 * anyway) and the last segment ends with the logits, which become E and are
 * kept anyway; the k - 1 other boundaries are the hidden activations the
 * forward keeps. A boundary keeps what BP keeps for that layer: H, plus Z
 * where the activation's derivative needs it.
 *
 * Step:
 *  - forward (phase FORWARD): keep the k - 1 boundaries and the logits
 *    (MT_MEM_ACTS); the other hidden outputs go through two rolling
 *    workspace buffers and are dropped; logits -> E in place.
 *  - backward (phase GRADIENT), segments last to first: re-run the segment's
 *    forward from its boundary, keeping H_{a_s}..H_{b_s - 1} (and their Z)
 *    as MT_MEM_ACTS, then BP's chain (rule_chain_layers, common.c) for
 *    the segment's layers; pop the segment's activations. The error
 *    between layers lives in the two workspace buffers of the chain, which
 *    outlive the segments.
 *  - update (phase UPDATE): one optimizer pass over the full gradient block,
 *    as BP. With one thread the weights equal BP's bit for bit.
 *
 * Kept bytes (MT_MEM_ACTS peak), with kb(l) = 4 B n_l (x2 where f' needs Z):
 *   sum_{s=2..k} kb(a_s - 1)  +  max_s sum_{l=a_s}^{b_s - 1} kb(l)  +  4 B C.
 * Segments are as even as possible in layer count (the first L mod k get one
 * more layer); k defaults to ceil(sqrt(L)), so at constant width the kept
 * bytes are about 4 B n (k - 1 + L/k - 1) ~ 8 B n sqrt(L): O(sqrt L).
 * Compute: the replay re-runs the L - k layers whose outputs were dropped,
 * less than one extra forward (spec: ~4F instead of 3F). */
#include <string.h>

#include "common.h"
#include "../act.h"
#include "../dense.h"
#include "../spec.h"

#define F4 sizeof(float)

/* The segments of a model and the bytes each part of the step pushes; plan
 * and step both read it, so the plan is what the step does. */
struct ckpt_layout {
    int k;                          /* segments, 1..L */
    int first[MT_MAX_LAYERS + 2];   /* segment s (0-based) is layers first[s]..first[s+1]-1 */
    size_t boundary_bytes;          /* kept H (and Z) of the k - 1 hidden boundaries */
    size_t segment_max_bytes;       /* largest replayed segment's H (and Z) */
    size_t logits_bytes;            /* (B, C) */
    size_t buf_bytes;               /* one workspace buffer, (B, max hidden n) */
    int fwd_bufs;                   /* rolling buffers of the forward: 0, 1 or 2 */
    int chain_bufs;                 /* error buffers of the backward chain: 0, 1 or 2 */
};

/* k from the spec: rule.segments when set, else ceil(sqrt(L)); at most L
 * (k = L keeps every hidden layer as a boundary, i.e. BP's memory). */
static int ckpt_segments(const struct mt_spec *s)
{
    int L = s->model.n_layers, k = s->rule.segments;
    if (k <= 0)
        for (k = 1; k * k < L; k++)
            ;
    return k > L ? L : k;
}

/* Kept bytes of hidden layer l's output, as BP keeps it. */
static size_t kept_layer_bytes(const struct mt_model_desc *d, int l, int B)
{
    return (size_t)B * d->width[l] * F4 * (act_backward_needs_z(d->act[l]) ? 2 : 1);
}

static void ckpt_layout(const struct mt_spec *s, int B, struct ckpt_layout *o)
{
    const struct mt_model_desc *d = &s->model;
    int L = d->n_layers;
    memset(o, 0, sizeof *o);
    o->k = ckpt_segments(s);
    int base = L / o->k, extra = L % o->k;
    o->first[0] = 1;
    for (int i = 0; i < o->k; i++)
        o->first[i + 1] = o->first[i] + base + (i < extra);
    for (int i = 0; i < o->k; i++) {
        if (i > 0)
            o->boundary_bytes += kept_layer_bytes(d, o->first[i] - 1, B);
        size_t seg = 0;
        for (int l = o->first[i]; l < o->first[i + 1] - 1; l++)
            seg += kept_layer_bytes(d, l, B);
        if (seg > o->segment_max_bytes)
            o->segment_max_bytes = seg;
    }
    o->logits_bytes = (size_t)B * d->width[L] * F4;
    o->buf_bytes = (size_t)B * model_hidden_max(d) * F4;
    int dropped = L - o->k;         /* hidden outputs that are not boundaries */
    o->fwd_bufs = dropped < 2 ? dropped : 2;
    o->chain_bufs = L - 1 < 2 ? L - 1 : 2;  /* as rule_chain_push */
}

/* BP's optimizer recipe, and k = ceil(sqrt(L)) when rule.segments is unset. */
static void ckpt_defaults(struct mt_spec *s)
{
    rule_optim_defaults(s);
    if (s->rule.segments < 0)
        s->rule.segments = ckpt_segments(s);
}

static void ckpt_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    if (model_is_graph(&s->model)) {
        ckpt_layers_plan(s, p);
        return;
    }
    struct ckpt_layout lo;
    ckpt_layout(s, s->batch, &lo);
    memset(p, 0, sizeof *p);
    rule_plan_full_grads(s, p);
    size_t kept = lo.boundary_bytes + lo.logits_bytes;
    size_t fwd_ws = (size_t)lo.fwd_bufs * lo.buf_bytes;
    size_t chain_ws = (size_t)lo.chain_bufs * lo.buf_bytes;
    p->cat[MT_MEM_ACTS] = kept + lo.segment_max_bytes;
    p->cat[MT_MEM_WORKSPACE] = fwd_ws > chain_ws ? fwd_ws : chain_ws;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS], kept + fwd_ws, kept + chain_ws + lo.segment_max_bytes,
                     0);
}

static int ckpt_init(struct mt_trainer *t, struct mt_err *err)
{
    if (model_is_graph(&t->net.d))
        return ckpt_layers_init(t, err);
    return rule_alloc_full_grads(t, err);
}

static void ckpt_fini(struct mt_trainer *t)
{
    if (model_is_graph(&t->net.d))
        ckpt_layers_fini(t);
}

/* Layer l from `in` into `out`, computed as rule_forward_keep computes it: with
 * z != NULL the pre-activation is kept in z and out = f(z) (bit-identical
 * to rule_layer_forward's fused bias and f, both being fl(f(fl(z + b)))). */
static void layer_fwd(const struct mt_net *net, int l, const float *in, float *out, float *z,
                      int B)
{
    const struct mt_model_desc *d = &net->d;
    if (!z) {
        rule_layer_forward(net, l, in, out, B);
        return;
    }
    dense_forward(z, in, net->W[l], B, d->width[l - 1], d->width[l]);
    act_forward_bias(z, net->b[l], (size_t)B, (size_t)d->width[l], MT_ACT_IDENTITY);
    size_t n = (size_t)B * d->width[l];
    for (size_t i = 0; i < n; i++)
        out[i] = act_f(z[i], d->act[l]);
}

/* Push H (and Z where f' needs it) of hidden layer l as kept activations. */
static int push_kept(struct mt_trainer *t, int l, int B, float **H, float **Z,
                     struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    size_t bytes = (size_t)B * d->width[l] * F4;
    if (!(H[l] = arena_push(t->arena, MT_MEM_ACTS, bytes, err)))
        return arena_error(t->arena);
    if (act_backward_needs_z(d->act[l]) &&
        !(Z[l] = arena_push(t->arena, MT_MEM_ACTS, bytes, err)))
        return arena_error(t->arena);
    return 0;
}

/* The forward keeping the boundaries H[first[s] - 1] (s >= 1) and the logits. */
static int ckpt_forward(struct mt_trainer *t, const struct ckpt_layout *lo, const float *x, int B,
                        float **H, float **Z, float **logits, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers, rc;
    for (int s = 1; s < lo->k; s++)
        if ((rc = push_kept(t, lo->first[s] - 1, B, H, Z, err)))
            return rc;
    if (!(*logits = arena_push(t->arena, MT_MEM_ACTS, lo->logits_bytes, err)))
        return arena_error(t->arena);

    size_t mark = arena_mark(t->arena);
    float *roll[2] = {NULL, NULL};
    for (int i = 0; i < lo->fwd_bufs; i++)
        if (!(roll[i] = arena_push(t->arena, MT_MEM_WORKSPACE, lo->buf_bytes, err)))
            return arena_error(t->arena);
    const float *in = x;
    for (int l = 1, which = 0; l <= L; l++) {
        float *out = l == L ? *logits : H[l];
        if (!out) {
            out = roll[which];
            which ^= 1;
        }
        layer_fwd(&t->net, l, in, out, l < L ? Z[l] : NULL, B);
        in = out;
    }
    arena_pop(t->arena, mark);
    return 0;
}

/* The chain's hook: f' of hidden layer l from Z (c->ctx, where f' needs
 * it) or H, as BP's (no norms here). */
static void ckpt_hidden_backward(struct mt_trainer *t, const struct rule_chain *c, int l,
                                 float *g, int B)
{
    float *const *Z = c->ctx;
    const float *v = Z[l] ? Z[l] : c->H[l];
    act_backward(g, v, (size_t)B * t->net.d.width[l], t->net.d.act[l]);
}

/* Backward through segment [a, b]: replay layers a..b-1 from H[a-1], then
 * the chain (c, over H and Z) for layers b..a. *delta (B, n_b) is the error
 * at Z_b on entry and at Z_{a-1} on return. */
static int ckpt_segment(struct mt_trainer *t, struct rule_chain *c, int a, int b, const float *x,
                        int B, float **H, float **Z, float **delta, struct mt_err *err)
{
    int rc;
    for (int l = a; l < b; l++)
        if ((rc = push_kept(t, l, B, H, Z, err)))
            return rc;
    for (int l = a; l < b; l++)
        layer_fwd(&t->net, l, l > 1 ? H[l - 1] : x, H[l], Z[l], B);
    rule_chain_layers(t, c, B, b, a, delta);
    return 0;
}

static int ckpt_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                     struct mt_step_result *r, struct mt_err *err)
{
    if (model_is_graph(&t->net.d))
        return ckpt_layers_step(t, x, y, B, r, err);
    int rc;
    struct ckpt_layout lo;
    ckpt_layout(&t->spec, B, &lo);
    float *H[MT_MAX_LAYERS + 1] = {NULL}, *Z[MT_MAX_LAYERS + 1] = {NULL}, *E = NULL;
    size_t mark = arena_mark(t->arena);

    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if ((rc = ckpt_forward(t, &lo, x, B, H, Z, &E, err)) ||
        (rc = rule_output_error(t, E, y, B, r, err)))
        goto out;

    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    struct rule_chain c = {.x = x, .H = H, .hidden_backward = ckpt_hidden_backward, .ctx = Z};
    if ((rc = rule_chain_push(t, &c, B, err))) /* lo.chain_bufs of lo.buf_bytes */
        goto out;
    float *delta = E;
    for (int s = lo.k - 1; s >= 0; s--) {
        int a = lo.first[s], b = lo.first[s + 1] - 1;
        size_t seg_mark = arena_mark(t->arena);
        rc = ckpt_segment(t, &c, a, b, x, B, H, Z, &delta, err);
        arena_pop(t->arena, seg_mark);
        for (int l = a; l < b; l++)
            H[l] = Z[l] = NULL;
        if (rc)
            goto out;
    }
    arena_pop(t->arena, mark); /* boundaries, E and the chain's buffers are dead */
    rule_update_all(t);
out:
    arena_pop(t->arena, mark);
    return rc;
}

const struct mt_rule rule_ckpt = {
    .name = "ckpt",
    .summary = "gradient checkpointing: BP's updates, keeps ~sqrt(L) layers' activations",
    .defaults = ckpt_defaults,
    .plan = ckpt_plan,
    .init = ckpt_init,
    .step = ckpt_step,
    .fini = ckpt_fini,
    .flags = MT_RULE_SEGMENTS | MT_RULE_LAYERS,
    .node_kept = ckpt_layers_node_kept,
};
