/* test-data-access.c: a real memtraind asked to read datasets it should
 * not: a FIFO (whose blocking open froze the loop), a slow probe (the
 * loop keeps answering), and, as root, files another user may not read
 * (refused, never trained, no byte of them in any reply or log, and a
 * missing file looks like an unreadable one). The second user is uid/gid
 * 65534 in a forked client; those tests skip unless run as root. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemonproc.h"

#define OTHER_UID 65534
#define OTHER_GID 65534

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    fwrite(b, 1, 4, f);
}

/* n samples of 4x4 pixels (labels 0..1) as IDX images and labels. */
static void write_idx_pair(const char *images, const char *labels, uint32_t n)
{
    FILE *f = fopen(images, "wb");
    assert_non_null(f);
    put_be32(f, 0x803);
    put_be32(f, n);
    put_be32(f, 4);
    put_be32(f, 4);
    for (uint32_t i = 0; i < n * 16; i++)
        fputc((int)((i * 37) & 0xff), f);
    fclose(f);
    f = fopen(labels, "wb");
    assert_non_null(f);
    put_be32(f, 0x801);
    put_be32(f, n);
    for (uint32_t i = 0; i < n; i++)
        fputc((int)(i & 1), f);
    fclose(f);
    chmod(images, 0644);
    chmod(labels, 0644);
}

/* A directory with train-{images,labels} and test-{images,labels}. */
static void write_dataset(const char *dir)
{
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/train-images", dir);
    snprintf(b, sizeof b, "%s/train-labels", dir);
    write_idx_pair(a, b, 40);
    snprintf(a, sizeof a, "%s/test-images", dir);
    snprintf(b, sizeof b, "%s/test-labels", dir);
    write_idx_pair(a, b, 8);
}

/* A fresh temporary directory (template dir) holding write_dataset's files;
 * *file is set to dir/name. */
static void dataset_dir(char *dir, char *file, size_t n, const char *name)
{
    assert_non_null(mkdtemp(dir));
    write_dataset(dir);
    snprintf(file, n, "%s/%s", dir, name);
}

