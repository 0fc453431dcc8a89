/* graphstep.c: the rules' passes over a layer-list model (common.h,
 * "Layer-list models"): BP's step and plan, through graph.h. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

#include "../graph.h"
#include "../optim.h"

struct sink_ctx {
    struct mt_trainer *t;
    float *const *fb;
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
    return c->fb ? c->fb[node] : NULL;
}

int rule_graph_init(struct mt_trainer *t, struct mt_err *err)
{
    if (!model_is_graph(&t->net.d) || t->gm)
        return 0;
    if (!(t->gm = malloc(sizeof *t->gm)))
        return mt_err_set(err, MT_E_NOMEM, "out of memory for the layer plan");
    graph_mem_plan(&t->net.d, t->spec.batch, t->gm);
    return 0;
}

void rule_graph_plan(const struct mt_spec *s, size_t feedback_bytes, struct mt_mem_plan *p)
{
    struct graph_mem m;
    memset(p, 0, sizeof *p);
    graph_mem_plan(&s->model, s->batch, &m);
    if (!backprop_accumulates(s))
        rule_plan_full_grads(s, p);
    p->cat[MT_MEM_PARAMS] = feedback_bytes;
    size_t fws = graph_mem_forward_ws(&m), bws = graph_mem_backward_ws(&m);
    p->cat[MT_MEM_ACTS] = m.kept_bytes;
    p->cat[MT_MEM_WORKSPACE] = fws > bws ? fws : bws;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS] + feedback_bytes, m.kept_bytes + fws,
                     m.kept_bytes + bws, 0);
}

int rule_graph_bp_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                       float *const *fb, struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    size_t mark = arena_mark(t->arena);
    struct graph_step st;
    struct sink_ctx ctx = {t, fb};
    struct graph_grad_sink sink = {sink_dp, sink_back, &ctx};
    int rc;
    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if ((rc = graph_train_forward(d, t->gm, t->net.params, t->net.stats, x, B, t->arena, &st,
                                  err)) ||
        (rc = rule_output_error(t, st.t[d->n_nodes], y, B, r, err)))
        goto out;
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    if ((rc = graph_backward(d, t->gm, t->net.params, &st, B, &sink, t->arena, err)))
        goto out;
    arena_pop(t->arena, mark);
    rule_update_all(t);
out:
    arena_pop(t->arena, mark);
    return rc;
}
