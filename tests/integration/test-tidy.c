/* test-tidy.c: a tidy store (rm, prune, ckpt rm, df and the retention
 * policy; daemon/memtraind/tidy*.c) through the real socket.
 *
 * root submits two short jobs (three checkpoints each) and a long one. A
 * forked child that has dropped to uid 65534 ("nobody") may not remove or
 * measure them in detail; with share_results: group a member of the
 * daemon's group reads them (df) but still may not remove them. root's rm
 * frees bytes and the database file on disk shrinks; a running job is
 * refused without --force and removed with it; ckpt rm and prune
 * --keep-checkpoints thin checkpoints out; a restart with a retention
 * policy applies it at start. The socket is opened to everyone here so the
 * second user can connect at all. Needs root; skipped with a message
 * otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemonproc.h"

#define OTHER_UID 65534
#define OTHER_GID 65534

static struct daemonproc dp;
static char cfg_path[64];
static uint64_t a_id, b_id, long_id;

static const char *short_job =
    "name: short\ndataset: {name: synthetic, synthetic_train: 2048, synthetic_test: 64}\n"
    "model: {input: 32, hidden: [256, 256], classes: 4}\nbatch: 32\nepochs: 3\nthreads: 1\n"
    "checkpoint_every: 1\n";
static const char *long_job =
    "name: long\ndataset: {name: synthetic, synthetic_train: 20000, synthetic_test: 500}\n"
    "model: {input: 64, hidden: [256, 256], classes: 4}\nbatch: 32\nepochs: 50\nthreads: 1\n";

static void write_config(const char *text)
{
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int open_socket_to_all(void)
{
    return chmod(dp.dir, 0755) == 0 && chmod(dp.sock, 0666) == 0 ? 0 : -1;
}

/* Submit and follow a job to its end on a fresh connection. */
static uint64_t run_job(const char *yaml)
{
    int c = client_connect(dp.sock), st;
    uint64_t id = client_submit_id(c, yaml, "tidy.yaml", &st);
    struct watch_seen seen;
    if (!id || client_watch(c, id, 0) != 0 || client_follow(c, 0, &seen) != 0 ||
        seen.state != MEMTRAIN__JOB_STATE__COMPLETED)
        id = 0;
    close(c);
    return id;
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    snprintf(cfg_path, sizeof cfg_path, "/tmp/mt-tidy-XXXXXX");
    int fd = mkstemp(cfg_path);
    if (fd < 0)
        return -1;
    close(fd);
    write_config("share_results: owner\n");
    const char *args[] = {"--config", cfg_path, NULL};
    if (daemonproc_start(&dp, args) != 0 || open_socket_to_all() != 0)
        return -1;
    a_id = run_job(short_job);
    b_id = run_job(short_job);
    int c = client_connect(dp.sock), st;
    long_id = client_submit_id(c, long_job, "tidy.yaml", &st);
    close(c);
    return a_id && b_id && long_id ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    unlink(cfg_path);
    return daemonproc_stop(&dp, 0) == 0 ? 0 : -1;
}

/* What a response said. */
struct answer {
    int status;                   /* -1: no response */
    int n_jobs;                   /* tidy, df: jobs listed */
    uint64_t freed, before, after;  /* tidy: bytes_freed, store_bytes_before, _after */
    uint64_t others;              /* df: others.total */
    char message[256];
};

static struct answer answer_of(Memtrain__Response *r)
{
    struct answer a = {.status = -1};
    if (!r) {
        snprintf(a.message, sizeof a.message, "no answer");
        return a;
    }
    a.status = r->status;
    snprintf(a.message, sizeof a.message, "%s", r->message);
    if (r->body_case == MEMTRAIN__RESPONSE__BODY_TIDY) {
        a.n_jobs = (int)r->tidy->n_jobs;
        a.freed = r->tidy->bytes_freed;
        a.before = r->tidy->store_bytes_before;
        a.after = r->tidy->store_bytes_after;
    } else if (r->body_case == MEMTRAIN__RESPONSE__BODY_DF) {
        a.n_jobs = (int)r->df->n_jobs;
        a.others = r->df->others ? r->df->others->total : 0;
    }
    memtrain__response__free_unpacked(r, NULL);
    return a;
}

/* Send req as `uid` (root: 0, here in this process) with primary group gid. */
static struct answer ask_as(uid_t uid, gid_t gid, Memtrain__Request *req)
{
    if (uid != 0)
        return answer_of(client_call_as(dp.sock, uid, gid, req));
    int fd = client_connect(dp.sock);
    struct answer a = answer_of(fd >= 0 ? client_call(fd, req) : NULL);
    close(fd);
    return a;
}

