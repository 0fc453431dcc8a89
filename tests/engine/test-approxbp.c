/* test-approxbp.c: ReGELU2 / ReSiLU2 (act.h) are the spec's step functions
 * and their codes pack 4 per byte; rule approxbp keeps what spec 8.2 says
 * (kept bytes by formula, against BP), equals BP bit for bit on ReLU models
 * without norms, equals BP's gradients to float tolerance where its
 * backward is exact (memory-sharing layer-norm), plans its memory exactly,
 * and learns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "pack.h"
#include "testutil.h"

/* Spec 8.2's constants, written out again here so the test checks act.c. */
static const double spec_a[2][3] = {{-0.04922, 1.09796, -0.04874},   /* ReGELU2 */
                                    {-0.04060, 1.08093, -0.04032}};  /* ReSiLU2 */
static const double spec_c[2][3] = {{-3.18588, -0.00118, 3.19083},
                                    {-6.30505, -0.00087, 6.32582}};

/* The spec's step function: sum_i a_i [z > c_i]. */
static double spec_step(double z, int which)
{
    double s = 0;
    for (int i = 0; i < 3; i++)
        if (z > (float)spec_c[which][i])
            s += spec_a[which][i];
    return s;
}

static void check_step_function(enum mt_act act, int which)
{
    assert_true(act_has_code2(act));
    for (int i = 0; i < 3; i++) {
        float c = (float)spec_c[which][i];
        float at[5] = {nextafterf(c, -INFINITY), c, nextafterf(c, INFINITY), c - 0.01f,
                       c + 0.01f};
        unsigned want[5] = {(unsigned)i, (unsigned)i, (unsigned)i + 1, (unsigned)i,
                            (unsigned)i + 1};
        for (int k = 0; k < 5; k++) {
            assert_int_equal(act_code2(at[k], act), want[k]);
            assert_float_equal(act_code2_deriv(act_code2(at[k], act), act),
                               spec_step(at[k], which), 1e-6);
        }
    }
    /* Far out: 0 below, sum a_i above (1 to 1e-5: ReSiLU2's sum to 1.00001). */
    assert_float_equal(act_code2_deriv(act_code2(-100.0f, act), act), 0.0, 0.0);
    assert_float_equal(act_code2_deriv(act_code2(100.0f, act), act),
                       spec_a[which][0] + spec_a[which][1] + spec_a[which][2], 1e-6);
    assert_float_equal(act_code2_deriv(3, act), 1.0, 2e-5);
    assert_int_equal(act_code2(NAN, act), 0);
    /* On a grid, the vector backward is dh * step, and the fused forward
     * leaves f(z) exactly as act_f computes it. */
    enum { N = 4001 };
    float *z = malloc(N * 4), *h = malloc(N * 4), *dh = malloc(N * 4);
    uint8_t *codes = malloc(pack_bytes(N, 2));
    for (int i = 0; i < N; i++) {
        z[i] = -10.0f + 20.0f * (float)i / (N - 1);
        h[i] = z[i];
        dh[i] = 0.5f + (float)(i % 7);
    }
    act_code2_forward(h, codes, N, act);
    act_code2_backward(dh, codes, N, act);
    for (int i = 0; i < N; i++) {
        assert_true(h[i] == act_f(z[i], act));
        assert_float_equal(dh[i], (0.5 + i % 7) * spec_step(z[i], which), 1e-5);
    }
    free(z), free(h), free(dh), free(codes);
}

static void test_regelu2_is_the_spec_step_function(void **state)
{
    check_step_function(MT_ACT_GELU, 0);
}

static void test_resilu2_is_the_spec_step_function(void **state)
{
    check_step_function(MT_ACT_SILU, 1);
}

