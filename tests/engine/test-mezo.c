/* test-mezo.c: MeZO / SPSA (rules/mezo.c, spec 8.3). The two-point estimate
 * is the directional derivative and drives a quadratic down; the direction
 * is the same when regenerated from its seed; the restore drifts by a few
 * ulps at most; the rule keeps no activations and no gradients, plans what
 * it measures, refuses other optimizers, is reproducible across a resume,
 * and trains a synthetic problem above chance. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "rules/common.h"
#include "rules/mezo.h"
#include "testutil.h"

/* f(theta) = 1/2 sum_i a_i (theta_i - c_i)^2, in double. */
struct quad {
    size_t n;
    const double *a, *c;
    long calls;
};

static int quad_loss(void *ud, const float *theta, size_t n, double *loss, struct mt_err *err)
{
    struct quad *q = ud;
    (void)err;
    assert_int_equal(n, q->n);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)theta[i] - q->c[i];
        s += 0.5 * q->a[i] * d * d;
    }
    q->calls++;
    *loss = s;
    return 0;
}

static void quad_make(struct quad *q, size_t n, double *a, double *c, float *theta)
{
    struct mt_rng r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < n; i++) {
        a[i] = 0.5 + 1.5 * rng_uniform(&r);      /* curvatures in [0.5, 2) */
        c[i] = rng_uniform_range(&r, -1.0f, 1.0f);
        theta[i] = 0.0f;
    }
    q->n = n;
    q->a = a;
    q->c = c;
    q->calls = 0;
}

static void test_estimate_is_the_directional_derivative(void **state)
{
    (void)state;
    enum { N = 200 };
    double a[N], c[N];
    float theta[N], z[N];
    struct quad q;
    quad_make(&q, N, a, c, theta);
    for (size_t i = 0; i < N; i++)
        theta[i] = (float)(0.3 * c[i]);
    memset(z, 0, sizeof z);
    mezo_perturb(z, N, 99, 1.0f);
    /* On a quadratic the central difference is exact: g = grad f . z. */
    double want = 0.0;
    for (size_t i = 0; i < N; i++)
        want += a[i] * ((double)theta[i] - c[i]) * z[i];
    struct mezo_est est;
    struct mt_err err = {0};
    assert_ok(mezo_estimate(theta, N, 99, 1e-3f, quad_loss, &q, &est, &err), err);
    print_message("g %.6f, grad.z %.6f\n", est.g, want);
    assert_int_equal(q.calls, 2);
    assert_true(est.seed == 99);
    assert_true(fabs(est.g - want) < 1e-2 * fabs(want) + 1e-3);
    double g = (est.lplus - est.lminus) / (2.0 * (double)1e-3f);
    assert_true(fabs(est.g - g) <= 1e-12 * fabs(g));
}

/* Steps of SPSA with m seeds per step until the loss is a tenth of the start. */
static long steps_to_tenth(int m, long max_steps)
{
    enum { N = 100 };
    double a[N], c[N];
    float theta[N];
    struct quad q;
    struct mt_err err = {0};
    quad_make(&q, N, a, c, theta);
    double f0, f;
    quad_loss(&q, theta, N, &f0, &err);
    struct mt_rng seeds;
    rng_seed(&seeds, 5);
    struct mezo_est est[8];
    float lr = 0.25f; /* ~ 1/(a_max (N + 2) / m) scaled: stable for N = 100 */
    for (long s = 1; s <= max_steps; s++) {
        for (int j = 0; j < m; j++)
            assert_ok(mezo_estimate(theta, N, rng_next(&seeds), 1e-3f, quad_loss, &q, &est[j],
                                    &err), err);
        mezo_update(theta, N, est, m, lr * (float)m / (float)(N + 2));
        quad_loss(&q, theta, N, &f, &err);
        if (f < 0.1 * f0)
            return s;
    }
    fail_msg("m = %d: loss %.4g -> %.4g after %ld steps, wanted a tenth", m, f0, f, max_steps);
    return -1;
}

