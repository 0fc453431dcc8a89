/* testutil.h: small helpers shared by the engine tests. */
#ifndef MT_TESTUTIL_H
#define MT_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "norm.h"
#include "spec.h"
#include "train.h"

/* A spec for a generated problem: `hidden` hidden layers of `width` units. */
static inline void test_spec(struct mt_spec *s, const char *rule, int hidden, int width,
                             enum mt_act act, int batch, long ntrain)
{
    spec_init(s);
    snprintf(s->name, sizeof s->name, "test-%s", rule);
    snprintf(s->rule.name, sizeof s->rule.name, "%s", rule);
    s->data.kind = MT_DATA_SYNTHETIC;
    s->data.synthetic_train = ntrain;
    s->data.synthetic_test = 200;
    s->data.synthetic_seed = 7;
    s->model.n_layers = hidden + 1;
    s->model.width[0] = 32;
    for (int l = 1; l <= hidden; l++) {
        s->model.width[l] = width;
        s->model.act[l] = act;
    }
    s->model.width[hidden + 1] = 4;
    s->batch = batch;
    s->epochs = 1;
    s->seed = 3;
    s->threads = 1;
}

/* Fail the test with the engine's message when rc is nonzero. */
#define assert_ok(rc, err)                                                         \
    do {                                                                           \
        if ((rc) != 0)                                                             \
            fail_msg("engine error %d: %s", (rc), (err).msg);                      \
    } while (0)

/* Train one epoch of spec s and check that the plan equals what the arena
 * measured, category by category and phase by phase; *st gets the peaks. */
static inline void assert_plan_matches(const struct mt_spec *s, struct mt_mem_stats *st,
                                       struct mt_mem_plan *plan)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    assert_ok(trainer_init(&t, s, &err), err);
    struct mt_epoch_report r;
    assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    struct mt_data_shape shape = data_shape_of(&t.train, &t.test);
    trainer_plan_shape(&t.spec, &shape, plan);
    *st = r.mem;
    int L = s->model.n_layers;
    for (int c = 0; c < MT_MEM_NCAT; c++)
        if (plan->cat[c] != st->peak[c])
            fail_msg("%s depth %d batch %d: %s planned %zu, measured %zu", s->rule.name, L - 1,
                     s->batch, mt_mem_cat_name(c), plan->cat[c], st->peak[c]);
    for (int p = 0; p < MT_PHASE_N; p++)
        if (plan->phase[p] != st->phase_peak[p])
            fail_msg("%s depth %d batch %d: phase %s planned %zu, measured %zu", s->rule.name,
                     L - 1, s->batch, mt_phase_name(p), plan->phase[p], st->phase_peak[p]);
    if (plan->total != st->total_peak)
        fail_msg("%s depth %d batch %d: total planned %zu, measured %zu", s->rule.name, L - 1,
                 s->batch, plan->total, st->total_peak);
    trainer_fini(&t);
}

/* Fail each allocation of setup, then of a training epoch, in turn (sqlite's
 * faultsim): every failure is a clean MT_E_INJECTED with nothing leaked and
 * the step's transients released. Then the plan's total as the memory limit
 * trains (every epoch of s) and one byte less fails with MT_E_LIMIT. With
 * with_err the messages are checked too ("injected", "epoch 1, ", the
 * limit's "memory limit exceeded: ... asked ... in use; limit ... (N bytes)");
 * without, every call gets err = NULL (err.h: the caller may not want the
 * text). Returns how many allocations of the epoch were failed (the caller
 * may ask for more). */
