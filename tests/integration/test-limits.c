/* test-limits.c: what a submit may ask for, checked by a real memtraind:
 * a memory_limit above what it allows one job, a limit near 2^64, a model
 * whose plan would wrap, a job name that is not UTF-8 (every later reply
 * must still decode as UTF-8), and a list of 70,000 stored jobs, which comes
 * in pages under the frame cap. (A plain kill -9 of a worker ending as
 * "killed by signal 9", not OUT_OF_MEMORY: test-faults' test_worker_killed.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemonproc.h"
#include "memtrain/utf8.h"

static struct daemonproc dp;

static int setup(void **state)
{
    (void)state;
    static const char *const args[] = {"--budget", "1GiB", NULL};
    return daemonproc_start(&dp, args);
}

static int teardown(void **state)
{
    (void)state;
    return daemonproc_stop(&dp, 0) == 0 ? 0 : -1;
}

static const char *small_job =
    "dataset: {name: synthetic, synthetic_train: 256, synthetic_test: 64}\n"
    "model: {input: 16, hidden: [32], classes: 2}\nbatch: 16\nepochs: 1\nthreads: 1\n";

/* Submit small_job with a name and a memory limit given in the request. */
static Memtrain__Response *submit(int fd, const char *yaml, const char *name, uint64_t limit)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__SubmitRequest s = MEMTRAIN__SUBMIT_REQUEST__INIT;
    s.spec_case = MEMTRAIN__SUBMIT_REQUEST__SPEC_YAML;
    s.yaml = (char *)yaml;
    s.yaml_name = "limits.yaml";
    s.name = (char *)name;
    s.memory_limit = limit;
    q.body_case = MEMTRAIN__REQUEST__BODY_SUBMIT;
    q.submit = &s;
    q.id = 3;
    Memtrain__Response *r = client_call(fd, &q);
    assert_non_null(r);
    printf("submit %s, limit %llu -> status %d: %s\n", name ? name : "(no name)",
           (unsigned long long)limit, r->status, r->message);
    return r;
}

static void test_limit_above_max_job_memory_refused(void **state)
{
    (void)state;
    int fd = client_connect(dp.sock);
    Memtrain__Response *r = submit(fd, small_job, "big-limit", 2ull << 30);
    assert_int_equal(r->status, MEMTRAIN__STATUS__OVER_LIMIT);
    assert_non_null(strstr(r->message, "memory limit"));
    memtrain__response__free_unpacked(r, NULL);
    r = submit(fd, small_job, "limit-2^64", UINT64_MAX - 4096);
    assert_int_equal(r->status, MEMTRAIN__STATUS__OVER_LIMIT);
    memtrain__response__free_unpacked(r, NULL);
    /* At the cap itself it is admitted. */
    r = submit(fd, small_job, "at-cap", 1ull << 30);
    assert_int_equal(r->status, MEMTRAIN__STATUS__OK);
    memtrain__response__free_unpacked(r, NULL);
    close(fd);
}

static void test_wrapping_plan_refused(void **state)
{
    (void)state;
    int fd = client_connect(dp.sock);
    Memtrain__Response *r = submit(fd,
        "dataset: {name: synthetic, synthetic_train: 8, synthetic_test: 8}\n"
        "model: {input: 8, hidden: [2147483647, 2147483647], classes: 2}\nbatch: 4\nepochs: 1\n",
        "4EiB", 0);
    assert_int_not_equal(r->status, MEMTRAIN__STATUS__OK);
    assert_non_null(strstr(r->message, "layer 2"));
    memtrain__response__free_unpacked(r, NULL);
    close(fd);
}

static void assert_utf8(const char *s)
{
    if (s)
        assert_int_equal(mt_utf8_valid_prefix(s, strlen(s)), strlen(s));
}

