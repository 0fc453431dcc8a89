/* test-fault.c: a memory limit below the plan fails the job with the
 * documented message, and failing each allocation in turn (sqlite's
 * faultsim) always ends in a clean error with nothing leaked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "rules/common.h"
#include "testutil.h"

static const char *rules[] = {"bp", "fa", "dfa", "memdfa"};

static void test_limit_below_plan_fails_with_message(void **state)
{
    for (size_t r = 0; r < 4; r++) {
        struct mt_spec s;
        struct mt_trainer t;
        struct mt_err err = {0};
        struct mt_mem_plan plan;
        test_spec(&s, rules[r], 3, 64, MT_ACT_RELU, 32, 200);
        assert_ok(trainer_plan(&s, &plan, &err), err);
        /* At the plan: trains. */
        s.memory_limit = plan.total;
        assert_ok(trainer_init(&t, &s, &err), err);
        struct mt_epoch_report rep;
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &rep, &err), err);
        trainer_fini(&t);
        /* One byte below: fails, during setup or during the first step. */
        s.memory_limit = plan.total - 1;
        int rc = trainer_init(&t, &s, &err);
        if (rc == 0) {
            rc = trainer_run_epoch(&t, NULL, NULL, &rep, &err);
            trainer_fini(&t);
        }
        assert_int_equal(rc, MT_E_LIMIT);
        assert_non_null(strstr(err.msg, "memory limit exceeded: "));
        assert_non_null(strstr(err.msg, " asked "));
        assert_non_null(strstr(err.msg, " in use; limit "));
        char lim[64];
        snprintf(lim, sizeof lim, "(%zu bytes)", plan.total - 1);
        assert_non_null(strstr(err.msg, lim));
        assert_int_equal(arena_global_reserved(), 0);
    }
}

static void test_fail_each_setup_allocation_leaks_nothing(void **state)
{
    for (size_t r = 0; r < 4; r++) {
        struct mt_spec s;
        struct mt_trainer t;
        test_spec(&s, rules[r], 2, 16, MT_ACT_RELU, 8, 40);
        long n;
        for (n = 0; n < 1000; n++) {
            struct mt_err err = {0};
            arena_default_fail_after(n);
            int rc = trainer_init(&t, &s, &err);
            arena_default_fail_after(-1);
            if (rc == 0)
                break;
            assert_int_equal(rc, MT_E_INJECTED);
            assert_non_null(strstr(err.msg, "injected"));
            assert_int_equal(arena_global_reserved(), 0);
        }
        assert_true(n > 3);
        /* The run that got through trains normally. */
        struct mt_err err = {0};
        struct mt_epoch_report rep;
        arena_fail_after(t.arena, -1);
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &rep, &err), err);
        trainer_fini(&t);
        assert_int_equal(arena_global_reserved(), 0);
    }
}

static void test_fail_each_step_allocation_recovers(void **state)
{
    for (size_t r = 0; r < 4; r++) {
        struct mt_spec s;
        struct mt_trainer t;
        struct mt_err err = {0};
        test_spec(&s, rules[r], 3, 16, MT_ACT_RELU, 8, 8);
        assert_ok(trainer_init(&t, &s, &err), err);
        struct mt_mem_stats before, after;
        arena_stats(t.arena, &before);
        for (long n = 0;; n++) {
            struct mt_epoch_report rep;
            arena_fail_after(t.arena, n);
            int rc = trainer_run_epoch(&t, NULL, NULL, &rep, &err);
            arena_fail_after(t.arena, -1);
            arena_stats(t.arena, &after);
            /* Whatever happened, the step's transients are all released. */
            assert_int_equal(after.total, before.total);
            if (rc == 0)
                break;
            assert_int_equal(rc, MT_E_INJECTED);
            assert_non_null(strstr(err.msg, "epoch 1, "));
            assert_non_null(strstr(err.msg, "injected"));
        }
        trainer_fini(&t);
        assert_int_equal(arena_global_reserved(), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_below_plan_fails_with_message),
        cmocka_unit_test(test_fail_each_setup_allocation_leaks_nothing),
        cmocka_unit_test(test_fail_each_step_allocation_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
