/* ckpt_layers.c: gradient checkpointing over a layer list (spec 8.1;
 * ckpt.c is the MLP form). BP's gradients, bit for bit with one thread.
 *
 * Cut points: a tensor t can end a segment when nothing made before it is
 * read after it (only t crosses), so a segment can be replayed from its
 * input alone: every hidden output of an MLP, every residual block's output
 * (inside a block the shortcut crosses). The model is cut at k - 1 of them,
 * spread evenly (k = rule.segments, default ceil(sqrt(L))); each segment is
 * a piece of the model with its own node list (graph.h works on it as on a
 * model whose input is the cut tensor).
 *
 * Step:
 *  - forward (FORWARD): each segment in turn, keeping nothing of it but its
 *    output, the next cut (activations); batch-norm's running statistics
 *    move here, once;
 *  - backward (GRADIENT), segments last to first: the segment's forward again
 *    from its cut, keeping what BP keeps for it (statistics left alone),
 *    then its backward from the gradient at its output (E for the last),
 *    giving the gradient at its cut; two workspace buffers carry that
 *    gradient from segment to segment;
 *  - update (UPDATE): one optimizer pass, as BP.
 * Kept: the cuts and the logits, plus the largest segment's BP activations:
 * O(sqrt(L)) at even widths. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

#include "../graph.h"

#define F4 sizeof(float)

struct ckpt_seg {
    struct mt_model_desc d;        /* nodes a..b-1 over the cut tensor a */
    struct graph_mem train, roll;  /* replay with BP's keeping; the first forward's slots */
    int a, b;
};

struct ckpt_graph {
    int k;
    struct ckpt_seg seg[MT_MAX_NODES];
    size_t cut_floats[MT_MAX_NODES];   /* segment s's output (B values each), s < k - 1 */
    size_t grad_floats;                /* the gradient buffers between segments */
};

/* Whether tensor t (1..T-1) may end a segment: no tensor made before it is
 * read after its producer. */
static int cuttable(const struct mt_model_desc *d, int t)
{
    for (int u = 0; u < t; u++)
        if (graph_last_reader(d, u) >= t)
            return 0;
    return 1;
}

/* Nodes a..b-1 as a model of their own whose input is tensor a. */
static void piece(const struct mt_model_desc *d, int a, int b, struct mt_model_desc *p)
{
    memcpy(p, d, sizeof *p);
    p->input = graph_tensor_shape(d, a);
    p->n_nodes = b - a;
    for (int i = a; i < b; i++) {
        struct mt_layer *L = &p->node[i - a];
        *L = d->node[i];
        L->src = d->node[i].src - a;
        L->src2 = d->node[i].src2 >= 0 ? d->node[i].src2 - a : -1;
    }
}

static int ckpt_graph_build(const struct mt_spec *s, struct ckpt_graph *g)
{
    const struct mt_model_desc *d = &s->model;
    int T = d->n_nodes, cand[MT_MAX_NODES], nc = 0, B = s->batch;
    for (int t = 1; t < T; t++)
        if (cuttable(d, t))
            cand[nc++] = t;
    int k = s->rule.segments > 0 ? s->rule.segments : 1;
    if (k > nc + 1)
        k = nc + 1;
    memset(g, 0, sizeof *g);
    g->k = k;
    int start = 0;
    for (int j = 0; j < k; j++) {
        int end = j == k - 1 ? T : cand[(int)(((long)(j + 1) * nc) / k) - 1];
        struct ckpt_seg *sg = &g->seg[j];
        sg->a = start;
        sg->b = end;
        piece(d, start, end, &sg->d);
        if (j == 0) /* the first segment's input is the batch: no gradient */
            graph_mem_plan(&sg->d, B, NULL, NULL, &sg->train);
        else
            graph_mem_plan_piece(&sg->d, B, &sg->train);
        graph_eval_plan(&sg->d, B, NULL, &sg->roll);
        if (j < k - 1) {
            g->cut_floats[j] = (size_t)B * graph_tensor_count(d, end);
            if (g->cut_floats[j] > g->grad_floats)
                g->grad_floats = g->cut_floats[j];
        }
        start = end;
    }
    return 0;
}

static size_t max2(size_t a, size_t b)
{
    return a > b ? a : b;
}

void ckpt_layers_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    struct ckpt_graph *g = malloc(sizeof *g);
    memset(p, 0, sizeof *p);
    if (!g)
        return;
    ckpt_graph_build(s, g);
    const struct mt_model_desc *d = &s->model;
    size_t logits = (size_t)s->batch * d->width[d->n_layers], cuts = 0, fwd_ws = 0;
    size_t seg_fwd = 0, seg_bwd = 0;
    for (int j = 0; j < g->k; j++) {
        const struct ckpt_seg *sg = &g->seg[j];
        cuts += g->cut_floats[j];
        fwd_ws = max2(fwd_ws, graph_eval_floats(&sg->roll));
        seg_fwd = max2(seg_fwd, sg->train.kept_bytes + graph_mem_forward_ws(&sg->train));
        seg_bwd = max2(seg_bwd, sg->train.kept_bytes + graph_mem_backward_ws(&sg->train));
    }
    size_t kept = (cuts + logits) * F4, bufs = (g->k > 1 ? 2 : 0) * g->grad_floats * F4;
    if (!backprop_accumulates(s))
        rule_plan_full_grads(s, p);
    /* activations: the cuts and logits, plus one replayed segment's kept */
    size_t seg_acts = 0, seg_ws = 0;
    for (int j = 0; j < g->k; j++) {
        const struct ckpt_seg *sg = &g->seg[j];
        seg_acts = max2(seg_acts, sg->train.kept_bytes);
        seg_ws = max2(seg_ws, max2(graph_mem_forward_ws(&sg->train),
                                   graph_mem_backward_ws(&sg->train)));
    }
    p->cat[MT_MEM_ACTS] = kept + seg_acts;
    p->cat[MT_MEM_WORKSPACE] = max2(fwd_ws * F4, bufs + seg_ws);
    rule_plan_phases(p, p->cat[MT_MEM_GRADS], kept + fwd_ws * F4,
                     kept + bufs + max2(seg_fwd, seg_bwd), 0);
    free(g);
}

