/* test-ckpt.c: gradient checkpointing (rules/ckpt.c, spec 8.1) gives BP's
 * weights bit for bit, keeps exactly the bytes its formula says, plans what
 * it measures, and its kept activations grow like sqrt(L) where BP's grow
 * like L. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "rules/common.h"
#include "testutil.h"

/* Train bp and ckpt on the same spec for one epoch of 50 steps (batch 20,
 * one thread) and compare weights, gradients and the reported figures. */
static void check_equals_bp(int hidden, enum mt_act act, enum mt_optim_kind opt, int segments)
{
    struct mt_spec bp, ck;
    test_spec(&bp, "bp", hidden, 24, act, 20, 1000);
    if (hidden >= 2)
        bp.model.width[2] = 17; /* uneven widths */
    bp.optim.kind = opt;
    ck = bp;
    snprintf(ck.rule.name, sizeof ck.rule.name, "ckpt");
    ck.rule.segments = segments;
    assert_train_identically(&bp, &ck, 50, NULL, NULL);
}

static const int depths[] = {1, 2, 5, 9, 16};

static void test_ckpt_equals_bp_after_50_steps_relu_adam(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++)
        check_equals_bp(depths[i], MT_ACT_RELU, MT_OPT_ADAM, -1);
}

static void test_ckpt_equals_bp_after_50_steps_gelu_sgd(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++)
        check_equals_bp(depths[i], MT_ACT_GELU, MT_OPT_SGD, -1);
}

static void test_ckpt_equals_bp_with_any_segment_count(void **state)
{
    (void)state;
    /* 9 hidden layers, L = 10: one segment (replay everything), two, an
     * uneven split, one per layer, and more than L (clamped to L). */
    static const int ks[] = {1, 2, 3, 7, 10, 40};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++)
        check_equals_bp(9, i % 2 ? MT_ACT_SILU : MT_ACT_TANH, MT_OPT_ADAMW, ks[i]);
}

static void test_default_segments_is_ceil_sqrt_of_weight_layers(void **state)
{
    (void)state;
    /* hidden layers -> L -> ceil(sqrt(L)) */
    static const int hidden[] = {0, 1, 2, 3, 7, 8, 15, 16};
    static const int want[] = {1, 2, 2, 2, 3, 3, 4, 5};
    for (size_t i = 0; i < sizeof hidden / sizeof *hidden; i++) {
        struct mt_spec s;
        struct mt_err err = {0};
        test_spec(&s, "ckpt", hidden[i], 16, MT_ACT_RELU, 8, 100);
        assert_ok(spec_finish(&s, &err), err);
        if (s.rule.segments != want[i])
            fail_msg("%d hidden layers: segments %d, want %d", hidden[i], s.rule.segments,
                     want[i]);
        /* BP's optimizer recipe. */
        assert_int_equal(s.optim.kind, MT_OPT_ADAM);
        assert_true(s.optim.lr == 1e-4f);
    }
}

/* The kept-bytes formula for `hidden` layers of one width n, written out
 * (doc-ckpt.md): L = hidden + 1 layers in k segments of ceil(L/k) or
 * floor(L/k) layers; kept = 4B(z (k - 1) n + z (ceil(L/k) - 1) n) + 4BC,
 * z = 2 where f' needs Z, else 1. */
static size_t formula(int hidden, int n, int B, int C, int k, int z)
{
    int L = hidden + 1;
    if (k > L)
        k = L;
    int biggest = (L + k - 1) / k;
    return 4 * (size_t)B * ((size_t)z * (k - 1) * n + (size_t)z * (biggest - 1) * n) +
           4 * (size_t)B * C;
}

static void measure(const char *rule, int hidden, int width, enum mt_act act, int batch,
                    int segments, struct mt_mem_stats *st)
{
    struct mt_spec s;
    struct mt_mem_plan plan;
    test_spec(&s, rule, hidden, width, act, batch, 3 * batch + 5); /* a partial last batch */
    s.rule.segments = segments;
    assert_plan_matches(&s, st, &plan);
}