static void test_codes_round_trip_through_packing(void **state)
{
    /* Counts that leave 0..3 codes in the last byte. */
    for (size_t n = 1; n <= 43; n += 7) {
        float *z = malloc(n * 4);
        uint8_t *packed = malloc(pack_bytes(n, 2)), *codes = malloc(n), *back = malloc(n),
                *repacked = malloc(pack_bytes(n, 2));
        for (size_t i = 0; i < n; i++)
            z[i] = -8.0f + 16.0f * (float)((i * 37) % n) / (float)n;
        act_code2_forward(z, packed, n, MT_ACT_SILU); /* z becomes f(z); codes kept */
        for (size_t i = 0; i < n; i++)
            codes[i] = (uint8_t)act_code2(-8.0f + 16.0f * (float)((i * 37) % n) / (float)n,
                                          MT_ACT_SILU);
        pack_unpack_codes(back, packed, n, 2);
        assert_memory_equal(back, codes, n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(pack_get(packed, i, 2), codes[i]);
        pack_codes(repacked, codes, n, 2); /* same bytes, unused high bits zero */
        assert_memory_equal(repacked, packed, pack_bytes(n, 2));
        /* The codes alone, and what they decode to: a value on each step. */
        for (size_t i = 0; i < n; i++)
            z[i] = -8.0f + 16.0f * (float)((i * 37) % n) / (float)n;
        memset(repacked, 0xff, pack_bytes(n, 2));
        act_code2_pack(repacked, z, n, MT_ACT_SILU);
        assert_memory_equal(repacked, packed, pack_bytes(n, 2));
        act_code2_unpack(z, packed, n, MT_ACT_SILU);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(act_code2(z[i], MT_ACT_SILU), codes[i]);
        free(z), free(packed), free(codes), free(back), free(repacked);
    }
}

/* ---- the rule ---- */

static void set_norm(struct mt_spec *s, enum mt_normkind nk)
{
    for (int l = 1; l < s->model.n_layers; l++)
        s->model.norm[l] = nk;
}

static void test_relu_only_equals_bp_bit_for_bit(void **state)
{
    struct mt_spec bp, ab;
    test_spec(&bp, "bp", 3, 24, MT_ACT_RELU, 20, 400); /* 20 steps, one thread */
    bp.model.width[2] = 17;
    ab = bp;
    snprintf(ab.rule.name, sizeof ab.rule.name, "approxbp");
    struct mt_epoch_report r1, r2;
    assert_train_identically(&bp, &ab, 20, &r1, &r2);
    /* And kept the same bytes. */
    assert_int_equal(r1.mem.peak[MT_MEM_ACTS], r2.mem.peak[MT_MEM_ACTS]);
}

/* One step of bp and one of approxbp from the same weights on the same
 * batch; returns the largest gradient difference relative to BP's largest
 * gradient, and the cosine between the two gradient vectors. */
static void compare_gradients(enum mt_act act, enum mt_normkind nk, double *rel, double *cosine)
{
    struct mt_spec s;
    struct mt_trainer bp, ab;
    struct mt_err err = {0};
    test_spec(&s, "bp", 3, 24, act, 16, 16);
    set_norm(&s, nk);
    s.optim.kind = MT_OPT_SGD;
    s.optim.lr = 0.01f;
    assert_ok(trainer_init(&bp, &s, &err), err);
    snprintf(s.rule.name, sizeof s.rule.name, "approxbp");
    assert_ok(trainer_init(&ab, &s, &err), err);
    struct mt_epoch_report r;
    assert_ok(trainer_run_epoch(&bp, NULL, NULL, &r, &err), err);
    assert_ok(trainer_run_epoch(&ab, NULL, NULL, &r, &err), err);
    size_t P = model_param_count(&bp.net.d);
    double mx = 0, diff = 0, dot = 0, n1 = 0, n2 = 0;
    for (size_t i = 0; i < P; i++) {
        double g = bp.rs.grads[i], h = ab.rs.grads[i];
        mx = fmax(mx, fabs(g));
        diff = fmax(diff, fabs(g - h));
        dot += g * h, n1 += g * g, n2 += h * h;
    }
    *rel = diff / mx;
    *cosine = dot / sqrt(n1 * n2);
    print_message("%s %s: max |g_approxbp - g_bp| / max |g_bp| = %.3g, cosine %.6f\n",
                  act_name(act), norm_kind_name(nk), *rel, *cosine);
    trainer_fini(&bp);
    trainer_fini(&ab);
}

static void test_ms_layernorm_gradients_equal_bp(void **state)
{
    /* Where approxbp's backward is exact (MS-LN with identity, tanh, or the
     * ReLU mask), its gradients are BP's up to float rounding. */
    static const enum mt_act acts[] = {MT_ACT_IDENTITY, MT_ACT_TANH, MT_ACT_RELU,
                                       MT_ACT_LEAKY_RELU, MT_ACT_SIGMOID};
    for (int i = 0; i < 5; i++) {
        double rel, cosine;
        compare_gradients(acts[i], MT_NK_LAYER, &rel, &cosine);
        assert_true(rel < 1e-5);
        assert_true(cosine > 1 - 1e-9);
    }
}

static void test_regelu2_gradients_approximate_bp(void **state)
{
    /* With the step derivative the gradients differ from BP's, but point
     * the same way. */
    static const enum mt_act acts[] = {MT_ACT_GELU, MT_ACT_SILU};
    for (int i = 0; i < 2; i++)
        for (int nk = MT_NK_NONE; nk <= MT_NK_LAYER; nk += MT_NK_LAYER) {
            double rel, cosine;
            compare_gradients(acts[i], (enum mt_normkind)nk, &rel, &cosine);
            assert_true(rel > 1e-4);  /* not BP */
            assert_true(cosine > 0.9);
        }
}

/* Kept bytes of a GELU + layer-norm model, by spec 8.2 / section 9:
 * per hidden layer Y (4 B n) + codes (B n / 4, rounded up) + 1/sigma (4 B),
 * plus the logits 4 B C; BP keeps Y, the layer-norm input and Z (12 B n)
 * plus 4 B for the same layer. */
static void test_kept_bytes_gelu_layernorm(void **state)
{
    struct mt_spec s;
    struct mt_mem_stats st_ab, st_bp;
    struct mt_mem_plan plan;
    int B = 33, C = 4;
    test_spec(&s, "approxbp", 3, 23, MT_ACT_GELU, B, 3L * B + 5);
    s.model.width[2] = 30;
    set_norm(&s, MT_NK_LAYER);
    assert_plan_matches(&s, &st_ab, &plan);
    snprintf(s.rule.name, sizeof s.rule.name, "bp");
    assert_plan_matches(&s, &st_bp, &plan);
    size_t want_ab = 4 * (size_t)B * C, want_bp = want_ab, saving = 0;
    for (int l = 1; l <= 3; l++) {
        size_t Bn = (size_t)B * s.model.width[l];
        want_ab += 4 * Bn + (Bn + 3) / 4 + 4 * (size_t)B;
        want_bp += 12 * Bn + 4 * (size_t)B;
        saving += 8 * Bn - (Bn + 3) / 4;
    }
    print_message("GELU+LN 32-23-30-23-4, batch 33: approxbp keeps %zu bytes, bp %zu (%.2fx)\n",
                  st_ab.peak[MT_MEM_ACTS], st_bp.peak[MT_MEM_ACTS],
                  (double)st_bp.peak[MT_MEM_ACTS] / (double)st_ab.peak[MT_MEM_ACTS]);
    assert_int_equal(st_ab.peak[MT_MEM_ACTS], want_ab);
    assert_int_equal(st_bp.peak[MT_MEM_ACTS], want_bp);
    assert_int_equal(st_bp.peak[MT_MEM_ACTS] - st_ab.peak[MT_MEM_ACTS], saving);
}

static void test_plan_matches_measured(void **state)
{
    static const enum mt_act acts[] = {MT_ACT_GELU, MT_ACT_SILU, MT_ACT_RELU};
    static const int batches[] = {1, 8, 33};
    for (int a = 0; a < 3; a++)
        for (int nk = MT_NK_NONE; nk <= MT_NK_LAYER; nk += MT_NK_LAYER)
            for (int depth = 1; depth <= 4; depth++)
                for (int bi = 0; bi < 3; bi++) {
                    struct mt_spec s;
                    struct mt_mem_stats st;
                    struct mt_mem_plan plan;
                    int B = batches[bi];
                    test_spec(&s, "approxbp", depth, 21, acts[a], B, 3L * B + 5);
                    s.model.width[1] = 14;
                    set_norm(&s, (enum mt_normkind)nk);
                    assert_plan_matches(&s, &st, &plan);
                }
    /* The other layer-norm paths: a 1-bit mask (leaky ReLU), f(Z) (tanh). */
    static const enum mt_act more[] = {MT_ACT_LEAKY_RELU, MT_ACT_TANH, MT_ACT_IDENTITY};
    for (int a = 0; a < 3; a++) {
        struct mt_spec s;
        struct mt_mem_stats st;
        struct mt_mem_plan plan;
        test_spec(&s, "approxbp", 2, 21, more[a], 33, 3L * 33 + 5);
        set_norm(&s, MT_NK_LAYER);
        assert_plan_matches(&s, &st, &plan);
    }
}

static void test_batchnorm_is_refused(void **state)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "approxbp", 2, 16, MT_ACT_GELU, 8, 64);
    s.model.norm[2] = MT_NK_BATCH;
    assert_int_not_equal(trainer_init(&t, &s, &err), 0);
    print_message("refused: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "batch"));
}

