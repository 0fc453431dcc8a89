/* fuzz-dispatch.c: bytes from a client -> frames -> Requests -> replies.
 *
 * The input's first byte picks the peer (even: uid 1000, odd: root); the
 * rest is the byte stream a client sends, fed to the daemon's frame reader
 * (framereader.c) in pieces the input's own bytes size. Each whole frame is
 * unpacked as a Request, as conn.c does, and answered by dispatch.c against
 * a fresh in-memory store, so an input is a whole session (submit, then
 * list, show, cancel, watch...). Replies stay in memory (fuzzconn.c). No
 * job ever starts: every slot counts as taken. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daemon.h"
#include "dispatch.h"
#include "fuzzconn.h"
#include "jobs.h"
#include "log.h"
#include "watch.h"

#define FUZZ_FRAME_MAX (1u << 20)

static uv_loop_t loop;

static void on_conn_closed(struct conn *c)
{
    watch_drop_conn(c->d, c);
}

static const struct conn_handler handler = {dispatch_request, on_conn_closed};

static int on_frame(void *ud, const uint8_t *body, size_t len)
{
    struct conn *c = ud;
    Memtrain__Request *req = memtrain__request__unpack(NULL, len, body);
    if (!req)
        return 1; /* conn.c refuses and closes */
    c->d->conn_handler->request(c, req);
    memtrain__request__free_unpacked(req, NULL);
    fuzzconn_drain();
    uv_run(c->d->loop, UV_RUN_DEFAULT); /* work queued by a handler, if any */
    fuzzconn_drain();
    return c->closing || c->close_after_write;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* MT_FUZZ_VERBOSE=1: the daemon's log and each reply on stderr */
    fuzzconn_verbose = getenv("MT_FUZZ_VERBOSE") != NULL;
    log_init(fuzzconn_verbose ? LOG_DEBUG : LOG_EMERG, 0);
    if (uv_loop_init(&loop))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct daemon d;
    memset(&d, 0, sizeof d);
    struct mt_err err = {0};
    if (config_defaults(&d.cfg))
        abort();
    d.cfg.slots = 1;
    d.running = 1; /* the one slot is taken: submitted jobs stay queued */
    d.loop = &loop;
    d.conn_handler = &handler;
    if (store_open(&d.store, ":memory:", &err))
        abort();

    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->d = &d;
    c->uid = (data[0] & 1) ? 0 : 1000;
    c->pid = 1;
    d.conns = c;
    d.n_conns = 1;
    frame_reader_init(&c->fr, FUZZ_FRAME_MAX);

    /* Pieces of 1..64 bytes, sized by the stream's own bytes. */
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    int rc = 0;
    while (left && !rc) {
        size_t n = 1 + (p[0] & 63);
        if (n > left)
            n = left;
        rc = frame_reader_feed(&c->fr, p, n, on_frame, c, &err);
        p += n;
        left -= n;
    }

    c->closing = 1;
    fuzzconn_drain();
    handler.closed(c);
    frame_reader_deinit(&c->fr);
    free(c);
    jobs_free_all(&d);
    store_close(d.store);
    config_free(&d.cfg);
    return 0;
}
