/* conn.c: reading Requests and writing Responses on one connection (conn.h). */
#include "conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"

struct write_req {
    uv_write_t req;
    struct conn *c;
    uint8_t *buf;
    size_t len;
    conn_sent_fn sent;
    void *ud;
};

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct daemon *d = c->d;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->n_conns--;
    d->conn_handler->closed(c); /* its watches and fetch go */
    frame_reader_deinit(&c->fr);
    free(c->rbuf);
    free(c);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1; /* its watches go in the close callback */
    c->d->out_queued -= c->queued; /* cancelled and freed before the close callback */
    uv_close((uv_handle_t *)&c->pipe, on_closed);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->c;
    size_t cost = CONN_WRITE_COST(w->len);
    c->queued -= cost;
    if (!c->closing)
        c->d->out_queued -= cost;
    c->active_ms = (int64_t)uv_now(c->d->loop);
    free(w->buf);
    if (w->sent)
        w->sent(c, w->ud, status);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        log_debug("client pid %ld: write failed: %s", (long)c->pid, uv_strerror(status));
        conn_close(c);
    } else if (c->close_after_write && c->queued == 0) {
        conn_close(c);
    }
}

/* The open conn with the most bytes queued; `c` unless another has more. */
static struct conn *furthest_behind(struct daemon *d, struct conn *c)
{
    struct conn *worst = c;
    for (struct conn *o = d->conns; o; o = o->next)
        if (!o->closing && o->queued > worst->queued)
            worst = o;
    return worst;
}

int conn_send(struct conn *c, uint64_t id, Memtrain__Response *r, conn_sent_fn sent, void *ud)
{
    if (c->closing) {
        if (sent)
            sent(c, ud, UV_ECANCELED);
        return UV_ECANCELED;
    }
    r->id = id;
    struct write_req *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = frame_pack(&r->base, &w->len))) {
        free(w);
        log_err("client pid %ld: out of memory packing a reply; closing", (long)c->pid);
        conn_close(c);
        if (sent)
            sent(c, ud, UV_ENOMEM);
        return MT_E_NOMEM;
    }
    size_t cost = CONN_WRITE_COST(w->len);
    struct daemon *d = c->d;
    size_t cap = d->cfg.output_buffer_max < CONN_MAX_QUEUED ? d->cfg.output_buffer_max
                                                             : CONN_MAX_QUEUED;
    struct conn *drop = NULL;
    if (c->queued + cost > cap)
        drop = c;
    else if (d->out_queued + cost > d->cfg.output_buffer_max)
        drop = furthest_behind(d, c);
    if (drop) {
        log_warn("client pid %ld uid %u: %zu bytes unread (%llu queued for all clients, "
                 "output_buffer_max %llu); dropping the connection", (long)drop->pid,
                 (unsigned)drop->uid, drop->queued, (unsigned long long)d->out_queued,
                 (unsigned long long)d->cfg.output_buffer_max);
        conn_close(drop);
    }
    if (drop == c) {
        free(w->buf);
        free(w);
        if (sent)
            sent(c, ud, UV_ENOBUFS);
        return UV_ENOBUFS;
    }
    w->c = c;
    w->sent = sent;
    w->ud = ud;
    uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written);
    if (rc < 0) {
        free(w->buf);
        free(w);
        conn_close(c);
        if (sent)
            sent(c, ud, rc);
        return rc;
    }
    c->queued += cost;
    d->out_queued += cost;
    return 0;
}

int conn_send_error(struct conn *c, uint64_t id, Memtrain__Status status, const char *fmt, ...)
{
    char msg[MT_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.status = status;
    r.message = msg;
    return conn_send(c, id, &r, NULL, NULL);
}

/* A frame the conn cannot go on from: answer, then close after the write. */
static void refuse(struct conn *c, Memtrain__Status status, const char *msg)
{
    log_info("client pid %ld uid %u: %s; closing the connection", (long)c->pid,
             (unsigned)c->uid, msg);
    c->close_after_write = 1;
    uv_read_stop((uv_stream_t *)&c->pipe);
    conn_send_error(c, 0, status, "%s", msg);
}

static int on_frame(void *ud, const uint8_t *body, size_t len)
{
    struct conn *c = ud;
    Memtrain__Request *req = memtrain__request__unpack(NULL, len, body);
    if (!req) {
        refuse(c, MEMTRAIN__STATUS__INVALID, "malformed request: not a memtrain Request message");
        return 1;
    }
    c->d->conn_handler->request(c, req);
    memtrain__request__free_unpacked(req, NULL);
    return c->closing || c->close_after_write;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->rbuf, CONN_READ_BUF);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (n == 0)
        return;
    if (n < 0) {
        if (n != UV_EOF)
            log_debug("client pid %ld: read: %s", (long)c->pid, uv_strerror((int)n));
        else if (frame_reader_partial(&c->fr))
            log_info("client pid %ld uid %u: closed in the middle of a frame", (long)c->pid,
                     (unsigned)c->uid);
        conn_close(c);
        return;
    }
    struct mt_err err = {0};
    c->active_ms = (int64_t)uv_now(c->d->loop);
    int rc = frame_reader_feed(&c->fr, (const uint8_t *)c->rbuf, (size_t)n, on_frame, c, &err);
    if (!frame_reader_partial(&c->fr))
        c->frame_start_ms = 0;
    else if (!c->frame_start_ms)
        c->frame_start_ms = c->active_ms;
    if (rc == MT_E_TOOBIG)
        refuse(c, MEMTRAIN__STATUS__INVALID, err.msg);
    else if (rc == MT_E_NOMEM)
        refuse(c, MEMTRAIN__STATUS__UNAVAILABLE, err.msg);
}

void conn_sweep(struct daemon *d, int64_t now_ms)
{
    for (struct conn *c = d->conns; c; c = c->next) {
        if (c->closing)
            continue;
        if (c->frame_start_ms && now_ms - c->frame_start_ms >= (int64_t)d->cfg.frame_timeout_ms) {
            log_info("client pid %ld uid %u: a request left half sent for %u ms; closing the "
                     "connection", (long)c->pid, (unsigned)c->uid, d->cfg.frame_timeout_ms);
            conn_close(c);
        } else if (!c->frame_start_ms && c->n_watches == 0 && !c->fetching && c->queued == 0 &&
                   now_ms - c->active_ms >= (int64_t)d->cfg.idle_timeout_ms) {
            log_info("client pid %ld uid %u: idle for %u ms; closing the connection",
                     (long)c->pid, (unsigned)c->uid, d->cfg.idle_timeout_ms);
            conn_close(c);
        }
    }
}

int conn_start(struct conn *c)
{
    c->active_ms = (int64_t)uv_now(c->d->loop);
    frame_reader_init(&c->fr, c->d->cfg.frame_max);
    if (!(c->rbuf = malloc(CONN_READ_BUF)))
        return MT_E_NOMEM;
    return uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}
