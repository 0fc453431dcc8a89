/* bench-abuse.c: memtraind's memory under the abuse patterns of issue 11.
 *
 * Starts a real memtraind (default settings: output_buffer_max 64 MiB,
 * max_connections 256) on a temporary socket and store, then runs each
 * pattern for --seconds and prints the daemon's resident set before, its
 * peak while the pattern ran (sampled every 100 ms, and VmHWM) and whether
 * another client's ping was still answered within a second:
 *
 *   fetches   connections that pipeline 60 checkpoint fetches each of a
 *             ~15 MiB checkpoint and never read (a new one every 100 ms)
 *   watcher   connections each holding 16 step watches of a running job with
 *             step events every step, never reading
 *   conns     every connection the daemon allows, each half a step watcher
 *             and half a pipelined fetcher, none reading
 *   request   one client sending 8 MiB requests (a submit whose YAML is
 *             8 MiB) back to back: the cost of a large request
 *
 * Figures, not pass/fail. The documented bound (README, "What one client
 * can hold") is 64 MiB plus output_buffer_max. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemonproc.h"
#include "memtrain/procstat.h"
#include "memtrain/wire.h"

#define MiB (1024.0 * 1024.0)
#define MAX_FDS 1024

static struct daemonproc dp;
static int fds[MAX_FDS];
static int n_fds;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static struct mt_procstat daemon_stat(void)
{
    struct mt_procstat ps;
    mt_procstat_read(dp.pid, &ps, NULL);
    return ps;
}

/* A connection that does not read: a small receive buffer, kept open. */
static int open_unread(void)
{
    if (n_fds == MAX_FDS)
        return -1;
    int fd = client_connect(dp.sock);
    if (fd < 0)
        return -1;
    int opt = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt, sizeof opt);
    fds[n_fds++] = fd;
    return fd;
}

static void close_all(void)
{
    for (int i = 0; i < n_fds; i++)
        close(fds[i]);
    n_fds = 0;
}

static void pipeline_fetches(int fd, uint64_t job, int n)
{
    for (int i = 0; i < n; i++)
        if (client_send_ckpt_fetch(fd, job, 100 + (uint64_t)i))
            return;
}

static void watch_steps(int fd, uint64_t job, int n)
{
    for (int i = 0; i < n; i++)
        if (client_watch(fd, job, 1))
            return;
}

/* Submit and wait for the end (when wait): the job's id, 0 on failure. */
static uint64_t submit(const char *yaml, int wait)
{
    int fd = client_connect(dp.sock), st;
    if (fd < 0)
        return 0;
    uint64_t id = client_submit_id(fd, yaml, NULL, &st);
    if (id && wait) {
        struct watch_seen seen;
        if (client_watch(fd, id, 0) || client_follow(fd, 0, &seen) ||
            seen.state != MEMTRAIN__JOB_STATE__COMPLETED)
            id = 0;
    }
    close(fd);
    return id;
}

/* Adam over ~1.3 M parameters: a checkpoint of about 15 MiB. */
static const char *ckpt_yaml =
    "name: abuse-ckpt\ndataset: {name: synthetic, synthetic_train: 256, synthetic_test: 64}\n"
    "model: {input: 256, hidden: [1024, 1024], classes: 4}\nbatch: 64\nepochs: 1\n"
    "threads: 1\n";
/* Tiny steps, one step event each, for far longer than a pattern runs. */
static const char *steps_yaml =
    "name: abuse-steps\ndataset: {name: synthetic, synthetic_train: 4000000, synthetic_test: 64}\n"
    "model: {input: 8, hidden: [8], classes: 2}\nbatch: 1\nepochs: 1\nthreads: 1\n";

struct result {
    double rss0, peak, hwm;
    int pings, slow_pings;
};

/* Sample for `seconds`, calling step() every 100 ms (it may open more). */
static void run_for(double seconds, void (*step)(void *), void *ctx, struct result *r)
{
    struct mt_procstat ps = daemon_stat();
    r->rss0 = ps.rss / MiB;
    r->peak = r->rss0;
    double end = now_s() + seconds, next_ping = now_s();
    while (now_s() < end) {
        if (step)
            step(ctx);
        sleep_ms(100);
        ps = daemon_stat();
        if (ps.rss / MiB > r->peak)
            r->peak = ps.rss / MiB;
        if (now_s() >= next_ping) {
            r->pings++;
            r->slow_pings += client_ping_within(dp.sock, 1000) != 0;
            next_ping = now_s() + 1;
        }
    }
    r->hwm = daemon_stat().hwm / MiB;
}

static void print_result(const char *name, const char *what, const struct result *r)
{
    printf("%-8s %-52s rss %6.1f -> peak %6.1f MiB (VmHWM %6.1f); pings late %d/%d; %d conns\n",
           name, what, r->rss0, r->peak, r->hwm, r->slow_pings, r->pings, n_fds);
    fflush(stdout);
}

static uint64_t ckpt_job, steps_job;

static void fetches_step(void *ctx)
{
    (void)ctx;
    int fd = n_fds < 200 ? open_unread() : -1;
    if (fd >= 0)
        pipeline_fetches(fd, ckpt_job, 60);
}

