/* test-arena.c: the accounting allocator counts, limits and releases exactly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "arena.h"

static void test_alloc_counts_per_category_and_peak(void **state)
{
    struct mt_arena *a = arena_new(0);
    struct mt_err err = {0};
    struct mt_mem_stats st;
    void *p = arena_alloc(a, MT_MEM_PARAMS, 1000, &err);
    void *g = arena_alloc(a, MT_MEM_GRADS, 3000, &err);
    assert_non_null(p);
    assert_non_null(g);
    assert_int_equal((uintptr_t)p % 64, 0);
    arena_release(a, g);
    arena_stats(a, &st);
    assert_int_equal(st.cur[MT_MEM_PARAMS], 1000);
    assert_int_equal(st.cur[MT_MEM_GRADS], 0);
    assert_int_equal(st.peak[MT_MEM_GRADS], 3000);
    assert_int_equal(st.total, 1000);
    assert_int_equal(st.total_peak, 4000);
    arena_free(a);
    assert_int_equal(arena_global_reserved(), 0);
}

static void test_alloc_is_zeroed(void **state)
{
    struct mt_arena *a = arena_new(0);
    unsigned char *p = arena_alloc(a, MT_MEM_DATA, 4096, NULL);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(p[i], 0);
    arena_free(a);
}

static void test_push_pop_restores_counts(void **state)
{
    struct mt_arena *a = arena_new(0);
    struct mt_mem_stats st;
    size_t m0 = arena_mark(a);
    char *x = arena_push(a, MT_MEM_ACTS, 100, NULL);
    size_t m1 = arena_mark(a);
    char *y = arena_push(a, MT_MEM_WORKSPACE, 5 << 20, NULL); /* forces a new chunk */
    char *z = arena_push(a, MT_MEM_ACTS, 7, NULL);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(z);
    assert_int_equal((uintptr_t)y % 64, 0);
    memset(y, 1, 5 << 20);
    arena_stats(a, &st);
    assert_int_equal(st.cur[MT_MEM_ACTS], 107);
    assert_int_equal(st.cur[MT_MEM_WORKSPACE], 5 << 20);
    arena_pop(a, m1);
    arena_stats(a, &st);
    assert_int_equal(st.cur[MT_MEM_ACTS], 100);
    assert_int_equal(st.cur[MT_MEM_WORKSPACE], 0);
    assert_int_equal(st.peak[MT_MEM_WORKSPACE], 5 << 20);
    /* The same sequence again reuses the chunks: nothing more reserved. */
    size_t reserved = st.reserved;
    assert_non_null(arena_push(a, MT_MEM_WORKSPACE, 5 << 20, NULL));
    arena_stats(a, &st);
    assert_int_equal(st.reserved, reserved);
    arena_pop(a, m0);
    arena_stats(a, &st);
    assert_int_equal(st.total, 0);
    arena_free(a);
}

static void test_phase_peaks_follow_phase(void **state)
{
    struct mt_arena *a = arena_new(0);
    struct mt_mem_stats st;
    arena_alloc(a, MT_MEM_PARAMS, 10, NULL);
    size_t m = arena_mark(a);
    arena_set_phase(a, MT_PHASE_FORWARD);
    arena_push(a, MT_MEM_ACTS, 100, NULL);
    arena_set_phase(a, MT_PHASE_GRADIENT);
    arena_push(a, MT_MEM_WORKSPACE, 1000, NULL);
    arena_pop(a, m);
    arena_set_phase(a, MT_PHASE_UPDATE);
    arena_stats(a, &st);
    assert_int_equal(st.phase_peak[MT_PHASE_FORWARD], 110);
    assert_int_equal(st.phase_peak[MT_PHASE_GRADIENT], 1110);
    assert_int_equal(st.phase_peak[MT_PHASE_UPDATE], 10);
    arena_free(a);
}

/* Interval peaks: what the steps between two samples held at most, per
 * category, total and phase, though the sample itself sees none of it. */
