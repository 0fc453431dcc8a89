/* conn.h: one client connection: frames in, Responses out.
 *
 * A conn is allocated only after the connection limit is checked
 * (server.c), and freed only in its uv_close callback. Each complete frame
 * is unpacked as a Request and handed to the daemon's conn_handler (main.c
 * sets it: dispatch.c answers); a frame that cannot be (over the cap, not a
 * Request) gets an error Response and the connection is closed once that is
 * written. The handler hears of the close before the conn is freed, so what
 * refers to the conn (its streams, watch.c) can go. */
#ifndef MT_CONN_H
#define MT_CONN_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "daemon.h"
#include "framereader.h"
#include "memtrain.pb-c.h"

#define CONN_READ_BUF (64 * 1024)
/* A reader that falls this far behind (bytes queued for it) is dropped;
 * so is the reader furthest behind when every conn's queued bytes together
 * would pass cfg.output_buffer_max. Queued bytes count the frame and the
 * write request that holds it (CONN_WRITE_COST). */
#define CONN_MAX_QUEUED (256u << 20)
#define CONN_WRITE_COST(len) ((len) + sizeof(uv_write_t) + 64)
/* Step and memory watch events are skipped for a conn with more than this
 * queued: a slow watcher sees the latest state when it catches up. */
#define CONN_COALESCE_QUEUED (64u << 10)
/* Watches and log follows one connection may hold at once. */
#define CONN_MAX_WATCHES 16

struct conn {
    uv_pipe_t pipe;               /* pipe.data = this */
    struct daemon *d;
    struct conn *next, *prev;
    uid_t uid;                    /* SO_PEERCRED */
    gid_t gid;
    pid_t pid;
    int in_group;                 /* access.c's cache: 0 not asked yet, 1 yes, -1 no */
    struct frame_reader fr;
    char *rbuf;                   /* CONN_READ_BUF bytes, owned */
    size_t queued;                /* CONN_WRITE_COST of writes not yet completed */
    int closing;
    int close_after_write;
    int n_watches;                /* watch.c */
    int fetching;                 /* a checkpoint fetch is being streamed (dispatch.c) */
    int64_t active_ms;            /* last read or completed write (idle timeout) */
    int64_t frame_start_ms;       /* a frame began arriving; 0 = none partial */
};

/* What the daemon does with its connections (d->conn_handler). */
struct conn_handler {
    /* Answer one Request (valid during the call only); c may be closing
     * afterwards. */
    void (*request)(struct conn *c, const Memtrain__Request *req);
    /* c is closed and about to be freed: drop every reference to it. */
    void (*closed)(struct conn *c);
};

/* Called when a write completes (ok = 0) or fails (negative libuv code);
 * used to send large replies piece by piece. */
typedef void (*conn_sent_fn)(struct conn *c, void *ud, int status);

/* Take a connected pipe handle (already accepted into c->pipe) and start
 * reading. */
int conn_start(struct conn *c);
/* Send r (its id set to `id`); `sent` (may be NULL) is called on
 * completion. A no-op on a closing conn, and sent is called with
 * UV_ECANCELED. Returns 0 or a negative libuv/MT code. */
int conn_send(struct conn *c, uint64_t id, Memtrain__Response *r, conn_sent_fn sent, void *ud);
/* An error Response with a printf-style message. */
int conn_send_error(struct conn *c, uint64_t id, Memtrain__Status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Close now (idempotent); the conn is freed in the close callback. */
void conn_close(struct conn *c);
/* Close the conns past their timeouts at `now_ms` (server.c's sweep timer):
 * a frame half sent for cfg.frame_timeout_ms, or no watch, no fetch, nothing
 * queued and nothing read for cfg.idle_timeout_ms. Each close is logged. */
void conn_sweep(struct daemon *d, int64_t now_ms);

#endif
