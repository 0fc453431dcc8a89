/* test-load.c: twenty clients watching one job at once, and fifty
 * submissions in a burst from fifty connections: every one answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemonproc.h"

static struct daemonproc dp;

static int setup(void **state)
{
    (void)state;
    static const char *const args[] = {"--slots", "1", NULL};
    return daemonproc_start(&dp, args);
}

static int teardown(void **state)
{
    (void)state;
    return daemonproc_stop(&dp, 0) == 0 ? 0 : -1;
}

static const char *job_yaml =
    "name: load\ndataset: {name: synthetic, synthetic_train: 65536, synthetic_test: 256}\n"
    "model: {input: 32, hidden: [512, 512], classes: 4}\nbatch: 32\nepochs: 4\nthreads: 1\n";

struct watcher {
    pthread_t t;
    int fd;
    struct watch_seen seen;
};

static void *watch_main(void *arg)
{
    struct watcher *w = arg;
    client_follow(w->fd, 0, &w->seen);
    return NULL;
}

static void test_twenty_watchers(void **state)
{
    (void)state;
    int fd = client_connect(dp.sock), st;
    uint64_t id = client_submit_id(fd, job_yaml, NULL, &st);
    assert_int_equal(st, MEMTRAIN__STATUS__OK);
    close(fd);
    struct watcher w[20];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 20; i++) {
        w[i].fd = client_connect(dp.sock);
        assert_true(w[i].fd >= 0);
        assert_int_equal(client_watch(w[i].fd, id, i % 2), 0);
        pthread_create(&w[i].t, NULL, watch_main, &w[i]);
    }
    int min_epochs = 99;
    for (int i = 0; i < 20; i++) {
        pthread_join(w[i].t, NULL);
        close(w[i].fd);
        assert_true(w[i].seen.ended);
        assert_int_equal(w[i].seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
        if (w[i].seen.epochs < min_epochs)
            min_epochs = w[i].seen.epochs;
    }
    printf("20 watchers: all saw job %llu end COMPLETED; fewest epoch events seen: %d\n",
           (unsigned long long)id, min_epochs);
    assert_true(min_epochs >= 3); /* they joined during epoch 1 at the latest */
}

struct submitter {
    pthread_t t;
    int status;
    uint64_t id;
};

static void *submit_main(void *arg)
{
    struct submitter *s = arg;
    int fd = client_connect(dp.sock);
    if (fd < 0) {
        s->status = -2;
        return NULL;
    }
    s->id = client_submit_id(fd, job_yaml, NULL, &s->status);
    close(fd);
    return NULL;
}

static void test_fifty_submissions(void **state)
{
    (void)state;
    struct submitter s[50];
    memset(s, 0, sizeof s);
    for (int i = 0; i < 50; i++)
        pthread_create(&s[i].t, NULL, submit_main, &s[i]);
    for (int i = 0; i < 50; i++)
        pthread_join(s[i].t, NULL);
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        ok += s[i].status == MEMTRAIN__STATUS__OK && s[i].id > 0;
        for (int j = 0; j < i; j++)
            assert_true(s[i].id != s[j].id);
    }
    printf("burst of 50 submissions: %d answered OK with distinct ids\n", ok);
    assert_int_equal(ok, 50);
    /* Queued behind one slot: list shows them; cancel them all. */
    int fd = client_connect(dp.sock);
    int cancelled = 0;
    for (int i = 0; i < 50; i++) {
        Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
        Memtrain__CancelRequest c = MEMTRAIN__CANCEL_REQUEST__INIT;
        c.job_id = s[i].id;
        q.body_case = MEMTRAIN__REQUEST__BODY_CANCEL;
        q.cancel = &c;
        Memtrain__Response *r = client_call(fd, &q);
        assert_non_null(r);
        cancelled += r->status == MEMTRAIN__STATUS__OK;
        memtrain__response__free_unpacked(r, NULL);
    }
    close(fd);
    assert_int_equal(cancelled, 50);
    assert_int_equal(client_ping(dp.sock), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twenty_watchers),
        cmocka_unit_test(test_fifty_submissions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
