/* test-faults.c: a worker killed with SIGKILL, a job over its memory limit,
 * and memtraind itself killed with SIGKILL mid-job then restarted: stored
 * metrics and checkpoints survive and the job resumes to the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonproc.h"

static uint64_t submit_ok(int fd, const char *yaml)
{
    int status;
    uint64_t id = client_submit_id(fd, yaml, "faults.yaml", &status);
    assert_int_equal(status, MEMTRAIN__STATUS__OK);
    return id;
}

/* Watch job id on fd and read its events until `epochs` epoch events have
 * come (0: until the end). */
static struct watch_seen follow(int fd, uint64_t id, int epochs)
{
    struct watch_seen seen;
    assert_int_equal(client_watch(fd, id, 0), 0);
    assert_int_equal(client_follow(fd, epochs, &seen), 0);
    return seen;
}

static const char *long_job =
    "name: long\ndataset: {name: synthetic, synthetic_train: 20000, synthetic_test: 500}\n"
    "model: {input: 64, hidden: [256, 256], classes: 4}\nbatch: 32\nepochs: 6\nthreads: 1\n"
    "checkpoint_every: 1\n";

static void test_worker_killed(void **state)
{
    (void)state;
    struct daemonproc dp;
    assert_int_equal(daemonproc_start(&dp, NULL), 0);
    int fd = client_connect(dp.sock);
    uint64_t id = submit_ok(fd, long_job);
    struct watch_seen seen = follow(fd, id, 1);
    pid_t w = daemonproc_worker(&dp);
    assert_true(w > 0);
    kill(w, SIGKILL);
    assert_int_equal(client_follow(fd, 0, &seen), 0);
    printf("worker of job %llu killed with SIGKILL -> state %d: %s\n", (unsigned long long)id,
           seen.state, seen.reason);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__FAILED);
    assert_non_null(strstr(seen.reason, "signal 9"));
    close(fd);
    assert_int_equal(client_ping(dp.sock), 0);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
}

static void test_over_limit_refused(void **state)
{
    (void)state;
    struct daemonproc dp;
    assert_int_equal(daemonproc_start(&dp, NULL), 0);
    int fd = client_connect(dp.sock);
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%smemory_limit: 1MiB\n", long_job);
    Memtrain__Response *r = client_submit(fd, yaml, "faults.yaml");
    assert_non_null(r);
    printf("memory_limit 1 MiB -> status %d: %s\n", r->status, r->message);
    assert_int_equal(r->status, MEMTRAIN__STATUS__OVER_LIMIT);
    assert_non_null(strstr(r->message, "limit"));
    memtrain__response__free_unpacked(r, NULL);
    close(fd);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
}

/* One request on a connection of its own; the response (never NULL). */
static Memtrain__Response *ask(const char *sock, Memtrain__Request *q)
{
    int fd = client_connect(sock);
    Memtrain__Response *r = client_call(fd, q);
    close(fd);
    assert_non_null(r);
    return r;
}

struct epoch_row {
    double loss, test_acc;
};

static int read_epochs(const char *sock, uint64_t id, struct epoch_row *rows, int cap)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__MetricsRequest m = MEMTRAIN__METRICS_REQUEST__INIT;
    m.job_id = id;
    q.body_case = MEMTRAIN__REQUEST__BODY_METRICS;
    q.metrics = &m;
    Memtrain__Response *r = ask(sock, &q);
    assert_int_equal(r->status, MEMTRAIN__STATUS__OK);
    int n = 0;
    for (size_t i = 0; i < r->metrics->n_epochs && n < cap; i++, n++) {
        rows[n].loss = r->metrics->epochs[i]->loss;
        rows[n].test_acc = r->metrics->epochs[i]->test_accuracy;
    }
    memtrain__response__free_unpacked(r, NULL);
    return n;
}