/* Kept across the step: each segment's cut (the output of its last node)
 * and the logits; a replayed segment's tensors live only while it runs. */
void ckpt_layers_node_kept(const struct mt_spec *s, size_t *kept)
{
    const struct mt_model_desc *d = &s->model;
    struct ckpt_graph *g = malloc(sizeof *g);
    memset(kept, 0, (size_t)d->n_nodes * sizeof *kept);
    if (!g)
        return;
    ckpt_graph_build(s, g);
    for (int j = 0; j < g->k - 1; j++)
        kept[g->seg[j].b - 1] += g->cut_floats[j] * F4;
    kept[d->n_nodes - 1] += (size_t)s->batch * d->width[d->n_layers] * F4;
    free(g);
}

int ckpt_layers_init(struct mt_trainer *t, struct mt_err *err)
{
    struct ckpt_graph *g = malloc(sizeof *g);
    if (!g)
        return mt_err_set(err, MT_E_NOMEM, "out of memory for the checkpoint plan");
    t->rs.priv = g;
    ckpt_graph_build(&t->spec, g);
    return backprop_alloc_grads(t, err);
}

void ckpt_layers_fini(struct mt_trainer *t)
{
    free(t->rs.priv);
}

struct seg_sink {
    struct mt_trainer *t;
    const struct ckpt_seg *sg;
};

static float *seg_dp(void *ud, int node, float *beta)
{
    const struct seg_sink *c = ud;
    struct mt_trainer *t = c->t;
    size_t off = c->sg->d.node[node].param_off;
    if (t->rs.accumulate) {
        *beta = optim_accum_beta(&t->opt);
        return optim_accum_target(&t->opt, off);
    }
    *beta = 0.0f;
    return t->rs.grads + off;
}

int ckpt_layers_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                     struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    struct ckpt_graph *g = t->rs.priv;
    int k = g->k, C = d->width[d->n_layers], rc = 0;
    size_t mark = arena_mark(t->arena);
    float *cut[MT_MAX_NODES], *logits;

    /* Forward: each segment from its cut, keeping its output only. */
    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    for (int j = 0; j < k - 1; j++)
        if (!(cut[j] = arena_push(t->arena, MT_MEM_ACTS, g->cut_floats[j] * F4, err)))
            return arena_error(t->arena);
    if (!(logits = arena_push(t->arena, MT_MEM_ACTS, (size_t)g->seg[0].train.B * C * F4, err)))
        return arena_error(t->arena);
    size_t after_kept = arena_mark(t->arena);
    size_t fwd_ws = 0;
    for (int j = 0; j < k; j++)
        fwd_ws = max2(fwd_ws, graph_eval_floats(&g->seg[j].roll));
    float *ws = fwd_ws ? arena_push(t->arena, MT_MEM_WORKSPACE, fwd_ws * F4, err) : NULL;
    if (fwd_ws && !ws) {
        rc = arena_error(t->arena);
        goto out;
    }
    const float *in = x;
    for (int j = 0; j < k; j++) {
        const struct ckpt_seg *sg = &g->seg[j];
        const float *o = graph_forward_rolling(&sg->d, &sg->roll, t->net.params, t->net.stats,
                                               in, B, 1, t, ws);
        float *dst = j < k - 1 ? cut[j] : logits;
        memcpy(dst, o, (size_t)B * graph_tensor_count(&sg->d, sg->d.n_nodes) * F4);
        in = dst;
    }
    arena_pop(t->arena, after_kept);
    if ((rc = rule_output_error(t, logits, y, B, r, err)))
        goto out;

    /* Backward: replay each segment, last to first. */
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    float *gbuf[2] = {NULL, NULL};
    for (int i = 0; i < 2 && k > 1; i++)
        if (!(gbuf[i] = arena_push(t->arena, MT_MEM_WORKSPACE, g->grad_floats * F4, err))) {
            rc = arena_error(t->arena);
            goto out;
        }
    float *dout = logits;
    for (int j = k - 1; j >= 0; j--) {
        const struct ckpt_seg *sg = &g->seg[j];
        size_t seg_mark = arena_mark(t->arena);
        struct graph_step st;
        struct seg_sink ctx = {t, sg};
        struct graph_grad_sink sink = {.dp = seg_dp, .ud = &ctx};
        arena_set_phase(t->arena, MT_PHASE_GRADIENT);
        if ((rc = graph_train_forward(&sg->d, &sg->train, t->net.params, NULL,
                                      j ? cut[j - 1] : x, B, t, t->arena, &st, err)))
            goto out;
        st.dout = dout;
        st.dinput = j ? gbuf[j & 1] : NULL;
        if ((rc = graph_backward(&sg->d, &sg->train, t->net.params, &st, B, &sink, t, t->arena,
                                 err)))
            goto out;
        arena_pop(t->arena, seg_mark);
        dout = st.dinput;
    }
    arena_pop(t->arena, mark);
    rule_update_all(t);
out:
    arena_pop(t->arena, mark);
    return rc;
}
