/* graphstep.c: the rules' passes over a layer-list model (common.h,
 * "Layer-list models"): BP's step and plan, through graph.h. */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../dense.h"
#include "../graph.h"
#include "../rng.h"
#include "../optim.h"

struct sink_ctx {
    struct mt_trainer *t;
    float *const *fb;      /* FA: per weight layer, its weights' shape */
    const float *E;        /* DFA: the output error, (B, C) */
};

static float *sink_dp(void *ud, int node, float *beta)
{
    const struct sink_ctx *c = ud;
    struct mt_trainer *t = c->t;
    size_t off = t->net.d.node[node].param_off;
    if (t->rs.accumulate) {
        *beta = optim_accum_beta(&t->opt);
        return optim_accum_target(&t->opt, off);
    }
    *beta = 0.0f;
    return t->rs.grads + off;
}

static const float *sink_back(void *ud, int node)
{
    const struct sink_ctx *c = ud;
    return c->fb ? c->fb[graph_weight_layer(&c->t->net.d, node)] : NULL;
}

/* The first weight layer reading tensor t, or 0. */
static int first_weight_reader(const struct mt_model_desc *d, int t);

int rule_graph_seed_layer(const struct mt_model_desc *d, int t)
{
    int l = t > 0 ? first_weight_reader(d, t) - 1 : 0;
    return l > 0 ? l : 0;
}

static int first_weight_reader(const struct mt_model_desc *d, int t)
{
    for (int i = 0; i < d->n_nodes; i++)
        if (d->node[i].src + 1 == t && graph_weight_layer(d, i))
            return graph_weight_layer(d, i);
    return 0;
}

/* DFA: the error at a tensor some weight layer reads is E D_l, with D_l the
 * matrix of weight layer l, the layer before that reader (spec 0.2a: the
 * projection replaces the gradient at the reader's input side and flows
 * back through the layers in between to layer l). */
static int sink_seed(void *ud, int t, float *g, int B)
{
    const struct sink_ctx *c = ud;
    const struct mt_model_desc *d = &c->t->net.d;
    int l = t > 0 ? first_weight_reader(d, t) - 1 : 0;
    if (l < 1)
        return 0;
    dense_project(g, c->E, c->t->rs.fb[l], B, d->width[d->n_layers],
                  (int)graph_tensor_count(d, t));
    return 1;
}

size_t rule_graph_dfa_feedback_bytes(const struct mt_model_desc *d)
{
    size_t n = 0;
    for (int t = 1; t <= d->n_nodes; t++)
        if (first_weight_reader(d, t) > 1)
            n += graph_tensor_count(d, t);
    return n * (size_t)d->width[d->n_layers] * sizeof(float);
}

/* The factor on D_l, the matrix to tensor u, beyond the rule's scale: 1, or
 * 1/sqrt(h w) of u when weight layer l is a conv of a net with three or more
 * conv layers and no batch-norm. A conv's weight gradient sums its output's
 * h w positions, and DFA's fixed feedback is a different random vector at
 * each of them, so a conv's step is larger against its weights than a dense
 * layer's; on a stack of such convs without normalisation these steps
 * compound until the last layer's true-gradient step turns unstable. On the
 * Liao net (three convs) the loss blew up at lr 0.01 and still crept up at
 * 0.005, with the full feedback or half of it, and falls with this factor;
 * with two convs (LeNet, or the Liao net without its third conv) the full
 * feedback is stable and learns faster, so it stays (docs/spec-reference.md,
 * "Layer-list (conv) models"). */
float rule_graph_dfa_feedback_gain(const struct mt_model_desc *d, int l, int u)
{
    if (d->node[graph_weight_node(d, l)].s.kind != MT_LK_CONV ||
        rule_model_count(d, MT_LK_CONV) < 3 || rule_model_count(d, MT_LK_BATCHNORM) > 0)
        return 1.0f;
    struct mt_shape sh = graph_tensor_shape(d, u);
    return 1.0f / sqrtf((float)sh.h * (float)sh.w);
}

int rule_graph_dfa_feedback_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int C = d->width[d->n_layers];
    for (int u = 1; u <= d->n_nodes; u++) {
        int l = first_weight_reader(d, u) - 1;
        if (l < 1)
            continue;
        size_t n = (size_t)C * graph_tensor_count(d, u);
        if (!(t->rs.fb[l] = arena_alloc(t->arena, MT_MEM_PARAMS, n * sizeof(float), err)))
            return arena_error(t->arena);
        struct mt_rng rng;
        rng_derive(&rng, t->spec.seed, 1000 + (uint64_t)l);
        struct mt_rule_spec rs = t->spec.rule;
        rs.feedback_scale *= rule_graph_dfa_feedback_gain(d, l, u);
        rule_feedback_fill(t->rs.fb[l], C, (int)graph_tensor_count(d, u), C, &rs, &rng);
    }
    return 0;
}

