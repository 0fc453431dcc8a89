/* test-usercreds.c: judging another user's rights by mode bits
 * (mt_creds_may_open: a missing and an unreadable file give one message),
 * and taking them on one thread as root (mt_creds_enter_thread). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memtrain/usercreds.h"

static char dir[] = "/tmp/memtrain-creds-XXXXXX";
static char priv[100], pub[100], link_in[200];

/* Someone who is neither this process's user nor in its groups. */
static struct mt_creds other(void)
{
    uid_t u = getuid() == 65534 ? 65533 : 65534;
    return (struct mt_creds){.uid = u, .gid = 65534, .n_groups = 0};
}

static void put(const char *path, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("secret", f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    chmod(dir, 0755);
    snprintf(priv, sizeof priv, "%s/private", dir);
    snprintf(pub, sizeof pub, "%s/public", dir);
    mkdir(priv, 0700);
    mkdir(pub, 0755);
    char p[400];
    snprintf(p, sizeof p, "%s/data", priv);
    put(p, 0644);
    snprintf(p, sizeof p, "%s/data", pub);
    put(p, 0644);
    snprintf(p, sizeof p, "%s/mine", pub);
    put(p, 0600);
    snprintf(link_in, sizeof link_in, "%s/link", pub);
    snprintf(p, sizeof p, "%s/data", priv);
    return symlink(p, link_in);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void strip(char *msg, const char *path)
{
    char *p = strstr(msg, path);
    if (p)
        memmove(p, p + strlen(path), strlen(p + strlen(path)) + 1);
}

static void test_readable_file_passes(void **state)
{
    (void)state;
    struct mt_creds c = other();
    char p[400];
    snprintf(p, sizeof p, "%s/data", pub);
    assert_int_equal(mt_creds_may_open(&c, p, 0, NULL), 0);
    assert_int_equal(mt_creds_may_open(&c, pub, 1, NULL), 0);
}

static void test_missing_looks_like_unreadable(void **state)
{
    (void)state;
    struct mt_creds c = other();
    char there[400], missing[400];
    struct mt_err a = {0}, b = {0};
    snprintf(there, sizeof there, "%s/data", priv);
    snprintf(missing, sizeof missing, "%s/nothing", priv);
    assert_int_equal(mt_creds_may_open(&c, there, 0, &a), MT_E_PERM);
    assert_int_equal(mt_creds_may_open(&c, missing, 0, &b), MT_E_PERM);
    printf("%s\n%s\n", a.msg, b.msg);
    strip(a.msg, there);
    strip(b.msg, missing);
    assert_string_equal(a.msg, b.msg);
    assert_int_equal(mt_creds_may_open(&c, priv, 1, NULL), MT_E_PERM);
}

static void test_mode_and_symlink(void **state)
{
    (void)state;
    struct mt_creds c = other();
    char p[400];
    snprintf(p, sizeof p, "%s/mine", pub);
    assert_int_equal(mt_creds_may_open(&c, p, 0, NULL), MT_E_PERM);     /* 0600 */
    assert_int_equal(mt_creds_may_open(&c, link_in, 0, NULL), MT_E_PERM); /* into 0700 */
    c.uid = getuid();                                                    /* the owner */
    assert_int_equal(mt_creds_may_open(&c, p, 0, NULL), 0);
    c = other();
    c.groups[c.n_groups++] = getgid();                                   /* group bits */
    assert_int_equal(chmod(p, 0640), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(mt_creds_may_open(&c, p, 0, NULL), st.st_gid == getgid() ? 0 : MT_E_PERM);
    assert_int_equal(chmod(p, 0600), 0);
}

static void *open_as_other(void *arg)
{
    const char *path = arg;
    struct mt_creds c = other(), saved;
    struct mt_err err = {0};
    intptr_t r = -1;
    if (mt_creds_enter_thread(&c, &saved, &err) == 0) {
        int fd = open(path, O_RDONLY);
        r = fd >= 0 ? 0 : errno;
        if (fd >= 0)
            close(fd);
        mt_creds_leave_thread(&saved);
    }
    return (void *)r;
}

static void test_thread_takes_rights(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: needs root to take another user's rights\n");
        skip();
    }
    char p[400];
    snprintf(p, sizeof p, "%s/mine", pub);
    pthread_t t;
    void *r;
    assert_int_equal(pthread_create(&t, NULL, open_as_other, p), 0);
    assert_int_equal(pthread_join(t, &r), 0);
    assert_int_equal((intptr_t)r, EACCES);
    int fd = open(p, O_RDONLY);   /* this thread kept root's rights */
    assert_true(fd >= 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readable_file_passes),
        cmocka_unit_test(test_missing_looks_like_unreadable),
        cmocka_unit_test(test_mode_and_symlink),
        cmocka_unit_test(test_thread_takes_rights),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
