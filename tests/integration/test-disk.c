/* test-disk.c: a full disk under memtraind. The store lives on a small
 * tmpfs; once the job's first checkpoint is stored the test fills the rest,
 * so the next checkpoints cannot be written. The job still completes, and
 * its reason and log say which checkpoint was lost and which one is the
 * newest; `mtctl ckpt export` names the older epoch it writes and warns.
 * Mounting needs root (CI runs as root): otherwise the test says so and
 * skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemonproc.h"

static const char *job_yaml =
    "name: disk\ndataset: {name: synthetic, synthetic_train: 6000, synthetic_test: 200}\n"
    "model: {input: 128, hidden: [512, 512], classes: 4}\nbatch: 50\nepochs: 4\nthreads: 1\n"
    "checkpoint_every: 1\nkeep_checkpoints: 4\n";

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The job's stored checkpoint epochs, newest; -1 when the call fails. */
static int newest_ckpt(const char *sock, uint64_t id)
{
    int fd = client_connect(sock);
    if (fd < 0)
        return -1;
    Memtrain__CheckpointsRequest cq = MEMTRAIN__CHECKPOINTS_REQUEST__INIT;
    cq.job_id = id;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_CHECKPOINTS;
    req.checkpoints = &cq;
    Memtrain__Response *r = client_call(fd, &req);
    close(fd);
    if (!r)
        return -1;
    int newest = 0;
    if (r->body_case == MEMTRAIN__RESPONSE__BODY_CHECKPOINTS)
        for (size_t i = 0; i < r->checkpoints->n_checkpoints; i++)
            if ((int)r->checkpoints->checkpoints[i]->epoch > newest)
                newest = (int)r->checkpoints->checkpoints[i]->epoch;
    memtrain__response__free_unpacked(r, NULL);
    return newest;
}

/* Fill the file system of dir but `leave` bytes. */
static void fill(const char *dir, unsigned long long leave)
{
    char path[320];
    snprintf(path, sizeof path, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char block[65536];
    for (;;) {
        struct statvfs sv;
        assert_int_equal(fstatvfs(fd, &sv), 0);
        unsigned long long avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
        if (avail <= leave)
            break;
        size_t n = avail - leave < sizeof block ? (size_t)(avail - leave) : sizeof block;
        if (write(fd, block, n) <= 0)
            break;
    }
    close(fd);
}

/* The first cap-1 bytes of file `path` into buf (empty when unreadable);
 * the file is removed. */
static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    unlink(path);
}

/* `mtctl ckpt export ID -O FILE -o json` with its stderr in err and its
 * JSON report in report. */
static int run_export(const char *sock, uint64_t id, const char *out, char *err,
                      char *report, size_t cap)
{
    const char *mtctl = getenv("MTCTL");
    if (!mtctl)
        return -1;
    char cmd[1700], errpath[340], outpath[340];
    snprintf(errpath, sizeof errpath, "%s.err", out);
    snprintf(outpath, sizeof outpath, "%s.json", out);
    snprintf(cmd, sizeof cmd,
             "'%s' --socket '%s' ckpt export %llu -O '%s' -o json >'%s' 2>'%s'",
             mtctl, sock, (unsigned long long)id, out, outpath, errpath);
    int st = system(cmd);
    slurp(errpath, err, cap);
    slurp(outpath, report, cap);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* What teardown undoes, even after a failed assertion. */
static struct daemonproc p;
static char dir[] = "/tmp/memtrain-disk-XXXXXX";
static int mounted, passed;

/* A failed run shows the daemon's log: what the store said, and when. */
static void print_daemon_log(void)
{
    char path[320], line[512];
    snprintf(path, sizeof path, "%s/daemon.log", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fprintf(stderr, "--- %s\n", path);
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

static int teardown(void **state)
{
    (void)state;
    if (p.pid > 0)
        daemonproc_stop(&p, 1);
    if (mounted && (!passed || getenv("MEMTRAIN_TEST_KEEP")))
        print_daemon_log();
    if (mounted)
        umount2(dir, MNT_DETACH);
    rmdir(dir);
    return 0;
}

static void test_full_disk_loses_the_last_checkpoint_visibly(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: mounting a small tmpfs for the store needs root\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    if (mount("tmpfs", dir, "tmpfs", 0, "size=24m") != 0) {
        print_message("skipped: cannot mount a tmpfs (%s)\n", strerror(errno));
        skip();
    }
    mounted = 1;
    assert_int_equal(daemonproc_start_at(&p, dir, NULL), 0);
    int fd = client_connect(p.sock), status;
    assert_true(fd >= 0);
    uint64_t id = client_submit_id(fd, job_yaml, "disk.yaml", &status);
    assert_int_equal(status, MEMTRAIN__STATUS__OK);

    /* Once epoch 1's checkpoint is in, leave too little for another. */
    int newest = 0;
    for (int i = 0; i < 3000 && newest < 1; i++) {
        sleep_ms(10);
        newest = newest_ckpt(p.sock, id);
    }
    assert_true(newest >= 1);
    fill(dir, 512 * 1024);

    struct watch_seen seen;
    assert_int_equal(client_watch(fd, id, 0), 0);
    assert_int_equal(client_follow(fd, 0, &seen), 0);
    close(fd);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
    if (!strstr(seen.reason, "the checkpoint of epoch 4 was not stored") ||
        !strstr(seen.reason, "the newest stored is epoch"))
        fail_msg("reason: '%s'", seen.reason);
    int kept = newest_ckpt(p.sock, id);
    assert_true(kept >= 1 && kept < 4);

    char out[320], err[1024], report[1024], want[128];
    snprintf(out, sizeof out, "/tmp/memtrain-disk-export-%d.npz", (int)getpid());
    int rc = run_export(p.sock, id, out, err, report, sizeof err);
    unlink(out);
    if (rc != 0)
        fail_msg("export exited %d: '%s'", rc, err);
    snprintf(want, sizeof want, "completed 4 epochs but its newest stored checkpoint is epoch %d",
             kept);
    if (!strstr(err, want))
        fail_msg("export's stderr: '%s'; its report: %s", err, report);

    /* The daemon still answers. */
    assert_int_equal(client_ping_within(p.sock, 2000), 0);
    passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_full_disk_loses_the_last_checkpoint_visibly, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
