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

#endif
