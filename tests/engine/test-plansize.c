/* test-plansize.c: plans of huge models never wrap. A model whose plan
 * would pass 64 PiB is refused by spec_finish naming the layer (it used to
 * be planned at a wrapped, small figure and admitted), and TinyFoA's block
 * sizes stay exact for a width of 2^31 - 1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "checked.h"
#include "rules/common.h"
#include "train.h"

static int resolve(const char *yaml, struct mt_spec *s, struct mt_err *err)
{
    spec_init(s);
    int rc = spec_parse_string(yaml, strlen(yaml), "huge.yaml", s, err);
    return rc ? rc : spec_finish(s, err);
}

static void test_checked_helpers_report_overflow(void **state)
{
    (void)state;
    size_t r = 0;
    assert_int_equal(ck_mul(&r, (size_t)1 << 40, (size_t)1 << 20), 0);
    assert_true(r == (size_t)1 << 60);
    assert_int_equal(ck_mul(&r, (size_t)1 << 40, (size_t)1 << 24), 1);
    assert_int_equal(ck_add(&r, SIZE_MAX, 1), 1);
    r = 5;
    assert_int_equal(ck_muladd(&r, 3, 4), 0);
    assert_int_equal(r, 17);
}

/* 2^31 - 1 squared weights: 4 EiB of parameters for each of several rules. */
static void test_huge_model_refused_naming_the_layer(void **state)
{
    (void)state;
    static const char *rules[] = {"bp", "dfa", "memdfa", "tinyfoa", "mezo"};
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "dataset: {name: synthetic, synthetic_train: 8, synthetic_test: 8}\n"
                 "model: {input: 8, hidden: [2147483647, 2147483647], classes: 2}\n"
                 "rule: %s\nbatch: 4\nepochs: 2\n", rules[i]);
        struct mt_spec s;
        struct mt_err err = {0};
        int rc = resolve(yaml, &s, &err);
        printf("%-8s -> %d: %s\n", rules[i], rc, err.msg);
        assert_int_equal(rc, MT_E_LIMIT);
        assert_non_null(strstr(err.msg, "layer 2"));
    }
}

/* A batch whose activations alone wrap a size_t is refused too. */
static void test_huge_batch_refused(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err = {0};
    int rc = resolve("dataset: {name: synthetic, synthetic_train: 8, synthetic_test: 8}\n"
                     "model: {input: 8, hidden: [2147483647], classes: 2}\n"
                     "batch: 2147483647\nepochs: 1\n", &s, &err);
    printf("huge batch -> %d: %s\n", rc, err.msg);
    assert_int_equal(rc, MT_E_LIMIT);
}

static size_t tinyfoa_plan(int width)
{
    char yaml[300];
    snprintf(yaml, sizeof yaml,
             "dataset: {name: synthetic, synthetic_train: 8, synthetic_test: 8}\n"
             "model: {input: 8, hidden: [%d], classes: 2}\nrule: tinyfoa\nbatch: 4\nepochs: 1\n",
             width);
    struct mt_spec s;
    struct mt_err err = {0};
    assert_int_equal(resolve(yaml, &s, &err), 0);
    struct mt_data_shape shape = {.train_n = 8, .test_n = 8, .dim = 8};
    struct mt_mem_plan p;
    trainer_plan_shape(&s, &shape, &p);
    return p.total;
}

/* A width of 2^31 - 1 fits the cap; TinyFoA's plan must then be exact, not
 * wrapped by a signed overflow in its block sizes (ceil_div formed
 * n + M - 1 in int). The plan is linear in the width for one hidden layer:
 * doubling the width (2^30 - 1, which does not overflow, to 2^31 - 1)
 * doubles it. */
static void test_tinyfoa_widest_layer_plans_exactly(void **state)
{
    (void)state;
    size_t half = tinyfoa_plan(1073741823), full = tinyfoa_plan(2147483647);
    double ratio = (double)full / (double)half;
    printf("tinyfoa: width 2^30-1 plans %zu bytes, 2^31-1 %zu (ratio %.4f)\n", half, full,
           ratio);
    assert_true(full >= (size_t)2147483647 * 9 * 4);
    assert_true(ratio > 1.99 && ratio < 2.01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checked_helpers_report_overflow),
        cmocka_unit_test(test_huge_model_refused_naming_the_layer),
        cmocka_unit_test(test_huge_batch_refused),
        cmocka_unit_test(test_tinyfoa_widest_layer_plans_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