static struct answer rm(uid_t uid, gid_t gid, uint64_t job, int force)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__RemoveRequest r = MEMTRAIN__REMOVE_REQUEST__INIT;
    r.n_job_ids = 1;
    r.job_ids = &job;
    r.force = force;
    q.body_case = MEMTRAIN__REQUEST__BODY_RM;
    q.rm = &r;
    struct answer a = ask_as(uid, gid, &q);
    printf("uid %u: rm%s %llu -> %d, %d jobs, %llu freed: %s\n", (unsigned)uid,
           force ? " --force" : "", (unsigned long long)job, a.status, a.n_jobs,
           (unsigned long long)a.freed, a.message);
    return a;
}

static struct answer ckpt_rm(uid_t uid, gid_t gid, uint64_t job, uint32_t epoch)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__CheckpointRemoveRequest r = MEMTRAIN__CHECKPOINT_REMOVE_REQUEST__INIT;
    r.job_id = job;
    r.n_epochs = epoch ? 1 : 0;
    r.epochs = &epoch;
    q.body_case = MEMTRAIN__REQUEST__BODY_CKPT_RM;
    q.ckpt_rm = &r;
    struct answer a = ask_as(uid, gid, &q);
    printf("uid %u: ckpt rm %llu %u -> %d, %d jobs, %llu freed: %s\n", (unsigned)uid,
           (unsigned long long)job, epoch, a.status, a.n_jobs, (unsigned long long)a.freed,
           a.message);
    return a;
}

/* prune: keep < 0 removes jobs, else keeps N checkpoints. */
static struct answer prune(uid_t uid, gid_t gid, int all, int keep)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__PruneRequest r = MEMTRAIN__PRUNE_REQUEST__INIT;
    r.all_users = all;
    if (keep >= 0) {
        r.opt_keep_checkpoints_case =
            MEMTRAIN__PRUNE_REQUEST__OPT_KEEP_CHECKPOINTS_KEEP_CHECKPOINTS;
        r.keep_checkpoints = (uint32_t)keep;
    }
    q.body_case = MEMTRAIN__REQUEST__BODY_PRUNE;
    q.prune = &r;
    struct answer a = ask_as(uid, gid, &q);
    printf("uid %u: prune%s keep %d -> %d, %d jobs, %llu freed: %s\n", (unsigned)uid,
           all ? " --all" : "", keep, a.status, a.n_jobs, (unsigned long long)a.freed, a.message);
    return a;
}

static struct answer df(uid_t uid, gid_t gid, int all)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__DiskUsageRequest r = MEMTRAIN__DISK_USAGE_REQUEST__INIT;
    r.all_users = all;
    q.body_case = MEMTRAIN__REQUEST__BODY_DF;
    q.df = &r;
    struct answer a = ask_as(uid, gid, &q);
    printf("uid %u: df%s -> %d, %d jobs, others %llu: %s\n", (unsigned)uid, all ? " --all" : "",
           a.status, a.n_jobs, (unsigned long long)a.others, a.message);
    return a;
}

/* How many checkpoints root sees for a job; -1 when the job is gone. */
static int ckpts_of(uint64_t job)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__CheckpointsRequest r = MEMTRAIN__CHECKPOINTS_REQUEST__INIT;
    r.job_id = job;
    q.body_case = MEMTRAIN__REQUEST__BODY_CHECKPOINTS;
    q.checkpoints = &r;
    int fd = client_connect(dp.sock);
    Memtrain__Response *resp = client_call(fd, &q);
    close(fd);
    assert_non_null(resp);
    int n = resp->status == MEMTRAIN__STATUS__OK ? (int)resp->checkpoints->n_checkpoints : -1;
    memtrain__response__free_unpacked(resp, NULL);
    return n;
}

static uint64_t on_disk(void)
{
    char wal[320];
    struct stat a, b;
    snprintf(wal, sizeof wal, "%s-wal", dp.db);
    uint64_t n = stat(dp.db, &a) == 0 ? (uint64_t)a.st_size : 0;
    return n + (stat(wal, &b) == 0 ? (uint64_t)b.st_size : 0);
}

static void reload(const char *text)
{
    assert_int_equal(daemonproc_reconfigure(&dp, cfg_path, text), 0);
}

/* Another user removes and measures nothing of root's: rm and ckpt rm say
 * NOT_FOUND (as for a missing id), prune finds nothing of theirs, prune
 * --all is root's, df lists none of root's jobs. */