static void test_plan_equals_measured_depths_1_to_16(void **state)
{
    (void)state;
    static const int batches[] = {1, 8, 33};
    for (int h = 1; h <= 16; h++)
        for (size_t b = 0; b < 3; b++) {
            struct mt_mem_stats st;
            measure("ckpt", h, 12 + h, h % 4 == 3 ? MT_ACT_GELU : MT_ACT_RELU, batches[b], -1,
                    &st);
        }
    /* Explicit segment counts, including one and more than L. */
    static const int ks[] = {1, 2, 3, 5, 99};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        struct mt_mem_stats st;
        measure("ckpt", 6, 20, MT_ACT_RELU, 8, ks[i], &st);
    }
}

static void test_kept_bytes_equal_formula(void **state)
{
    (void)state;
    const int n = 40, B = 16, C = 4;
    static const int hs[] = {0, 1, 2, 3, 5, 8, 16}, ks[] = {-1, 1, 2, 3, 5, 40};
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++)
        for (size_t j = 0; j < sizeof ks / sizeof *ks; j++) {
            int h = hs[i], k = ks[j];
            for (int z = 1; z <= 2; z++) {
                struct mt_mem_stats st;
                measure("ckpt", h, n, z == 2 ? MT_ACT_GELU : MT_ACT_RELU, B, k, &st);
                int kk = k;
                if (kk < 0)
                    for (kk = 1; kk * kk < h + 1; kk++)
                        ;
                size_t want = formula(h, n, B, C, kk, z);
                if (st.peak[MT_MEM_ACTS] != want)
                    fail_msg("%d hidden, k %d, z %d: kept %zu, formula %zu", h, k, z,
                             st.peak[MT_MEM_ACTS], want);
            }
        }
}

static void test_depth_sweep_grows_like_sqrt_depth(void **state)
{
    (void)state;
    /* Width 128, batch 32: 2, 4, 8, 16 hidden layers. */
    static const int hs[] = {2, 4, 8, 16};
    size_t ck[4], bp[4];
    for (int i = 0; i < 4; i++) {
        struct mt_mem_stats st;
        measure("ckpt", hs[i], 128, MT_ACT_RELU, 32, -1, &st);
        ck[i] = st.peak[MT_MEM_ACTS];
        measure("bp", hs[i], 128, MT_ACT_RELU, 32, -1, &st);
        bp[i] = st.peak[MT_MEM_ACTS];
        print_message("%2d hidden: ckpt kept %8zu bytes, bp %8zu (%.2fx)\n", hs[i], ck[i], bp[i],
                      (double)bp[i] / (double)ck[i]);
    }
    double rck = (double)ck[3] / (double)ck[1], rbp = (double)bp[3] / (double)bp[1];
    print_message("16 vs 4 hidden layers: ckpt %.2fx, bp %.2fx (sqrt(17/5) = %.2f)\n", rck, rbp,
                  sqrt(17.0 / 5.0));
    assert_true(rck > 1.5 && rck < 2.5);
    assert_true(rbp > 3.8);
    for (int i = 1; i < 4; i++)
        assert_true(ck[i] < bp[i]);
    /* Two hidden layers: k = 2, the one boundary is all there is to keep. */
    assert_int_equal(ck[0], bp[0]);
}

static void test_fail_each_allocation_ends_clean(void **state)
{
    (void)state;
    struct mt_spec s;
    test_spec(&s, "ckpt", 5, 16, MT_ACT_GELU, 8, 20);
    assert_faults_end_clean(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ckpt_equals_bp_after_50_steps_relu_adam),
        cmocka_unit_test(test_ckpt_equals_bp_after_50_steps_gelu_sgd),
        cmocka_unit_test(test_ckpt_equals_bp_with_any_segment_count),
        cmocka_unit_test(test_default_segments_is_ceil_sqrt_of_weight_layers),
        cmocka_unit_test(test_plan_equals_measured_depths_1_to_16),
        cmocka_unit_test(test_kept_bytes_equal_formula),
        cmocka_unit_test(test_depth_sweep_grows_like_sqrt_depth),
        cmocka_unit_test(test_fail_each_allocation_ends_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