static int count_checkpoints(const char *sock, uint64_t id)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__CheckpointsRequest c = MEMTRAIN__CHECKPOINTS_REQUEST__INIT;
    c.job_id = id;
    q.body_case = MEMTRAIN__REQUEST__BODY_CHECKPOINTS;
    q.checkpoints = &c;
    Memtrain__Response *r = ask(sock, &q);
    int n = r->checkpoints ? (int)r->checkpoints->n_checkpoints : -1;
    memtrain__response__free_unpacked(r, NULL);
    return n;
}

/* The job's "resumed from epoch E, step S" log line: *epoch and *step, and
 * *in_epoch the steps into epoch E + 1 (0 at an epoch boundary). 0 when
 * found, -1 when the job never logged a resume. */
static int resumed_from(const char *sock, uint64_t id, unsigned *epoch, long *step,
                        long *in_epoch)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__LogsRequest l = MEMTRAIN__LOGS_REQUEST__INIT;
    l.job_id = id;
    q.body_case = MEMTRAIN__REQUEST__BODY_LOGS;
    q.logs = &l;
    Memtrain__Response *r = ask(sock, &q);
    assert_int_equal(r->status, MEMTRAIN__STATUS__OK);
    int rc = -1;
    for (size_t i = 0; rc && r->logs && i < r->logs->n_lines; i++) {
        const char *p = strstr(r->logs->lines[i]->text, "resumed from epoch ");
        if (p && sscanf(p, "resumed from epoch %u, step %ld", epoch, step) == 2) {
            const char *q2 = strstr(p, "(step ");
            *in_epoch = 0;
            if (q2 && sscanf(q2, "(step %ld", in_epoch) != 1)
                *in_epoch = 0;
            printf("job %llu logged: %s\n", (unsigned long long)id, r->logs->lines[i]->text);
            rc = 0;
        }
    }
    memtrain__response__free_unpacked(r, NULL);
    return rc;
}

/* Start a daemon, submit long_job and wait for `epochs` epoch events. */
static uint64_t start_long_job(struct daemonproc *dp, int epochs)
{
    assert_int_equal(daemonproc_start(dp, NULL), 0);
    int fd = client_connect(dp->sock);
    uint64_t id = submit_ok(fd, long_job);
    follow(fd, id, epochs);
    close(fd);
    return id;
}

/* kill -9 the daemon and reap it. */
static void kill_daemon(struct daemonproc *dp)
{
    int st;
    kill(dp->pid, SIGKILL);
    waitpid(dp->pid, &st, 0);
    dp->pid = 0;
}

/* long_job: 20000 samples in batches of 32. */
#define LONG_STEPS_PER_EPOCH 625

static void test_daemon_killed_then_resumed(void **state)
{
    (void)state;
    struct daemonproc dp;
    uint64_t id = start_long_job(&dp, 2);
    pid_t worker = daemonproc_worker(&dp);
    kill_daemon(&dp);
    /* The orphaned worker must not run on: it dies with its daemon. */
    for (int i = 0; i < 200 && worker > 0 && kill(worker, 0) == 0; i++)
        usleep(20000);
    assert_true(worker <= 0 || kill(worker, 0) != 0);

    assert_int_equal(daemonproc_restart(&dp, NULL), 0);
    struct epoch_row before[16], after[16];
    int nb = read_epochs(dp.sock, id, before, 16);
    int nc = count_checkpoints(dp.sock, id);
    printf("after kill -9 of memtraind: %d epochs and %d checkpoints stored\n", nb, nc);
    assert_true(nb >= 2);
    assert_true(nc >= 1);
    int fd = client_connect(dp.sock);
    struct watch_seen seen = follow(fd, id, 0);
    close(fd);
    printf("job %llu after restart -> state %d (%s)\n", (unsigned long long)id, seen.state,
           seen.reason);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
    int na = read_epochs(dp.sock, id, after, 16);
    assert_int_equal(na, 6);
    for (int i = 0; i < 2; i++) /* what was stored before the kill is untouched */
        assert_true(before[i].loss == after[i].loss && before[i].test_acc == after[i].test_acc);
    /* It went on from a stored checkpoint, not from scratch (which would
     * give the same figures: training is deterministic). */
    unsigned e;
    long step, in_epoch;
    assert_int_equal(resumed_from(dp.sock, id, &e, &step, &in_epoch), 0);
    assert_true(e >= 1 && e < 6);
    assert_int_equal(step, (long)e * LONG_STEPS_PER_EPOCH);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
}