static void watcher_step(void *ctx)
{
    (void)ctx;
    int fd = n_fds < 200 ? open_unread() : -1;
    if (fd >= 0)
        watch_steps(fd, steps_job, 16);
}

static void conns_step(void *ctx)
{
    (void)ctx;
    for (int i = 0; i < 32 && n_fds < 250; i++) {
        int fd = open_unread();
        if (fd < 0)
            return;
        if (n_fds % 2)
            watch_steps(fd, steps_job, 16);
        else
            pipeline_fetches(fd, ckpt_job, 60);
    }
}

static char *big_yaml;

static void request_step(void *ctx)
{
    (void)ctx;
    int fd = client_connect(dp.sock);
    if (fd < 0)
        return;
    Memtrain__Response *r = client_submit(fd, big_yaml, NULL);
    if (r)
        memtrain__response__free_unpacked(r, NULL);
    close(fd);
}

/* Default settings but step events on every step: the harshest stream. */
static int start_daemon(void)
{
    char cfg[] = "/tmp/memtrain-bench-abuse-XXXXXX";
    int cfd = mkstemp(cfg);
    if (cfd < 0 || dprintf(cfd, "step_every: 1\nslots: 2\n") < 0) {
        perror("memtrain-bench-abuse: config");
        return -1;
    }
    close(cfd);
    const char *const args[] = {"--config", cfg, NULL};
    int rc = daemonproc_start(&dp, args);
    unlink(cfg);
    if (rc)
        fprintf(stderr, "memtrain-bench-abuse: memtraind did not start\n");
    return rc;
}

/* One pattern on a fresh daemon, so each peak is its own. 0, 1 or 2. */
static int run_pattern(const char *pat, double seconds)
{
    struct result r = {0};
    int rc = 0;
    ckpt_job = steps_job = 0;
    if (start_daemon())
        return 1;
    int need_ckpt = !strcmp(pat, "fetches") || !strcmp(pat, "conns");
    int need_steps = !strcmp(pat, "watcher") || !strcmp(pat, "conns");
    if (need_ckpt && !(ckpt_job = submit(ckpt_yaml, 1))) {
        fprintf(stderr, "memtrain-bench-abuse: the checkpoint job did not complete\n");
        rc = 1;
    } else if (need_steps && !(steps_job = submit(steps_yaml, 0))) {
        fprintf(stderr, "memtrain-bench-abuse: the step job was refused\n");
        rc = 1;
    } else if (!strcmp(pat, "fetches")) {
        run_for(seconds, fetches_step, NULL, &r);
        print_result("fetches", "a new conn of 60 unread ckpt fetches every 100 ms", &r);
    } else if (!strcmp(pat, "watcher")) {
        run_for(seconds, watcher_step, NULL, &r);
        print_result("watcher", "a new conn of 16 unread step watches every 100 ms", &r);
    } else if (!strcmp(pat, "conns")) {
        run_for(seconds, conns_step, NULL, &r);
        print_result("conns", "250 conns, unread step watches or ckpt fetches", &r);
    } else if (!strcmp(pat, "request")) {
        size_t n = 8u << 20;
        if (!(big_yaml = malloc(n + 1))) {
            rc = 1;
        } else {
            memset(big_yaml, '#', n);
            big_yaml[n] = 0;
            run_for(seconds, request_step, NULL, &r);
            print_result("request", "8 MiB submit requests back to back", &r);
            free(big_yaml);
            big_yaml = NULL;
        }
    } else {
        fprintf(stderr, "memtrain-bench-abuse: unknown pattern '%s'\n", pat);
        rc = 2;
    }
    close_all();
    daemonproc_stop(&dp, 0);
    return rc;
}

static void usage(FILE *f)
{
    fputs("Usage: memtrain-bench-abuse [--seconds N] [PATTERN...]\n"
          "Start a memtraind with default settings ($MEMTRAIN_DAEMON, $MEMTRAIN_WORKER) and\n"
          "print its resident memory under each PATTERN (default: all) for N seconds\n"
          "(default 60): fetches, watcher, conns, request. See the file's header.\n",
          f);
}

int main(int argc, char **argv)
{
    double seconds = 60;
    static const struct option longopts[] = {
        {"seconds", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'}, {0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
        if (opt == 's')
            seconds = atof(optarg);
        else if (opt == 'h')
            return usage(stdout), 0;
        else
            return usage(stderr), 2;
    }
    if (!getenv("MEMTRAIN_DAEMON") || !getenv("MEMTRAIN_WORKER")) {
        fprintf(stderr, "memtrain-bench-abuse: set MEMTRAIN_DAEMON and MEMTRAIN_WORKER "
                        "(meson test --benchmark does)\n");
        return 2;
    }
    const char *all[] = {"fetches", "watcher", "conns", "request"};
    const char **pats = optind < argc ? (const char **)argv + optind : all;
    int n_pats = optind < argc ? argc - optind : 4;

    printf("memtraind with default settings (output_buffer_max 64 MiB, 256 connections; "
           "step_every 1), a fresh one per pattern, %.0f s each\n", seconds);
    int rc = 0;
    for (int i = 0; i < n_pats && rc == 0; i++)
        rc = run_pattern(pats[i], seconds);
    return rc;
}
