/* probe.c: a submitted dataset's headers, read on libuv's threadpool with
 * the client's rights (probe.h).
 *
 * A probe is shared by two owners on the loop: the pool request (until its
 * after-work callback) and the timeout timer (until its close callback).
 * It is freed when both are done; the client is answered at most once, by
 * whichever comes first of the result and the timeout, and never after its
 * connection closed (probe_drop_conn clears p->c). */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "memtrain/usercreds.h"

struct probe {
    struct daemon *d;
    struct probe *next;
    struct conn *c;               /* NULL once answered or closed */
    uint64_t req_id;
    uid_t uid;
    uv_work_t work;
    uv_timer_t timer;
    int work_done, timer_closed;
    struct mt_data_spec ds;
    char what[MT_PATH_LEN];       /* the path named in messages */
    probe_done_fn done;
    void *ud;
    void (*ud_free)(void *);
    /* written by the pool thread, read after it */
    int rc;
    struct mt_data_shape shape;
    struct mt_err err;
};

static struct probe **probe_list(struct daemon *d)
{
    return &d->probes;
}

static void unlink_probe(struct probe *p)
{
    for (struct probe **q = probe_list(p->d); *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            return;
        }
}

static void maybe_free(struct probe *p)
{
    if (!p->work_done || !p->timer_closed)
        return;
    unlink_probe(p);
    if (p->ud_free)
        p->ud_free(p->ud);
    free(p);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    p->timer_closed = 1;
    maybe_free(p);
}

static void stop_timer(struct probe *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

/* A test hook: MEMTRAIN_TEST_PROBE_SLEEP_MS makes every probe this slow,
 * standing in for a stalled mount in the integration tests. */
static void test_sleep(void)
{
    const char *s = getenv("MEMTRAIN_TEST_PROBE_SLEEP_MS");
    long ms = s ? strtol(s, NULL, 10) : 0;
    if (ms > 0)
        usleep((useconds_t)ms * 1000);
}

/* On a pool thread: the headers, read as the client. */
static void probe_work(uv_work_t *w)
{
    struct probe *p = w->data;
    struct mt_creds as, saved;
    int switched = 0;
    test_sleep();
    if (p->uid != geteuid() && (p->rc = mt_creds_lookup(p->uid, &as, &p->err)))
        return;
    if (geteuid() == 0 && p->uid != 0) {
        if ((p->rc = mt_creds_enter_thread(&as, &saved, &p->err)))
            return;
        switched = 1;
    } else if (p->uid != geteuid() && (p->rc = data_check_reader(&p->ds, &as, &p->err))) {
        return;
    }
    p->rc = data_probe(&p->ds, &p->shape, &p->err);
    if (switched)
        mt_creds_leave_thread(&saved);
}

static void probe_after(uv_work_t *w, int status)
{
    struct probe *p = w->data;
    p->work_done = 1;
    if (p->c) {
        struct conn *c = p->c;
        p->c = NULL;
        if (status < 0) {
            p->rc = MT_E_IO;
            mt_err_set(&p->err, MT_E_IO, "dataset probe of %s: %s", p->what, uv_strerror(status));
        }
        p->done(c, p->req_id, p->ud, p->rc, &p->shape, &p->err);
    }
    stop_timer(p);
    maybe_free(p);
}

static void on_timeout(uv_timer_t *t)
{
    struct probe *p = t->data;
    if (p->c) {
        conn_send_error(p->c, p->req_id, MEMTRAIN__STATUS__UNAVAILABLE,
                        "dataset probe of %s did not finish in %d s", p->what,
                        PROBE_TIMEOUT_MS / 1000);
        log_warn("client pid %ld uid %u: dataset probe of %s did not finish in %d s",
                 (long)p->c->pid, (unsigned)p->uid, p->what, PROBE_TIMEOUT_MS / 1000);
        p->c = NULL;
    }
    stop_timer(p);
}

static void describe(const struct mt_data_spec *ds, char *out, size_t n)
{
    const char *path = ds->kind == MT_DATA_IDX ? ds->train_images : ds->dir;
    snprintf(out, n, "%s", path[0] ? path : data_kind_name(ds->kind));
}

int probe_start(struct conn *c, uint64_t req_id, const struct mt_data_spec *ds,
                probe_done_fn done, void *ud, void (*ud_free)(void *))
{
    struct probe *p = calloc(1, sizeof *p);
    if (!p) {
        conn_send_error(c, req_id, MEMTRAIN__STATUS__ERROR, "out of memory");
        if (ud_free)
            ud_free(ud);
        return MT_E_NOMEM;
    }
    *p = (struct probe){.d = c->d, .c = c, .req_id = req_id, .uid = c->uid, .ds = *ds,
                        .done = done, .ud = ud, .ud_free = ud_free};
    p->ds.has_shape = 0;
    describe(ds, p->what, sizeof p->what);
    p->work.data = p->timer.data = p;
    uv_timer_init(c->d->loop, &p->timer);
    int rc = uv_queue_work(c->d->loop, &p->work, probe_work, probe_after);
    if (rc < 0) {
        conn_send_error(c, req_id, MEMTRAIN__STATUS__ERROR, "dataset probe of %s: %s", p->what,
                        uv_strerror(rc));
        p->work_done = 1;
        p->next = c->d->probes;
        c->d->probes = p;
        stop_timer(p);
        return MT_E_IO;
    }
    uv_timer_start(&p->timer, on_timeout, PROBE_TIMEOUT_MS, 0);
    p->next = c->d->probes;
    c->d->probes = p;
    return 0;
}

void probe_drop_conn(struct daemon *d, struct conn *c)
{
    for (struct probe *p = d->probes; p; p = p->next)
        if (p->c == c) {
            p->c = NULL;
            stop_timer(p);
        }
}
