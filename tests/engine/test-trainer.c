/* test-trainer.c: the trainer end to end on generated data: the same spec
 * and seed give bit-identical metrics and weights on one thread; batches are
 * streamed (the data category never grows after setup); a different seed
 * gives a different run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

struct run {
    struct mt_epoch_report rep[3];
    float *params;
    size_t P;
};

static void run_spec(const struct mt_spec *s, struct run *out)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    assert_ok(trainer_init(&t, s, &err), err);
    struct mt_mem_stats st0;
    arena_stats(t.arena, &st0);
    for (int e = 0; e < 3; e++) {
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &out->rep[e], &err), err);
        /* Streaming: the data category is what setup allocated, no more. */
        assert_int_equal(out->rep[e].mem.peak[MT_MEM_DATA], st0.cur[MT_MEM_DATA]);
    }
    out->P = model_param_count(&t.net.d);
    out->params = malloc(out->P * sizeof(float));
    memcpy(out->params, t.net.params, out->P * sizeof(float));
    trainer_fini(&t);
}

static void test_same_seed_bit_identical(void **state)
{
    static const char *rules[] = {"bp", "fa", "dfa", "memdfa"};
    for (int r = 0; r < 4; r++) {
        struct mt_spec s;
        struct run a, b, c;
        test_spec(&s, rules[r], 2, 48, MT_ACT_TANH, 25, 500);
        s.sched.kind = MT_SCHED_COSINE;
        s.sched.warmup_epochs = 0.5f;
        s.epochs = 3;
        run_spec(&s, &a);
        run_spec(&s, &b);
        for (int e = 0; e < 3; e++) {
            assert_memory_equal(&a.rep[e].loss, &b.rep[e].loss, sizeof(double));
            assert_memory_equal(&a.rep[e].train_accuracy, &b.rep[e].train_accuracy, sizeof(double));
            assert_memory_equal(&a.rep[e].test_loss, &b.rep[e].test_loss, sizeof(double));
            assert_memory_equal(&a.rep[e].test_accuracy, &b.rep[e].test_accuracy, sizeof(double));
        }
        assert_memory_equal(a.params, b.params, a.P * sizeof(float));
        s.seed = 4;
        run_spec(&s, &c);
        assert_true(memcmp(a.params, c.params, a.P * sizeof(float)) != 0);
        free(a.params), free(b.params), free(c.params);
    }
}

static void test_unknown_rule_is_an_error(void **state)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "nope", 1, 8, MT_ACT_RELU, 4, 16);
    assert_int_not_equal(trainer_init(&t, &s, &err), 0);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(arena_global_reserved(), 0);
}

static void test_input_width_mismatch_is_an_error(void **state)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "bp", 1, 8, MT_ACT_RELU, 4, 16);
    s.data.kind = MT_DATA_IDX;
    snprintf(s.data.train_images, sizeof s.data.train_images, "/nonexistent/train-images");
    snprintf(s.data.train_labels, sizeof s.data.train_labels, "/nonexistent/train-labels");
    snprintf(s.data.test_images, sizeof s.data.test_images, "/nonexistent/test-images");
    snprintf(s.data.test_labels, sizeof s.data.test_labels, "/nonexistent/test-labels");
    int rc = trainer_init(&t, &s, &err);
    assert_int_equal(rc, MT_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/"));
    assert_int_equal(arena_global_reserved(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_bit_identical),
        cmocka_unit_test(test_unknown_rule_is_an_error),
        cmocka_unit_test(test_input_width_mismatch_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
