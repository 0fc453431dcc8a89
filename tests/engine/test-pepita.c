/* test-pepita.c: the PEPITA rule (spec section 7.9): one step's updates equal
 * a naive loop over the paper's definitions, F never changes, the plan equals
 * the measured peaks, and a small problem is learnt. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rules/common.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Naive reference, in doubles, straight from the definitions.          */

struct ref_net {
    int L, w[MT_MAX_LAYERS + 1];
    enum mt_act act[MT_MAX_LAYERS + 1];
    double *W[MT_MAX_LAYERS + 1];    /* (n_l, n_{l-1}) */
    double *b[MT_MAX_LAYERS + 1];
};

/* out_i = f(W in_i + b) for hidden layers, W in_i + b for the last. */
static void ref_layer(const struct ref_net *n, int l, const double *in, double *out, int B)
{
    int nin = n->w[l - 1], nout = n->w[l];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < nout; j++) {
            double z = n->b[l][j];
            for (int k = 0; k < nin; k++)
                z += n->W[l][(size_t)j * nin + k] * in[(size_t)i * nin + k];
            out[(size_t)i * nout + j] = l < n->L ? (double)act_f((float)z, n->act[l]) : z;
        }
}

/* h[l] (B, n_l) for l = 1..L from h[0]. */
static void ref_forward(const struct ref_net *n, double **h, int B)
{
    for (int l = 1; l <= n->L; l++)
        ref_layer(n, l, h[l - 1], h[l], B);
}

/* softmax(z) - Y in place; returns the mean cross-entropy. */
static double ref_error(double *z, const uint8_t *y, int B, int C)
{
    double loss = 0;
    for (int i = 0; i < B; i++) {
        double *r = z + (size_t)i * C, m = r[0], s = 0;
        for (int c = 1; c < C; c++)
            m = r[c] > m ? r[c] : m;
        for (int c = 0; c < C; c++)
            s += exp(r[c] - m);
        loss += log(s) + m - r[y[i]];
        for (int c = 0; c < C; c++)
            r[c] = exp(r[c] - m) / s - (c == y[i]);
    }
    return loss / B;
}

static double **alloc_acts(const struct ref_net *n, int B)
{
    double **h = calloc((size_t)n->L + 1, sizeof *h);
    for (int l = 0; l <= n->L; l++)
        h[l] = calloc((size_t)B * n->w[l], sizeof(double));
    return h;
}

static void free_acts(const struct ref_net *n, double **h)
{
    for (int l = 0; l <= n->L; l++)
        free(h[l]);
    free(h);
}

/* One PEPITA step with plain SGD (W -= lr dW); returns pass 1's loss. */
static double ref_pepita_step(struct ref_net *n, const double *F, const float *x,
                              const uint8_t *y, int B, double lr)
{
    int L = n->L, C = n->w[L], n0 = n->w[0];
    double **h = alloc_acts(n, B), **hm = alloc_acts(n, B);
    for (size_t i = 0; i < (size_t)B * n0; i++)
        h[0][i] = x[i];
    ref_forward(n, h, B);
    double loss = ref_error(h[L], y, B, C);                /* e */
    for (int i = 0; i < B; i++)                           /* X' = X + e F^T */
        for (int k = 0; k < n0; k++) {
            double v = h[0][(size_t)i * n0 + k];
            for (int c = 0; c < C; c++)
                v += h[L][(size_t)i * C + c] * F[(size_t)k * C + c];
            hm[0][(size_t)i * n0 + k] = v;
        }
    ref_forward(n, hm, B);
    ref_error(hm[L], y, B, C);                             /* e' */
    for (int l = 1; l <= L; l++) {
        int nin = n->w[l - 1], nout = n->w[l];
        for (int j = 0; j < nout; j++)
            for (int k = 0; k < nin; k++) {
                double g = 0;
                for (int i = 0; i < B; i++) {
                    double delta = l < L ? h[l][(size_t)i * nout + j] - hm[l][(size_t)i * nout + j]
                                         : hm[L][(size_t)i * nout + j];
                    g += delta * hm[l - 1][(size_t)i * nin + k];
                }
                n->W[l][(size_t)j * nin + k] -= lr * g / B;
            }
    }
    free_acts(n, h);
    free_acts(n, hm);
    return loss;
}

static void ref_from_net(struct ref_net *n, const struct mt_net *net)
{
    const struct mt_model_desc *d = &net->d;
    n->L = d->n_layers;
    for (int l = 0; l <= n->L; l++) {
        n->w[l] = d->width[l];
        n->act[l] = d->act[l];
    }
    for (int l = 1; l <= n->L; l++) {
        size_t nw = (size_t)d->width[l] * d->width[l - 1];
        n->W[l] = malloc(nw * sizeof(double));
        n->b[l] = malloc((size_t)d->width[l] * sizeof(double));
        for (size_t i = 0; i < nw; i++)
            n->W[l][i] = net->W[l][i];
        for (int j = 0; j < d->width[l]; j++)
            n->b[l][j] = net->b[l][j];
    }
}