static void test_other_user_cannot_touch(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct answer a = rm(OTHER_UID, OTHER_GID, a_id, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
    assert_non_null(strstr(a.message, "not yours"));
    a = rm(OTHER_UID, OTHER_GID, long_id, 1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
    a = ckpt_rm(OTHER_UID, OTHER_GID, a_id, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
    a = prune(OTHER_UID, OTHER_GID, 0, -1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.n_jobs, 0);
    a = prune(OTHER_UID, OTHER_GID, 1, -1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__PERMISSION_DENIED);
    a = df(OTHER_UID, OTHER_GID, 1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.n_jobs, 0);
    assert_true(a.others > 0);     /* root's jobs, as one sum */
    /* all still there */
    assert_int_equal(ckpts_of(a_id), 3);
    assert_int_equal(ckpts_of(b_id), 3);
    a = df(0, 0, 1);
    assert_int_equal(a.n_jobs, 3);
    assert_int_equal(a.others, 0);
}

/* share_results: group: a member reads every job's sizes but still may
 * not remove them. */
static void test_group_member_reads_but_cannot_remove(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    reload("share_results: group\n");
    struct answer a = df(OTHER_UID, 0, 1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.n_jobs, 3);
    a = rm(OTHER_UID, 0, a_id, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__PERMISSION_DENIED);
    assert_non_null(strstr(a.message, "only its owner or root may remove it"));
    a = ckpt_rm(OTHER_UID, 0, a_id, 1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__PERMISSION_DENIED);
    reload("share_results: owner\n");
    assert_int_equal(ckpts_of(a_id), 3);
}

/* root removes job a: bytes are freed, the database file on disk shrinks
 * to the database's new size, and the job is gone. */
static void test_rm_frees_bytes_and_the_file_shrinks(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    uint64_t disk_before = on_disk();
    struct answer a = rm(0, 0, a_id, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.n_jobs, 1);
    assert_true(a.freed > 3 * 500 * 1000);   /* three checkpoints of about 0.9 MB */
    assert_int_equal(a.before - a.after, a.freed);
    struct stat sb;
    assert_int_equal(stat(dp.db, &sb), 0);
    uint64_t disk_after = on_disk();
    printf("database %llu -> %llu bytes; on disk (with the WAL) %llu -> %llu; file %llu\n",
           (unsigned long long)a.before, (unsigned long long)a.after,
           (unsigned long long)disk_before, (unsigned long long)disk_after,
           (unsigned long long)sb.st_size);
    assert_true(disk_after + a.freed / 2 < disk_before);
    assert_true((uint64_t)sb.st_size <= a.after);
    assert_int_equal(ckpts_of(a_id), -1);
    a = rm(0, 0, a_id, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
}

/* A running job is refused without force; with it, it is cancelled and
 * removed. */
static void test_rm_running_needs_force(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct answer a = rm(0, 0, long_id, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__INVALID);
    assert_non_null(strstr(a.message, "cancel it first"));
    a = ckpt_rm(0, 0, long_id, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__INVALID);
    a = rm(0, 0, long_id, 1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.n_jobs, 1);
    assert_int_equal(ckpts_of(long_id), -1);
}

/* ckpt rm of one epoch, then prune --keep-checkpoints 1: the job stays
 * with its newest checkpoint; an epoch it lacks is NOT_FOUND. */
static void test_ckpt_rm_and_prune_keep(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct answer a = ckpt_rm(0, 0, b_id, 1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_true(a.freed > 0);
    assert_int_equal(ckpts_of(b_id), 2);
    a = ckpt_rm(0, 0, b_id, 1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
    a = prune(0, 0, 0, 1);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.n_jobs, 1);
    assert_int_equal(ckpts_of(b_id), 1);
}

/* A restart with retention: {checkpoints_max_age: 1s}: at start, the ended
 * job loses its last checkpoint. */
static void test_retention_applies_at_start(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct timespec ts = {1, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);   /* b ended more than a second ago */
    assert_int_equal(daemonproc_stop(&dp, 1), 0);
    write_config("share_results: owner\nretention: {checkpoints_max_age: 1s}\n");
    const char *args[] = {"--config", cfg_path, NULL};
    assert_int_equal(daemonproc_restart(&dp, args), 0);
    assert_int_equal(open_socket_to_all(), 0);
    int n = -2;
    for (int i = 0; i < 100 && (n = ckpts_of(b_id)) != 0; i++) {
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    assert_int_equal(n, 0);
}

/* The policy runs again every `interval`: a job that ends after a reload
 * to {jobs_max_age: 1s, interval: 1s} is removed by a later run. */
static void test_retention_runs_on_its_interval(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    reload("share_results: owner\nretention: {jobs_max_age: 1s, interval: 1s}\n");
    assert_int_equal(ckpts_of(b_id), -1);   /* the reload's run: b ended long ago */
    uint64_t c = run_job(short_job);
    assert_true(c > 0);
    int n = 0;
    for (int i = 0; i < 100 && (n = ckpts_of(c)) != -1; i++) {
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    assert_int_equal(n, -1);
}

int main(void)
{
    if (geteuid() != 0)
        printf("test-tidy: not root, so no second user can be made; skipping\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_user_cannot_touch),
        cmocka_unit_test(test_group_member_reads_but_cannot_remove),
        cmocka_unit_test(test_rm_frees_bytes_and_the_file_shrinks),
        cmocka_unit_test(test_rm_running_needs_force),
        cmocka_unit_test(test_ckpt_rm_and_prune_keep),
        cmocka_unit_test(test_retention_applies_at_start),
        cmocka_unit_test(test_retention_runs_on_its_interval),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