static void remove_tree(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static char *idx_spec(const char *train_images, const char *dir, int epochs)
{
    char *y = NULL;
    if (asprintf(&y, "name: access\ndataset: {name: idx, train_images: %s, train_labels: "
                 "%s/train-labels, test_images: %s/test-images, test_labels: %s/test-labels}\n"
                 "model: {input: 16, hidden: [8], classes: 2}\nbatch: 4\nepochs: %d\n"
                 "threads: 1\nmemory_limit: 256MiB\ncheckpoint_every: 1\n", train_images, dir, dir, dir, epochs) < 0)
        return NULL;
    return y;
}

static int send_submit(int fd, const char *yaml)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__SubmitRequest s = MEMTRAIN__SUBMIT_REQUEST__INIT;
    s.spec_case = MEMTRAIN__SUBMIT_REQUEST__SPEC_YAML;
    s.yaml = (char *)yaml;
    s.yaml_name = "access.yaml";
    q.body_case = MEMTRAIN__REQUEST__BODY_SUBMIT;
    q.submit = &s;
    q.id = 3;
    return client_send(fd, &q);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_fifo_refused_and_loop_free(void **state)
{
    (void)state;
    struct daemonproc dp;
    char dir[] = "/tmp/memtrain-fifo-XXXXXX", fifo[300];
    dataset_dir(dir, fifo, sizeof fifo, "fifo");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(daemonproc_start(&dp, NULL), 0);
    char *yaml = idx_spec(fifo, dir, 1);
    int fd = client_connect(dp.sock);
    assert_true(fd >= 0);
    assert_int_equal(send_submit(fd, yaml), 0);
    usleep(200 * 1000);
    int pinged = client_ping_within(dp.sock, 1000);
    /* An old daemon waits in open() for a writer: give it one so it ends. */
    int w = open(fifo, O_WRONLY | O_NONBLOCK);
    if (w >= 0)
        close(w);
    Memtrain__Response *r = client_read(fd);
    assert_non_null(r);
    printf("FIFO as train_images -> status %d: %s; another client's ping %s\n", r->status,
           r->message, pinged == 0 ? "answered within 1 s" : "NOT answered within 1 s");
    assert_int_equal(pinged, 0);
    assert_int_not_equal(r->status, MEMTRAIN__STATUS__OK);
    assert_non_null(strstr(r->message, fifo));
    assert_non_null(strstr(r->message, "a FIFO, not a regular file"));
    memtrain__response__free_unpacked(r, NULL);
    close(fd);
    free(yaml);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
    remove_tree(dir);
}

/* A probe slower than the timeout (a test hook stands in for a stalled
 * mount): other clients are served meanwhile, the submitter is told it timed
 * out, and a client that hangs up while its probe runs harms nothing. */
static void test_slow_probe_off_the_loop(void **state)
{
    (void)state;
    struct daemonproc dp;
    char dir[] = "/tmp/memtrain-slow-XXXXXX", img[300];
    dataset_dir(dir, img, sizeof img, "train-images");
    setenv("MEMTRAIN_TEST_PROBE_SLEEP_MS", "10500", 1);
    int started = daemonproc_start(&dp, NULL);
    unsetenv("MEMTRAIN_TEST_PROBE_SLEEP_MS");
    assert_int_equal(started, 0);
    char *yaml = idx_spec(img, dir, 1);
    int fd = client_connect(dp.sock), gone = client_connect(dp.sock);
    assert_true(fd >= 0 && gone >= 0);
    double t0 = now_s();
    assert_int_equal(send_submit(fd, yaml), 0);
    assert_int_equal(send_submit(gone, yaml), 0);
    usleep(100 * 1000);
    close(gone);
    for (int i = 0; i < 5; i++) {
        double t = now_s();
        assert_int_equal(client_ping_within(dp.sock, 1000), 0);
        printf("ping during the probe answered in %.3f s\n", now_s() - t);
        usleep(300 * 1000);
    }
    Memtrain__Response *r = client_read(fd);
    assert_non_null(r);
    printf("slow probe -> after %.1f s, status %d: %s\n", now_s() - t0, r->status, r->message);
    assert_int_equal(r->status, MEMTRAIN__STATUS__UNAVAILABLE);
    assert_non_null(strstr(r->message, "did not finish in 10 s"));
    assert_non_null(strstr(r->message, img));
    memtrain__response__free_unpacked(r, NULL);
    /* Both probes end on their threads; the daemon then still answers. */
    sleep(1);
    assert_int_equal(client_ping_within(dp.sock, 1000), 0);
    close(fd);
    free(yaml);
    assert_int_equal(daemonproc_stop(&dp, 0), 0);
    remove_tree(dir);
}

/* ---------------------------------------------------------------- as root */

static struct daemonproc rdp;
static char private_dir[] = "/tmp/memtrain-private-XXXXXX";
static char shared_dir[] = "/tmp/memtrain-shared-XXXXXX";

static int root_setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    if (!mkdtemp(private_dir) || !mkdtemp(shared_dir))
        return -1;
    write_dataset(private_dir);
    write_dataset(shared_dir);
    chmod(private_dir, 0700);
    chmod(shared_dir, 0755);
    const char *args[] = {"--slots", "1", NULL};
    if (daemonproc_start(&rdp, args))
        return -1;
    /* Let the second user reach the socket. */
    chmod(rdp.dir, 0755);
    chmod(rdp.sock, 0666);
    return 0;
}

static int root_teardown(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    remove_tree(private_dir);
    remove_tree(shared_dir);
    return daemonproc_stop(&rdp, 0) == 0 ? 0 : -1;
}

static void skip_unless_root(void)
{
    if (geteuid() != 0) {
        print_message("skipped: needs root to act as a second user (uid %d)\n", OTHER_UID);
        skip();
    }
}

/* Run fn in a child that is uid/gid 65534 with no other groups; its exit
 * status is the verdict (0 passed). */
static void as_other_user(int (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) || setgid(OTHER_GID) || setuid(OTHER_UID))
            _exit(99);
        int rc = fn();
        fflush(stdout);
        _exit(rc);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Submit yaml as the current user; the reply's status and message. */
static int submit_reply(const char *yaml, char *msg, size_t n)
{
    int fd = client_connect(rdp.sock);
    if (fd < 0)
        return -2;
    Memtrain__Response *r = client_submit(fd, yaml, "access.yaml");
    close(fd);
    if (!r)
        return -1;
    int st = (int)r->status;
    snprintf(msg, n, "%s", r->message);
    memtrain__response__free_unpacked(r, NULL);
    return st;
}