static void ref_free(struct ref_net *n)
{
    for (int l = 1; l <= n->L; l++) {
        free(n->W[l]);
        free(n->b[l]);
    }
}

/* ------------------------------------------------------------------ */

static void check_step_matches_reference(int hidden, const int *widths, enum mt_act act, int B)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "pepita", hidden, 8, act, B, 4L * B);
    for (int l = 1; l <= hidden; l++)
        s.model.width[l] = widths[l - 1];
    s.optim.kind = MT_OPT_SGD;
    s.optim.momentum = 0.0f;
    s.optim.lr = 0.5f;
    /* A large F, so that pass 2 really differs from pass 1. */
    s.rule.feedback_scale = 20.0f;
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    int n0 = d->width[0], C = d->width[d->n_layers];

    float *x = malloc((size_t)B * n0 * sizeof(float));
    uint8_t *y = malloc((size_t)B);
    struct mt_rng rng;
    rng_seed(&rng, 99);
    for (int i = 0; i < B * n0; i++)
        x[i] = rng_uniform_range(&rng, -1.0f, 2.0f);
    for (int i = 0; i < B; i++)
        y[i] = (uint8_t)rng_below(&rng, (uint32_t)C);
    double *F = malloc((size_t)n0 * C * sizeof(double));
    for (int i = 0; i < n0 * C; i++)
        F[i] = t.rs.fb[0][i];

    struct ref_net ref, start;
    ref_from_net(&ref, &t.net);
    ref_from_net(&start, &t.net);
    double ref_loss = ref_pepita_step(&ref, F, x, y, B, s.optim.lr);

    struct mt_step_result r = {0};
    t.lr = s.optim.lr;
    assert_ok(t.rule->step(&t, x, y, B, &r, &err), err);
    assert_true(fabs(r.loss - ref_loss) < 1e-5 * (1 + ref_loss));

    for (int l = 1; l <= d->n_layers; l++) {
        size_t nw = (size_t)d->width[l] * d->width[l - 1];
        double worst = 0, moved = 0;
        for (size_t i = 0; i < nw; i++) {
            worst = fmax(worst, fabs(t.net.W[l][i] - ref.W[l][i]));
            moved = fmax(moved, fabs(ref.W[l][i] - start.W[l][i]));
        }
        /* Every layer moves, so the comparison means something. */
        if (moved < 1e-4)
            fail_msg("depth %d: layer %d moved only %g in one step", hidden, l, moved);
        if (worst > 1e-4 * moved)
            fail_msg("depth %d batch %d: layer %d differs from the reference by %g (moved %g)",
                     hidden, B, l, worst, moved);
        for (int j = 0; j < d->width[l]; j++)
            assert_true(t.net.b[l][j] == 0.0f);   /* no biases */
    }
    ref_free(&start);
    ref_free(&ref);
    free(F);
    free(x);
    free(y);
    trainer_fini(&t);
}

static void test_step_equals_naive_reference(void **state)
{
    (void)state;
    static const int w1[] = {7}, w3[] = {9, 5, 11}, w0[] = {0};
    check_step_matches_reference(1, w1, MT_ACT_RELU, 6);
    check_step_matches_reference(3, w3, MT_ACT_RELU, 5);
    check_step_matches_reference(3, w3, MT_ACT_TANH, 3);
    check_step_matches_reference(0, w0, MT_ACT_RELU, 4);
}

static void test_feedback_is_fixed_and_seeded(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t, u;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    test_spec(&s, "pepita", 2, 16, MT_ACT_RELU, 10, 100);
    assert_ok(trainer_init(&t, &s, &err), err);
    int n0 = t.net.d.width[0], C = t.net.d.width[t.net.d.n_layers];
    size_t bytes = (size_t)n0 * C * sizeof(float);
    float *F0 = malloc(bytes);
    memcpy(F0, t.rs.fb[0], bytes);
    /* Default: 0.05 U(+-sqrt(6/n_0)), not all equal. */
    float bound = 0.05f * sqrtf(6.0f / (float)n0), lo = 1, hi = -1;
    for (int i = 0; i < n0 * C; i++) {
        assert_true(fabsf(F0[i]) <= bound);
        lo = fminf(lo, F0[i]);
        hi = fmaxf(hi, F0[i]);
    }
    assert_true(hi - lo > bound);
    float *W0 = malloc(t.net.d.width[1] * (size_t)n0 * sizeof(float));
    memcpy(W0, t.net.W[1], t.net.d.width[1] * (size_t)n0 * sizeof(float));
    assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    assert_memory_equal(F0, t.rs.fb[0], bytes);               /* F fixed */
    assert_true(memcmp(W0, t.net.W[1], t.net.d.width[1] * (size_t)n0 * sizeof(float)) != 0);
    /* The same seed draws the same F, another seed another. */
    assert_ok(trainer_init(&u, &s, &err), err);
    assert_memory_equal(F0, u.rs.fb[0], bytes);
    trainer_fini(&u);
    s.seed = 4;
    assert_ok(trainer_init(&u, &s, &err), err);
    assert_true(memcmp(F0, u.rs.fb[0], bytes) != 0);
    trainer_fini(&u);
    free(W0);
    free(F0);
    trainer_fini(&t);
}

