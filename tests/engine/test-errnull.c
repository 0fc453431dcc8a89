/* test-errnull.c: err.h lets a caller pass err = NULL when it does not want
 * the message. Failing engine calls then return the same code, and crash
 * nowhere: the arena, the data loaders, the model, and every rule's init
 * and step (each allocation failed in turn, with err = NULL throughout). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "arena.h"
#include "data.h"
#include "model.h"
#include "rules/rules.h"
#include "testutil.h"

static void test_arena_failures_without_err(void **state)
{
    struct mt_arena *a = arena_new(1024);
    assert_non_null(a);
    assert_int_equal(arena_error(a), 0);
    assert_null(arena_alloc(a, MT_MEM_PARAMS, 4096, NULL));
    assert_int_equal(arena_error(a), MT_E_LIMIT);
    assert_null(arena_push(a, MT_MEM_ACTS, 4096, NULL));
    assert_int_equal(arena_error(a), MT_E_LIMIT);
    assert_null(arena_push(a, MT_MEM_NCAT, 16, NULL));
    assert_int_equal(arena_error(a), MT_E_INVAL);
    arena_fail_after(a, 0);
    assert_null(arena_push(a, MT_MEM_ACTS, 16, NULL));
    assert_int_equal(arena_error(a), MT_E_INJECTED);
    assert_int_equal(arena_reserve_stack(a, 1 << 20, NULL), MT_E_INJECTED);
    arena_free(a);
    assert_int_equal(arena_global_reserved(), 0);
}

static void test_data_and_model_failures_without_err(void **state)
{
    struct mt_data_spec ds = {.kind = MT_DATA_MNIST};
    snprintf(ds.dir, sizeof ds.dir, "/nonexistent/memtrain-errnull");
    struct mt_data_shape shape;
    struct mt_dataset train, test;
    struct mt_arena *a = arena_new(64);
    assert_int_equal(data_probe(&ds, &shape, NULL), MT_E_IO);
    assert_int_equal(data_load(&ds, a, &train, &test, NULL), MT_E_IO);
    /* Synthetic data over the arena's limit. */
    struct mt_data_spec syn = {.kind = MT_DATA_SYNTHETIC, .synthetic_train = 100,
                               .synthetic_test = 10, .synthetic_dim = 32,
                               .synthetic_classes = 4, .synthetic_seed = 1};
    assert_int_equal(data_load(&syn, a, &train, &test, NULL), MT_E_LIMIT);

    struct mt_spec s;
    test_spec(&s, "bp", 2, 16, MT_ACT_RELU, 8, 40);
    struct mt_net net;
    assert_int_equal(model_net_init(&net, &s.model, a, NULL), MT_E_LIMIT);
    s.model.n_layers = 0;
    assert_int_equal(model_validate(&s.model, NULL), MT_E_INVAL);
    arena_free(a);
    assert_int_equal(arena_global_reserved(), 0);
}

/* For every rule: each allocation of trainer_init (data, model, optimizer,
 * the rule's init), then of a training epoch (the rule's step), failed in
 * turn with err = NULL gives MT_E_INJECTED; a memory limit below the plan
 * gives MT_E_LIMIT (testutil.h). */
static void test_rules_fail_cleanly_without_err(void **state)
{
    for (const struct mt_rule *const *r = rule_list(); *r; r++) {
        struct mt_spec s;
        test_spec(&s, (*r)->name, 2, 16, MT_ACT_RELU, 8, 40);
        if (!strcmp((*r)->name, "tinyfoa"))
            s.epochs = 2; /* one stage per hidden layer */
        assert_faults_end_clean_with(&s, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_failures_without_err),
        cmocka_unit_test(test_data_and_model_failures_without_err),
        cmocka_unit_test(test_rules_fail_cleanly_without_err),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