/* Issue 11, finding 5: a worker stopped with SIGSTOP when memtraind is
 * killed with SIGKILL dies with it (it would otherwise run on once
 * continued, beside the restarted daemon's resumed copy of the job). */
static void test_stopped_worker_dies_with_daemon(void **state)
{
    (void)state;
    struct daemonproc dp;
    start_long_job(&dp, 1);
    pid_t worker = daemonproc_worker(&dp);
    assert_true(worker > 0);
    assert_int_equal(kill(worker, SIGSTOP), 0);
    kill_daemon(&dp);
    int alive = 1;
    for (int i = 0; i < 200 && alive; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)worker);
        FILE *f = fopen(path, "r");
        /* gone, or a zombie waiting for its new parent */
        alive = f && fgets(line, sizeof line, f) && !strstr(line, ") Z ");
        if (f)
            fclose(f);
        if (alive)
            usleep(20000);
    }
    if (alive) {
        kill(worker, SIGKILL);
        fail_msg("the stopped worker %d outlived its daemon", (int)worker);
    }
    assert_int_equal(daemonproc_restart(&dp, NULL), 0);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
}

/* A process running memtrain-worker, started by the test (not by the
 * daemon, so it does not die with it): it waits on its stdin, the WorkerStart
 * frame that never comes. *wfd is the pipe's end to close. */
static pid_t fake_worker(int *wfd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[0], 0);
        close(p[1]);
        execl(getenv("MEMTRAIN_WORKER"), "memtrain-worker", (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    *wfd = p[1];
    return pid;
}

/* Field 22 of /proc/PID/stat (start time, clock ticks after boot). */
static unsigned long long start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *q = strrchr(buf, ')');
    assert_non_null(q);
    for (int field = 2; field < 22 && q; field++)
        q = strchr(q + 1, ' ');
    unsigned long long t = 0;
    assert_non_null(q);
    assert_int_equal(sscanf(q, " %llu", &t), 1);
    return t;
}

/* Issue 11, finding 5: a worker that outlived a dead daemon (here a stand-in
 * the test started, which PR_SET_PDEATHSIG cannot reach) is killed by the
 * next daemon before the job resumes; a process that merely has the
 * recorded pid but another start time is left alone. */
static void test_leftover_worker_killed_at_start(void **state)
{
    (void)state;
    struct daemonproc dp;
    uint64_t id = start_long_job(&dp, 1);
    int fd = client_connect(dp.sock);
    uint64_t other = submit_ok(fd, long_job); /* queued behind it */
    close(fd);
    kill_daemon(&dp);
    int w1, w2;
    pid_t leftover = fake_worker(&w1), stranger = fake_worker(&w2);
    usleep(100000); /* both have exec'd */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sqlite3 '%s' \"UPDATE jobs SET worker_pid = %d, worker_start = %llu WHERE id = %llu;"
             " UPDATE jobs SET state = %d, state_name = 'RUNNING', worker_pid = %d, "
             "worker_start = %llu WHERE id = %llu;\"", dp.db, (int)leftover,
             start_ticks(leftover), (unsigned long long)id, MEMTRAIN__JOB_STATE__RUNNING,
             (int)stranger, start_ticks(stranger) + 1, (unsigned long long)other);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(daemonproc_restart(&dp, NULL), 0);
    int st = 0;
    pid_t got = 0;
    for (int i = 0; i < 250 && got == 0; i++) {
        got = waitpid(leftover, &st, WNOHANG);
        if (!got)
            usleep(20000);
    }
    if (got != leftover) {
        kill(leftover, SIGKILL);
        kill(stranger, SIGKILL);
        daemonproc_stop(&dp, 0);
        fail_msg("the leftover worker %d was not stopped by the restarted daemon",
                 (int)leftover);
    }
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_int_equal(waitpid(stranger, &st, WNOHANG), 0); /* still there */
    kill(stranger, SIGKILL);
    waitpid(stranger, &st, 0);
    close(w1);
    close(w2);
    assert_int_equal(client_ping(dp.sock), 0);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
}