static int other_private(void)
{
    char img[300], msg[1024];
    snprintf(img, sizeof img, "%s/train-images", private_dir);
    char *yaml = idx_spec(img, private_dir, 1);
    int st = submit_reply(yaml, msg, sizeof msg);
    printf("uid %d, 0700 directory of root -> status %d: %s\n", OTHER_UID, st, msg);
    free(yaml);
    return st != MEMTRAIN__STATUS__OK && strstr(msg, "Permission denied") ? 0 : 1;
}

static void test_private_data_refused(void **state)
{
    (void)state;
    skip_unless_root();
    as_other_user(other_private);
}

/* The message for path with the path itself taken out. */
static void without_path(char *msg, const char *path)
{
    char *p = strstr(msg, path);
    if (p)
        memmove(p, p + strlen(path), strlen(p + strlen(path)) + 1);
}

static int other_missing_like_unreadable(void)
{
    char there[300], missing[300], a[1024], b[1024];
    snprintf(there, sizeof there, "%s/train-images", private_dir);
    snprintf(missing, sizeof missing, "%s/no-such-file", private_dir);
    char *y1 = idx_spec(there, private_dir, 1), *y2 = idx_spec(missing, private_dir, 1);
    int s1 = submit_reply(y1, a, sizeof a), s2 = submit_reply(y2, b, sizeof b);
    printf("existing -> %d: %s\nmissing  -> %d: %s\n", s1, a, s2, b);
    without_path(a, there);
    without_path(b, missing);
    free(y1);
    free(y2);
    return s1 == s2 && s1 != MEMTRAIN__STATUS__OK && strcmp(a, b) == 0 ? 0 : 1;
}

static void test_missing_like_unreadable(void **state)
{
    (void)state;
    skip_unless_root();
    as_other_user(other_missing_like_unreadable);
}

static char shadow_hex[2][16];

static int other_shadow(void)
{
    char msg[1024];
    char *yaml = idx_spec("/etc/shadow", shared_dir, 1);
    int st = submit_reply(yaml, msg, sizeof msg);
    printf("uid %d, /etc/shadow as train_images -> status %d: %s\n", OTHER_UID, st, msg);
    free(yaml);
    if (st == MEMTRAIN__STATUS__OK || strcasestr(msg, shadow_hex[0]) || strcasestr(msg, shadow_hex[1]))
        return 1;
    return strstr(msg, "Permission denied") ? 0 : 1;
}

static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strcasestr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void test_shadow_never_echoed(void **state)
{
    (void)state;
    skip_unless_root();
    unsigned char head[4];
    FILE *f = fopen("/etc/shadow", "rb");
    if (!f || fread(head, 1, 4, f) != 4) {
        if (f)
            fclose(f);
        print_message("skipped: no readable /etc/shadow\n");
        skip();
    }
    fclose(f);
    snprintf(shadow_hex[0], sizeof shadow_hex[0], "%02x%02x%02x%02x", head[0], head[1], head[2],
             head[3]);
    snprintf(shadow_hex[1], sizeof shadow_hex[1], "%.4s", (const char *)head);
    as_other_user(other_shadow);
    char log[400];
    snprintf(log, sizeof log, "%s/daemon.log", rdp.dir);
    assert_false(file_has(log, shadow_hex[0]));
}

/* The worker reads the data as the job's owner: a job queued while its
 * files were readable fails once they are not, instead of training. */
static uint64_t other_job;

static int other_submit_shared(void)
{
    char img[300];
    snprintf(img, sizeof img, "%s/train-images", shared_dir);
    char *yaml = idx_spec(img, shared_dir, 1);
    int fd = client_connect(rdp.sock), st;
    uint64_t id = fd >= 0 ? client_submit_id(fd, yaml, "access.yaml", &st) : 0;
    if (fd >= 0)
        close(fd);
    free(yaml);
    if (!id)
        return 1;
    /* Hand the id back through a file the parent reads. */
    FILE *f = fopen("/tmp/memtrain-access-id", "w");
    if (!f)
        return 2;
    fprintf(f, "%llu\n", (unsigned long long)id);
    fclose(f);
    return 0;
}