static inline long assert_faults_end_clean_with(const struct mt_spec *s, int with_err)
{
    struct mt_trainer t;
    struct mt_err e = {0}, *err = with_err ? &e : NULL;
    struct mt_epoch_report rep;
    long n;
    for (n = 0; n < 1000; n++) {
        arena_default_fail_after(n);
        int rc = trainer_init(&t, s, err);
        arena_default_fail_after(-1);
        if (rc == 0)
            break;
        if (rc != MT_E_INJECTED)
            fail_msg("%s: setup allocation %ld failed with %d", s->rule.name, n, rc);
        if (with_err)
            assert_non_null(strstr(e.msg, "injected"));
        assert_int_equal(arena_global_reserved(), 0);
    }
    assert_true(n > 3);
    arena_fail_after(t.arena, -1);
    struct mt_mem_stats before, after;
    arena_stats(t.arena, &before);
    for (n = 0;; n++) {
        arena_fail_after(t.arena, n);
        int rc = trainer_run_epoch(&t, NULL, NULL, &rep, err);
        arena_fail_after(t.arena, -1);
        arena_stats(t.arena, &after);
        /* Whatever happened, the step's transients are all released. */
        assert_int_equal(after.total, before.total);
        if (rc == 0)
            break;
        if (rc != MT_E_INJECTED)
            fail_msg("%s: step allocation %ld failed with %d", s->rule.name, n, rc);
        if (with_err) {
            assert_non_null(strstr(e.msg, "epoch 1, "));
            assert_non_null(strstr(e.msg, "injected"));
        }
    }
    assert_true(n > 2);
    long step_faults = n;
    trainer_fini(&t);
    assert_int_equal(arena_global_reserved(), 0);

    struct mt_spec lim = *s;
    struct mt_mem_plan plan;
    assert_int_equal(trainer_plan(&lim, &plan, err), 0);
    lim.memory_limit = plan.total;
    assert_ok(trainer_init(&t, &lim, &e), e);
    for (int ep = 0; ep < lim.epochs; ep++)
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &rep, &e), e);
    trainer_fini(&t);
    lim.memory_limit = plan.total - 1;
    int rc = trainer_init(&t, &lim, err);
    if (rc == 0) {
        for (int ep = 0; ep < lim.epochs && rc == 0; ep++)
            rc = trainer_run_epoch(&t, NULL, NULL, &rep, err);
        trainer_fini(&t);
    }
    if (rc != MT_E_LIMIT)
        fail_msg("%s: %d one byte below the plan, want MT_E_LIMIT", s->rule.name, rc);
    if (with_err) {
        assert_non_null(strstr(e.msg, "memory limit exceeded: "));
        assert_non_null(strstr(e.msg, " asked "));
        assert_non_null(strstr(e.msg, " in use; limit "));
        char bytes[64];
        snprintf(bytes, sizeof bytes, "(%zu bytes)", plan.total - 1);
        assert_non_null(strstr(e.msg, bytes));
    }
    assert_int_equal(arena_global_reserved(), 0);
    return step_faults;
}

/* assert_faults_end_clean_with(s, 1): the messages checked as well. */
static inline long assert_faults_end_clean(const struct mt_spec *s)
{
    return assert_faults_end_clean_with(s, 1);
}

/* Train spec sa and spec sb one epoch each and check they end in the same
 * bits: `steps` steps each, the same weights (and, where both keep a full
 * gradient block, the same last gradients), the same loss, train accuracy,
 * test loss and test accuracy; and that the weights moved from sb's
 * initial ones, so equality is not two untouched copies. The reports go to
 * ra and rb when not NULL. */
static inline void assert_train_identically(const struct mt_spec *sa, const struct mt_spec *sb,
                                            long steps, struct mt_epoch_report *ra,
                                            struct mt_epoch_report *rb)
{
    struct mt_trainer a, b, fresh;
    struct mt_err err = {0};
    struct mt_epoch_report r1, r2;
    assert_ok(trainer_init(&a, sa, &err), err);
    assert_ok(trainer_init(&b, sb, &err), err);
    assert_ok(trainer_run_epoch(&a, NULL, NULL, &r1, &err), err);
    assert_ok(trainer_run_epoch(&b, NULL, NULL, &r2, &err), err);
    assert_int_equal(a.step, steps);
    assert_int_equal(b.step, steps);
    size_t P = model_param_count(&a.net.d);
    assert_int_equal(model_param_count(&b.net.d), P);
    if (a.rs.grads && b.rs.grads && a.rs.grads_n == P && b.rs.grads_n == P)
        assert_memory_equal(a.rs.grads, b.rs.grads, P * sizeof(float));
    assert_memory_equal(a.net.params, b.net.params, P * sizeof(float));
    assert_memory_equal(&r1.loss, &r2.loss, sizeof r1.loss);
    assert_memory_equal(&r1.train_accuracy, &r2.train_accuracy, sizeof r1.train_accuracy);
    assert_memory_equal(&r1.test_loss, &r2.test_loss, sizeof r1.test_loss);
    assert_memory_equal(&r1.test_accuracy, &r2.test_accuracy, sizeof r1.test_accuracy);
    assert_ok(trainer_init(&fresh, sb, &err), err);
    assert_true(memcmp(fresh.net.params, b.net.params, P * sizeof(float)) != 0);
    trainer_fini(&fresh);
    trainer_fini(&a);
    trainer_fini(&b);
    if (ra)
        *ra = r1;
    if (rb)
        *rb = r2;
}

/* A reference loss for finite differences: the mean cross-entropy of the
 * network d with parameters `params`, parameter i moved by h, on (x, y). */
typedef double test_loss_fn(const struct mt_model_desc *d, const float *params, const float *x,
                            const uint8_t *y, int B, size_t i, double h);