static void check_learns(enum mt_act act, enum mt_normkind nk)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "approxbp", 2, 64, act, 32, 2000);
    set_norm(&s, nk);
    s.epochs = 4;
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 1e-3f;
    assert_ok(trainer_init(&t, &s, &err), err);
    struct mt_epoch_report first, r;
    for (int e = 0; e < s.epochs; e++) {
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
        if (e == 0)
            first = r;
    }
    print_message("approxbp %s %s: loss %.4f -> %.4f, test accuracy %.3f\n", act_name(act),
                  norm_kind_name(nk), first.loss, r.loss, r.test_accuracy);
    assert_true(r.loss < first.loss);
    assert_true(r.test_accuracy > 0.8);
    trainer_fini(&t);
}

static void test_approxbp_learns(void **state)
{
    check_learns(MT_ACT_GELU, MT_NK_LAYER);
    check_learns(MT_ACT_SILU, MT_NK_NONE);
}

/* ---- layer lists (model.layers) ---- */

/* An MLP written as a layer list trains to the hidden form's bits and keeps
 * the same bytes: 2-bit codes of GELU / SiLU inputs, MS-LayerNorm from its
 * output, a 1-bit mask of a ReLU before a layer-norm, f(Z) of tanh. */
static void test_layer_list_trains_as_the_hidden_form(void **state)
{
    static const enum mt_act acts[] = {MT_ACT_GELU, MT_ACT_SILU, MT_ACT_RELU,
                                       MT_ACT_LEAKY_RELU, MT_ACT_TANH};
    for (int a = 0; a < 5; a++)
        for (int nk = MT_NK_NONE; nk <= MT_NK_LAYER; nk += MT_NK_LAYER) {
            struct mt_spec h, g;
            struct mt_epoch_report rh, rg;
            test_spec(&h, "approxbp", 3, 21, acts[a], 16, 96);
            h.model.width[2] = 14;
            set_norm(&h, (enum mt_normkind)nk);
            h.optim.kind = MT_OPT_ADAM;
            h.optim.lr = 3e-3f;
            g = h;
            test_as_layer_list(&g);
            assert_train_identically(&h, &g, 6, &rh, &rg);
            assert_int_equal(rh.mem.peak[MT_MEM_ACTS], rg.mem.peak[MT_MEM_ACTS]);
        }
}