static void test_defaults(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err = {0};
    test_spec(&s, "pepita", 2, 8, MT_ACT_RELU, 4, 20);
    assert_ok(spec_finish(&s, &err), err);
    assert_int_equal(s.optim.kind, MT_OPT_SGD);
    assert_true(s.optim.lr == 0.01f && s.optim.momentum == 0.9f);
    assert_int_equal(s.sched.kind, MT_SCHED_COSINE);
    assert_int_equal(s.rule.feedback_init, MT_FB_KAIMING);
    assert_true(s.rule.feedback_scale == 0.05f);
    /* Up to 3 hidden layers 0.01; deeper, 0.01 * 2 / (hidden - 1). */
    test_spec(&s, "pepita", 3, 8, MT_ACT_RELU, 4, 20);
    assert_ok(spec_finish(&s, &err), err);
    assert_true(s.optim.lr == 0.01f);
    test_spec(&s, "pepita", 5, 8, MT_ACT_RELU, 4, 20);
    assert_ok(spec_finish(&s, &err), err);
    assert_true(s.optim.lr == 0.01f * 0.5f);
    /* What the spec says wins. */
    test_spec(&s, "pepita", 2, 8, MT_ACT_RELU, 4, 20);
    s.optim.kind = MT_OPT_SGD;
    s.optim.momentum = 0.5f;
    s.rule.feedback_scale = 0.2f;
    assert_ok(spec_finish(&s, &err), err);
    assert_true(s.optim.momentum == 0.5f && s.rule.feedback_scale == 0.2f);
    assert_int_equal(s.sched.kind, MT_SCHED_CONSTANT);
}

static void test_plan_equals_measured(void **state)
{
    (void)state;
    static const int depths[] = {0, 1, 2, 4}, batches[] = {1, 8, 33};
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++)
        for (size_t j = 0; j < sizeof batches / sizeof *batches; j++) {
            struct mt_spec s;
            struct mt_mem_stats st;
            struct mt_mem_plan plan;
            int B = batches[j];
            test_spec(&s, "pepita", depths[i], 24, MT_ACT_RELU, B, 3L * B + 5);
            if (depths[i] >= 2)
                s.model.width[2] = 40;   /* uneven widths */
            if (depths[i] >= 4)
                s.model.width[4] = 9;
            assert_plan_matches(&s, &st, &plan);
            /* The kept activations are the formula of the rule's doc. */
            const struct mt_model_desc *d = &s.model;
            int L = d->n_layers, nbuf = L - 1 < 2 ? L - 1 : 2;
            size_t acts = (size_t)B * (model_hidden_sum(d) + d->width[L] + d->width[0] +
                                       (size_t)nbuf * model_hidden_max(d)) * sizeof(float);
            assert_int_equal(st.peak[MT_MEM_ACTS], acts);
        }
}

static void test_trains_synthetic_above_chance(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    test_spec(&s, "pepita", 2, 64, MT_ACT_RELU, 20, 2000);
    s.epochs = 4;
    assert_ok(trainer_init(&t, &s, &err), err);
    for (int e = 0; e < s.epochs; e++)
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    print_message("pepita synthetic: test accuracy %.3f, loss %.3f\n", r.test_accuracy, r.loss);
    assert_true(r.test_accuracy > 0.6);   /* 4 classes: chance is 0.25 */
    trainer_fini(&t);
}

/* The plan is a tight limit (one byte less fails cleanly), and failing
 * each allocation in turn, in setup and in a step, ends in a clean error
 * with nothing leaked (sqlite's faultsim, as test-fault.c). */
static void test_arena_faults_fail_cleanly(void **state)
{
    (void)state;
    struct mt_spec s;
    test_spec(&s, "pepita", 3, 16, MT_ACT_RELU, 8, 20);
    assert_faults_end_clean(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_equals_naive_reference),
        cmocka_unit_test(test_feedback_is_fixed_and_seeded),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_plan_equals_measured),
        cmocka_unit_test(test_trains_synthetic_above_chance),
        cmocka_unit_test(test_arena_faults_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