/* FA: weight layer l's fixed matrix, of its weights' shape, for every
 * layer whose input gradient is wanted (not the first). */
static int fa_wants(const struct mt_model_desc *d, int node)
{
    return d->node[node].src >= 0;
}

size_t rule_graph_fa_feedback_bytes(const struct mt_model_desc *d)
{
    size_t n = 0;
    for (int l = 1; l <= d->n_layers; l++) {
        int i = graph_weight_node(d, l);
        if (fa_wants(d, i))
            n += layer_n_weights(&d->node[i]);
    }
    return n * sizeof(float);
}

int rule_graph_fa_feedback_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    for (int l = 1; l <= d->n_layers; l++) {
        int i = graph_weight_node(d, l);
        if (!fa_wants(d, i))
            continue;
        const struct mt_layer *L = &d->node[i];
        size_t n = layer_n_weights(L);
        int rows = L->s.units, fan_in = (int)(n / (size_t)rows);
        if (!(t->rs.fb[l] = arena_alloc(t->arena, MT_MEM_PARAMS, n * sizeof(float), err)))
            return arena_error(t->arena);
        struct mt_rng rng;
        rng_derive(&rng, t->spec.seed, 1000 + (uint64_t)l);
        rule_feedback_fill(t->rs.fb[l], rows, fan_in, fan_in, &t->spec.rule, &rng);
    }
    return 0;
}

int rule_graph_init(struct mt_trainer *t, struct mt_err *err)
{
    if (!model_is_graph(&t->net.d) || t->gm)
        return 0;
    if (!(t->gm = malloc(sizeof *t->gm)))
        return mt_err_set(err, MT_E_NOMEM, "out of memory for the layer plan");
    graph_mem_plan(&t->net.d, t->spec.batch, t->rule->keep, &t->spec, t->gm);
    return 0;
}

void rule_node_kept(const struct mt_rule *r, const struct mt_spec *s, size_t *kept)
{
    const struct mt_model_desc *d = &s->model;
    if (r->node_kept) {
        r->node_kept(s, kept);
        return;
    }
    struct graph_mem m;
    graph_mem_plan(d, s->batch, r->keep, s, &m);
    for (int i = 0; i < d->n_nodes; i++)
        kept[i] = graph_node_kept_bytes(d, &m, i);
}

int rule_node_kept_as(const struct mt_spec *s, const char *rule, size_t *kept,
                      struct mt_err *err)
{
    const struct mt_rule *r = rule_find(rule);
    if (!r || !(r->flags & MT_RULE_LAYERS))
        return mt_err_set(err, MT_E_INVAL, "rule '%s' does not train layer lists", rule);
    struct mt_spec *o = malloc(sizeof *o);
    if (!o)
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    *o = *s;
    spec_set_rule(o, rule);
    int rc = spec_finish(o, err);
    if (!rc)
        rule_node_kept(r, o, kept);
    free(o);
    return rc;
}

void rule_graph_plan(const struct mt_spec *s, size_t feedback_bytes, int grads,
                     struct mt_mem_plan *p)
{
    struct graph_mem m;
    memset(p, 0, sizeof *p);
    graph_mem_plan(&s->model, s->batch, rule_find(s->rule.name)->keep, s, &m);
    if (grads)
        rule_plan_full_grads(s, p);
    p->cat[MT_MEM_PARAMS] = feedback_bytes;
    size_t fws = graph_mem_forward_ws(&m), bws = graph_mem_backward_ws(&m);
    p->cat[MT_MEM_ACTS] = m.kept_bytes;
    p->cat[MT_MEM_WORKSPACE] = fws > bws ? fws : bws;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS] + feedback_bytes, m.kept_bytes + fws,
                     m.kept_bytes + bws, 0);
}

static int graph_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                      float *const *fb, int direct, struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    size_t mark = arena_mark(t->arena);
    struct graph_step st;
    struct sink_ctx ctx = {t, fb, NULL};
    struct graph_grad_sink sink = {sink_dp, sink_back, direct ? sink_seed : NULL, direct, &ctx};
    int rc;
    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if ((rc = graph_train_forward(d, t->gm, t->net.params, t->net.stats, x, B, t, t->arena,
                                  &st, err)) ||
        (rc = rule_output_error(t, st.t[d->n_nodes], y, B, r, err)))
        goto out;
    ctx.E = st.t[d->n_nodes];
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    if ((rc = graph_backward(d, t->gm, t->net.params, &st, B, &sink, t, t->arena, err)))
        goto out;
    arena_pop(t->arena, mark);
    rule_update_all(t);
out:
    arena_pop(t->arena, mark);
    return rc;
}

int rule_graph_bp_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                       float *const *fb, struct mt_step_result *r, struct mt_err *err)
{
    return graph_step(t, x, y, B, fb, 0, r, err);
}

int rule_graph_dfa_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                        struct mt_step_result *r, struct mt_err *err)
{
    return graph_step(t, x, y, B, NULL, 1, r, err);
}
