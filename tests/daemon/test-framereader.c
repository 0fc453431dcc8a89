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

/* Append one frame (header and payload) to buf at *off. */
static void put_frame(uint8_t *buf, size_t *off, const char *payload, size_t len)
{
    wire_put_len(buf + *off, (uint32_t)len);
    memcpy(buf + *off + MT_FRAME_HEADER, payload, len);
    *off += MT_FRAME_HEADER + len;
}

/* The stream the split tests use: three frames, the middle one empty. */
static const char *const payloads[] = {"hello", "", "a second, longer frame"};
#define N_PAYLOADS 3

static size_t sample_stream(uint8_t *buf)
{
    size_t off = 0;
    for (int i = 0; i < N_PAYLOADS; i++)
        put_frame(buf, &off, payloads[i], strlen(payloads[i]));
    return off;
}

static void assert_sample_frames(const struct got *g)
{
    assert_int_equal(g->n, N_PAYLOADS);
    for (int i = 0; i < N_PAYLOADS; i++) {
        assert_int_equal(g->len[i], strlen(payloads[i]));
        if (g->len[i])
            assert_memory_equal(g->body[i], payloads[i], g->len[i]);
    }
}

static int feed(struct frame_reader *r, const uint8_t *p, size_t n, struct got *g)
{
    struct mt_err err = {0};
    return frame_reader_feed(r, p, n, on_frame, g, &err);
}

/* ---- tests -------------------------------------------------------------- */

static void test_one_frame_in_one_read(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, "hello", 5);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    assert_int_equal(feed(&r, buf, n, &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], 5);
    assert_memory_equal(g.body[0], "hello", 5);
    assert_false(frame_reader_partial(&r));
    frame_reader_deinit(&r);
}

static void test_partial_reads_wait_for_the_rest(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, "payload", 7);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    assert_false(frame_reader_partial(&r));
    /* Two header bytes: nothing yet, but a frame has begun. */
    assert_int_equal(feed(&r, buf, 2, &g), 0);
    assert_int_equal(g.n, 0);
    assert_true(frame_reader_partial(&r));
    /* The rest of the header and part of the payload. */
    assert_int_equal(feed(&r, buf + 2, 5, &g), 0);
    assert_int_equal(g.n, 0);
    assert_true(frame_reader_partial(&r));
    /* The payload's tail completes it. */
    assert_int_equal(feed(&r, buf + 7, n - 7, &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], 7);
    assert_memory_equal(g.body[0], "payload", 7);
    assert_false(frame_reader_partial(&r));
    frame_reader_deinit(&r);
}

static void test_two_frames_in_one_read(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, "first", 5);
    put_frame(buf, &n, "second!", 7);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    assert_int_equal(feed(&r, buf, n, &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.len[0], 5);
    assert_memory_equal(g.body[0], "first", 5);
    assert_int_equal(g.len[1], 7);
    assert_memory_equal(g.body[1], "second!", 7);
    assert_false(frame_reader_partial(&r));
    frame_reader_deinit(&r);
}

static void test_a_frame_and_the_next_ones_head(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, "first", 5);
    size_t second = n;
    put_frame(buf, &n, "second", 6);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    /* The first frame plus 3 bytes of the second's header. */
    assert_int_equal(feed(&r, buf, second + 3, &g), 0);
    assert_int_equal(g.n, 1);
    assert_true(frame_reader_partial(&r));
    assert_int_equal(feed(&r, buf + second + 3, n - second - 3, &g), 0);
    assert_int_equal(g.n, 2);
    assert_memory_equal(g.body[1], "second", 6);
    frame_reader_deinit(&r);
}

static void test_stream_split_at_every_byte(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample_stream(buf);
    for (size_t cut = 0; cut <= n; cut++) {
        struct frame_reader r;
        struct got g = {0};
        frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
        assert_int_equal(feed(&r, buf, cut, &g), 0);
        assert_int_equal(feed(&r, buf + cut, n - cut, &g), 0);
        assert_sample_frames(&g);
        assert_false(frame_reader_partial(&r));
        frame_reader_deinit(&r);
    }
}

static void test_stream_fed_one_byte_at_a_time(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample_stream(buf);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(feed(&r, buf + i, 1, &g), 0);
    assert_sample_frames(&g);
    assert_false(frame_reader_partial(&r));
    frame_reader_deinit(&r);
}

