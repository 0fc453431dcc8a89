/* bench-daemon.c: memtraind's latencies on an idle daemon, printed as
 * figures (it asserts nothing about speed):
 *   - ping round trip on one connection, median and p99 of 100;
 *   - submit-to-RUNNING: from sending a submit to the watch event that says
 *     RUNNING (the worker spawned), median of 20 small jobs run one by one;
 *   - a burst of 50 submissions from 50 connections at once: the time until
 *     all are answered.
 * Usage: memtrain-bench-daemon (MEMTRAIN_DAEMON names memtraind; meson sets it). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemonproc.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *tiny =
    "name: tiny\ndataset: {name: synthetic, synthetic_train: 256, synthetic_test: 64}\n"
    "model: {input: 16, hidden: [16], classes: 2}\nbatch: 32\nepochs: 1\nthreads: 1\n";

/* Watch everything first, so the RUNNING event cannot be missed. */
static double submit_to_running(const char *sock)
{
    int wfd = client_connect(sock), fd = client_connect(sock), status;
    client_watch(wfd, 0, 0);
    usleep(20000); /* let the watch register */
    double t0 = now_s(), running = -1;
    uint64_t id = client_submit_id(fd, tiny, NULL, &status);
    Memtrain__Response *r;
    int done = 0;
    while (!done && (r = client_read(wfd))) {
        if (r->watch && r->watch->job_id == id &&
            r->watch->event_case == MEMTRAIN__WATCH_EVENT__EVENT_JOB) {
            int st = r->watch->job->state;
            if (st == MEMTRAIN__JOB_STATE__RUNNING && running < 0)
                running = now_s() - t0;
            done = st >= MEMTRAIN__JOB_STATE__COMPLETED;
        }
        memtrain__response__free_unpacked(r, NULL);
    }
    close(wfd);
    close(fd);
    return running;
}

struct burst {
    pthread_t t;
    const char *sock;
    int ok;
};

static void *burst_main(void *arg)
{
    struct burst *b = arg;
    int fd = client_connect(b->sock), status = -1;
    if (fd >= 0) {
        client_submit_id(fd, tiny, NULL, &status);
        close(fd);
    }
    b->ok = status == MEMTRAIN__STATUS__OK;
    return NULL;
}

int main(void)
{
    struct daemonproc dp;
    static const char *const args[] = {"--slots", "1", NULL};
    if (daemonproc_start(&dp, args)) {
        fprintf(stderr, "memtrain-bench-daemon: cannot start memtraind ($MEMTRAIN_DAEMON)\n");
        return 1;
    }
    double ping[100], run[20];
    int fd = client_connect(dp.sock);
    for (int i = 0; i < 100; i++) {
        Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
        Memtrain__PingRequest p = MEMTRAIN__PING_REQUEST__INIT;
        q.body_case = MEMTRAIN__REQUEST__BODY_PING;
        q.ping = &p;
        double t0 = now_s();
        Memtrain__Response *r = client_call(fd, &q);
        ping[i] = now_s() - t0;
        if (r)
            memtrain__response__free_unpacked(r, NULL);
    }
    close(fd);
    qsort(ping, 100, sizeof *ping, cmp_double);
    printf("# memtraind latencies (idle daemon, Unix socket)\n\n");
    printf("ping round trip, 100 on one connection: median %.1f us, p99 %.1f us\n",
           ping[49] * 1e6, ping[98] * 1e6);
    int n = 0;
    for (int i = 0; i < 20; i++) {
        double t = submit_to_running(dp.sock);
        if (t >= 0)
            run[n++] = t;
    }
    qsort(run, (size_t)n, sizeof *run, cmp_double);
    if (n)
        printf("submit to RUNNING, %d jobs one at a time: median %.2f ms, max %.2f ms\n", n,
               run[n / 2] * 1e3, run[n - 1] * 1e3);
    struct burst b[50];
    double t0 = now_s();
    for (int i = 0; i < 50; i++) {
        b[i].sock = dp.sock;
        pthread_create(&b[i].t, NULL, burst_main, &b[i]);
    }
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        pthread_join(b[i].t, NULL);
        ok += b[i].ok;
    }
    printf("burst of 50 submissions from 50 connections: %d answered OK in %.1f ms\n", ok,
           (now_s() - t0) * 1e3);
    daemonproc_stop(&dp, 0);
    return ok == 50 ? 0 : 1;
}
