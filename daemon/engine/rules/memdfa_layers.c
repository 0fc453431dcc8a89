/* memdfa_layers.c: MEM-DFA over a layer list (spec 4 and 0.2a; memdfa.c is
 * the MLP form). The same weights as DFA over layers (graphstep.c), bit for
 * bit with one thread, with activations bounded by what one block of layers
 * needs, not the depth.
 *
 * DFA over layers gives each weight layer its error from the nearest
 * feedback point above it: a tensor t some weight layer reads gets E D
 * (a "seed"), which goes back through the layers between (activations,
 * pools, norms, a residual join) to the weight layers that feed them, its
 * segment S(t). MEM-DFA computes the same in one more forward:
 *  - pass 1: the forward with batch statistics, keeping nothing, for E
 *    (the running statistics do not move);
 *  - pass 2: the forward again, node by node; as soon as a seed tensor
 *    exists, its segment's backward runs from E D, each weight layer it
 *    reaches takes its gradient from its input and is updated, and so is
 *    each norm layer of the segment. The logits are the last seed (E).
 * What pass 2 keeps lives in one region whose places are reused as soon as
 * nothing reads them (graph_colour): a tensor until its last reader in the
 * forward, its segment's backward and its weight layer's update; a node's
 * aux until its segment's backward. The segment's gradients are pushed for
 * the segment and popped after it.
 *
 * A model whose segments overlap (a tensor whose error would come from two
 * seeds) is refused: MEM-DFA could not finish it layer by layer. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

#include "../dense.h"
#include "../graph.h"
#include "../optim.h"

#define F4 sizeof(float)

/* The schedule of pass 2, from shapes alone: plan and step share it. */
struct memdfa_layout {
    int seg_of[MT_MAX_NODES];      /* the seed tensor whose segment holds node i; 0 = none */
    int dy_of[MT_MAX_NODES];       /* weight node i: its gradient's seed; 0 = none */
    int seed[GRAPH_T];             /* tensor t is a seed */
    short group[GRAPH_T];          /* the tensor whose storage t shares (graph.c's in-place
                                      rules: an activation over its input, a flatten) */
    short slot[2 * GRAPH_T];       /* tensor t, then aux of node i at GRAPH_T + i */
    size_t slot_floats[2 * GRAPH_T];
    size_t off[2 * GRAPH_T];       /* each slot's offset into the region, floats */
    int n_slots;
    size_t region_floats;
    size_t seg_floats[GRAPH_T];    /* the gradients a seed's segment pushes */
    size_t seg_max;
    size_t pass1_floats;           /* pass 1's rolling slots and layer workspace */
    size_t ws_floats;              /* layer workspace of pass 2 */
    size_t grads_floats;           /* the largest node's parameters */
};

static int weights(const struct mt_model_desc *d, int i)
{
    return (layer_flags(&d->node[i]) & MT_LAYER_WEIGHTS) != 0;
}

/* Walk back from seed u's producer, as DFA's direct backward does:
 * through the main input always, through a residual join's shortcut only
 * to a weight layer; stop at weight layers (they get dy). */
static int mark_segment(const struct mt_model_desc *d, struct memdfa_layout *o, int u, int node)
{
    if (node < 0)
        return 0;
    if (weights(d, node)) {
        if (o->dy_of[node] && o->dy_of[node] != u)
            return -1;
        o->dy_of[node] = u;
        return 0;
    }
    if (o->seg_of[node] && o->seg_of[node] != u)
        return -1;
    if (o->seg_of[node] == u)
        return 0;
    o->seg_of[node] = u;
    const struct mt_layer *L = &d->node[node];
    if (mark_segment(d, o, u, L->src))
        return -1;
    if (graph_is_projection(d, node))
        return mark_segment(d, o, u, L->src2);
    return 0;
}

/* The time pass 2 handles seed u: right after its producer runs. */
static int seed_time(int u)
{
    return u - 1;
}

/* Where seed u's segment puts each gradient: goff[t] floats into its push,
 * -2 for E (the logits' seed), -1 for none. The seed's gradient (E D), then,
 * walking down, each node's output gradient unless an elementwise layer or
 * a flatten above took it over in place. Returns the floats pushed. */
