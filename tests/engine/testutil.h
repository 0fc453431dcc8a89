/* testutil.h: small helpers shared by the engine tests. */
#ifndef MT_TESTUTIL_H
#define MT_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "spec.h"
#include "train.h"

/* A spec for a generated problem: `hidden` hidden layers of `width` units. */
static inline void test_spec(struct mt_spec *s, const char *rule, int hidden, int width,
                             enum mt_act act, int batch, long ntrain)
{
    spec_init(s);
    snprintf(s->name, sizeof s->name, "test-%s", rule);
    snprintf(s->rule.name, sizeof s->rule.name, "%s", rule);
    s->data.kind = MT_DATA_SYNTHETIC;
    s->data.synthetic_train = ntrain;
    s->data.synthetic_test = 200;
    s->data.synthetic_seed = 7;
    s->model.n_layers = hidden + 1;
    s->model.width[0] = 32;
    for (int l = 1; l <= hidden; l++) {
        s->model.width[l] = width;
        s->model.act[l] = act;
    }
    s->model.width[hidden + 1] = 4;
    s->batch = batch;
    s->epochs = 1;
    s->seed = 3;
    s->threads = 1;
}

/* Fail the test with the engine's message when rc is nonzero. */
#define assert_ok(rc, err)                                                         \
    do {                                                                           \
        if ((rc) != 0)                                                             \
            fail_msg("engine error %d: %s", (rc), (err).msg);                      \
    } while (0)

/* Train one epoch of spec s and check that the plan equals what the arena
 * measured, category by category and phase by phase; *st gets the peaks. */
static inline void assert_plan_matches(const struct mt_spec *s, struct mt_mem_stats *st,
                                       struct mt_mem_plan *plan)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    assert_ok(trainer_init(&t, s, &err), err);
    struct mt_epoch_report r;
    assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    struct mt_data_shape shape = {t.train.n, t.test.n, t.train.dim};
    trainer_plan_shape(&t.spec, &shape, plan);
    *st = r.mem;
    int L = s->model.n_layers;
    for (int c = 0; c < MT_MEM_NCAT; c++)
        if (plan->cat[c] != st->peak[c])
            fail_msg("%s depth %d batch %d: %s planned %zu, measured %zu", s->rule.name, L - 1,
                     s->batch, mt_mem_cat_name(c), plan->cat[c], st->peak[c]);
    for (int p = 0; p < MT_PHASE_N; p++)
        if (plan->phase[p] != st->phase_peak[p])
            fail_msg("%s depth %d batch %d: phase %s planned %zu, measured %zu", s->rule.name,
                     L - 1, s->batch, mt_phase_name(p), plan->phase[p], st->phase_peak[p]);
    if (plan->total != st->total_peak)
        fail_msg("%s depth %d batch %d: total planned %zu, measured %zu", s->rule.name, L - 1,
                 s->batch, plan->total, st->total_peak);
    trainer_fini(&t);
}

/* Fail each allocation of setup, then of a training epoch, in turn (sqlite's
 * faultsim): every failure is a clean MT_E_INJECTED with nothing leaked and
 * the step's transients released. Then the plan's total as the memory limit
 * trains and one byte less fails with MT_E_LIMIT. Returns how many
 * allocations of the epoch were failed (the caller may ask for more). */
static inline long assert_faults_end_clean(const struct mt_spec *s)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_epoch_report rep;
    long n;
    for (n = 0; n < 1000; n++) {
        arena_default_fail_after(n);
        int rc = trainer_init(&t, s, &err);
        arena_default_fail_after(-1);
        if (rc == 0)
            break;
        assert_int_equal(rc, MT_E_INJECTED);
        assert_int_equal(arena_global_reserved(), 0);
    }
    assert_true(n > 3);
    arena_fail_after(t.arena, -1);
    struct mt_mem_stats before, after;
    arena_stats(t.arena, &before);
    for (n = 0;; n++) {
        arena_fail_after(t.arena, n);
        int rc = trainer_run_epoch(&t, NULL, NULL, &rep, &err);
        arena_fail_after(t.arena, -1);
        arena_stats(t.arena, &after);
        assert_int_equal(after.total, before.total);
        if (rc == 0)
            break;
        assert_int_equal(rc, MT_E_INJECTED);
        assert_non_null(strstr(err.msg, "injected"));
    }
    assert_true(n > 2);
    long step_faults = n;
    trainer_fini(&t);
    assert_int_equal(arena_global_reserved(), 0);

    struct mt_spec lim = *s;
    struct mt_mem_plan plan;
    assert_ok(trainer_plan(&lim, &plan, &err), err);
    lim.memory_limit = plan.total;
    assert_ok(trainer_init(&t, &lim, &err), err);
    assert_ok(trainer_run_epoch(&t, NULL, NULL, &rep, &err), err);
    trainer_fini(&t);
    lim.memory_limit = plan.total - 1;
    int rc = trainer_init(&t, &lim, &err);
    if (rc == 0) {
        rc = trainer_run_epoch(&t, NULL, NULL, &rep, &err);
        trainer_fini(&t);
    }
    assert_int_equal(rc, MT_E_LIMIT);
    assert_int_equal(arena_global_reserved(), 0);
    return step_faults;
}

#endif
