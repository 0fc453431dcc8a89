/* test-badinput.c: a real memtraind fed bad frames, bad specs and clients
 * that vanish; after each, ping must still be answered. The answers are
 * printed so a reader sees what the daemon said. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemonproc.h"
#include "memtrain/wire.h"

static struct daemonproc dp;

static int setup(void **state)
{
    (void)state;
    return daemonproc_start(&dp, NULL);
}

static int teardown(void **state)
{
    (void)state;
    return daemonproc_stop(&dp, 0) == 0 ? 0 : -1;
}

/* Write raw bytes; read what comes back (a Response, or the close). */
static Memtrain__Response *send_raw(const uint8_t *p, size_t n, int close_write)
{
    int fd = client_connect(dp.sock);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    if (close_write)
        shutdown(fd, SHUT_WR);
    Memtrain__Response *r = client_read(fd);
    close(fd);
    return r;
}

static void show(const char *what, const Memtrain__Response *r)
{
    if (r)
        printf("%-28s -> status %d: %s\n", what, r->status, r->message);
    else
        printf("%-28s -> connection closed without a reply\n", what);
}

/* Random payloads behind valid lengths, for several seeds: each reaches the
 * protobuf decoder (or the verb checks), and the daemon answers or closes,
 * then still answers a ping. */
static void test_random_bytes(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 8; seed++) {
        uint8_t frame[4 + 256];
        srand(seed);
        size_t n = 1 + (size_t)rand() % 256;
        wire_put_len(frame, (uint32_t)n);
        for (size_t i = 0; i < n; i++)
            frame[4 + i] = (uint8_t)rand();
        char what[40];
        snprintf(what, sizeof what, "random %zu bytes, seed %u", n, seed);
        Memtrain__Response *r = send_raw(frame, 4 + n, 1);
        show(what, r);
        if (r) {
            assert_int_not_equal(r->status, MEMTRAIN__STATUS__OK);
            memtrain__response__free_unpacked(r, NULL);
        }
        assert_int_equal(client_ping(dp.sock), 0);
    }
}

static void test_oversize_length(void **state)
{
    (void)state;
    uint8_t hdr[4];
    wire_put_len(hdr, MT_FRAME_MAX_DEFAULT + 1);
    Memtrain__Response *r = send_raw(hdr, 4, 0);
    show("length 16 MiB + 1", r);
    assert_non_null(r);
    assert_int_equal(r->status, MEMTRAIN__STATUS__INVALID);
    memtrain__response__free_unpacked(r, NULL);
    assert_int_equal(client_ping(dp.sock), 0);
}

static void test_truncated_frame(void **state)
{
    (void)state;
    uint8_t b[14];
    wire_put_len(b, 100);
    memset(b + 4, 0x08, 10);
    Memtrain__Response *r = send_raw(b, sizeof b, 1);
    show("truncated frame", r);
    assert_null(r);
    assert_int_equal(client_ping(dp.sock), 0);
}

static void test_garbage_protobuf(void **state)
{
    (void)state;
    uint8_t b[4 + 12];
    wire_put_len(b, 12);
    memset(b + 4, 0xff, 12);
    Memtrain__Response *r = send_raw(b, sizeof b, 0);
    show("not a protobuf Request", r);
    assert_non_null(r);
    assert_int_equal(r->status, MEMTRAIN__STATUS__INVALID);
    memtrain__response__free_unpacked(r, NULL);
    assert_int_equal(client_ping(dp.sock), 0);
}

static void test_unknown_verb(void **state)
{
    (void)state;
    /* version 1, id 5, then field 99 (not a verb this daemon knows), empty */
    uint8_t b[4 + 7] = {0, 0, 0, 7, 0x08, 0x01, 0x10, 0x05, 0x9a, 0x06, 0x00};
    Memtrain__Response *r = send_raw(b, sizeof b, 0);
    show("unknown verb", r);
    assert_non_null(r);
    assert_int_equal(r->status, MEMTRAIN__STATUS__INVALID);
    assert_int_equal(r->id, 5);
    memtrain__response__free_unpacked(r, NULL);
    assert_int_equal(client_ping(dp.sock), 0);
}

static void test_wrong_version(void **state)
{
    (void)state;
    /* version 7, id 6, ping (field 18, empty) */
    uint8_t msg[] = {0x08, 0x07, 0x10, 0x06, 0x92, 0x01, 0x00};
    uint8_t frame[4 + sizeof msg];
    wire_put_len(frame, sizeof msg);
    memcpy(frame + 4, msg, sizeof msg);
    Memtrain__Response *r = send_raw(frame, sizeof frame, 0);
    show("protocol version 7", r);
    assert_non_null(r);
    assert_int_equal(r->status, MEMTRAIN__STATUS__UNSUPPORTED_VERSION);
    memtrain__response__free_unpacked(r, NULL);
    assert_int_equal(client_ping(dp.sock), 0);
}