static size_t seg_buffers(const struct mt_model_desc *d, const struct memdfa_layout *o, int u,
                          int B, long *goff)
{
    int T = d->n_nodes;
    size_t used = 0;
    for (int t = 0; t <= T; t++)
        goff[t] = -1;
    if (u == T) {
        goff[T] = -2;
    } else {
        goff[u] = 0;
        used = (size_t)B * graph_tensor_count(d, u);
    }
    for (int i = u - 1; i >= 0; i--) {
        const struct mt_layer *L = &d->node[i];
        int in_seg = o->seg_of[i] == u, wt = weights(d, i) && o->dy_of[i] == u;
        if (!in_seg && !wt)
            continue;
        int t = i + 1, src = L->src + 1;
        if (goff[t] == -1) {
            goff[t] = (long)used;
            used += (size_t)B * graph_tensor_count(d, t);
        }
        if (in_seg && src > 0 && (layer_flags(L) & (MT_LAYER_ELEMENTWISE | MT_LAYER_RESHAPE)))
            goff[src] = goff[t];
    }
    return used;
}

static int layout(const struct mt_model_desc *d, int B, const struct graph_keep *keep,
                  struct memdfa_layout *o)
{
    int T = d->n_nodes;
    memset(o, 0, sizeof *o);
    for (int t = 1; t <= T; t++)
        o->seed[t] = t == T || rule_graph_seed_layer(d, t) > 0;
    for (int u = T; u >= 1; u--)
        if (o->seed[u] && mark_segment(d, o, u, u - 1))
            return -1;
    /* each tensor's gradient comes from one reader of its segment */
    for (int s = 1; s <= T; s++) {
        int n = 0;
        for (int i = 0; i < T; i++) {
            const struct mt_layer *L = &d->node[i];
            if (!o->seg_of[i])
                continue;
            n += L->src + 1 == s;
            n += L->src2 + 1 == s && graph_is_projection(d, i);
        }
        if (n > 1)
            return -1;
    }

    /* Storage shared in place, as graph.c decides it for the same backward
     * reads (a tensor some backward reads is never written over). */
    struct graph_mem *gm = malloc(sizeof *gm);
    if (!gm)
        return -2;
    graph_mem_plan(d, B, NULL, NULL, gm);
    memcpy(o->group, gm->group, sizeof o->group);
    free(gm);

    /* Lifetimes: tensors 0..T, then each node's aux. */
    int n = 2 * GRAPH_T, birth[2 * GRAPH_T], death[2 * GRAPH_T];
    size_t floats[2 * GRAPH_T];
    unsigned char want[2 * GRAPH_T];
    memset(want, 0, sizeof want);
    for (int t = 1; t <= T; t++) {
        want[t] = 1;
        birth[t] = death[t] = t - 1;
        floats[t] = (size_t)B * graph_tensor_count(d, t);
        int r = graph_last_reader(d, t);
        if (r > death[t])
            death[t] = r;
    }
    for (int i = 0; i < T; i++) {
        const struct mt_layer *L = &d->node[i];
        unsigned f = layer_flags(L);
        int u = weights(d, i) ? o->dy_of[i] : o->seg_of[i];
        if (!u)
            continue;
        int when = seed_time(u);
        /* what its backward or its update reads lives until then */
        if ((f & MT_LAYER_NEEDS_IN) && L->src >= 0 && death[L->src + 1] < when)
            death[L->src + 1] = when;
        if ((f & MT_LAYER_NEEDS_OUT) && death[i + 1] < when)
            death[i + 1] = when;
        size_t na = layer_aux_floats(L, B);
        if (na) {
            want[GRAPH_T + i] = 1;
            birth[GRAPH_T + i] = i;
            death[GRAPH_T + i] = when;
            floats[GRAPH_T + i] = na;
        }
    }
    /* a seed lives until its own handling */
    for (int t = 1; t < T; t++)
        if (o->seed[t] && death[t] < seed_time(t))
            death[t] = seed_time(t);
    /* a shared storage lives as long as any tensor in it */
    for (int t = 1; t <= T; t++) {
        int g = o->group[t];
        if (g == t)
            continue;
        want[t] = 0;
        if (g > 0 && death[t] > death[g])
            death[g] = death[t];
    }
    for (int k = 0; k < n; k++)
        if (!want[k])
            birth[k] = death[k] = -1;
    o->n_slots = graph_colour(n, birth, death, floats, want, o->slot, o->slot_floats);
    o->region_floats = 0;
    for (int k = 0; k < o->n_slots; k++) {
        o->off[k] = o->region_floats;
        o->region_floats += o->slot_floats[k];
    }

