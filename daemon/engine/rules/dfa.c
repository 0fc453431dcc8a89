/* dfa.c: direct feedback alignment (spec section 3, Nøkland 2016).
 * Every hidden layer receives the output error E directly through its own
 * fixed random D_l (C, n_l): delta_l = (E D_l) * f'(Z_l), G_l = delta_l^T H_{l-1}.
 * Standard DFA updates after the whole forward, so it keeps BP's activations;
 * it skips the input-gradient gemms (~2F). */
#include <math.h>
#include <string.h>

#include "common.h"
#include "../act.h"
#include "../dense.h"
#include "../spec.h"

size_t dfa_feedback_bytes(const struct mt_model_desc *d)
{
    return (size_t)d->width[d->n_layers] * model_hidden_sum(d) * sizeof(float);
}

size_t dfa_ws_bytes(const struct mt_model_desc *d, int B)
{
    return (size_t)B * model_hidden_max(d) * sizeof(float);
}

void dfa_defaults(struct mt_spec *s)
{
    int widest = model_hidden_max(&s->model);
    int recipe = s->optim.kind == MT_OPT_DEFAULT && isnan(s->optim.lr);
    /* SGD with momentum, not Adam: Adam's steps keep their size while E
     * shrinks, and DFA's update, which is no gradient, keeps a sign, so the
     * forward weights grow without bound against the fixed D_l (the loss
     * rose on deep nets); SGD's steps shrink with E (docs/spec-reference.md,
     * "Rule defaults"). */
    rule_optim_recipe(s, MT_OPT_SGD, 0.9f);
    rule_feedback_conv_defaults(s, recipe, 0);
    /* lr 0.01 down to 0.01 B / 64 below batch 64: at batch 32 the
     * 784-128x4-10 net's loss rose to 1e12 at 0.01 and fell at 0.005. */
    if (recipe && s->batch < 64)
        s->optim.lr *= (float)s->batch / 64.0f;
    if (s->rule.feedback_init == MT_FB_DEFAULT)
        s->rule.feedback_init = MT_FB_UNIFORM;
    /* TinyDFA's normaliser: the projection E D is divided by sqrt(max n). */
    if (isnan(s->rule.feedback_scale))
        s->rule.feedback_scale = 1.0f / sqrtf((float)(widest > 0 ? widest : 1));
}

int dfa_feedback_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int C = d->width[d->n_layers];
    for (int l = 1; l < d->n_layers; l++) {
        size_t n = (size_t)C * d->width[l];
        if (!(t->rs.fb[l] = arena_alloc(t->arena, MT_MEM_PARAMS, n * sizeof(float), err)))
            return arena_error(t->arena);
        struct mt_rng rng;
        rng_derive(&rng, t->spec.seed, 1000 + (uint64_t)l);
        rule_feedback_fill(t->rs.fb[l], C, d->width[l], C, &t->spec.rule, &rng);
    }
    return 0;
}

void dfa_delta(float *delta, const float *E, const float *D, const float *v, int B, int C, int n,
               enum mt_act act)
{
    dense_project(delta, E, D, B, C, n);
    act_backward(delta, v, (size_t)B * n, act);
}

static void dfa_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    if (model_is_graph(&s->model)) {
        rule_graph_plan(s, rule_graph_dfa_feedback_bytes(&s->model), 1, p);
        return;
    }
    memset(p, 0, sizeof *p);
    rule_plan_full_grads(s, p);
    size_t fb = dfa_feedback_bytes(&s->model);
    size_t acts = rule_kept_acts_bytes(&s->model, s->batch);
    size_t ws = dfa_ws_bytes(&s->model, s->batch);
    p->cat[MT_MEM_PARAMS] = fb;
    p->cat[MT_MEM_ACTS] = acts;
    p->cat[MT_MEM_WORKSPACE] = ws;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS] + fb, acts, acts + ws, 0);
}

static int dfa_init(struct mt_trainer *t, struct mt_err *err)
{
    int rc = rule_alloc_full_grads(t, err);
    if (rc == 0 && model_is_graph(&t->net.d))
        return (rc = rule_graph_init(t, err)) ? rc : rule_graph_dfa_feedback_init(t, err);
    return rc ? rc : dfa_feedback_init(t, err);
}

static int dfa_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                    struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    if (model_is_graph(d))
        return rule_graph_dfa_step(t, x, y, B, r, err);
    int L = d->n_layers, C = d->width[L];
    size_t mark = arena_mark(t->arena);
    struct kept_acts k;
    float *delta = NULL;
    int rc;
    if ((rc = rule_forward_and_error(t, x, y, B, &k, r, err)))
        goto out;
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    if (L > 1 && !(delta = arena_push(t->arena, MT_MEM_WORKSPACE, dfa_ws_bytes(d, B), err))) {
        rc = arena_error(t->arena);
        goto out;
    }
    for (int l = 1; l <= L; l++) {
        const float *in = l > 1 ? k.H[l - 1] : x;
        const float *dl = k.logits; /* E, for the output layer */
        if (l < L) {
            dfa_delta(delta, k.logits, t->rs.fb[l], k.Z[l] ? k.Z[l] : k.H[l], B, C, d->width[l],
                      d->act[l]);
            dl = delta;
        }
        dense_backward_params(rule_grad_w(t, l), rule_grad_b(t, l), dl, in, B, d->width[l - 1],
                              d->width[l]);
    }
    arena_pop(t->arena, mark);
    rule_update_all(t);
out:
    arena_pop(t->arena, mark);
    return rc;
}

const struct mt_rule rule_dfa = {
    .name = "dfa",
    .summary = "direct feedback alignment: output error to every layer through fixed random matrices",
    .defaults = dfa_defaults,
    .plan = dfa_plan,
    .init = dfa_init,
    .step = dfa_step,
    .flags = MT_RULE_FEEDBACK | MT_RULE_LAYERS,
};
