/* mezo.c: MeZO, forward-only zeroth-order training (spec 8.3; Malladi et
 * al., arXiv 2305.17333), an SPSA estimate of the gradient from two
 * forwards along a random direction regenerated from a seed.
 *
 * Step (n-SPSA with m = rule.samples seeds, default 1):
 *  - forward (phase FORWARD): for j < m, seed s_j from this step's generator;
 *    theta += eps z, l+ = loss; theta -= 2 eps z, l- = loss; theta += eps z
 *    (mezo_estimate). The loss is the batch's mean cross-entropy through the
 *    plain forward (rule_forward_rolling, two workspace buffers): no activation
 *    is kept, no gradient buffer exists.
 *  - gradient (phase GRADIENT): g_j = (l+ - l-) / (2 eps), scalars only.
 *  - update (phase UPDATE): theta -= (lr / m) sum_j g_j z(s_j).
 * The optimizer is plain SGD by construction (the rule moves theta itself);
 * init refuses any other.
 *
 * Seeds: this step's generator is rng_derive(job seed, MEZO_STREAM + step),
 * kept in t->rs.priv; s_j is its j-th rng_next. Depending only on the job
 * seed and the step counter, a run is reproducible and a run resumed from a
 * checkpoint (which restores the step counter, not the rule's state) draws
 * the same seeds as an uninterrupted one.
 *
 * Reported per step: loss = mean over j of (l+ + l-) / 2 (= loss(theta) +
 * O(eps^2)); correct = hits of the first l+ pass (theta + eps z: a third
 * forward at theta only for accuracy would cost 50 % more; with eps = 1e-3
 * the perturbed argmax almost never differs).
 *
 * A layer list (model.layers) runs the same step: the loss comes from
 * graph_forward_rolling over the evaluation layout (graph.h: every tensor
 * in a slot reused once dead, nothing kept) with batch statistics;
 * batch-norm's running statistics move once per step, in its first forward
 * (at theta + eps z(s_0)). The perturbation covers the whole parameter
 * block (weights, biases, batch-norm's gamma and beta) as for an MLP. */
#include "mezo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "../graph.h"
#include "../loss.h"
#include "../rng.h"
#include "../spec.h"

#define F4 sizeof(float)
#define MEZO_EPSILON 1e-3f
/* Default learning rate for SGD on theta: MEZO_LR_P / P, capped. The stable
 * rate falls as the parameter count P grows (the SPSA estimate's variance
 * grows with P); on MNIST, P = 50 890 trained at 2e-3, P = 203 530 at 5e-4
 * and P = 814 090 at 2.5e-4 (docs/rules/mezo.md has the sweep), and the
 * 13.6M-parameter 4x2000 net diverged at 5e-4. 100 / P gives 2e-3, 4.9e-4,
 * 1.2e-4 and 7.4e-6 for those four; small nets stop at 2e-3. */
#define MEZO_LR_P 100.0
#define MEZO_LR_MAX 2e-3
/* ... times min(1, B / MEZO_LR_BATCH): the estimate's variance also grows
 * as the batch shrinks. The sweep above was at batch 64; at batch 32,
 * 784-128-10 on Fashion-MNIST diverged at 100 / P = 9.8e-4 (loss 1.96 ->
 * 6.28 over 3 epochs) and learned at 4.9e-4 (memtrain-bench robust). */
#define MEZO_LR_BATCH 64.0
/* On a conv net, P in 100 / P is the weights' uses per sample (forward
 * flops / 2) when that is larger: a shared conv weight moves every output
 * position, so one SPSA step changes the loss as much as that many dense
 * weights would. With 100 / P on the parameters, Fashion-MNIST's LeNet
 * (431,080 parameters, 2.3M uses, lr 2.3e-4) and the Liao net (188,746,
 * 13M uses, lr 5.3e-4) diverged within 2 epochs (memtrain-bench robust
 * --net conv); an MLP's uses equal its weight count, below P. */
static double mezo_lr_size(const struct mt_model_desc *d)
{
    double p = (double)model_param_count(d);
    return model_is_graph(d) ? fmax(p, model_flops_forward(d, 1) / 2) : p;
}
/* rng_derive streams of the per-step seed generators: above the weights
 * (1), the shuffle (2) and the feedback matrices (1000 + l). */
#define MEZO_STREAM (UINT64_C(1) << 32)

/* ------------------------------------------------------------------------ */
/* The core over a flat array (mezo.h)                                      */

void mezo_perturb(float *theta, size_t n, uint64_t seed, float scale)
{
    struct mt_rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        theta[i] += scale * rng_normal(&r);
}