#define LL_DATA "dataset: {name: synthetic, synthetic_train: 70, synthetic_test: 20}\n" \
                "epochs: 1\nseed: 5\nthreads: 1\n"

static const char *const ll_models[] = {
    "model:\n  input: 24\n  classes: 4\n  layers: [{dense: 20}, gelu, layernorm, "
    "{dense: 12}, silu, {dense: 10}, relu, layernorm, {dense: 4}]\n",
    "model:\n  input: [2, 6, 6]\n  classes: 3\n  layers:\n"
    "    - conv: {channels: 3, kernel: 3, padding: 1}\n    - gelu\n"
    "    - conv: {channels: 4, kernel: 3, padding: 1, stride: 2}\n    - silu\n"
    "    - flatten\n    - layernorm\n    - {dense: 3}\n",
    "model:\n  input: [2, 6, 6]\n  classes: 3\n  layers:\n"
    "    - conv: {channels: 3, kernel: 3, padding: 1}\n    - maxpool: {kernel: 2, stride: 1}\n"
    "    - residual: {channels: 3, activation: gelu}\n"
    "    - residual: {channels: 4, stride: 2, activation: silu}\n"
    "    - batchnorm\n    - gelu\n    - globalavgpool\n    - {dense: 3}\n",
};

static void test_layer_list_plan_matches_measured(void **state)
{
    static const int batches[] = {1, 16, 33};
    for (size_t m = 0; m < sizeof ll_models / sizeof *ll_models; m++)
        for (int b = 0; b < 3; b++) {
            char yaml[1024];
            struct mt_spec s;
            struct mt_mem_stats st;
            struct mt_mem_plan plan;
            snprintf(yaml, sizeof yaml, LL_DATA "batch: %d\nrule: approxbp\n%s", batches[b],
                     ll_models[m]);
            test_parse_spec(yaml, &s);
            assert_plan_matches(&s, &st, &plan);
        }
}

/* The conv net above keeps, under BP: conv1's output Z1 (GELU's input),
 * GELU's output (conv2's input), conv2's output Z2 (SiLU's input), SiLU's
 * output (the layer-norm's input), the layer-norm's output, 1/sigma and the
 * logits. Approx-BP keeps Z1 and Z2 as 2-bit codes and not the layer-norm's
 * input. */
