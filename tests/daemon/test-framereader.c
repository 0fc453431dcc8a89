/* test-framereader.c: the daemon's non-blocking frame reader
 * (daemon/memtraind/framereader.c).
 *
 * A stream of frames (memtrain/wire.h: 4-byte big-endian length, then the
 * payload) is fed in every way a read can cut it: whole, byte by byte, cut
 * once at every byte, several frames in one read, and frames of length 0.
 * Every frame handed out is recorded and compared with what was sent. The
 * cap is checked by counting calls to malloc: the test is linked with
 * -Wl,--wrap=malloc, so the reader's malloc comes here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "framereader.h"
#include "memtrain/wire.h"

/* ---- malloc, counted (and failed on request) ---------------------------- */

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

static size_t mallocs;           /* calls since the last reset */
static int fail_malloc;          /* nonzero: return NULL */

void *__wrap_malloc(size_t n)
{
    mallocs++;
    return fail_malloc ? NULL : __real_malloc(n);
}

/* ---- what the reader hands out ------------------------------------------ */

#define MAX_FRAMES 16

struct got {
    size_t n;
    size_t len[MAX_FRAMES];
    uint8_t body[MAX_FRAMES][64];
    int stop_after;              /* the callback returns 7 after this many frames; 0 = never */
};

static int on_frame(void *ud, const uint8_t *body, size_t len)
{
    struct got *g = ud;
    assert_true(g->n < MAX_FRAMES);
    assert_true(len <= sizeof g->body[0]);
    assert_non_null(body);
    g->len[g->n] = len;
    memcpy(g->body[g->n], body, len);
    g->n++;
    return g->stop_after && (int)g->n == g->stop_after ? 7 : 0;
}

/* Each test's reader, what it handed out and the bytes to feed it. */
static struct fixture {
    struct frame_reader r;
    struct got g;
    struct mt_err err;
    uint8_t buf[128];
    size_t n;                    /* bytes in buf */
} fx;

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    frame_reader_init(&fx.r, MT_FRAME_MAX_DEFAULT);
    mallocs = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    frame_reader_deinit(&fx.r);
    return 0;
}

/* Append one frame (header and payload) to fx.buf; returns its offset. */
static size_t put_frame(const char *payload, size_t len)
{
    size_t at = fx.n;
    assert_true(at + MT_FRAME_HEADER + len <= sizeof fx.buf);
    wire_put_len(fx.buf + at, (uint32_t)len);
    memcpy(fx.buf + at + MT_FRAME_HEADER, payload, len);
    fx.n += MT_FRAME_HEADER + len;
    return at;
}

/* Feed fx.buf[from, to) to the reader. */
static int feed(size_t from, size_t to)
{
    return frame_reader_feed(&fx.r, fx.buf + from, to - from, on_frame, &fx.g, &fx.err);
}

/* Frame i handed out is `payload`. */
static void assert_frame(size_t i, const char *payload)
{
    assert_true(fx.g.n > i);
    assert_int_equal(fx.g.len[i], strlen(payload));
    if (fx.g.len[i])
        assert_memory_equal(fx.g.body[i], payload, fx.g.len[i]);
}

/* The stream the split tests use: three frames, the middle one empty. */
static const char *const payloads[] = {"hello", "", "a second, longer frame"};
#define N_PAYLOADS 3

static void put_sample_stream(void)
{
    for (int i = 0; i < N_PAYLOADS; i++)
        put_frame(payloads[i], strlen(payloads[i]));
}

static void assert_sample_frames(void)
{
    assert_int_equal(fx.g.n, N_PAYLOADS);
    for (int i = 0; i < N_PAYLOADS; i++)
        assert_frame((size_t)i, payloads[i]);
    assert_false(frame_reader_partial(&fx.r));
}

/* ---- tests -------------------------------------------------------------- */

static void test_one_frame_in_one_read(void **state)
{
    (void)state;
    put_frame("hello", 5);
    assert_int_equal(feed(0, fx.n), 0);
    assert_int_equal(fx.g.n, 1);
    assert_frame(0, "hello");
    assert_false(frame_reader_partial(&fx.r));
}

static void test_partial_reads_wait_for_the_rest(void **state)
{
    (void)state;
    put_frame("payload", 7);
    assert_false(frame_reader_partial(&fx.r));
    /* Two header bytes: nothing yet, but a frame has begun. */
    assert_int_equal(feed(0, 2), 0);
    assert_int_equal(fx.g.n, 0);
    assert_true(frame_reader_partial(&fx.r));
    /* The rest of the header and part of the payload. */
    assert_int_equal(feed(2, 7), 0);
    assert_int_equal(fx.g.n, 0);
    assert_true(frame_reader_partial(&fx.r));
    /* The payload's tail completes it. */
    assert_int_equal(feed(7, fx.n), 0);
    assert_int_equal(fx.g.n, 1);
    assert_frame(0, "payload");
    assert_false(frame_reader_partial(&fx.r));
}

static void test_two_frames_in_one_read(void **state)
{
    (void)state;
    put_frame("first", 5);
    put_frame("second!", 7);
    assert_int_equal(feed(0, fx.n), 0);
    assert_int_equal(fx.g.n, 2);
    assert_frame(0, "first");
    assert_frame(1, "second!");
    assert_false(frame_reader_partial(&fx.r));
}

