/* fa.c: feedback alignment (spec section 2, Lillicrap et al. 2016).
 * BP's chain with the error sent down through fixed random R_l (n_l, n_{l-1})
 * in place of W_l, l = 2..L (R_1 would only serve the skipped input
 * gradient). Keeps the same activations as BP; R_l live in the params
 * category since they are static model state. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "../spec.h"

static size_t fa_feedback_bytes(const struct mt_model_desc *d)
{
    size_t n = 0;
    for (int l = 2; l <= d->n_layers; l++)
        n += (size_t)d->width[l] * d->width[l - 1];
    return n * sizeof(float);
}

static void fa_defaults(struct mt_spec *s)
{
    int recipe = s->optim.kind == MT_OPT_DEFAULT && isnan(s->optim.lr);
    /* SGD, not Adam: see dfa_defaults; the error shrinks as the net learns,
     * so the updates do too (docs/spec-reference.md, "Rule defaults"). */
    rule_optim_recipe(s, MT_OPT_SGD, 0.9f);
    rule_feedback_conv_defaults(s, recipe, 1);
    if (s->rule.feedback_init == MT_FB_DEFAULT)
        s->rule.feedback_init = MT_FB_KAIMING;
    /* Half the forward init's scale: at 1 the forward weights grow along
     * R_l^T under SGD 0.01 and the logits blow up on deep nets. */
    if (isnan(s->rule.feedback_scale))
        s->rule.feedback_scale = 0.5f;
}

static void fa_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    if (model_is_graph(&s->model))
        rule_graph_plan(s, rule_graph_fa_feedback_bytes(&s->model), !backprop_accumulates(s),
                        p);
    else
        backprop_plan(s, fa_feedback_bytes(&s->model), p);
}

static int fa_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int rc = backprop_alloc_grads(t, err);
    if (rc)
        return rc;
    if (model_is_graph(d))
        return (rc = rule_graph_init(t, err)) ? rc : rule_graph_fa_feedback_init(t, err);
    for (int l = 2; l <= d->n_layers; l++) {
        size_t n = (size_t)d->width[l] * d->width[l - 1];
        if (!(t->rs.fb[l] = arena_alloc(t->arena, MT_MEM_PARAMS, n * sizeof(float), err)))
            return arena_error(t->arena);
        struct mt_rng rng;
        rng_derive(&rng, t->spec.seed, 1000 + (uint64_t)l);
        rule_feedback_fill(t->rs.fb[l], d->width[l], d->width[l - 1], d->width[l - 1],
                           &t->spec.rule, &rng);
    }
    return 0;
}

static int fa_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                   struct mt_step_result *r, struct mt_err *err)
{
    if (model_is_graph(&t->net.d))
        return rule_graph_bp_step(t, x, y, B, t->rs.fb, r, err);
    return backprop_step(t, x, y, B, t->rs.fb, r, err);
}

const struct mt_rule rule_fa = {
    .name = "fa",
    .summary = "feedback alignment: BP's memory, error sent down through fixed random matrices",
    .defaults = fa_defaults,
    .plan = fa_plan,
    .init = fa_init,
    .step = fa_step,
    .flags = MT_RULE_FEEDBACK | MT_RULE_LAYERS,
};