static void test_daemon_stopped_then_resumed(void **state)
{
    (void)state;
    struct daemonproc dp;
    assert_int_equal(daemonproc_start(&dp, NULL), 0);
    int fd = client_connect(dp.sock);
    uint64_t id = submit_ok(fd, long_job);
    struct watch_seen seen = follow(fd, id, 1);
    /* SIGTERM: the worker writes a mid-epoch checkpoint, the job is
     * INTERRUPTED, the daemon exits 0; the watcher is told. */
    assert_int_equal(daemonproc_stop(&dp, 1), 0);
    assert_int_equal(client_follow(fd, 0, &seen), 0);
    close(fd);
    printf("SIGTERM to memtraind mid-job -> watcher saw state %d (%s)\n", seen.state,
           seen.reason);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__INTERRUPTED);
    assert_int_equal(daemonproc_restart(&dp, NULL), 0);
    fd = client_connect(dp.sock);
    seen = follow(fd, id, 0);
    close(fd);
    printf("job %llu after restart -> state %d (%s)\n", (unsigned long long)id, seen.state,
           seen.reason);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
    struct epoch_row rows[16];
    assert_int_equal(read_epochs(dp.sock, id, rows, 16), 6);
    /* From the mid-epoch checkpoint the stop wrote, not from scratch. */
    unsigned e;
    long step, in_epoch;
    assert_int_equal(resumed_from(dp.sock, id, &e, &step, &in_epoch), 0);
    assert_true(e >= 1 && e < 6);
    assert_true(in_epoch >= 0 && in_epoch < LONG_STEPS_PER_EPOCH);
    assert_int_equal(step, (long)e * LONG_STEPS_PER_EPOCH + in_epoch);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
}

/* A corrupt newest checkpoint: the restarted job resumes from the newest
 * intact one and its log names both epochs. */
static void test_corrupt_newest_checkpoint(void **state)
{
    (void)state;
    struct daemonproc dp;
    assert_int_equal(daemonproc_start(&dp, NULL), 0);
    int fd = client_connect(dp.sock);
    uint64_t id = submit_ok(fd, long_job);
    follow(fd, id, 3);
    close(fd);
    assert_int_equal(daemonproc_stop(&dp, 1), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sqlite3 '%s' \"UPDATE checkpoints SET data = X'FFFFFFFF' WHERE job_id = %llu "
             "AND epoch = (SELECT max(epoch) FROM checkpoints WHERE job_id = %llu)\"",
             dp.db, (unsigned long long)id, (unsigned long long)id);
    if (system(cmd) != 0) {
        daemonproc_stop(&dp, 0);
        skip();
    }
    assert_int_equal(daemonproc_restart(&dp, NULL), 0);
    fd = client_connect(dp.sock);
    struct watch_seen seen = follow(fd, id, 0);
    close(fd);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__LogsRequest l = MEMTRAIN__LOGS_REQUEST__INIT;
    l.job_id = id;
    q.body_case = MEMTRAIN__REQUEST__BODY_LOGS;
    q.logs = &l;
    Memtrain__Response *r = ask(dp.sock, &q);
    unsigned bad = 0, from = 0;
    for (size_t i = 0; r->logs && i < r->logs->n_lines; i++)
        if (sscanf(r->logs->lines[i]->text,
                   "checkpoint of epoch %u is corrupt (%*[^)]); resuming from epoch %u", &bad,
                   &from) == 2)
            printf("job %llu logged: %s\n", (unsigned long long)id, r->logs->lines[i]->text);
    memtrain__response__free_unpacked(r, NULL);
    assert_true(bad > 0 && from > 0 && from < bad);
    unsigned e;
    long step, in_epoch;
    assert_int_equal(resumed_from(dp.sock, id, &e, &step, &in_epoch), 0);
    assert_int_equal(e, from);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
}

