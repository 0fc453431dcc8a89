/* test-fault.c: a memory limit below the plan fails the job with the
 * documented message, and failing each allocation in turn (sqlite's
 * faultsim) always ends in a clean error with nothing leaked
 * (assert_faults_end_clean, testutil.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "rules/common.h"
#include "testutil.h"

static const char *rules[] = {"bp", "fa", "dfa", "memdfa"};

/* For each rule and three shapes: a memory limit one byte below the plan
 * fails with the documented message, and failing each allocation of setup,
 * then of an epoch, in turn ends clean (testutil.h). */
static void test_faults_and_limit_end_clean(void **state)
{
    static const struct {
        int hidden, width, batch;
        long ntrain;
    } shapes[] = {{3, 64, 32, 200}, {2, 16, 8, 40}, {3, 16, 8, 8}};
    for (size_t r = 0; r < 4; r++)
        for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
            struct mt_spec s;
            test_spec(&s, rules[r], shapes[k].hidden, shapes[k].width, MT_ACT_RELU,
                      shapes[k].batch, shapes[k].ntrain);
            assert_faults_end_clean(&s);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_and_limit_end_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
