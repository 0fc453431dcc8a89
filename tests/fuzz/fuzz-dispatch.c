/* fuzz-dispatch.c: bytes from a client -> frames -> Requests -> replies.
 *
 * The input's first byte picks the peer (even: uid 1000, odd: root); the
 * rest is the byte stream a client sends. It reaches the daemon's own
 * conn.c in reads of 1..64 bytes sized by the stream's own bytes, so the
 * frame reader (framereader.c), the Request unpacking and the refusals are
 * the daemon's, and dispatch.c answers each Request against a fresh
 * in-memory store: an input is a whole session (submit, then list, show,
 * cancel, watch...), ended by EOF. libuv's stream calls are in memory
 * (fuzzuv.c): every reply is checked to decode. No job ever starts: the
 * one slot counts as taken. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "conn.h"
#include "daemon.h"
#include "dispatch.h"
#include "fuzzuv.h"
#include "jobs.h"
#include "log.h"
#include "watch.h"

static uv_loop_t loop;


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* MT_FUZZ_VERBOSE=1: the daemon's log and each reply on stderr */
    fuzzuv_verbose = getenv("MT_FUZZ_VERBOSE") != NULL;
    log_init(fuzzuv_verbose ? LOG_DEBUG : LOG_EMERG, 0);
    if (uv_loop_init(&loop))
        abort();
    return 0;
}

/* What the loop would do between reads: complete writes, run queued work. */
static void settle(struct daemon *d)
{
    fuzzuv_drain();
    uv_run(d->loop, UV_RUN_DEFAULT);
    fuzzuv_drain();
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
    d.conn_handler = &dispatch_conn_handler; /* as main.c */
    if (store_open(&d.store, ":memory:", &err))
        abort();

    /* As server.c accepts one. */
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->d = &d;
    c->uid = (data[0] & 1) ? 0 : 1000;
    c->pid = 1;
    c->pipe.data = c;
    d.conns = c;
    d.n_conns = 1;
    if (conn_start(c))
        abort();

    const uint8_t *p = data + 1;
    size_t left = size - 1;
    while (left) {
        size_t n = 1 + (p[0] & 63);
        if (n > left)
            n = left;
        size_t took = fuzzuv_feed((uv_stream_t *)&c->pipe, p, n);
        settle(&d);
        if (!took)
            break; /* the conn stopped reading (refused) or closed */
        p += took;
        left -= took;
    }
    if (d.n_conns) {
        if (!fuzzuv_feed((uv_stream_t *)&c->pipe, NULL, 0)) /* EOF */
            conn_close(c);
        settle(&d);
    }
    if (d.n_conns || d.watches)
        abort(); /* the conn and its streams must be gone */
    jobs_free_all(&d);
    store_close(d.store);
    config_free(&d.cfg);
    return 0;
}