static void test_layer_list_keeps_less_than_bp(void **state)
{
    int B = 5;
    size_t z1 = (size_t)B * 3 * 6 * 6, z2 = (size_t)B * 4 * 3 * 3;
    size_t acts[2];
    for (int r = 0; r < 2; r++) {
        char yaml[1024];
        struct mt_spec s;
        struct mt_mem_stats st;
        struct mt_mem_plan plan;
        snprintf(yaml, sizeof yaml, LL_DATA "batch: %d\nrule: %s\n%s", B,
                 r ? "approxbp" : "bp", ll_models[1]);
        test_parse_spec(yaml, &s);
        assert_plan_matches(&s, &st, &plan);
        acts[r] = st.peak[MT_MEM_ACTS];
    }
    size_t ln = 4 * (size_t)B, logits = 4 * (size_t)B * 3;
    assert_int_equal(acts[0], 4 * (2 * z1 + 3 * z2) + ln + logits);
    assert_int_equal(acts[1], pack_bytes(z1, 2) + 4 * z1 + pack_bytes(z2, 2) + 4 * z2 + ln + logits);
    print_message("conv GELU/SiLU/layer-norm net, batch %d: bp keeps %zu bytes, approxbp %zu "
                  "(%.2fx)\n", B, acts[0], acts[1], (double)acts[0] / (double)acts[1]);
}

/* Where its backward is exact (MS-LayerNorm), approxbp's first step on a
 * conv layer list gives BP's gradients up to float rounding. */
static void test_layer_list_ms_layernorm_gradients_equal_bp(void **state)
{
    static const char *model =
        "model:\n  input: [2, 5, 5]\n  classes: 3\n  layers:\n"
        "    - conv: {channels: 3, kernel: 3}\n    - tanh\n    - layernorm\n"
        "    - conv: {channels: 4, kernel: 2}\n    - relu\n    - layernorm\n"
        "    - flatten\n    - {dense: 3}\n";
    struct mt_trainer t[2];
    struct mt_err err = {0};
    for (int r = 0; r < 2; r++) {
        char yaml[1024];
        struct mt_spec s;
        struct mt_epoch_report rep;
        snprintf(yaml, sizeof yaml, "dataset: {name: synthetic, synthetic_train: 16, "
                 "synthetic_test: 8}\nepochs: 1\nseed: 5\nthreads: 1\nbatch: 16\nrule: %s\n"
                 "optimizer: {name: sgd, lr: 0.01}\n%s", r ? "approxbp" : "bp", model);
        test_parse_spec(yaml, &s);
        assert_ok(trainer_init(&t[r], &s, &err), err);
        assert_ok(trainer_run_epoch(&t[r], NULL, NULL, &rep, &err), err);
    }
    size_t P = model_param_count(&t[0].net.d);
    double mx = 0, diff = 0;
    for (size_t i = 0; i < P; i++) {
        mx = fmax(mx, fabs(t[0].rs.grads[i]));
        diff = fmax(diff, fabs(t[0].rs.grads[i] - t[1].rs.grads[i]));
    }
    print_message("conv + MS-LayerNorm: max |g_approxbp - g_bp| / max |g_bp| = %.3g\n",
                  diff / mx);
    assert_true(diff / mx < 1e-5);
    trainer_fini(&t[0]);
    trainer_fini(&t[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regelu2_is_the_spec_step_function),
        cmocka_unit_test(test_resilu2_is_the_spec_step_function),
        cmocka_unit_test(test_codes_round_trip_through_packing),
        cmocka_unit_test(test_relu_only_equals_bp_bit_for_bit),
        cmocka_unit_test(test_ms_layernorm_gradients_equal_bp),
        cmocka_unit_test(test_regelu2_gradients_approximate_bp),
        cmocka_unit_test(test_kept_bytes_gelu_layernorm),
        cmocka_unit_test(test_plan_matches_measured),
        cmocka_unit_test(test_batchnorm_is_refused),
        cmocka_unit_test(test_approxbp_learns),
        cmocka_unit_test(test_layer_list_trains_as_the_hidden_form),
        cmocka_unit_test(test_layer_list_plan_matches_measured),
        cmocka_unit_test(test_layer_list_keeps_less_than_bp),
        cmocka_unit_test(test_layer_list_ms_layernorm_gradients_equal_bp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
