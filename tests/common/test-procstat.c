/* test-procstat.c: mt_procstat_read on this process, on a child, and on a
 * process that does not exist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memtrain/procstat.h"

static void test_self_has_memory(void **state)
{
    (void)state;
    struct mt_procstat ps;
    struct mt_err err = {0};
    assert_int_equal(mt_procstat_read(0, &ps, &err), 0);
    printf("self: VmRSS %llu, VmHWM %llu, VmData %llu bytes\n", (unsigned long long)ps.rss,
           (unsigned long long)ps.hwm, (unsigned long long)ps.data);
    assert_true(ps.rss > 0);
    assert_true(ps.hwm >= ps.rss);
    assert_true(ps.data > 0);
    assert_int_equal(ps.rss % 1024, 0); /* kB from the kernel, bytes here */
}

static void test_pid_of_self_is_self(void **state)
{
    (void)state;
    struct mt_procstat ps;
    assert_int_equal(mt_procstat_read((int)getpid(), &ps, NULL), 0);
    assert_true(ps.rss > 0);
    assert_true(ps.hwm >= ps.rss);
}

/* Touching 64 MiB shows in VmRSS and VmHWM, in bytes. */
static void test_touched_memory_counts(void **state)
{
    (void)state;
    enum { N = 64 << 20 };
    struct mt_procstat before, after;
    assert_int_equal(mt_procstat_read(0, &before, NULL), 0);
    char *p = malloc(N);
    assert_non_null(p);
    memset(p, 1, N);
    assert_int_equal(mt_procstat_read(0, &after, NULL), 0);
    printf("64 MiB touched: VmRSS %llu -> %llu bytes\n", (unsigned long long)before.rss,
           (unsigned long long)after.rss);
    assert_true(after.rss >= before.rss + N - (4 << 20));
    assert_true(after.hwm >= after.rss);
    assert_true(after.data >= before.data + N - (4 << 20));
    free(p);
}

/* No process has pid INT_MAX (the kernel's limit is 2^22): MT_E_IO, every
 * field 0, and the message names the file. */
static void test_missing_pid(void **state)
{
    (void)state;
    struct mt_procstat ps = {1, 2, 3};
    struct mt_err err = {0};
    assert_int_equal(mt_procstat_read(INT_MAX, &ps, &err), MT_E_IO);
    printf("missing pid: %s\n", err.msg);
    assert_int_equal(err.code, MT_E_IO);
    assert_true(ps.rss == 0 && ps.hwm == 0 && ps.data == 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", INT_MAX);
    assert_non_null(strstr(err.msg, path));
    ps.rss = 7;
    assert_int_equal(mt_procstat_read(INT_MAX, &ps, NULL), MT_E_IO); /* err may be NULL */
    assert_true(ps.rss == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_has_memory),
        cmocka_unit_test(test_pid_of_self_is_self),
        cmocka_unit_test(test_touched_memory_counts),
        cmocka_unit_test(test_missing_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