/* A layer list with batch-norm layers (running statistics) and a residual
 * block: stopped mid-run with the daemon, resumed from its checkpoint, it
 * ends with the figures of an uninterrupted run of the same spec. */
static const char *conv_job =
    "name: conv\ndataset: {name: synthetic, synthetic_train: 16384, synthetic_test: 256}\n"
    "model:\n  input: [1, 8, 8]\n  classes: 4\n  layers:\n"
    "    - conv: {channels: 8, kernel: 3, padding: 1}\n    - batchnorm\n    - relu\n"
    "    - maxpool: 2\n    - residual: {channels: 8}\n    - flatten\n    - dense: 4\n"
    "optimizer: {name: sgd, lr: 0.02, momentum: 0.9}\n"
    "batch: 32\nepochs: 6\nthreads: 1\ncheckpoint_every: 1\n";
#define CONV_STEPS_PER_EPOCH 512

static void test_layer_list_stopped_then_resumed(void **state)
{
    (void)state;
    struct daemonproc dp;
    assert_int_equal(daemonproc_start(&dp, NULL), 0);
    int fd = client_connect(dp.sock);
    uint64_t id = submit_ok(fd, conv_job);
    follow(fd, id, 1);
    close(fd);
    assert_int_equal(daemonproc_stop(&dp, 1), 0);
    assert_int_equal(daemonproc_restart(&dp, NULL), 0);
    fd = client_connect(dp.sock);
    struct watch_seen seen = follow(fd, id, 0);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
    unsigned e;
    long step, in_epoch;
    assert_int_equal(resumed_from(dp.sock, id, &e, &step, &in_epoch), 0);
    assert_true(e >= 1 && e < 6);
    assert_int_equal(step, (long)e * CONV_STEPS_PER_EPOCH + in_epoch);

    uint64_t ref = submit_ok(fd, conv_job);   /* the same spec, uninterrupted */
    seen = follow(fd, ref, 0);
    close(fd);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
    struct epoch_row a[16], b[16];
    assert_int_equal(read_epochs(dp.sock, id, a, 16), 6);
    assert_int_equal(read_epochs(dp.sock, ref, b, 16), 6);
    for (int i = 0; i < 6; i++)
        if (a[i].loss != b[i].loss || a[i].test_acc != b[i].test_acc)
            fail_msg("epoch %d: resumed loss %.17g test %.17g, uninterrupted %.17g %.17g", i + 1,
                     a[i].loss, a[i].test_acc, b[i].loss, b[i].test_acc);
    printf("layer-list job %llu resumed at epoch %u step %ld: its 6 epochs equal job %llu's\n",
           (unsigned long long)id, e, step, (unsigned long long)ref);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_killed),
        cmocka_unit_test(test_over_limit_refused),
        cmocka_unit_test(test_daemon_killed_then_resumed),
        cmocka_unit_test(test_leftover_worker_killed_at_start),
        cmocka_unit_test(test_daemon_stopped_then_resumed),
        cmocka_unit_test(test_stopped_worker_dies_with_daemon),
        cmocka_unit_test(test_corrupt_newest_checkpoint),
        cmocka_unit_test(test_layer_list_stopped_then_resumed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