static void test_spsa_drives_a_quadratic_down_tenfold(void **state)
{
    (void)state;
    long s1 = steps_to_tenth(1, 3000), s4 = steps_to_tenth(4, 3000);
    print_message("100 parameters: loss / 10 after %ld steps (1 seed), %ld steps (4 seeds)\n",
                  s1, s4);
    /* Averaging 4 seeds with a 4x step takes fewer steps. */
    assert_true(s4 < s1);
}

static void test_perturbation_is_identical_when_regenerated(void **state)
{
    (void)state;
    enum { N = 100000 };
    float *z1 = calloc(N, sizeof *z1), *z2 = calloc(N, sizeof *z2), *z3 = calloc(N, sizeof *z3);
    assert_non_null(z1);
    assert_non_null(z2);
    assert_non_null(z3);
    mezo_perturb(z1, N, 0x1234, 1.0f);
    mezo_perturb(z2, N, 0x1234, 1.0f);
    mezo_perturb(z3, N, 0x1235, 1.0f);
    assert_memory_equal(z1, z2, N * sizeof *z1);
    assert_true(memcmp(z1, z3, N * sizeof *z1) != 0);
    /* z ~ N(0, 1). */
    double s = 0, s2 = 0;
    for (size_t i = 0; i < N; i++) {
        s += z1[i];
        s2 += (double)z1[i] * z1[i];
    }
    double mean = s / N, var = s2 / N - mean * mean;
    print_message("z: mean %.4f, variance %.4f over %d draws\n", mean, var, N);
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(var - 1.0) < 0.02);
    /* A scale multiplies the same direction: the prefix of a longer
     * regeneration is the shorter one. */
    memset(z2, 0, N * sizeof *z2);
    mezo_perturb(z2, 1000, 0x1234, 2.0f);
    for (size_t i = 0; i < 1000; i++)
        assert_true(z2[i] == 2.0f * z1[i]);
    free(z1);
    free(z2);
    free(z3);
}

static int zero_loss(void *ud, const float *theta, size_t n, double *loss, struct mt_err *err)
{
    (void)ud, (void)theta, (void)n, (void)err;
    *loss = 0.0;
    return 0;
}

static void test_restore_drifts_by_a_few_ulps_at_most(void **state)
{
    (void)state;
    enum { N = 100000 };
    const float eps = 1e-3f;
    float *theta = malloc(N * sizeof *theta), *orig = malloc(N * sizeof *orig),
          *z = calloc(N, sizeof *z);
    assert_non_null(theta);
    assert_non_null(orig);
    assert_non_null(z);
    struct mt_rng r;
    rng_seed(&r, 3);
    for (size_t i = 0; i < N; i++)
        theta[i] = orig[i] = rng_uniform_range(&r, -0.1f, 0.1f); /* Kaiming scale, n_0 = 784 */
    mezo_perturb(z, N, 77, 1.0f);
    struct mezo_est est;
    struct mt_err err = {0};
    assert_ok(mezo_estimate(theta, N, 77, eps, zero_loss, NULL, &est, &err), err);
    size_t moved = 0;
    double worst = 0.0;
    for (size_t i = 0; i < N; i++) {
        double d = fabs((double)theta[i] - orig[i]);
        double bound = 2.0 * FLT_EPSILON * (fabs(orig[i]) + 2.0 * eps * fabs(z[i]));
        if (d > bound)
            fail_msg("element %zu: %.9g came back as %.9g (bound %.3g)", i, (double)orig[i],
                     (double)theta[i], bound);
        moved += d > 0;
        if (d / (fabs(orig[i]) + 1e-30) > worst)
            worst = d / (fabs(orig[i]) + 1e-30);
    }
    print_message("+eps, -2eps, +eps: %zu of %d elements not restored exactly, worst relative "
                  "drift %.3g\n", moved, N, worst);
    free(theta);
    free(orig);
    free(z);
}

/* ------------------------------------------------------------------------ */
/* The rule in the trainer                                                  */