static void test_worker_reads_as_owner(void **state)
{
    (void)state;
    skip_unless_root();
#if defined(__SANITIZE_ADDRESS__)
    /* Its job runs under a memory limit, whose RLIMIT_DATA cannot work
     * beside ASan's shadow memory (the worker refuses to start). */
    print_message("skipped: a memory-limited job cannot run under AddressSanitizer\n");
    skip();
#endif
    int fd = client_connect(rdp.sock), st;
    assert_true(fd >= 0);
    /* One slot, taken by root's long job, so the other user's job waits. */
    uint64_t blocker = client_submit_id(fd,
        "name: blocker\ndataset: {name: synthetic, synthetic_train: 20000}\n"
        "model: {input: 64, hidden: [256], classes: 4}\nbatch: 32\nepochs: 50\nthreads: 1\n",
        "blocker.yaml", &st);
    assert_true(blocker > 0);
    unlink("/tmp/memtrain-access-id");
    as_other_user(other_submit_shared);
    FILE *f = fopen("/tmp/memtrain-access-id", "r");
    unsigned long long id = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%llu", &id), 1);
    fclose(f);
    unlink("/tmp/memtrain-access-id");
    other_job = id;
    assert_int_equal(chmod(shared_dir, 0700), 0);
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__CancelRequest c = MEMTRAIN__CANCEL_REQUEST__INIT;
    c.job_id = blocker;
    q.body_case = MEMTRAIN__REQUEST__BODY_CANCEL;
    q.cancel = &c;
    q.id = 5;
    Memtrain__Response *r = client_call(fd, &q);
    assert_non_null(r);
    memtrain__response__free_unpacked(r, NULL);
    assert_int_equal(client_watch(fd, other_job, 0), 0);
    struct watch_seen seen;
    assert_int_equal(client_follow(fd, 0, &seen), 0);
    printf("job %llu of uid %d, data made 0700 before it started -> state %d: %s\n", id,
           OTHER_UID, seen.state, seen.reason);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__FAILED);
    assert_int_equal(seen.epochs, 0);
    assert_non_null(strstr(seen.reason, "Permission denied"));
    /* Readable again: the same user's job trains (and its worker, no longer
     * root, still talks to the daemon over its pipes). */
    assert_int_equal(chmod(shared_dir, 0755), 0);
    as_other_user(other_submit_shared);
    f = fopen("/tmp/memtrain-access-id", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%llu", &id), 1);
    fclose(f);
    unlink("/tmp/memtrain-access-id");
    int fd2 = client_connect(rdp.sock);
    assert_int_equal(client_watch(fd2, id, 0), 0);
    assert_int_equal(client_follow(fd2, 0, &seen), 0);
    printf("job %llu of uid %d, data readable -> state %d: %s\n", id, OTHER_UID, seen.state,
           seen.reason);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
    /* Its checkpoint came over the worker's pipe into the store. */
    Memtrain__CheckpointsRequest cq = MEMTRAIN__CHECKPOINTS_REQUEST__INIT;
    cq.job_id = id;
    q.body_case = MEMTRAIN__REQUEST__BODY_CHECKPOINTS;
    q.checkpoints = &cq;
    r = client_call(fd, &q);
    assert_non_null(r);
    assert_int_equal(r->body_case, MEMTRAIN__RESPONSE__BODY_CHECKPOINTS);
    assert_true(r->checkpoints->n_checkpoints >= 1);
    memtrain__response__free_unpacked(r, NULL);
    close(fd2);
    close(fd);
}

/* ------------------------------------------- memtraind not running as root */

#define THIRD_UID 65533   /* a client neither root nor the daemon's user */

static char nr_dir[] = "/tmp/memtrain-nonroot-XXXXXX";
static char nr_sock[300];

/* The client's status and message for a submit naming dir's files (the
 * train images at `images`), as THIRD_UID. */