static void test_zero_length_frames(void **state)
{
    (void)state;
    /* A protobuf message with every field at its default packs to 0 bytes:
     * a frame of length 0 is a real message, handed out like any other. */
    uint8_t buf[16];
    size_t n = 0;
    put_frame(buf, &n, "", 0);
    put_frame(buf, &n, "", 0);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    assert_int_equal(feed(&r, buf, MT_FRAME_HEADER, &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], 0);
    assert_false(frame_reader_partial(&r));
    assert_int_equal(feed(&r, buf + MT_FRAME_HEADER, MT_FRAME_HEADER, &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.len[1], 0);
    frame_reader_deinit(&r);
}

static void test_length_at_the_cap_is_taken(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, "0123456789", 10);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, 10);
    assert_int_equal(feed(&r, buf, n, &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], 10);
    frame_reader_deinit(&r);
}

static void test_length_over_the_cap_is_refused_before_allocating(void **state)
{
    (void)state;
    uint32_t lens[] = {11, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t hdr[MT_FRAME_HEADER];
        wire_put_len(hdr, lens[i]);
        struct frame_reader r;
        struct got g = {0};
        struct mt_err err = {0};
        frame_reader_init(&r, 10);
        /* The first three header bytes are not enough to judge. */
        mallocs = 0;
        assert_int_equal(frame_reader_feed(&r, hdr, 3, on_frame, &g, &err), 0);
        assert_int_equal(frame_reader_feed(&r, hdr + 3, 1, on_frame, &g, &err), MT_E_TOOBIG);
        assert_int_equal(mallocs, 0);
        assert_null(r.body);
        assert_int_equal(g.n, 0);
        assert_int_equal(err.code, MT_E_TOOBIG);
        assert_non_null(strstr(err.msg, "over the 10-byte cap"));
        frame_reader_deinit(&r);
    }
}

static void test_payload_allocates_once(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, "payload", 7);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    mallocs = 0;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(feed(&r, buf + i, 1, &g), 0);
    assert_int_equal(mallocs, 1);
    assert_int_equal(g.n, 1);
    frame_reader_deinit(&r);
}

static void test_out_of_memory_is_reported(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, "payload", 7);
    struct frame_reader r;
    struct got g = {0};
    struct mt_err err = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    fail_malloc = 1;
    int rc = frame_reader_feed(&r, buf, n, on_frame, &g, &err);
    fail_malloc = 0;
    assert_int_equal(rc, MT_E_NOMEM);
    assert_int_equal(g.n, 0);
    assert_non_null(strstr(err.msg, "out of memory for a 7-byte frame"));
    frame_reader_deinit(&r);
}

static void test_callback_stops_the_feed(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample_stream(buf);
    struct frame_reader r;
    struct got g = {.stop_after = 1};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    /* The callback's value comes back; the frames after it are not read. */
    assert_int_equal(feed(&r, buf, n, &g), 7);
    assert_int_equal(g.n, 1);
    assert_memory_equal(g.body[0], "hello", 5);
    frame_reader_deinit(&r);
}

static void test_deinit_frees_a_partial_frame(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, "payload", 7);
    struct frame_reader r;
    struct got g = {0};
    frame_reader_init(&r, MT_FRAME_MAX_DEFAULT);
    assert_int_equal(feed(&r, buf, n - 1, &g), 0);
    assert_non_null(r.body);
    frame_reader_deinit(&r);
    assert_null(r.body);
    frame_reader_deinit(&r); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_frame_in_one_read),
        cmocka_unit_test(test_partial_reads_wait_for_the_rest),
        cmocka_unit_test(test_two_frames_in_one_read),
        cmocka_unit_test(test_a_frame_and_the_next_ones_head),
        cmocka_unit_test(test_stream_split_at_every_byte),
        cmocka_unit_test(test_stream_fed_one_byte_at_a_time),
        cmocka_unit_test(test_zero_length_frames),
        cmocka_unit_test(test_length_at_the_cap_is_taken),
        cmocka_unit_test(test_length_over_the_cap_is_refused_before_allocating),
        cmocka_unit_test(test_payload_allocates_once),
        cmocka_unit_test(test_out_of_memory_is_reported),
        cmocka_unit_test(test_callback_stops_the_feed),
        cmocka_unit_test(test_deinit_frees_a_partial_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
