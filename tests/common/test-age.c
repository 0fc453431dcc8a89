/* test-age.c: ages with a unit (daemon/common/age.c): memtraind.yaml's
 * retention and mtctl prune --older-than. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "memtrain/age.h"

static uint64_t ms_of(const char *text)
{
    uint64_t ms = 12345;
    struct mt_err err = {0};
    if (mt_age_parse(text, &ms, &err))
        fail_msg("%s: %s", text, err.msg);
    return ms;
}

static void test_units(void **state)
{
    (void)state;
    assert_int_equal(ms_of("30d"), 30ull * 86400000);
    assert_int_equal(ms_of("2w"), 14ull * 86400000);
    assert_int_equal(ms_of("12h"), 12ull * 3600000);
    assert_int_equal(ms_of("90min"), 90ull * 60000);
    assert_int_equal(ms_of("90m"), 90ull * 60000);
    assert_int_equal(ms_of("1.5d"), 36ull * 3600000);
    assert_int_equal(ms_of("10s"), 10000);
    assert_int_equal(ms_of("250ms"), 250);
    assert_int_equal(ms_of("0"), 0);
    assert_int_equal(ms_of("0d"), 0);
}

static void expect_bad(const char *text, const char *want)
{
    uint64_t ms = 7;
    struct mt_err err = {0};
    assert_int_equal(mt_age_parse(text, &ms, &err), MT_E_INVAL);
    assert_int_equal(ms, 7);   /* untouched */
    if (!strstr(err.msg, want))
        fail_msg("%s: wanted \"%s\" in \"%s\"", text, want, err.msg);
}

static void test_mistakes(void **state)
{
    (void)state;
    expect_bad("30", "expected an age such as 30d, 12h, 90min or 2w, got '30'");
    expect_bad("", "got ''");
    expect_bad("-1d", "got '-1d'");
    expect_bad("3 parsecs", "got '3 parsecs'");
    expect_bad("101y", "got '101y'");
    expect_bad("40000d", "'40000d' is too long (at most 100 years)");
    assert_int_equal(mt_age_parse(NULL, NULL, NULL), MT_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_mistakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