static void test_invalid_specs(void **state)
{
    (void)state;
    static const struct {
        const char *what, *yaml, *needle;
    } cases[] = {
        {"unknown rule", "dataset: {name: synthetic}\nmodel: {input: 8, hidden: [8], classes: 2}\n"
                         "rule: nosuch\nbatch: 4\nepochs: 1\n", "nosuch"},
        {"zero batch", "dataset: {name: synthetic}\nmodel: {input: 8, hidden: [8], classes: 2}\n"
                       "batch: 0\nepochs: 1\n", "batch"},
        {"missing dataset", "model: {input: 8, hidden: [8], classes: 2}\nbatch: 4\nepochs: 1\n",
         "dataset"},
        {"missing data files", "dataset: {name: idx, train_images: /nonexistent/a, train_labels: "
                               "/nonexistent/b, test_images: /nonexistent/c, test_labels: "
                               "/nonexistent/d}\nmodel: {input: 8, hidden: [8], classes: 2}\n"
                               "batch: 4\nepochs: 1\n", "/nonexistent/a"},
        {"not YAML", "{{{: [", "test.yaml"},
        /* What a rule needs of the spec is checked at submit, not when a
         * worker starts the job. */
        {"asa with tanh", "dataset: {name: synthetic}\nmodel: {input: 8, hidden: [{width: 8, "
                          "activation: tanh}], classes: 2}\nrule: asa\nbatch: 4\nepochs: 1\n",
         "asa needs relu"},
        {"mezo with adam", "dataset: {name: synthetic}\nmodel: {input: 8, hidden: [8], classes: 2}"
                           "\nrule: mezo\noptimizer: adam\nbatch: 4\nepochs: 1\n",
         "optimizer must be sgd without momentum"},
        {"tinyfoa, too few epochs", "dataset: {name: synthetic}\nmodel: {input: 8, hidden: [8, 8],"
                                    " classes: 2}\nrule: tinyfoa\nbatch: 4\nepochs: 1\n",
         "epochs (1) must be at least the number of hidden layers (2)"},
    };
    int fd = client_connect(dp.sock);
    assert_true(fd >= 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Memtrain__Response *r = client_submit(fd, cases[i].yaml, "test.yaml");
        show(cases[i].what, r);
        assert_non_null(r);
        assert_int_equal(r->status, MEMTRAIN__STATUS__INVALID);
        assert_non_null(strstr(r->message, cases[i].needle));
        memtrain__response__free_unpacked(r, NULL);
    }
    close(fd);
    assert_int_equal(client_ping(dp.sock), 0);
}

static const char *small_job =
    "name: small\ndataset: {name: synthetic, synthetic_train: 4096, synthetic_test: 256}\n"
    "model: {input: 32, hidden: [64, 64], classes: 4}\nbatch: 32\nepochs: 3\nthreads: 1\n";

static void test_disconnect_mid_watch(void **state)
{
    (void)state;
    int fd = client_connect(dp.sock), status;
    uint64_t id = client_submit_id(fd, small_job, "test.yaml", &status);
    assert_int_equal(status, MEMTRAIN__STATUS__OK);
    assert_int_equal(client_watch(fd, id, 1), 0);
    close(fd); /* gone before reading anything */
    assert_int_equal(client_ping(dp.sock), 0);

    /* The job itself runs to the end; watch it properly this time. */
    fd = client_connect(dp.sock);
    assert_int_equal(client_watch(fd, id, 1), 0);
    struct watch_seen seen;
    assert_int_equal(client_follow(fd, 0, &seen), 0);
    close(fd);
    /* It may have ended before this watch began: then the final Job is all. */
    printf("job %llu ended in state %d, %u epochs done (%d epoch events seen)\n",
           (unsigned long long)id, seen.state, seen.epochs_done, seen.epochs);
    assert_int_equal(seen.state, MEMTRAIN__JOB_STATE__COMPLETED);
    assert_int_equal(seen.epochs_done, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes),      cmocka_unit_test(test_oversize_length),
        cmocka_unit_test(test_truncated_frame),   cmocka_unit_test(test_garbage_protobuf),
        cmocka_unit_test(test_unknown_verb),      cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_invalid_specs),     cmocka_unit_test(test_disconnect_mid_watch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
