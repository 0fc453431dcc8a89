/* test-rules.c: the rules compute what the spec says: FA with R_l = W_l is
 * BP, MEM-DFA is DFA bit for bit, and every rule learns a small problem. */
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

static void test_fa_with_forward_weights_is_bp(void **state)
{
    struct mt_spec s;
    struct mt_trainer bp, fa;
    struct mt_err err = {0};
    struct mt_epoch_report r1, r2;
    size_t P;
    /* One step (16 samples, batch 16): after it W moves but R stays. */
    test_spec(&s, "bp", 3, 16, MT_ACT_RELU, 16, 16);
    s.optim.kind = MT_OPT_SGD;
    s.optim.lr = 0.1f;
    assert_ok(trainer_init(&bp, &s, &err), err);
    snprintf(s.rule.name, sizeof s.rule.name, "fa");
    assert_ok(trainer_init(&fa, &s, &err), err);
    for (int l = 2; l <= fa.net.d.n_layers; l++)
        memcpy(fa.rs.fb[l], fa.net.W[l],
               sizeof(float) * fa.net.d.width[l] * fa.net.d.width[l - 1]);
    P = model_param_count(&bp.net.d);
    assert_memory_equal(bp.net.params, fa.net.params, P * sizeof(float));
    assert_ok(trainer_run_epoch(&bp, NULL, NULL, &r1, &err), err);
    assert_ok(trainer_run_epoch(&fa, NULL, NULL, &r2, &err), err);
    assert_memory_equal(bp.rs.grads, fa.rs.grads, P * sizeof(float));
    assert_memory_equal(bp.net.params, fa.net.params, P * sizeof(float));
    /* And with random R the updates differ. */
    trainer_fini(&fa);
    assert_ok(trainer_init(&fa, &s, &err), err);
    assert_ok(trainer_run_epoch(&fa, NULL, NULL, &r2, &err), err);
    assert_true(memcmp(bp.net.params, fa.net.params, P * sizeof(float)) != 0);
    trainer_fini(&bp);
    trainer_fini(&fa);
}

static void check_memdfa_equals_dfa(enum mt_act act, enum mt_optim_kind opt)
{
    struct mt_spec dfa, mem;
    /* 50 steps of batch 20, one thread. */
    test_spec(&dfa, "dfa", 4, 24, act, 20, 1000);
    dfa.model.width[2] = 17;
    dfa.optim.kind = opt;
    mem = dfa;
    snprintf(mem.rule.name, sizeof mem.rule.name, "memdfa");
    assert_train_identically(&dfa, &mem, 50, NULL, NULL);
}

static void test_memdfa_equals_dfa_after_50_steps_relu_adam(void **state)
{
    check_memdfa_equals_dfa(MT_ACT_RELU, MT_OPT_ADAM);
}

static void test_memdfa_equals_dfa_after_50_steps_tanh_sgd(void **state)
{
    check_memdfa_equals_dfa(MT_ACT_TANH, MT_OPT_SGD);
}

static void test_memdfa_equals_dfa_after_50_steps_gelu_adamw(void **state)
{
    check_memdfa_equals_dfa(MT_ACT_GELU, MT_OPT_ADAMW);
}

/* BP and FA with heavy-ball SGD momentum add each layer's gradient straight
 * into the momentum buffer (GEMM beta = mu) and keep no gradient buffer.
 * After 50 steps BP's weights match the gradient-buffer path to float
 * rounding (ckpt with one segment per layer runs BP's arithmetic on a
 * gradient buffer), with and without weight decay; its plan shows no grads
 * and equals what the arena measured, for BP and FA; an allocation failure
 * at any point ends clean. */