static void test_a_frame_and_the_next_ones_head(void **state)
{
    (void)state;
    put_frame("first", 5);
    size_t second = put_frame("second", 6);
    /* The first frame plus 3 bytes of the second's header. */
    assert_int_equal(feed(0, second + 3), 0);
    assert_int_equal(fx.g.n, 1);
    assert_true(frame_reader_partial(&fx.r));
    assert_int_equal(feed(second + 3, fx.n), 0);
    assert_int_equal(fx.g.n, 2);
    assert_frame(1, "second");
}

static void test_stream_split_at_every_byte(void **state)
{
    (void)state;
    put_sample_stream();
    for (size_t cut = 0; cut <= fx.n; cut++) {
        frame_reader_deinit(&fx.r);
        frame_reader_init(&fx.r, MT_FRAME_MAX_DEFAULT);
        memset(&fx.g, 0, sizeof fx.g);
        assert_int_equal(feed(0, cut), 0);
        assert_int_equal(feed(cut, fx.n), 0);
        assert_sample_frames();
    }
}

static void test_stream_fed_one_byte_at_a_time(void **state)
{
    (void)state;
    put_sample_stream();
    for (size_t i = 0; i < fx.n; i++)
        assert_int_equal(feed(i, i + 1), 0);
    assert_sample_frames();
}

static void test_zero_length_frames(void **state)
{
    (void)state;
    /* A protobuf message with every field at its default packs to 0 bytes:
     * a frame of length 0 is a real message, handed out like any other. */
    put_frame("", 0);
    put_frame("", 0);
    assert_int_equal(feed(0, MT_FRAME_HEADER), 0);
    assert_int_equal(fx.g.n, 1);
    assert_int_equal(fx.g.len[0], 0);
    assert_false(frame_reader_partial(&fx.r));
    assert_int_equal(feed(MT_FRAME_HEADER, fx.n), 0);
    assert_int_equal(fx.g.n, 2);
    assert_int_equal(fx.g.len[1], 0);
}

static void test_length_at_the_cap_is_taken(void **state)
{
    (void)state;
    frame_reader_init(&fx.r, 10);
    put_frame("0123456789", 10);
    assert_int_equal(feed(0, fx.n), 0);
    assert_int_equal(fx.g.n, 1);
    assert_frame(0, "0123456789");
}

static void test_length_over_the_cap_is_refused_before_allocating(void **state)
{
    (void)state;
    uint32_t lens[] = {11, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        frame_reader_init(&fx.r, 10);
        memset(&fx.err, 0, sizeof fx.err);
        wire_put_len(fx.buf, lens[i]);
        mallocs = 0;
        /* The first three header bytes are not enough to judge. */
        assert_int_equal(feed(0, 3), 0);
        assert_int_equal(feed(3, 4), MT_E_TOOBIG);
        assert_int_equal(mallocs, 0);
        assert_null(fx.r.body);
        assert_int_equal(fx.g.n, 0);
        assert_int_equal(fx.err.code, MT_E_TOOBIG);
        assert_non_null(strstr(fx.err.msg, "over the 10-byte cap"));
    }
}

static void test_payload_allocates_once(void **state)
{
    (void)state;
    put_frame("payload", 7);
    for (size_t i = 0; i < fx.n; i++)
        assert_int_equal(feed(i, i + 1), 0);
    assert_int_equal(mallocs, 1);
    assert_int_equal(fx.g.n, 1);
}

static void test_out_of_memory_is_reported(void **state)
{
    (void)state;
    put_frame("payload", 7);
    fail_malloc = 1;
    int rc = feed(0, fx.n);
    fail_malloc = 0;
    assert_int_equal(rc, MT_E_NOMEM);
    assert_int_equal(fx.g.n, 0);
    assert_non_null(strstr(fx.err.msg, "out of memory for a 7-byte frame"));
}

static void test_callback_stops_the_feed(void **state)
{
    (void)state;
    put_sample_stream();
    fx.g.stop_after = 1;
    /* The callback's value comes back; the frames after it are not read. */
    assert_int_equal(feed(0, fx.n), 7);
    assert_int_equal(fx.g.n, 1);
    assert_frame(0, "hello");
}

static void test_deinit_frees_a_partial_frame(void **state)
{
    (void)state;
    put_frame("payload", 7);
    assert_int_equal(feed(0, fx.n - 1), 0);
    assert_non_null(fx.r.body);
    frame_reader_deinit(&fx.r);
    assert_null(fx.r.body);
    frame_reader_deinit(&fx.r); /* twice is harmless (teardown is the third) */
}

#define T(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_one_frame_in_one_read),
        T(test_partial_reads_wait_for_the_rest),
        T(test_two_frames_in_one_read),
        T(test_a_frame_and_the_next_ones_head),
        T(test_stream_split_at_every_byte),
        T(test_stream_fed_one_byte_at_a_time),
        T(test_zero_length_frames),
        T(test_length_at_the_cap_is_taken),
        T(test_length_over_the_cap_is_refused_before_allocating),
        T(test_payload_allocates_once),
        T(test_out_of_memory_is_reported),
        T(test_callback_stops_the_feed),
        T(test_deinit_frees_a_partial_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
