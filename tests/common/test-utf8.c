/* test-utf8.c: UTF-8 validation (RFC 3629) and in-place scrubbing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "memtrain/utf8.h"

static size_t prefix(const char *s)
{
    return mt_utf8_valid_prefix(s, strlen(s));
}

static void test_valid_sequences_pass(void **state)
{
    (void)state;
    static const char *ok[] = {"", "plain ascii", "caf\xc3\xa9", "\xe2\x82\xac 5",
                               "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        assert_int_equal(prefix(ok[i]), strlen(ok[i]));
}

static void test_invalid_sequences_stop_at_the_bad_byte(void **state)
{
    (void)state;
    assert_int_equal(prefix("bad\xff"), 3);           /* never in UTF-8 */
    assert_int_equal(prefix("caf\xe9!"), 3);          /* Latin-1 */
    assert_int_equal(prefix("x\xc0\xaf"), 1);         /* overlong '/' */
    assert_int_equal(prefix("x\xe0\x80\xaf"), 1);     /* overlong */
    assert_int_equal(prefix("x\xed\xa0\x80"), 1);     /* a surrogate */
    assert_int_equal(prefix("x\xf4\x90\x80\x80"), 1); /* above U+10FFFF */
    assert_int_equal(prefix("ab\xe2\x82"), 2);        /* cut short */
    assert_int_equal(prefix("\x80"), 0);              /* a lone continuation */
}

static void test_scrub_replaces_each_bad_byte(void **state)
{
    (void)state;
    char s[] = "bad\xff\xfename caf\xc3\xa9 \xe2\x82";
    assert_int_equal(mt_utf8_scrub(s), 4);
    assert_string_equal(s, "bad??name caf\xc3\xa9 ??");
    assert_int_equal(prefix(s), strlen(s));
    char ok[] = "fine";
    assert_int_equal(mt_utf8_scrub(ok), 0);
    assert_string_equal(ok, "fine");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_sequences_pass),
        cmocka_unit_test(test_invalid_sequences_stop_at_the_bad_byte),
        cmocka_unit_test(test_scrub_replaces_each_bad_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