static void test_defaults_and_refused_optimizers(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "mezo", 1, 16, MT_ACT_RELU, 8, 64);
    assert_ok(spec_finish(&s, &err), err);
    assert_int_equal(s.optim.kind, MT_OPT_SGD);
    assert_true(s.optim.momentum == 0.0f);
    /* 100 / P, capped at 2e-3, times min(1, batch / 64): this small net
     * gets the cap times 8 / 64, the 4x2000 MNIST net (13,596,010
     * parameters, batch 100) 100 / P. */
    assert_true(s.optim.lr == (float)(2e-3 * 8.0 / 64.0));
    assert_int_equal(s.sched.kind, MT_SCHED_CONSTANT);
    struct mt_spec big;
    test_spec(&big, "mezo", 4, 2000, MT_ACT_RELU, 100, 64);
    big.model.width[0] = 784;
    big.model.width[5] = 10;
    assert_ok(spec_finish(&big, &err), err);
    assert_true(big.optim.lr == (float)(100.0 / 13596010.0));
    /* A conv net: 100 / its weights' uses per sample (forward flops / 2):
     * 8x5x5 conv weights at 28x28 positions (156,800), the 2x2 max-pool's
     * 1568 outputs x 4 / 2 (3136) and 15,680 dense weights, not 100 / its
     * 15,898 parameters (which the cap would cut to 2e-3). */
    struct mt_spec conv;
    test_parse_spec("dataset: mnist\nbatch: 64\nepochs: 1\nrule: mezo\n"
                    "model: {input: [1, 28, 28], layers: [{conv: {channels: 8, kernel: 5, "
                    "padding: 2}}, relu, {maxpool: 2}, flatten, {dense: 10}]}\n",
                    &conv);
    assert_int_equal(model_param_count(&conv.model), 200 + 8 + 15680 + 10);
    assert_true(conv.optim.lr == (float)(100.0 / (156800.0 + 3136.0 + 15680.0)));
    assert_true(s.rule.epsilon == 1e-3f);
    assert_int_equal(s.rule.samples, 1);

    test_spec(&s, "mezo", 1, 16, MT_ACT_RELU, 8, 64);
    s.optim.kind = MT_OPT_ADAM;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    print_message("adam: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "sgd without momentum, got adam"));

    test_spec(&s, "mezo", 1, 16, MT_ACT_RELU, 8, 64);
    s.optim.kind = MT_OPT_SGD;
    s.optim.momentum = 0.9f;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "got sgd with momentum"));

    test_spec(&s, "mezo", 1, 16, MT_ACT_RELU, 8, 64);
    s.optim.weight_decay = 1e-4f;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "weight_decay"));
}

static void test_plan_equals_measured_and_keeps_nothing(void **state)
{
    (void)state;
    static const int depths[] = {1, 2, 3, 5};
    static const int batches[] = {1, 8, 33};
    for (size_t d = 0; d < 4; d++)
        for (size_t b = 0; b < 3; b++)
            for (int m = 1; m <= 3; m += 2) {
                struct mt_spec s;
                struct mt_mem_stats st;
                struct mt_mem_plan plan;
                test_spec(&s, "mezo", depths[d], 20 + 3 * (int)d,
                          d == 2 ? MT_ACT_GELU : MT_ACT_RELU, batches[b], 3 * batches[b] + 5);
                s.rule.samples = m;
                assert_plan_matches(&s, &st, &plan);
                assert_int_equal(st.peak[MT_MEM_ACTS], 0);
                assert_int_equal(st.peak[MT_MEM_GRADS], 0);
                assert_int_equal(st.peak[MT_MEM_OPTIM], 0);
                assert_int_equal(st.peak[MT_MEM_WORKSPACE],
                                 rule_rolling_bytes(&s.model, batches[b]));
            }
}

static void run_epochs(const struct mt_spec *s, int epochs, struct mt_trainer *t,
                       struct mt_epoch_report *r)
{
    struct mt_err err = {0};
    assert_ok(trainer_init(t, s, &err), err);
    for (int e = 0; e < epochs; e++)
        assert_ok(trainer_run_epoch(t, NULL, NULL, &r[e], &err), err);
}