/* One step of t (lr 0.1) on its first B (<= 8) training samples, then every
 * gradient it computed (t->rs.grads, P floats) against central differences
 * (h = 1e-6) of `loss` at the weights before the step:
 * |g - fd| <= 1e-5 + 1e-3 |fd|. Prints up to five misses after `what`, and
 * checks that the step moved the weights (the comparison is not with a copy
 * of itself). */
static inline void assert_step_gradients_match_fd(struct mt_trainer *t, int B, test_loss_fn *loss,
                                                  const char *what)
{
    struct mt_err err = {0};
    uint32_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    assert_true(B <= 8);
    data_batch(&t->train, &t->norm, idx, B, t->x, t->y);
    /* The step updates the weights; its gradients belong to the weights before. */
    size_t P = model_param_count(&t->net.d);
    float *before = malloc(P * sizeof(float));
    assert_non_null(before);
    memcpy(before, t->net.params, P * sizeof(float));
    struct mt_step_result res;
    t->lr = 0.1f;
    assert_ok(t->rule->step(t, t->x, t->y, B, &res, &err), err);

    int bad = 0;
    for (size_t i = 0; i < P; i++) {
        double h = 1e-6;
        double fd = (loss(&t->net.d, before, t->x, t->y, B, i, h) -
                     loss(&t->net.d, before, t->x, t->y, B, i, -h)) / (2 * h);
        double g = t->rs.grads[i];
        if (fabs(g - fd) > 1e-5 + 1e-3 * fabs(fd) && bad++ < 5)
            print_error("%s: param %zu: backprop %g, finite difference %g\n", what, i, g, fd);
    }
    assert_true(memcmp(before, t->net.params, P * sizeof(float)) != 0);
    free(before);
    assert_int_equal(bad, 0);
}

/* ---- a reference network in double (finite differences, norm checks) ---- */

#define TEST_NORM_EPS ((double)MT_NORM_EPS)

/* y = gamma (z - mean_col) / sqrt(var_col + eps) + beta; mean/var (n) out. */
static inline void test_ref_bn(double *y, const double *z, const double *gamma,
                               const double *beta, int B, int n, double *mean, double *var)
{
    for (int j = 0; j < n; j++) {
        double m = 0, v = 0;
        for (int i = 0; i < B; i++)
            m += z[i * n + j];
        m /= B;
        for (int i = 0; i < B; i++)
            v += (z[i * n + j] - m) * (z[i * n + j] - m);
        v /= B;
        if (mean)
            mean[j] = m;
        if (var)
            var[j] = v;
        for (int i = 0; i < B; i++)
            y[i * n + j] = (gamma ? gamma[j] : 1) * (z[i * n + j] - m) / sqrt(v + TEST_NORM_EPS)
                           + (beta ? beta[j] : 0);
    }
}

/* y = (x - mean_row) / sqrt(var_row + eps). */
static inline void test_ref_ln(double *y, const double *x, int B, int n)
{
    for (int i = 0; i < B; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < n; j++)
            m += x[i * n + j];
        m /= n;
        for (int j = 0; j < n; j++)
            v += (x[i * n + j] - m) * (x[i * n + j] - m);
        v /= n;
        for (int j = 0; j < n; j++)
            y[i * n + j] = (x[i * n + j] - m) / sqrt(v + TEST_NORM_EPS);
    }
}

/* A malloc'd double copy of a (n). */
static inline double *test_to_double(const float *a, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = a[i];
    return d;
}

