/* test-optim.c: optimizers against scalar references, slices equal the
 * whole, and the learning-rate schedules at their landmarks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "optim.h"
#include "rng.h"

#define N 37

static void init_wg(float *w, float *g, int step)
{
    struct mt_rng r;
    rng_seed(&r, 100 + (uint64_t)step);
    for (int i = 0; i < N; i++) {
        w[i] = rng_uniform_range(&r, -1, 1);
        g[i] = rng_uniform_range(&r, -1, 1);
    }
}

static struct mt_optim_spec spec_of(enum mt_optim_kind k)
{
    return (struct mt_optim_spec){.kind = k, .lr = 0.1f, .momentum = 0.9f, .nesterov = 0,
                                  .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                  .weight_decay = 0.01f};
}

static void test_sgd_momentum_matches_reference(void **state)
{
    for (int nest = 0; nest < 2; nest++) {
        struct mt_arena *a = arena_new(0);
        struct mt_optim o;
        struct mt_optim_spec s = spec_of(MT_OPT_SGD);
        s.nesterov = nest;
        assert_int_equal(optim_init(&o, &s, N, a, NULL), 0);
        float w[N], g[N], wr[N], m[N] = {0};
        init_wg(w, g, 0);
        memcpy(wr, w, sizeof w);
        for (int step = 0; step < 3; step++) {
            float dummy[N];
            init_wg(dummy, g, step + 1);
            optim_begin_step(&o);
            optim_update(&o, 0.1f, w, g, 0, N);
            for (int i = 0; i < N; i++) {
                float gi = g[i] + 0.01f * wr[i];
                m[i] = 0.9f * m[i] + gi;
                wr[i] -= 0.1f * (nest ? gi + 0.9f * m[i] : m[i]);
            }
        }
        for (int i = 0; i < N; i++)
            assert_float_equal(w[i], wr[i], 1e-6);
        arena_free(a);
    }
}

static void test_adam_and_adamw_match_reference(void **state)
{
    for (int decoupled = 0; decoupled < 2; decoupled++) {
        struct mt_arena *a = arena_new(0);
        struct mt_optim o;
        struct mt_optim_spec s = spec_of(decoupled ? MT_OPT_ADAMW : MT_OPT_ADAM);
        assert_int_equal(optim_init(&o, &s, N, a, NULL), 0);
        struct mt_mem_stats st;
        arena_stats(a, &st);
        assert_int_equal(st.cur[MT_MEM_OPTIM], 2 * N * sizeof(float));
        float w[N], g[N];
        double wr[N], m[N] = {0}, v[N] = {0};
        init_wg(w, g, 0);
        for (int i = 0; i < N; i++)
            wr[i] = w[i];
        for (int t = 1; t <= 4; t++) {
            float dummy[N];
            init_wg(dummy, g, t);
            optim_begin_step(&o);
            optim_update(&o, 0.01f, w, g, 0, N);
            for (int i = 0; i < N; i++) {
                double wi = decoupled ? wr[i] * (1 - 0.01 * 0.01) : wr[i];
                double gi = g[i] + (decoupled ? 0 : 0.01 * wi);
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.999 * v[i] + 0.001 * gi * gi;
                double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.999, t));
                wr[i] = wi - 0.01 * mh / (sqrt(vh) + 1e-8);
            }
        }
        for (int i = 0; i < N; i++)
            assert_float_equal(w[i], wr[i], 1e-5);
        arena_free(a);
    }
}

static void test_update_in_slices_equals_whole(void **state)
{
    struct mt_arena *a = arena_new(0);
    struct mt_optim o1, o2;
    struct mt_optim_spec s = spec_of(MT_OPT_ADAM);
    optim_init(&o1, &s, N, a, NULL);
    optim_init(&o2, &s, N, a, NULL);
    float w1[N], w2[N], g[N];
    init_wg(w1, g, 5);
    memcpy(w2, w1, sizeof w1);
    for (int t = 0; t < 3; t++) {
        optim_begin_step(&o1);
        optim_begin_step(&o2);
        optim_update(&o1, 0.01f, w1, g, 0, N);
        optim_update(&o2, 0.01f, w2, g, 0, 11);
        optim_update(&o2, 0.01f, w2 + 11, g + 11, 11, N - 11);
    }
    assert_memory_equal(w1, w2, sizeof w1);
    arena_free(a);
}

static void test_schedules_hit_their_landmarks(void **state)
{
    struct mt_sched_spec c = {.kind = MT_SCHED_COSINE, .min_lr = 0.0f};
    assert_float_equal(optim_sched_lr(&c, 1.0f, 0, 10, 5), 1.0f, 1e-6);
    assert_float_equal(optim_sched_lr(&c, 1.0f, 25, 10, 5), 0.5f, 1e-6);
    assert_float_equal(optim_sched_lr(&c, 1.0f, 50, 10, 5), 0.0f, 1e-6);
    struct mt_sched_spec w = {.kind = MT_SCHED_COSINE, .warmup_epochs = 1.0f};
    assert_float_equal(optim_sched_lr(&w, 1.0f, 0, 10, 5), 0.1f, 1e-6);
    assert_float_equal(optim_sched_lr(&w, 1.0f, 9, 10, 5), 1.0f, 1e-6);
    assert_float_equal(optim_sched_lr(&w, 1.0f, 10, 10, 5), 1.0f, 1e-6);
    struct mt_sched_spec st = {.kind = MT_SCHED_STEP, .step_epochs = 2, .gamma = 0.1f};
    assert_float_equal(optim_sched_lr(&st, 1.0f, 19, 10, 5), 1.0f, 1e-6);
    assert_float_equal(optim_sched_lr(&st, 1.0f, 20, 10, 5), 0.1f, 1e-6);
    assert_float_equal(optim_sched_lr(&st, 1.0f, 45, 10, 5), 0.01f, 1e-7);
    struct mt_sched_spec k = {.kind = MT_SCHED_CONSTANT};
    assert_float_equal(optim_sched_lr(&k, 0.3f, 1000, 10, 5), 0.3f, 1e-7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum_matches_reference),
        cmocka_unit_test(test_adam_and_adamw_match_reference),
        cmocka_unit_test(test_update_in_slices_equals_whole),
        cmocka_unit_test(test_schedules_hit_their_landmarks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