int mezo_estimate(float *theta, size_t n, uint64_t seed, float eps, mezo_loss_fn f, void *ud,
                  struct mezo_est *est, struct mt_err *err)
{
    int rc;
    est->seed = seed;
    est->lplus = est->lminus = est->g = 0.0;
    mezo_perturb(theta, n, seed, eps);
    if ((rc = f(ud, theta, n, &est->lplus, err))) {
        mezo_perturb(theta, n, seed, -eps);
        return rc;
    }
    mezo_perturb(theta, n, seed, -2.0f * eps);
    rc = f(ud, theta, n, &est->lminus, err);
    mezo_perturb(theta, n, seed, eps);
    if (rc)
        return rc;
    est->g = (est->lplus - est->lminus) / (2.0 * (double)eps);
    return 0;
}

void mezo_update(float *theta, size_t n, const struct mezo_est *est, int m, float lr)
{
    for (int j = 0; j < m; j++)
        mezo_perturb(theta, n, est[j].seed, (float)(-(double)lr * est[j].g / (double)m));
}

/* ------------------------------------------------------------------------ */
/* The rule                                                                 */

struct mezo_state {
    struct mt_rng gen;        /* this step's seed generator */
    struct mezo_est *est;     /* (samples) this step's estimates */
    int samples;
    float eps;
    double g2_sum;            /* sum of g^2 over the epoch's estimates, for the metric */
    long g_count;
    struct graph_mem roll;    /* a layer list's rolling layout (graph_eval_plan) */
};

/* What the loss callback needs: the batch and two rolling buffers. */
struct mezo_batch {
    struct mt_trainer *t;
    const float *x;           /* (B, n_0) */
    const uint8_t *y;         /* (B) */
    int B;
    float *buf0, *buf1;       /* (B, max n) each, workspace; a layer list: buf0 alone */
    const struct graph_mem *roll; /* a layer list's layout, NULL for an MLP */
    int count;                /* the step's first call: count hits (and move the running
                                 statistics of a layer list) */
    int correct;
};

/* Mean cross-entropy of the batch at the network's current parameters
 * (theta is t->net.params, moved in place by mezo_estimate). */
static int batch_loss(void *ud, const float *theta, size_t n, double *loss, struct mt_err *err)
{
    struct mezo_batch *b = ud;
    struct mt_trainer *t = b->t;
    const struct mt_model_desc *d = &t->net.d;
    int hits = 0;
    (void)theta, (void)n;
    const float *logits =
        b->roll ? graph_forward_rolling(d, b->roll, t->net.params, b->count ? t->net.stats : NULL,
                                        b->x, b->B, 1, t, b->buf0)
                : rule_forward_rolling(&t->net, b->x, b->B, b->buf0, b->buf1);
    *loss = loss_softmax_xent(logits, b->y, b->B, d->width[d->n_layers], &hits);
    if (b->count) {
        b->correct = hits;
        b->count = 0;
    }
    if (!isfinite(*loss))
        return mt_err_set(err, MT_E_INVAL,
                          "training diverged: loss is %g at step %ld (learning rate %g or "
                          "rule.epsilon %g too high?)",
                          *loss, t->step, (double)t->lr, (double)t->spec.rule.epsilon);
    return 0;
}

static void mezo_defaults(struct mt_spec *s)
{
    if (s->optim.kind == MT_OPT_DEFAULT)
        s->optim.kind = MT_OPT_SGD;
    if (isnan(s->optim.lr))
        s->optim.lr = (float)(fmin(MEZO_LR_MAX, MEZO_LR_P / mezo_lr_size(&s->model)) *
                              fmin(1.0, s->batch / MEZO_LR_BATCH));
    if (isnan(s->rule.epsilon))
        s->rule.epsilon = MEZO_EPSILON;
    if (s->rule.samples < 0)
        s->rule.samples = 1;
}

/* The forward's workspace: two rolling buffers (an MLP) or a layer list's
 * evaluation slots and layer workspace. */
static size_t forward_bytes(const struct mt_model_desc *d, int B)
{
    if (!model_is_graph(d))
        return rule_rolling_bytes(d, B);
    struct graph_mem m;
    graph_eval_plan(d, B, NULL, &m);
    return graph_eval_floats(&m) * F4;
}

static void mezo_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    memset(p, 0, sizeof *p);
    size_t ws = forward_bytes(&s->model, s->batch);
    p->cat[MT_MEM_WORKSPACE] = ws;
    rule_plan_phases(p, 0, ws, 0, 0);
}

static void mezo_fini(struct mt_trainer *t)
{
    struct mezo_state *p = t->rs.priv;
    if (!p)
        return;
    free(p->est);
    free(p);
    t->rs.priv = NULL;
}

