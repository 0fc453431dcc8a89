/* memdfa.c: MEM-DFA (spec section 4, Chu et al., arXiv 2012.11745).
 * Pass 1 runs the forward with two rolling buffers and keeps only the output
 * error E. Pass 2 runs the forward again and updates each layer as soon as
 * its output exists: Z_l from the old W_l, delta_l = (E D_l) * f'(Z_l),
 * G_l = delta_l^T H_{l-1}, step W_l, move on. Activation memory is two
 * layers' worth plus E, flat in depth; the gradient buffer holds one layer.
 * Every G_l equals DFA's, so the weights equal DFA's run for run. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "../act.h"
#include "../dense.h"
#include "../spec.h"

static size_t memdfa_acts_bytes(const struct mt_model_desc *d, int B)
{
    return rule_rolling_bytes(d, B) + (size_t)B * d->width[d->n_layers] * sizeof(float);
}

static void memdfa_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    const struct mt_model_desc *d = &s->model;
    if (model_is_graph(d)) {
        memdfa_layers_plan(s, rule_graph_dfa_feedback_bytes(d), p);
        return;
    }
    memset(p, 0, sizeof *p);
    size_t fb = dfa_feedback_bytes(d);
    size_t acts = memdfa_acts_bytes(d, s->batch);
    size_t ws = dfa_ws_bytes(d, s->batch);
    p->cat[MT_MEM_GRADS] = model_max_layer_size(d) * sizeof(float);
    p->cat[MT_MEM_PARAMS] = fb;
    p->cat[MT_MEM_ACTS] = acts;
    p->cat[MT_MEM_WORKSPACE] = ws;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS] + fb, acts, acts + ws, acts + ws);
}

static int memdfa_check(const struct mt_spec *s, struct mt_err *err)
{
    return model_is_graph(&s->model) ? memdfa_layers_check(s, err) : 0;
}

static void memdfa_fini(struct mt_trainer *t)
{
    if (model_is_graph(&t->net.d))
        memdfa_layers_fini(t);
}

static int memdfa_init(struct mt_trainer *t, struct mt_err *err)
{
    if (model_is_graph(&t->net.d))
        return memdfa_layers_init(t, err);
    t->rs.grads_n = model_max_layer_size(&t->net.d);
    t->rs.grads = arena_alloc(t->arena, MT_MEM_GRADS, t->rs.grads_n * sizeof(float), err);
    if (!t->rs.grads)
        return arena_error(t->arena);
    return dfa_feedback_init(t, err);
}

/* Pass 2 for hidden layer l: out = f(in W_l^T + b_l) and delta from E. */
static void hidden_pass2(struct mt_trainer *t, int l, const float *in, float *out, float *delta,
                         const float *E, int B)
{
    const struct mt_model_desc *d = &t->net.d;
    int n = d->width[l], C = d->width[d->n_layers];
    if (act_backward_needs_z(d->act[l])) {
        dense_forward(out, in, t->net.W[l], B, d->width[l - 1], n);
        act_forward_bias(out, t->net.b[l], (size_t)B, (size_t)n, MT_ACT_IDENTITY);
        dfa_delta(delta, E, t->rs.fb[l], out, B, C, n, d->act[l]);
        size_t cnt = (size_t)B * n;
        for (size_t i = 0; i < cnt; i++)
            out[i] = act_f(out[i], d->act[l]);
    } else {
        rule_layer_forward(&t->net, l, in, out, B);
        dfa_delta(delta, E, t->rs.fb[l], out, B, C, n, d->act[l]);
    }
}

static int memdfa_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                       struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    if (model_is_graph(d))
        return memdfa_layers_step(t, x, y, B, r, err);
    int L = d->n_layers, C = d->width[L];
    size_t mark = arena_mark(t->arena);
    size_t half = rule_rolling_bytes(d, B) / 2;
    float *buf[2], *E, *delta = NULL;
    int rc = 0;

    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if (!(buf[0] = arena_push(t->arena, MT_MEM_ACTS, half, err)) ||
        !(buf[1] = arena_push(t->arena, MT_MEM_ACTS, half, err)) ||
        !(E = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * C * sizeof(float), err))) {
        rc = arena_error(t->arena);
        goto out;
    }
    /* Pass 1: nothing kept but E. */
    memcpy(E, rule_forward_rolling(&t->net, x, B, buf[0], buf[1]), (size_t)B * C * sizeof(float));
    if ((rc = rule_output_error(t, E, y, B, r, err)))
        goto out;

    /* Pass 2: recompute each layer, update it, move up. */
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    if (L > 1 && !(delta = arena_push(t->arena, MT_MEM_WORKSPACE, dfa_ws_bytes(d, B), err))) {
        rc = arena_error(t->arena);
        goto out;
    }
    optim_begin_step(&t->opt);
    const float *in = x;
    for (int l = 1; l <= L; l++) {
        float *out = buf[(l - 1) & 1];
        const float *dl = E;
        arena_set_phase(t->arena, MT_PHASE_GRADIENT);
        if (l < L) {
            hidden_pass2(t, l, in, out, delta, E, B);
            dl = delta;
        }
        float *gw = t->rs.grads, *gb = gw + (size_t)d->width[l] * d->width[l - 1];
        dense_backward_params(gw, gb, dl, in, B, d->width[l - 1], d->width[l]);
        arena_set_phase(t->arena, MT_PHASE_UPDATE);
        optim_update(&t->opt, t->lr, t->net.W[l], gw, model_layer_offset(d, l),
                     model_layer_size(d, l));
        in = out;
    }
out:
    arena_pop(t->arena, mark);
    return rc;
}

const struct mt_rule rule_memdfa = {
    .name = "memdfa",
    .summary = "MEM-DFA: DFA's updates with activations flat in depth, one extra forward",
    .defaults = dfa_defaults,
    .plan = memdfa_plan,
    .check = memdfa_check,
    .init = memdfa_init,
    .step = memdfa_step,
    .fini = memdfa_fini,
    .flags = MT_RULE_FEEDBACK | MT_RULE_LAYERS,
    .node_kept = memdfa_layers_node_kept,
};
