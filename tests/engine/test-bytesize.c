/* test-bytesize.c: the one byte-count grammar (daemon/common/bytesize.c),
 * used by job specs, memtraind.yaml and mtctl --mem-limit.
 *
 * Every accepted form must give its exact byte count; overflow, signs and
 * garbage must give MT_E_INVAL with the documented message and leave the
 * output alone; random text must never crash it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "memtrain/bytesize.h"
#include "rng.h"

static void test_every_form_gives_exact_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        /* plain bytes */
        {"0", 0}, {"4096", 4096}, {"7B", 7}, {"123456", 123456},
        {"9223372036854775807", 9223372036854775807ull},
        /* exponents */
        {"1e9", 1000000000ull}, {"1E9", 1000000000ull}, {"2.5e6", 2500000}, {"1e+3", 1000},
        {"5e-1", 0} /* 0.5 rounds to even */, {"1e3KiB", 1024000},
        /* powers of 1000 */
        {"3kB", 3000}, {"3KB", 3000}, {"5MB", 5000000}, {"2GB", 2000000000ull},
        {"1TB", 1000000000000ull}, {"1PB", 1000000000000000ull},
        {"1EB", 1000000000000000000ull},
        /* powers of 1024, long forms */
        {"1KiB", 1024}, {"512MiB", 512ull << 20}, {"2GiB", 2ull << 30}, {"1TiB", 1ull << 40},
        {"1PiB", 1ull << 50}, {"7EiB", 7ull << 60},
        /* short forms are powers of 1024 too, either case */
        {"1K", 1024}, {"1k", 1024}, {"512M", 512ull << 20}, {"512m", 512ull << 20},
        {"2G", 2ull << 30}, {"2g", 2ull << 30}, {"16G", 16ull << 30}, {"1T", 1ull << 40},
        {"1t", 1ull << 40},
        /* fractions, spaces before the unit, rounding to the nearest byte */
        {"1.5GiB", 3ull << 29}, {"0.5KiB", 512}, {"2.5GiB", 2684354560ull}, {"1.5 K", 1536},
        {"100 MiB", 100ull << 20}, {"0.7", 1}, {"0.4", 0}, {"1.0001K", 1024}, {".5k", 512},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t got = 12345;
        struct mt_err err = {0};
        if (mt_bytesize_parse(cases[i].text, &got, &err) != 0 || got != cases[i].bytes)
            fail_msg("'%s': got %llu (%s), expected %llu", cases[i].text,
                     (unsigned long long)got, err.msg, (unsigned long long)cases[i].bytes);
    }
}

static void expect_refused(const char *text, const char *msg)
{
    uint64_t got = 12345;
    struct mt_err err = {0};
    if (mt_bytesize_parse(text, &got, &err) != MT_E_INVAL)
        fail_msg("'%s' was accepted as %llu", text ? text : "(null)", (unsigned long long)got);
    assert_int_equal(got, 12345);
    assert_int_equal(err.code, MT_E_INVAL);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("'%s': message\n  '%s'\nexpected\n  '%s'", text ? text : "(null)", err.msg,
                 msg);
}

static void test_overflow_is_refused_as_too_large(void **state)
{
    (void)state;
    static const char *const big[] = {
        "9223372036854775808", "99999999999999999999999", "8388608TiB", "8EiB", "16EiB",
        "20EiB", "1e19", "1e30", "1e400", "9.3e18", "10EB", "99999999999T",
    };
    char msg[160];
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        snprintf(msg, sizeof msg, "'%s' is too large (at most 9223372036854775807 bytes)",
                 big[i]);
        expect_refused(big[i], msg);
    }
}

static void test_negatives_and_garbage_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "-1", "-1G", "+5", "G", "MiB", "16Q", "12XB", "12 mib", "2gb", "2Gi", "0x10", "1e",
        "1E", "1e+", "nan", "inf", "1.2.3", " 5", "5MiB ", "16 G B", "1,000", "1_000", "E",
        "1P", "1e3.5",
    };
    char msg[160];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(msg, sizeof msg, "expected a byte count such as 512MiB, 2G or 1e9, got '%s'",
                 bad[i]);
        expect_refused(bad[i], msg);
    }
    expect_refused(NULL, "expected a byte count such as 512MiB, 2G or 1e9, got ''");
}

static void test_message_quotes_a_sanitised_short_value(void **state)
{
    (void)state;
    expect_refused("12\tparsecs\n", "expected a byte count such as 512MiB, 2G or 1e9, got "
                                    "'12?parsecs?'");
    char longtext[200];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    char msg[200];
    snprintf(msg, sizeof msg, "expected a byte count such as 512MiB, 2G or 1e9, got '%.48s...'",
             longtext);
    expect_refused(longtext, msg);
    /* a number too long to convert is refused, not misread */
    char digits[100];
    memset(digits, '1', sizeof digits - 1);
    digits[sizeof digits - 1] = '\0';
    digits[1] = '.';
    uint64_t v = 0;
    assert_int_equal(mt_bytesize_parse(digits, &v, NULL), MT_E_INVAL);
}

static void test_units_table_parses_durations(void **state)
{
    (void)state;
    static const struct mt_unit units[] = {{"", 1}, {"s", 1000}, {"min", 60000}};
    uint64_t v = 0;
    assert_int_equal(mt_unit_parse("1.5s", units, 3, UINT32_MAX, &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(mt_unit_parse("2min", units, 3, UINT32_MAX, &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(mt_unit_parse("4294967295", units, 3, UINT32_MAX, &v), 0);
    assert_int_equal(v, 4294967295u);
    assert_int_equal(mt_unit_parse("4294967296", units, 3, UINT32_MAX, &v), MT_UNIT_RANGE);
    assert_int_equal(mt_unit_parse("4294967.296s", units, 3, UINT32_MAX, &v), MT_UNIT_RANGE);
    assert_int_equal(mt_unit_parse("2h", units, 3, UINT32_MAX, &v), MT_UNIT_BAD);
}

static void test_random_text_never_crashes(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789.eE+-KMGTPiBbkgmt x";
    char buf[40];
    struct mt_rng rng;
    rng_seed(&rng, 777);
    for (int i = 0; i < 20000; i++) {
        size_t len = rng_below(&rng, sizeof buf - 1);
        for (size_t j = 0; j < len; j++)
            buf[j] = alphabet[rng_below(&rng, sizeof alphabet - 1)];
        buf[len] = '\0';
        uint64_t v = 0;
        struct mt_err err = {0};
        int rc = mt_bytesize_parse(buf, &v, &err);
        assert_true(rc == 0 || rc == MT_E_INVAL);
        assert_true(rc != 0 || v <= (uint64_t)INT64_MAX);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_form_gives_exact_bytes),
        cmocka_unit_test(test_overflow_is_refused_as_too_large),
        cmocka_unit_test(test_negatives_and_garbage_are_refused),
        cmocka_unit_test(test_message_quotes_a_sanitised_short_value),
        cmocka_unit_test(test_units_table_parses_durations),
        cmocka_unit_test(test_random_text_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
