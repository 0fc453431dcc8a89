/* fuzzconn.c: conn.h without a socket, for fuzz-dispatch.c.
 *
 * The link-time seam of the dispatch target: the fuzz build links this file
 * in place of daemon/memtraind/conn.c, so dispatch.c runs unchanged while its
 * replies stay in memory. Each reply is packed as the daemon would frame it,
 * then unpacked again (a reply a client could not decode aborts). Write
 * completions are queued and delivered by fuzzconn_drain, after the handler
 * returns, as the loop would deliver them. */
#include "fuzzconn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "frame.h"
#include "memtrain/wire.h"

struct sent_note {
    struct conn *c;
    conn_sent_fn sent;
    void *ud;
    int status;
    struct sent_note *next;
};

static struct sent_note *pending, **pending_tail = &pending;
static size_t replies;
int fuzzconn_verbose;

static void note_sent(struct conn *c, conn_sent_fn sent, void *ud, int status)
{
    if (!sent)
        return;
    struct sent_note *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    *n = (struct sent_note){c, sent, ud, status, NULL};
    *pending_tail = n;
    pending_tail = &n->next;
}

int conn_start(struct conn *c)
{
    (void)c;
    return 0;
}

int conn_send(struct conn *c, uint64_t id, Memtrain__Response *r, conn_sent_fn sent, void *ud)
{
    if (c->closing) {
        note_sent(c, sent, ud, UV_ECANCELED);
        return UV_ECANCELED;
    }
    r->id = id;
    size_t len = 0;
    uint8_t *buf = frame_pack(&r->base, &len);
    if (!buf)
        abort();
    if (len < MT_FRAME_HEADER)
        abort();
    Memtrain__Response *back =
        memtrain__response__unpack(NULL, len - MT_FRAME_HEADER, buf + MT_FRAME_HEADER);
    if (!back)
        abort(); /* a reply no client can decode */
    if (fuzzconn_verbose)
        fprintf(stderr, "reply id %llu: status %d, body %d: %s\n", (unsigned long long)back->id,
                (int)back->status, (int)back->body_case, back->message ? back->message : "");
    memtrain__response__free_unpacked(back, NULL);
    free(buf);
    replies++;
    note_sent(c, sent, ud, 0);
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

void conn_close(struct conn *c)
{
    c->closing = 1;
}

void fuzzconn_drain(void)
{
    while (pending) {
        struct sent_note *n = pending;
        pending = n->next;
        if (!pending)
            pending_tail = &pending;
        n->sent(n->c, n->ud, n->status);
        free(n);
    }
}

size_t fuzzconn_replies(void)
{
    return replies;
}