static void check_accumulated_momentum(float wd)
{
    struct mt_spec s;
    struct mt_trainer bp, ref;
    struct mt_err err = {0};
    struct mt_epoch_report r1, r2;
    test_spec(&s, "bp", 3, 24, MT_ACT_RELU, 20, 1000);
    s.model.width[2] = 17;
    s.optim.kind = MT_OPT_SGD;
    s.optim.lr = 0.05f;
    s.optim.momentum = 0.9f;
    s.optim.nesterov = 0;
    s.optim.weight_decay = wd;
    assert_ok(trainer_init(&bp, &s, &err), err);
    assert_true(bp.rs.accumulate);
    assert_null(bp.rs.grads);
    snprintf(s.rule.name, sizeof s.rule.name, "ckpt");
    assert_ok(trainer_init(&ref, &s, &err), err);
    assert_false(ref.rs.accumulate);
    assert_non_null(ref.rs.grads);
    assert_ok(trainer_run_epoch(&bp, NULL, NULL, &r1, &err), err);
    assert_ok(trainer_run_epoch(&ref, NULL, NULL, &r2, &err), err);
    assert_int_equal(bp.step, 50);
    size_t P = model_param_count(&bp.net.d);
    double worst = 0, moved = 0;
    struct mt_trainer fresh;
    assert_ok(trainer_init(&fresh, &s, &err), err);
    for (size_t i = 0; i < P; i++) {
        double a = bp.net.params[i], b = ref.net.params[i];
        double e = fabs(a - b) / (1e-3 + fabs(b));
        worst = e > worst ? e : worst;
        moved += fabs(b - fresh.net.params[i]);
    }
    print_message("weight decay %g: worst relative difference %.2e over %zu weights; "
                  "mean move %.2e\n", (double)wd, worst, P, moved / (double)P);
    assert_true(worst < 1e-4);
    assert_true(moved / (double)P > 1e-3); /* the weights did move */
    assert_true(fabs(r1.loss - r2.loss) < 1e-4 * r2.loss);
    assert_int_equal(r1.mem.peak[MT_MEM_GRADS], 0);
    trainer_fini(&fresh);
    trainer_fini(&bp);
    trainer_fini(&ref);

    struct mt_mem_stats st;
    struct mt_mem_plan plan;
    const char *rules[] = {"bp", "fa"};
    for (int i = 0; i < 2; i++) {
        snprintf(s.rule.name, sizeof s.rule.name, "%s", rules[i]);
        assert_plan_matches(&s, &st, &plan);
        assert_int_equal(plan.cat[MT_MEM_GRADS], 0);
        assert_faults_end_clean(&s);
    }
}

static void test_bp_sgd_momentum_accumulates_into_the_momentum_buffer(void **state)
{
    check_accumulated_momentum(0.0f);
}

static void test_bp_sgd_momentum_accumulates_with_weight_decay(void **state)
{
    check_accumulated_momentum(1e-3f);
}

/* Nesterov, Adam and norm layers keep the gradient buffer. */
static void test_bp_keeps_its_gradient_buffer_otherwise(void **state)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    for (int k = 0; k < 3; k++) {
        test_spec(&s, "bp", 2, 16, MT_ACT_RELU, 20, 100);
        s.optim.kind = k == 1 ? MT_OPT_ADAM : MT_OPT_SGD;
        s.optim.momentum = 0.9f;
        s.optim.nesterov = k == 0;
        if (k == 2)
            s.model.norm[1] = MT_NK_BATCH;
        assert_ok(trainer_init(&t, &s, &err), err);
        assert_false(t.rs.accumulate);
        assert_non_null(t.rs.grads);
        trainer_fini(&t);
    }
}

static void check_rule_learns(const char *rule)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, rule, 2, 64, MT_ACT_RELU, 32, 2000);
    s.epochs = 4;
    s.optim.kind = MT_OPT_ADAM; /* the rule's own defaults are tuned for MNIST */
    s.optim.lr = 1e-3f;
    assert_ok(trainer_init(&t, &s, &err), err);
    struct mt_epoch_report first, r;
    for (int e = 0; e < s.epochs; e++) {
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
        if (e == 0)
            first = r;
    }
    print_message("%s: loss %.4f -> %.4f, test accuracy %.3f\n", rule, first.loss, r.loss,
                  r.test_accuracy);
    assert_true(r.loss < first.loss);
    assert_true(r.test_accuracy > 0.8); /* 4 classes: chance is 0.25 */
    trainer_fini(&t);
}

static void test_bp_learns(void **state) { check_rule_learns("bp"); }
static void test_fa_learns(void **state) { check_rule_learns("fa"); }
static void test_dfa_learns(void **state) { check_rule_learns("dfa"); }
static void test_memdfa_learns(void **state) { check_rule_learns("memdfa"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fa_with_forward_weights_is_bp),
        cmocka_unit_test(test_memdfa_equals_dfa_after_50_steps_relu_adam),
        cmocka_unit_test(test_memdfa_equals_dfa_after_50_steps_tanh_sgd),
        cmocka_unit_test(test_memdfa_equals_dfa_after_50_steps_gelu_adamw),
        cmocka_unit_test(test_bp_sgd_momentum_accumulates_into_the_momentum_buffer),
        cmocka_unit_test(test_bp_sgd_momentum_accumulates_with_weight_decay),
        cmocka_unit_test(test_bp_keeps_its_gradient_buffer_otherwise),
        cmocka_unit_test(test_bp_learns),
        cmocka_unit_test(test_fa_learns),
        cmocka_unit_test(test_dfa_learns),
        cmocka_unit_test(test_memdfa_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
