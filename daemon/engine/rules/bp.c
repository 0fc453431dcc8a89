/* bp.c: backpropagation, the baseline (spec section 1).
 * Keeps every hidden layer's output H_1..H_{L-1} and the logits from the
 * forward to the update; the error goes down through W_l; one optimizer
 * pass over the whole parameter block. Cost ~3F.
 * With norm layers it keeps what their exact backward needs as well
 * (common.h, struct kept_acts): batch-norm xhat and 1/sigma per feature,
 * layer-norm's input and 1/sigma per row. */
#include <string.h>

#include "binary.h"
#include "common.h"
#include "../spec.h"

void backprop_plan(const struct mt_spec *s, size_t feedback_bytes, struct mt_mem_plan *p)
{
    memset(p, 0, sizeof *p);
    if (!backprop_accumulates(s))
        rule_plan_full_grads(s, p);
    p->cat[MT_MEM_PARAMS] = feedback_bytes;
    size_t acts = rule_kept_acts_bytes(&s->model, s->batch);
    size_t ws = rule_chain_ws_bytes(&s->model, s->batch);
    p->cat[MT_MEM_ACTS] = acts;
    p->cat[MT_MEM_WORKSPACE] = ws;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS] + feedback_bytes, acts, acts + ws, 0);
}

int backprop_accumulates(const struct mt_spec *s)
{
    return optim_accumulates(&s->optim) && !model_has_norm(&s->model);
}

int backprop_alloc_grads(struct mt_trainer *t, struct mt_err *err)
{
    t->rs.accumulate = backprop_accumulates(&t->spec);
    return t->rs.accumulate ? 0 : rule_alloc_full_grads(t, err);
}

int backprop_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                  float *const *fb, struct mt_step_result *r, struct mt_err *err)
{
    size_t mark = arena_mark(t->arena);
    struct kept_acts k;
    int rc;
    if ((rc = rule_forward_and_error(t, x, y, B, &k, r, err)))
        goto out;
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    if ((rc = rule_backward_kept(t, x, B, &k, fb, err)))
        goto out;
    arena_pop(t->arena, mark); /* activations are dead once gradients exist */
    rule_update_all(t);
out:
    arena_pop(t->arena, mark);
    return rc;
}

static void bp_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    if (s->rule.binary == 1) /* BP+BW+BA: bpbin.c */
        bpbin_plan(s, p);
    else if (model_is_graph(&s->model))
        rule_graph_plan(s, 0, !backprop_accumulates(s), p);
    else
        backprop_plan(s, 0, p);
}

static int bp_init(struct mt_trainer *t, struct mt_err *err)
{
    if (t->spec.rule.binary == 1)
        return bpbin_init(t, err);
    int rc = rule_graph_init(t, err);
    return rc ? rc : backprop_alloc_grads(t, err);
}

static int bp_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                   struct mt_step_result *r, struct mt_err *err)
{
    if (t->spec.rule.binary == 1)
        return bpbin_step(t, x, y, B, r, err);
    if (model_is_graph(&t->net.d))
        return rule_graph_bp_step(t, x, y, B, NULL, r, err);
    return backprop_step(t, x, y, B, NULL, r, err);
}

const struct mt_rule rule_bp = {
    .name = "bp",
    .summary = "backpropagation: keeps every layer's activations",
    .defaults = bpbin_defaults,
    .plan = bp_plan,
    .check = bpbin_check, /* only binary: true asks anything */
    .init = bp_init,
    .step = bp_step,
    .infer = bpbin_infer,  /* the plain forward unless binary */
    .fini = bpbin_fini,
    .flags = MT_RULE_NORMS | MT_RULE_BINARY | MT_RULE_LAYERS,
};
