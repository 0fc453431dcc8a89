/* daemon.h: memtraind's state, owned by the one loop thread.
 *
 * The loop owns the listening socket and its connections (conn.c), the
 * active jobs and their workers (jobs.c, workerproc.c), the streams clients are
 * following (watch.c) and the SQLite handle (store.c). Nothing here is
 * touched from another thread. */
#ifndef MT_DAEMON_H
#define MT_DAEMON_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "store.h"

struct conn;
struct conn_handler;
struct job;
struct probe;
struct tidy;
struct promfile;
struct watch;

struct daemon {
    uv_loop_t *loop;
    struct mt_config cfg;
    const char *config_path;      /* NULL: the default file, if present */
    struct store *store;
    uv_pipe_t listener;
    int listening;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t tick;              /* store flush, memory sampling, shutdown checks */
    const struct conn_handler *conn_handler; /* what a conn does with a Request (main.c) */
    struct conn *conns;           /* list, newest first */
    int n_conns;
    uint64_t out_queued;          /* bytes held for writes to open conns (conn.c) */
    uv_timer_t sweep;             /* idle and partial-frame timeouts (server.c) */
    int sweeping;
    struct job *jobs;             /* QUEUED and RUNNING jobs, in submit order */
    struct watch *watches;        /* every open stream */
    struct probe *probes;         /* dataset probes on the threadpool (probe.c) */
    struct tidy *tidy;            /* removals in progress (tidy.c) */
    uv_timer_t retention;         /* the retention policy's runs (retention.c) */
    int retention_on;
    struct promfile *prom;        /* the metrics_textfile writer (promfile.c); NULL = none */
    int running;                  /* jobs with a live worker */
    int64_t started_ms;
    int stopping;                 /* SIGTERM seen: no new work, waiting for workers */
    int64_t drain_until_ms;       /* workers gone: replies left unread are dropped after this */
    int exit_code;
};

#endif