static void test_interval_peaks_reset_per_interval(void **state)
{
    struct mt_arena *a = arena_new(0);
    struct mt_mem_stats st;
    arena_alloc(a, MT_MEM_PARAMS, 10, NULL);
    size_t m = arena_mark(a);
    arena_set_phase(a, MT_PHASE_FORWARD);
    arena_push(a, MT_MEM_ACTS, 300, NULL);
    arena_set_phase(a, MT_PHASE_GRADIENT);
    arena_push(a, MT_MEM_WORKSPACE, 1000, NULL);
    arena_pop(a, m);
    arena_set_phase(a, MT_PHASE_IDLE);
    arena_stats(a, &st);
    assert_int_equal(st.cur[MT_MEM_ACTS], 0);
    assert_int_equal(st.interval.cat[MT_MEM_PARAMS], 10);
    assert_int_equal(st.interval.cat[MT_MEM_ACTS], 300);
    assert_int_equal(st.interval.cat[MT_MEM_WORKSPACE], 1000);
    assert_int_equal(st.interval.total, 1310);
    assert_int_equal(st.interval.phase[MT_PHASE_FORWARD], 310);
    assert_int_equal(st.interval.phase[MT_PHASE_GRADIENT], 1310);

    /* A new interval starts from what is in use now ... */
    arena_interval_reset(a);
    arena_stats(a, &st);
    assert_int_equal(st.interval.cat[MT_MEM_PARAMS], 10);
    assert_int_equal(st.interval.cat[MT_MEM_ACTS], 0);
    assert_int_equal(st.interval.cat[MT_MEM_WORKSPACE], 0);
    assert_int_equal(st.interval.total, 10);
    assert_int_equal(st.interval.phase[MT_PHASE_IDLE], 10);
    assert_int_equal(st.interval.phase[MT_PHASE_GRADIENT], 0);
    /* ... and sees a smaller step than the run's peaks remember. */
    arena_set_phase(a, MT_PHASE_FORWARD);
    arena_push(a, MT_MEM_ACTS, 50, NULL);
    arena_pop(a, m);
    arena_set_phase(a, MT_PHASE_IDLE);
    arena_stats(a, &st);
    assert_int_equal(st.interval.cat[MT_MEM_ACTS], 50);
    assert_int_equal(st.interval.total, 60);
    assert_int_equal(st.interval.phase[MT_PHASE_FORWARD], 60);
    assert_int_equal(st.peak[MT_MEM_ACTS], 300);
    assert_int_equal(st.total_peak, 1310);
    arena_free(a);
}

static void test_alloc_over_limit_fails_with_figures(void **state)
{
    struct mt_arena *a = arena_new(10000);
    struct mt_err err = {0};
    assert_non_null(arena_alloc(a, MT_MEM_PARAMS, 6000, &err));
    assert_null(arena_push(a, MT_MEM_ACTS, 5000, &err));
    assert_int_equal(err.code, MT_E_LIMIT);
    assert_non_null(strstr(err.msg, "memory limit exceeded"));
    assert_non_null(strstr(err.msg, "activations"));
    assert_non_null(strstr(err.msg, "(5000 bytes)"));
    assert_non_null(strstr(err.msg, "(6000 bytes) in use"));
    assert_non_null(strstr(err.msg, "limit"));
    assert_non_null(strstr(err.msg, "(10000 bytes)"));
    struct mt_mem_stats st;
    arena_stats(a, &st);
    assert_int_equal(st.total, 6000);
    assert_non_null(arena_push(a, MT_MEM_ACTS, 4000, &err)); /* exactly at the limit is fine */
    arena_free(a);
}

static void test_fail_after_n_then_fails(void **state)
{
    struct mt_arena *a = arena_new(0);
    struct mt_err err = {0};
    arena_fail_after(a, 2);
    assert_non_null(arena_alloc(a, MT_MEM_PARAMS, 8, &err));
    assert_non_null(arena_push(a, MT_MEM_ACTS, 8, &err));
    assert_null(arena_alloc(a, MT_MEM_PARAMS, 8, &err));
    assert_int_equal(err.code, MT_E_INJECTED);
    assert_null(arena_push(a, MT_MEM_ACTS, 8, &err));
    arena_fail_after(a, -1);
    assert_non_null(arena_alloc(a, MT_MEM_PARAMS, 8, &err));
    arena_free(a);
    assert_int_equal(arena_global_reserved(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_counts_per_category_and_peak),
        cmocka_unit_test(test_alloc_is_zeroed),
        cmocka_unit_test(test_push_pop_restores_counts),
        cmocka_unit_test(test_phase_peaks_follow_phase),
        cmocka_unit_test(test_interval_peaks_reset_per_interval),
        cmocka_unit_test(test_alloc_over_limit_fails_with_figures),
        cmocka_unit_test(test_fail_after_n_then_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
