/* framereader.c: incremental frame assembly (framereader.h). */
#include "framereader.h"

#include <stdlib.h>
#include <string.h>

#include "memtrain/wire.h"

void frame_reader_init(struct frame_reader *r, size_t max)
{
    memset(r, 0, sizeof *r);
    r->max = max;
}

void frame_reader_deinit(struct frame_reader *r)
{
    free(r->body);
    r->body = NULL;
}

int frame_reader_partial(const struct frame_reader *r)
{
    return r->hdr_got > 0 || r->body != NULL;
}

int frame_reader_feed(struct frame_reader *r, const uint8_t *p, size_t n, frame_fn fn, void *ud,
                      struct mt_err *err)
{
    while (n > 0) {
        if (r->hdr_got < MT_FRAME_HEADER) {
            size_t k = MT_FRAME_HEADER - r->hdr_got;
            if (k > n)
                k = n;
            memcpy(r->hdr + r->hdr_got, p, k);
            r->hdr_got += k;
            p += k;
            n -= k;
            if (r->hdr_got < MT_FRAME_HEADER)
                return 0;
            r->len = wire_get_len(r->hdr);
            r->got = 0;
            if (r->len > r->max)
                return mt_err_set(err, MT_E_TOOBIG, "frame of %zu bytes is over the %zu-byte cap",
                                  r->len, r->max);
            if (!(r->body = malloc(r->len ? r->len : 1)))
                return mt_err_set(err, MT_E_NOMEM, "out of memory for a %zu-byte frame", r->len);
        }
        size_t k = r->len - r->got;
        if (k > n)
            k = n;
        memcpy(r->body + r->got, p, k);
        r->got += k;
        p += k;
        n -= k;
        if (r->got < r->len)
            return 0;
        uint8_t *body = r->body;
        size_t len = r->len;
        r->body = NULL;
        r->hdr_got = 0;
        int rc = fn(ud, body, len);
        free(body);
        if (rc)
            return rc;
    }
    return 0;
}