static int mezo_check(const struct mt_spec *s, struct mt_err *err)
{
    const struct mt_optim_spec *o = &s->optim;
    const struct mt_rule_spec *rs = &s->rule;
    if (o->kind != MT_OPT_SGD || o->momentum != 0.0f || o->nesterov)
        return mt_err_set(err, MT_E_INVAL,
                          "rule 'mezo' moves the parameters itself (theta -= lr g z): the "
                          "optimizer must be sgd without momentum, got %s%s",
                          optim_kind_name(o->kind),
                          o->kind == MT_OPT_SGD ? " with momentum" : "");
    if (o->weight_decay != 0.0f)
        return mt_err_set(err, MT_E_INVAL,
                          "rule 'mezo' does not apply weight decay: optimizer.weight_decay "
                          "must be 0, got %g", (double)o->weight_decay);
    if (!(rs->epsilon > 0.0f) || !isfinite(rs->epsilon))
        return mt_err_set(err, MT_E_INVAL, "rule.epsilon: expected a positive number, got %g",
                          (double)rs->epsilon);
    if (rs->samples < 1)
        return mt_err_set(err, MT_E_INVAL, "rule.samples: expected a positive integer, got %d",
                          rs->samples);
    return 0;
}

static int mezo_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_rule_spec *rs = &t->spec.rule;
    struct mezo_state *p = calloc(1, sizeof *p);
    if (!p)
        return mt_err_set(err, MT_E_NOMEM, "out of system memory: mezo state");
    t->rs.priv = p;
    if (!(p->est = calloc((size_t)rs->samples, sizeof *p->est)))
        return mt_err_set(err, MT_E_NOMEM, "out of system memory: %d mezo estimates",
                          rs->samples);
    p->samples = rs->samples;
    p->eps = rs->epsilon;
    if (model_is_graph(&t->net.d))
        graph_eval_plan(&t->net.d, t->spec.batch, NULL, &p->roll);
    return 0;
}

static int mezo_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                     struct mt_step_result *r, struct mt_err *err)
{
    struct mezo_state *p = t->rs.priv;
    size_t P = model_param_count(&t->net.d);
    int graph = model_is_graph(&t->net.d);
    size_t half = graph ? graph_eval_floats(&p->roll) * F4 : rule_rolling_bytes(&t->net.d, B) / 2;
    size_t mark = arena_mark(t->arena);
    struct mezo_batch b = {.t = t, .x = x, .y = y, .B = B, .roll = graph ? &p->roll : NULL,
                           .count = 1};
    int rc = 0;

    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if (!(b.buf0 = arena_push(t->arena, MT_MEM_WORKSPACE, half, err)) ||
        (!graph && !(b.buf1 = arena_push(t->arena, MT_MEM_WORKSPACE, half, err)))) {
        rc = arena_error(t->arena);
        goto out;
    }
    rng_derive(&p->gen, t->spec.seed, MEZO_STREAM + (uint64_t)t->step);
    for (int j = 0; j < p->samples; j++)
        if ((rc = mezo_estimate(t->net.params, P, rng_next(&p->gen), p->eps, batch_loss, &b,
                                &p->est[j], err)))
            goto out;
    arena_pop(t->arena, mark);

    /* The gradient is m scalars, already formed by mezo_estimate. */
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    double loss = 0.0;
    for (int j = 0; j < p->samples; j++) {
        loss += 0.5 * (p->est[j].lplus + p->est[j].lminus);
        p->g2_sum += p->est[j].g * p->est[j].g;
    }
    p->g_count += p->samples;
    r->loss = loss / p->samples;
    r->correct = b.correct;

    arena_set_phase(t->arena, MT_PHASE_UPDATE);
    mezo_update(t->net.params, P, p->est, p->samples, t->lr);
out:
    arena_pop(t->arena, mark);
    return rc;
}

/* "g_rms": root mean square of the projected gradients of the epoch, the
 * figure to size the learning rate against (the step moves theta by
 * lr |g| |z|, |z| ~ sqrt(P)). */
static int mezo_epoch_metrics(struct mt_trainer *t, struct mt_rule_metric *out, int max)
{
    struct mezo_state *p = t->rs.priv;
    if (max < 1 || !p)
        return 0;
    snprintf(out[0].name, sizeof out[0].name, "g_rms");
    out[0].value = p->g_count ? sqrt(p->g2_sum / (double)p->g_count) : 0.0;
    p->g2_sum = 0.0;
    p->g_count = 0;
    return 1;
}

const struct mt_rule rule_mezo = {
    .name = "mezo",
    .summary = "MeZO: two forwards along a seeded random direction, no activations kept",
    .defaults = mezo_defaults,
    .plan = mezo_plan,
    .check = mezo_check,
    .init = mezo_init,
    .step = mezo_step,
    .fini = mezo_fini,
    .epoch_metrics = mezo_epoch_metrics,
    .flags = MT_RULE_EPSILON | MT_RULE_SAMPLES | MT_RULE_LAYERS,
};