    o->seg_max = 0;
    for (int u = 1; u <= T; u++) {
        if (!o->seed[u])
            continue;
        long goff[GRAPH_T];
        o->seg_floats[u] = seg_buffers(d, o, u, B, goff);
        if (o->seg_floats[u] > o->seg_max)
            o->seg_max = o->seg_floats[u];
    }
    struct graph_mem m1;
    graph_eval_plan(d, B, keep, &m1);
    o->pass1_floats = graph_eval_floats(&m1);
    o->ws_floats = 0;
    o->grads_floats = 0;
    for (int i = 0; i < T; i++) {
        size_t w = layer_ws_floats(&d->node[i], B), p = layer_n_params(&d->node[i]);
        if (w > o->ws_floats)
            o->ws_floats = w;
        if (p > o->grads_floats)
            o->grads_floats = p;
    }
    return 0;
}

int memdfa_layers_check(const struct mt_spec *s, struct mt_err *err)
{
    struct memdfa_layout *o = malloc(sizeof *o);
    if (!o)
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    int rc = layout(&s->model, s->batch, NULL, o);
    free(o);
    if (rc)
        return mt_err_set(err, MT_E_INVAL, "rule 'memdfa': in this layer list some layer's "
                          "error would come from two feedback points, so it cannot be "
                          "finished layer by layer; use dfa");
    return 0;
}

void memdfa_layers_plan(const struct mt_spec *s, size_t feedback_bytes, struct mt_mem_plan *p)
{
    const struct mt_model_desc *d = &s->model;
    struct memdfa_layout *o = malloc(sizeof *o);
    memset(p, 0, sizeof *p);
    if (!o || layout(d, s->batch, NULL, o)) {
        free(o);
        return; /* memdfa_layers_check refused it at spec_finish */
    }
    size_t E = (size_t)s->batch * d->width[d->n_layers];
    size_t acts = (E + o->region_floats) * F4;
    size_t ws1 = o->pass1_floats * F4, ws2 = (o->ws_floats + o->seg_max) * F4;
    p->cat[MT_MEM_GRADS] = o->grads_floats * F4;
    p->cat[MT_MEM_PARAMS] = feedback_bytes;
    p->cat[MT_MEM_ACTS] = acts;
    p->cat[MT_MEM_WORKSPACE] = ws1 > ws2 ? ws1 : ws2;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS] + feedback_bytes, E * F4 + ws1, acts + ws2,
                     acts + ws2);
    free(o);
}

struct memdfa_state {
    struct memdfa_layout o;
    struct graph_mem m1;           /* pass 1's rolling layout */
};

struct memdfa_run {
    struct mt_trainer *t;
    const struct memdfa_layout *o;
    float *tt[GRAPH_T];            /* pass 2's tensors */
    float *aux[MT_MAX_NODES];
    float *ws;
    float *E;
    int B;
};

/* Update node i's parameters from the gradient in t->rs.grads. */
static void update_node(struct memdfa_run *r, int i)
{
    struct mt_trainer *t = r->t;
    const struct mt_layer *L = &t->net.d.node[i];
    size_t off = L->param_off;
    arena_set_phase(t->arena, MT_PHASE_UPDATE);
    optim_update(&t->opt, t->lr, t->net.params + off, t->rs.grads, off, layer_n_params(L));
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
}

/* One node's backward in a segment: gradients at its inputs into g[],
 * its parameters' gradient into t->rs.grads (then updated). */