static void test_run_is_reproducible_and_resumes_exactly(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer a, b, c;
    struct mt_epoch_report ra[2], rb[2], rc[1];
    struct mt_err err = {0};
    test_spec(&s, "mezo", 2, 24, MT_ACT_RELU, 16, 200);
    s.epochs = 2;
    s.rule.samples = 2;
    run_epochs(&s, 2, &a, ra);
    run_epochs(&s, 1, &b, rb);
    size_t P = model_param_count(&a.net.d);
    /* Resume b's state in a fresh trainer c and finish the second epoch. */
    struct mt_train_pos pos;
    trainer_position(&b, &pos);
    assert_ok(trainer_init(&c, &s, &err), err);
    assert_ok(trainer_seek(&c, &pos, &err), err);
    memcpy(c.net.params, b.net.params, P * sizeof(float));
    assert_ok(trainer_run_epoch(&c, NULL, NULL, &rc[0], &err), err);
    assert_memory_equal(a.net.params, c.net.params, P * sizeof(float));
    assert_memory_equal(&ra[1].loss, &rc[0].loss, sizeof ra[1].loss);
    /* The same spec trains the same way; another seed does not. */
    assert_ok(trainer_run_epoch(&b, NULL, NULL, &rb[1], &err), err);
    assert_memory_equal(a.net.params, b.net.params, P * sizeof(float));
    trainer_fini(&b);
    s.seed = 4;
    run_epochs(&s, 1, &b, rb);
    assert_true(memcmp(a.net.params, b.net.params, P * sizeof(float)) != 0);
    trainer_fini(&a);
    trainer_fini(&b);
    trainer_fini(&c);
}

static void test_mezo_trains_synthetic_above_chance(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_epoch_report r[6];
    test_spec(&s, "mezo", 1, 32, MT_ACT_RELU, 32, 2000);
    s.epochs = 6;
    s.optim.lr = 5e-3f; /* 1188 parameters: SPSA's noise grows with P, so a small net takes
                           a larger step than the MNIST-sized default */
    run_epochs(&s, s.epochs, &t, r);
    for (int e = 0; e < s.epochs; e++)
        print_message("epoch %d: loss %.4f, train %.3f, test %.3f, g_rms %.3g\n", e + 1, r[e].loss,
                      r[e].train_accuracy, r[e].test_accuracy, r[e].metrics[0].value);
    assert_int_equal(r[0].n_metrics, 1);
    assert_string_equal(r[0].metrics[0].name, "g_rms");
    assert_true(r[s.epochs - 1].loss < 0.5 * r[0].loss);
    assert_true(r[s.epochs - 1].test_accuracy > 0.8); /* 4 classes: chance is 0.25 */
    trainer_fini(&t);
}

/* ---- layer lists (model.layers) ---- */

/* An MLP written as a layer list: the same forwards, the same seeds, the
 * same weights. */
static void test_layer_list_trains_as_the_hidden_form(void **state)
{
    (void)state;
    static const enum mt_act acts[] = {MT_ACT_RELU, MT_ACT_GELU, MT_ACT_TANH};
    for (int a = 0; a < 3; a++) {
        struct mt_spec h, g;
        test_spec(&h, "mezo", 2, 20, acts[a], 16, 96);
        h.rule.samples = 2;
        g = h;
        test_as_layer_list(&g);
        assert_train_identically(&h, &g, 6, NULL, NULL);
    }
}

#define LL_DATA "dataset: {name: synthetic, synthetic_train: 70, synthetic_test: 20}\n" \
                "epochs: 1\nseed: 5\nthreads: 1\n"