static int third_submit(const char *images, const char *dir, char *msg, size_t n)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        if (setgroups(0, NULL) || setgid(OTHER_GID) || setuid(THIRD_UID))
            _exit(99);
        char *yaml = idx_spec(images, dir, 1), m[1024] = "";
        int fd = client_connect(nr_sock), st = -1;
        Memtrain__Response *r = fd >= 0 ? client_submit(fd, yaml, "access.yaml") : NULL;
        if (r) {
            st = (int)r->status;
            snprintf(m, sizeof m, "%s", r->message);
        }
        dprintf(pipefd[1], "%d %s", st, m);
        _exit(0);
    }
    close(pipefd[1]);
    char buf[1100] = "";
    ssize_t got = read(pipefd[0], buf, sizeof buf - 1);
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    buf[got > 0 ? got : 0] = '\0';
    int st = -2, off = 0;
    sscanf(buf, "%d %n", &st, &off);
    snprintf(msg, n, "%s", buf + off);
    return st;
}

/* memtraind as uid 65534 (as under systemd, where it cannot become its
 * clients): files the daemon may read but the client may not are refused,
 * and a missing file there gets the same answer. */
static void test_unprivileged_daemon_checks_client(void **state)
{
    (void)state;
    skip_unless_root();
    char priv[400], pub[400], p[500], a[1024], b[1024], c[1024], db[300];
    assert_non_null(mkdtemp(nr_dir));
    chmod(nr_dir, 0755);
    snprintf(priv, sizeof priv, "%s/priv", nr_dir);
    snprintf(pub, sizeof pub, "%s/pub", nr_dir);
    mkdir(priv, 0700);
    mkdir(pub, 0755);
    write_dataset(priv);
    write_dataset(pub);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "chown -R %d:%d %s", OTHER_UID, OTHER_GID, nr_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(nr_sock, sizeof nr_sock, "%s/d.sock", nr_dir);
    snprintf(db, sizeof db, "%s/state.db", nr_dir);
    pid_t d = fork();
    assert_true(d >= 0);
    if (d == 0) {
        if (setgroups(0, NULL) || setgid(OTHER_GID) || setuid(OTHER_UID))
            _exit(99);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(getenv("MEMTRAIN_DAEMON"), "memtraind", "--socket", nr_sock, "--db", db,
              (char *)NULL);
        _exit(127);
    }
    int up = -1;
    for (int i = 0; i < 250 && up != 0; i++) {
        usleep(20 * 1000);
        up = client_ping(nr_sock);
    }
    assert_int_equal(up, 0);
    chmod(nr_sock, 0666);
    snprintf(p, sizeof p, "%s/train-images", priv);
    int s1 = third_submit(p, priv, a, sizeof a);
    printf("daemon uid %d, client uid %d, daemon's 0700 dir -> %d: %s\n", OTHER_UID, THIRD_UID,
           s1, a);
    snprintf(p, sizeof p, "%s/no-such-file", priv);
    int s2 = third_submit(p, priv, b, sizeof b);
    printf("  missing file there -> %d: %s\n", s2, b);
    snprintf(p, sizeof p, "%s/train-images", pub);
    int s3 = third_submit(p, pub, c, sizeof c);
    printf("  a 0755 dir -> %d: %s\n", s3, c);
    kill(d, SIGTERM);
    waitpid(d, NULL, 0);
    remove_tree(nr_dir);
    assert_int_equal(s1, MEMTRAIN__STATUS__PERMISSION_DENIED);
    assert_int_equal(s2, MEMTRAIN__STATUS__PERMISSION_DENIED);
    snprintf(p, sizeof p, "%s/train-images", priv);
    without_path(a, p);
    snprintf(p, sizeof p, "%s/no-such-file", priv);
    without_path(b, p);
    assert_string_equal(a, b);
    assert_int_equal(s3, MEMTRAIN__STATUS__OK);
}

int main(void)
{
    const struct CMUnitTest loop_tests[] = {
        cmocka_unit_test(test_fifo_refused_and_loop_free),
        cmocka_unit_test(test_slow_probe_off_the_loop),
    };
    const struct CMUnitTest root_tests[] = {
        cmocka_unit_test(test_private_data_refused),
        cmocka_unit_test(test_missing_like_unreadable),
        cmocka_unit_test(test_shadow_never_echoed),
        cmocka_unit_test(test_worker_reads_as_owner),
        cmocka_unit_test(test_unprivileged_daemon_checks_client),
    };
    int failed = cmocka_run_group_tests_name("probe", loop_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("rights", root_tests, root_setup, root_teardown);
    return failed;
}