static void segment_node(struct memdfa_run *r, int i, float *const *g)
{
    struct mt_trainer *t = r->t;
    const struct mt_model_desc *d = &t->net.d;
    const struct mt_layer *L = &d->node[i];
    unsigned f = layer_flags(L);
    int src = L->src + 1;
    struct mt_layer_bwd b = {
        .x = (f & MT_LAYER_NEEDS_IN) ? r->tt[src] : NULL,
        .y = (f & MT_LAYER_NEEDS_OUT) ? r->tt[i + 1] : NULL,
        .aux = r->aux[i],
        .dy = g[i + 1],
        .dx = src > 0 ? g[src] : NULL,
        .dx2 = graph_is_projection(d, i) ? g[L->src2 + 1] : NULL,
        .p = t->net.params + L->param_off,
        .ws = r->ws,
        .B = r->B,
    };
    int has_params = layer_n_params(L) > 0;
    if (has_params) {
        b.dp = t->rs.grads;
        b.back = b.p;
    }
    if (weights(d, i))
        b.dx = b.dx2 = NULL; /* direct feedback: nothing below a weight layer */
    layer_ops(L->s.kind)->backward(L, &b);
    if (has_params)
        update_node(r, i);
}

/* Seed u's segment: E D_l (E itself for the logits) at u, back through the
 * segment's nodes, then the weight layers it reaches. */
static int run_segment(struct memdfa_run *r, int u, struct mt_err *err)
{
    struct mt_trainer *t = r->t;
    const struct mt_model_desc *d = &t->net.d;
    const struct memdfa_layout *o = r->o;
    int T = d->n_nodes, B = r->B;
    size_t mark = arena_mark(t->arena);
    float *g[GRAPH_T] = {0}, *base = NULL;
    long goff[GRAPH_T];
    seg_buffers(d, o, u, B, goff);
    if (o->seg_floats[u] &&
        !(base = arena_push(t->arena, MT_MEM_WORKSPACE, o->seg_floats[u] * F4, err)))
        return arena_error(t->arena);
    for (int k = 0; k <= T; k++)
        g[k] = goff[k] >= 0 ? base + goff[k] : goff[k] == -2 ? r->E : NULL;
    if (u < T) /* the seed: E D_l; E itself is the logits' (last) seed */
        dense_project(g[u], r->E, t->rs.fb[rule_graph_seed_layer(d, u)], B,
                      d->width[d->n_layers], (int)graph_tensor_count(d, u));
    for (int i = u - 1; i >= 0; i--)
        if (o->seg_of[i] == u)
            segment_node(r, i, g);
    for (int i = 0; i < T; i++)
        if (weights(d, i) && o->dy_of[i] == u)
            segment_node(r, i, g);
    arena_pop(t->arena, mark);
    return 0;
}

/* Pass 2 holds, for each node its segment or its update reaches, what the
 * node's backward reads (its input, counted at the node that made it, its
 * output, its aux) until the seed is handled; the last node also holds the
 * output error E. Slots are shared, so the sum may exceed the region. */
void memdfa_layers_node_kept(const struct mt_spec *s, size_t *kept)
{
    const struct mt_model_desc *d = &s->model;
    int T = d->n_nodes, B = s->batch;
    struct memdfa_layout *o = malloc(sizeof *o);
    unsigned char held[GRAPH_T] = {0};
    memset(kept, 0, (size_t)T * sizeof *kept);
    if (!o || layout(d, B, NULL, o)) {
        free(o);
        return;
    }
    for (int i = 0; i < T; i++) {
        const struct mt_layer *L = &d->node[i];
        unsigned f = layer_flags(L);
        if (!(weights(d, i) ? o->dy_of[i] : o->seg_of[i]))
            continue;
        if ((f & MT_LAYER_NEEDS_IN) && L->src >= 0)
            held[L->src + 1] = 1;
        if (f & MT_LAYER_NEEDS_OUT)
            held[i + 1] = 1;
        kept[i] += layer_aux_floats(L, B) * F4;
    }
    for (int t = T; t >= 1; t--) /* a reshape's output is its input's bytes */
        if (held[t] && (layer_flags(&d->node[t - 1]) & MT_LAYER_RESHAPE) && d->node[t - 1].src >= 0)
            held[d->node[t - 1].src + 1] = 1, held[t] = 0;
    for (int t = 1; t <= T; t++)
        if (held[t])
            kept[t - 1] += (size_t)B * graph_tensor_count(d, t) * F4;
    kept[T - 1] += (size_t)B * d->width[d->n_layers] * F4;
    free(o);
}