static void test_layer_list_plan_equals_measured_and_keeps_nothing(void **state)
{
    (void)state;
    static const char *const models[] = {
        "model:\n  input: [2, 6, 6]\n  classes: 3\n  layers:\n"
        "    - conv: {channels: 3, kernel: 3, padding: 1}\n    - batchnorm\n    - relu\n"
        "    - maxpool: 2\n    - flatten\n    - {dense: 8}\n    - gelu\n    - layernorm\n"
        "    - {dense: 3}\n",
        "model:\n  input: [2, 6, 6]\n  classes: 3\n  layers:\n"
        "    - conv: {channels: 3, kernel: 3, padding: 1}\n    - residual: 3\n"
        "    - residual: {channels: 4, stride: 2}\n    - batchnorm\n    - relu\n"
        "    - globalavgpool\n    - {dense: 3}\n",
    };
    static const int batches[] = {1, 16, 33};
    for (size_t m = 0; m < 2; m++)
        for (int b = 0; b < 3; b++) {
            char yaml[1024];
            struct mt_spec s;
            struct mt_mem_stats st;
            struct mt_mem_plan plan;
            snprintf(yaml, sizeof yaml, LL_DATA "batch: %d\nrule: {name: mezo, samples: 2}\n%s",
                     batches[b], models[m]);
            test_parse_spec(yaml, &s);
            assert_plan_matches(&s, &st, &plan);
            assert_int_equal(st.peak[MT_MEM_ACTS], 0);
            assert_int_equal(st.peak[MT_MEM_GRADS], 0);
            assert_int_equal(st.peak[MT_MEM_OPTIM], 0);
        }
}

/* Gaussian blobs read as 1x8x8 images, a small conv net with batch-norm,
 * mezo's defaults (batch 64, where its lr is not scaled down): the loss falls, the test accuracy is above chance and
 * batch-norm's running statistics followed the batches. */
static void test_layer_list_learns_generated_images(void **state)
{
    (void)state;
    static const char *yaml =
        "dataset: {name: synthetic, synthetic_train: 4000, synthetic_test: 400}\n"
        "epochs: 6\nseed: 5\nthreads: 1\nbatch: 64\nrule: mezo\n"
        "model:\n  input: [1, 8, 8]\n  classes: 4\n  layers:\n"
        "    - conv: {channels: 4, kernel: 3, padding: 1}\n    - batchnorm\n    - relu\n"
        "    - maxpool: 2\n    - flatten\n    - {dense: 4}\n";
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_epoch_report r[6];
    test_parse_spec(yaml, &s);
    run_epochs(&s, s.epochs, &t, r);
    for (int e = 0; e < s.epochs; e++)
        print_message("epoch %d: loss %.4f, train %.3f, test %.3f, g_rms %.3g\n", e + 1, r[e].loss,
                      r[e].train_accuracy, r[e].test_accuracy, r[e].metrics[0].value);
    print_message("lr %g, %zu parameters\n", (double)t.spec.optim.lr,
                  model_param_count(&t.net.d));
    assert_true(r[s.epochs - 1].loss < 0.6 * r[0].loss);
    assert_true(r[s.epochs - 1].test_accuracy > 0.8); /* 4 classes: chance is 0.25 */
    assert_true(t.net.stats[0] != 0.0f); /* the first channel's running mean moved */
    trainer_fini(&t);
}

static void test_fail_each_allocation_ends_clean(void **state)
{
    (void)state;
    struct mt_spec s;
    test_spec(&s, "mezo", 2, 16, MT_ACT_RELU, 8, 20);
    s.rule.samples = 2;
    assert_faults_end_clean(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate_is_the_directional_derivative),
        cmocka_unit_test(test_spsa_drives_a_quadratic_down_tenfold),
        cmocka_unit_test(test_perturbation_is_identical_when_regenerated),
        cmocka_unit_test(test_restore_drifts_by_a_few_ulps_at_most),
        cmocka_unit_test(test_defaults_and_refused_optimizers),
        cmocka_unit_test(test_plan_equals_measured_and_keeps_nothing),
        cmocka_unit_test(test_run_is_reproducible_and_resumes_exactly),
        cmocka_unit_test(test_mezo_trains_synthetic_above_chance),
        cmocka_unit_test(test_fail_each_allocation_ends_clean),
        cmocka_unit_test(test_layer_list_trains_as_the_hidden_form),
        cmocka_unit_test(test_layer_list_plan_equals_measured_and_keeps_nothing),
        cmocka_unit_test(test_layer_list_learns_generated_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