/* f in double, for the reference network. */
static inline double test_ref_act(double z, enum mt_act a)
{
    switch (a) {
    case MT_ACT_RELU: return z > 0 ? z : 0;
    case MT_ACT_LEAKY_RELU: return z > 0 ? z : MT_LEAKY_SLOPE * z;
    case MT_ACT_TANH: return tanh(z);
    case MT_ACT_SIGMOID: return 1 / (1 + exp(-z));
    case MT_ACT_GELU: return 0.5 * z * (1 + tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
    case MT_ACT_SILU: return z / (1 + exp(-z));
    default: return z;
    }
}

/* The network's logits in double: batch-norm in training mode (batch
 * statistics), or with running statistics rm/rv (per layer, NULL =
 * training); bm/bv (per layer, may be NULL) receive the batch statistics
 * of each batch-norm layer's input. */
static inline void test_ref_forward(const struct mt_model_desc *d, const double *p, const float *x,
                                    int B, double *logits, double *const *rm, double *const *rv,
                                    double **bm, double **bv)
{
    double *in = malloc(sizeof(double) * B * 64), *out = malloc(sizeof(double) * B * 64);
    for (int k = 0; k < B * d->width[0]; k++)
        in[k] = x[k];
    for (int l = 1; l <= d->n_layers; l++) {
        int I = d->width[l - 1], O = d->width[l];
        const double *W = p + model_layer_offset(d, l), *bias = W + (size_t)O * I;
        for (int r = 0; r < B; r++)
            for (int o = 0; o < O; o++) {
                double z = bias[o];
                for (int k = 0; k < I; k++)
                    z += W[o * I + k] * in[r * I + k];
                out[r * O + o] = z;
            }
        if (l < d->n_layers) {
            if (d->norm[l] == MT_NK_BATCH) {
                const double *g = bias + O, *be = bias + 2 * O;
                if (rm && rm[l]) {
                    for (int r = 0; r < B; r++)
                        for (int o = 0; o < O; o++)
                            out[r * O + o] = g[o] * (out[r * O + o] - rm[l][o]) /
                                             sqrt(rv[l][o] + TEST_NORM_EPS) + be[o];
                } else {
                    test_ref_bn(out, out, g, be, B, O, bm ? bm[l] : NULL, bv ? bv[l] : NULL);
                }
            }
            for (int k = 0; k < B * O; k++)
                out[k] = test_ref_act(out[k], d->act[l]);
            if (d->norm[l] == MT_NK_LAYER)
                test_ref_ln(out, out, B, O);
        }
        double *tmp = in;
        in = out;
        out = tmp;
    }
    memcpy(logits, in, sizeof(double) * B * d->width[d->n_layers]);
    free(in), free(out);
}

/* The slow reference: the network's mean cross-entropy on a batch by plain
 * loops in double precision (batch-norm from batch statistics), with
 * parameter `i` moved by `h`. Double precision lets h be tiny, so a ReLU
 * kink is almost never crossed. A test_loss_fn. */
static inline double test_ref_loss(const struct mt_model_desc *d, const float *params,
                                   const float *x, const uint8_t *y, int B, size_t i, double h)
{
    size_t P = model_param_count(d);
    double *p = test_to_double(params, P), *lg = malloc(sizeof(double) * B * 64);
    p[i] += h;
    test_ref_forward(d, p, x, B, lg, NULL, NULL, NULL, NULL);
    int C = d->width[d->n_layers];
    double loss = 0;
    for (int r = 0; r < B; r++) {
        double mx = lg[r * C], s = 0;
        for (int c = 1; c < C; c++)
            mx = fmax(mx, lg[r * C + c]);
        for (int c = 0; c < C; c++)
            s += exp(lg[r * C + c] - mx);
        loss += mx + log(s) - lg[r * C + y[r]];
    }
    free(p), free(lg);
    return loss / B;
}

/* Parse a YAML spec and resolve it (spec_finish), failing the test on an
 * error. */
static inline void test_parse_spec(const char *yaml, struct mt_spec *s)
{
    struct mt_err err = {0};
    spec_init(s);
    assert_ok(spec_parse_string(yaml, strlen(yaml), "test.yaml", s, &err), err);
    assert_ok(spec_finish(s, &err), err);
}

/* The MLP of s (model.hidden form, as test_spec makes it) rewritten as the
 * layer list that means the same network: dense, f, then batch-norm before
 * f or layer-norm after it where the layer has one, ..., dense. */
static inline void test_as_layer_list(struct mt_spec *s)
{
    struct mt_model_desc *m = &s->model;
    int k = 0;
    for (int l = 1; l <= m->n_layers; l++) {
        m->spec_layer[k++] = (struct mt_layer_spec){.kind = MT_LK_DENSE, .units = m->width[l],
                                                    .stride = 1, .bias = 1};
        if (l == m->n_layers)
            break;
        if (m->norm[l] == MT_NK_BATCH)
            m->spec_layer[k++] = (struct mt_layer_spec){.kind = MT_LK_BATCHNORM};
        m->spec_layer[k++] = (struct mt_layer_spec){.kind = MT_LK_ACT, .act = m->act[l]};
        if (m->norm[l] == MT_NK_LAYER)
            m->spec_layer[k++] = (struct mt_layer_spec){.kind = MT_LK_LAYERNORM};
        m->norm[l] = MT_NK_NONE;
    }
    m->n_spec = k;
    m->input = (struct mt_shape){m->width[0], 1, 1};
}

/* The hidden form's parameters pa and the layer list's pb (n each), bit
 * for bit; frees both. */
static inline void assert_same_params(float *pa, float *pb, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&pa[i], &pb[i], sizeof *pa) != 0)
            fail_msg("parameter %zu of %zu: hidden form %.9g, layer list %.9g", i, n,
                     (double)pa[i], (double)pb[i]);
    free(pa);
    free(pb);
}

#endif