int memdfa_layers_init(struct mt_trainer *t, struct mt_err *err)
{
    struct memdfa_state *st = malloc(sizeof *st);
    if (!st)
        return mt_err_set(err, MT_E_NOMEM, "out of memory for MEM-DFA's schedule");
    t->rs.priv = st;
    if (layout(&t->net.d, t->spec.batch, NULL, &st->o))
        return mt_err_set(err, MT_E_INVAL, "rule 'memdfa': this layer list cannot be "
                          "finished layer by layer");
    graph_eval_plan(&t->net.d, t->spec.batch, NULL, &st->m1);
    t->rs.grads_n = st->o.grads_floats;
    if (!(t->rs.grads = arena_alloc(t->arena, MT_MEM_GRADS, t->rs.grads_n * F4, err)))
        return arena_error(t->arena);
    return rule_graph_dfa_feedback_init(t, err);
}

void memdfa_layers_fini(struct mt_trainer *t)
{
    free(t->rs.priv);
}

int memdfa_layers_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                       struct mt_step_result *res, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    struct memdfa_state *st = t->rs.priv;
    const struct memdfa_layout *o = &st->o;
    int T = d->n_nodes, C = d->width[d->n_layers], rc = 0;
    size_t mark = arena_mark(t->arena);
    struct memdfa_run r = {.t = t, .o = o, .B = B};

    /* Pass 1: E, nothing kept, the running statistics left alone. */
    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    float *buf = NULL;
    if (!(r.E = arena_push(t->arena, MT_MEM_ACTS, (size_t)st->m1.B * C * F4, err)))
        return arena_error(t->arena);
    size_t after_e = arena_mark(t->arena);
    if (o->pass1_floats &&
        !(buf = arena_push(t->arena, MT_MEM_WORKSPACE, o->pass1_floats * F4, err))) {
        rc = arena_error(t->arena);
        goto out;
    }
    const float *logits = graph_forward_rolling(d, &st->m1, t->net.params, NULL, x, B, 1, t,
                                                buf);
    memcpy(r.E, logits, (size_t)B * C * F4);
    arena_pop(t->arena, after_e);
    if ((rc = rule_output_error(t, r.E, y, B, res, err)))
        goto out;

    /* Pass 2: the forward again; each seed's segment as soon as it exists. */
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    optim_begin_step(&t->opt);
    float *region = NULL;
    if ((o->region_floats &&
         !(region = arena_push(t->arena, MT_MEM_ACTS, o->region_floats * F4, err))) ||
        (o->ws_floats && !(r.ws = arena_push(t->arena, MT_MEM_WORKSPACE, o->ws_floats * F4, err)))) {
        rc = arena_error(t->arena);
        goto out;
    }
    r.tt[0] = (float *)x;
    for (int u = 1; u <= T; u++)
        r.tt[u] = o->group[u] != u ? r.tt[o->group[u]]
                : o->slot[u] >= 0 ? region + o->off[o->slot[u]] : NULL;
    for (int i = 0; i < T; i++)
        r.aux[i] = o->slot[GRAPH_T + i] >= 0 ? region + o->off[o->slot[GRAPH_T + i]] : NULL;
    for (int i = 0; i < T; i++) {
        graph_run_node(d, NULL, i, r.tt, t->net.params, t->net.stats, r.aux[i], r.ws, NULL, B,
                       1, t);
        if (o->seed[i + 1] && (rc = run_segment(&r, i + 1, err)))
            goto out;
    }
out:
    arena_pop(t->arena, mark);
    return rc;
}
