/* fuzzuv.c: libuv's stream calls for conn.c, in memory (fuzzuv.h). */
#include "fuzzuv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memtrain.pb-c.h"
#include "memtrain/wire.h"

int __wrap_uv_read_start(uv_stream_t *s, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
int __wrap_uv_read_stop(uv_stream_t *s);
int __wrap_uv_write(uv_write_t *req, uv_stream_t *s, const uv_buf_t bufs[], unsigned nbufs,
                    uv_write_cb cb);
void __wrap_uv_close(uv_handle_t *h, uv_close_cb cb);

int fuzzuv_verbose;

/* One stream at a time: the target's one connection. */
static uv_stream_t *reader;
static uv_alloc_cb on_alloc;
static uv_read_cb on_read;

struct pending {
    uv_write_t *req;     /* a write, or NULL for a close */
    uv_write_cb write_cb;
    uv_handle_t *h;
    uv_close_cb close_cb;
    struct pending *next;
};
static struct pending *queue, **queue_tail = &queue;

static void push(struct pending p)
{
    struct pending *n = malloc(sizeof *n);
    if (!n)
        abort();
    *n = p;
    n->next = NULL;
    *queue_tail = n;
    queue_tail = &n->next;
}

int __wrap_uv_read_start(uv_stream_t *s, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    reader = s;
    on_alloc = alloc_cb;
    on_read = read_cb;
    return 0;
}

int __wrap_uv_read_stop(uv_stream_t *s)
{
    if (reader == s)
        reader = NULL;
    return 0;
}

/* The bytes of one write must be exactly one frame holding a Response. */
static void check_reply(const uv_buf_t bufs[], unsigned nbufs)
{
    size_t len = 0;
    for (unsigned i = 0; i < nbufs; i++)
        len += bufs[i].len;
    uint8_t *all = malloc(len ? len : 1);
    if (!all)
        abort();
    for (size_t i = 0, at = 0; i < nbufs; at += bufs[i].len, i++)
        memcpy(all + at, bufs[i].base, bufs[i].len);
    if (len < MT_FRAME_HEADER || wire_get_len(all) != len - MT_FRAME_HEADER)
        abort(); /* not one whole frame */
    Memtrain__Response *r =
        memtrain__response__unpack(NULL, len - MT_FRAME_HEADER, all + MT_FRAME_HEADER);
    if (!r)
        abort(); /* a reply no client can decode */
    if (fuzzuv_verbose)
        fprintf(stderr, "reply id %llu: status %d, body %d: %s\n", (unsigned long long)r->id,
                (int)r->status, (int)r->body_case, r->message ? r->message : "");
    memtrain__response__free_unpacked(r, NULL);
    free(all);
}

int __wrap_uv_write(uv_write_t *req, uv_stream_t *s, const uv_buf_t bufs[], unsigned nbufs,
                    uv_write_cb cb)
{
    check_reply(bufs, nbufs);
    req->handle = s;
    push((struct pending){.req = req, .write_cb = cb, .h = (uv_handle_t *)s});
    return 0;
}

void __real_uv_close(uv_handle_t *h, uv_close_cb cb);

/* Only the connection's pipe is faked; other handles (the dataset probe's
 * timer) live on the real loop, and closing them must mark them closing
 * (uv_is_closing), which only libuv's own uv_close does. */
void __wrap_uv_close(uv_handle_t *h, uv_close_cb cb)
{
    if (h->type == UV_TIMER) {
        __real_uv_close(h, cb);
        return;
    }
    if ((uv_handle_t *)reader == h)
        reader = NULL;
    push((struct pending){.h = h, .close_cb = cb});
}

size_t fuzzuv_feed(uv_stream_t *s, const uint8_t *p, size_t n)
{
    if (reader != s)
        return 0;
    uv_buf_t buf = uv_buf_init(NULL, 0);
    on_alloc((uv_handle_t *)s, n ? n : 1, &buf);
    if (n > buf.len)
        n = buf.len;
    if (n)
        memcpy(buf.base, p, n);
    on_read(s, n ? (ssize_t)n : UV_EOF, &buf);
    return n;
}

void fuzzuv_drain(void)
{
    while (queue) {
        struct pending *p = queue;
        queue = p->next;
        if (!queue)
            queue_tail = &queue;
        if (p->req) {
            /* a write still queued behind a close of its stream is cancelled */
            int closed = 0;
            for (struct pending *q = queue; q; q = q->next)
                closed |= !q->req && q->h == p->h;
            p->write_cb(p->req, closed ? UV_ECANCELED : 0);
        } else {
            p->close_cb(p->h);
        }
        free(p);
    }
}