static void test_invalid_utf8_name_refused(void **state)
{
    (void)state;
    int fd = client_connect(dp.sock);
    Memtrain__Response *r = submit(fd, small_job, "bad\xff\xfename", 0);
    assert_int_equal(r->status, MEMTRAIN__STATUS__INVALID);
    assert_non_null(strstr(r->message, "UTF-8"));
    assert_utf8(r->message);
    if (r->submit && r->submit->job)
        assert_utf8(r->submit->job->name);
    memtrain__response__free_unpacked(r, NULL);
    /* In the YAML too (a name, a path). */
    r = submit(fd, "name: \"caf\xe9\"\ndataset: {name: synthetic}\n"
                   "model: {input: 8, hidden: [8], classes: 2}\nbatch: 4\nepochs: 1\n",
               NULL, 0);
    assert_int_equal(r->status, MEMTRAIN__STATUS__INVALID);
    assert_utf8(r->message);
    memtrain__response__free_unpacked(r, NULL);
    /* Every later reply is UTF-8: the list of all jobs. */
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__ListRequest l = MEMTRAIN__LIST_REQUEST__INIT;
    l.all_users = 1;
    q.body_case = MEMTRAIN__REQUEST__BODY_LIST;
    q.list = &l;
    r = client_call(fd, &q);
    assert_non_null(r);
    assert_int_equal(r->status, MEMTRAIN__STATUS__OK);
    for (size_t i = 0; i < r->list->n_jobs; i++) {
        assert_utf8(r->list->jobs[i]->name);
        assert_utf8(r->list->jobs[i]->reason);
    }
    memtrain__response__free_unpacked(r, NULL);
    close(fd);
    assert_int_equal(client_ping(dp.sock), 0);
}

/* 70,000 finished jobs with 200-byte names (about 20 MB of list, over the
 * 16 MiB frame cap) written straight into the store while memtraind is
 * stopped; the list comes back page by page, every job exactly once, and
 * mtctl ls --all prints them all. */
static void test_list_of_70k_jobs_is_paged(void **state)
{
    (void)state;
    enum { N = 70000 };
    assert_int_equal(daemonproc_stop(&dp, 1), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dp.db, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 70000) "
        "INSERT INTO jobs (name, owner_uid, state, state_name, rule, epochs, epochs_done) "
        "SELECT 'bulk-' || x || '-' || printf('%.190c', 'n'), 0, 3, 'COMPLETED', 'bp', 1, 1 "
        "FROM c", NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("insert: %s", msg);
    sqlite3_close(db);
    assert_int_equal(daemonproc_restart(&dp, (const char *const[]){"--budget", "1GiB", NULL}),
                     0);

    int fd = client_connect(dp.sock);
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__ListRequest l = MEMTRAIN__LIST_REQUEST__INIT;
    l.all_users = 1;
    q.body_case = MEMTRAIN__REQUEST__BODY_LIST;
    q.list = &l;
    size_t total = 0, bulk = 0, pages = 0;
    uint64_t last = UINT64_MAX;
    do {
        Memtrain__Response *r = client_call(fd, &q);
        assert_non_null(r); /* a reply over the frame cap would not be read */
        assert_int_equal(r->status, MEMTRAIN__STATUS__OK);
        for (size_t i = 0; i < r->list->n_jobs; i++) {
            assert_true(r->list->jobs[i]->id < last); /* newest first, none twice */
            last = r->list->jobs[i]->id;
            bulk += strncmp(r->list->jobs[i]->name, "bulk-", 5) == 0;
        }
        total += r->list->n_jobs;
        pages++;
        l.before_id = r->list->next_before_id;
        memtrain__response__free_unpacked(r, NULL);
    } while (l.before_id);
    close(fd);
    printf("%zu jobs listed in %zu pages (%zu of the bulk ones)\n", total, pages, bulk);
    assert_int_equal(bulk, N);
    assert_true(pages > 1);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' --socket '%s' ls --all | grep -c bulk-", getenv("MTCTL"),
             dp.sock);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    long lines = 0;
    assert_int_equal(fscanf(p, "%ld", &lines), 1);
    pclose(p);
    printf("mtctl ls --all: %ld bulk jobs\n", lines);
    assert_int_equal(lines, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_above_max_job_memory_refused),
        cmocka_unit_test(test_wrapping_plan_refused),
        cmocka_unit_test(test_invalid_utf8_name_refused),
        cmocka_unit_test(test_list_of_70k_jobs_is_paged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
