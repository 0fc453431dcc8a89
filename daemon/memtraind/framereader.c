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

/* Move what is missing of a `want`-byte piece (`*got` bytes of it in dst
 * already) from the input (*p, *n bytes), advancing both. Nonzero once the
 * piece is whole. */
static int take(uint8_t *dst, size_t *got, size_t want, const uint8_t **p, size_t *n)
{
    size_t k = want - *got;
    if (k > *n)
        k = *n;
    memcpy(dst + *got, *p, k);
    *got += k;
    *p += k;
    *n -= k;
    return *got == want;
}

int frame_reader_feed(struct frame_reader *r, const uint8_t *p, size_t n, frame_fn fn, void *ud,
                      struct mt_err *err)
{
    while (n > 0) {
        if (r->hdr_got < MT_FRAME_HEADER) {
            if (!take(r->hdr, &r->hdr_got, MT_FRAME_HEADER, &p, &n))
                return 0;
            r->len = wire_get_len(r->hdr);
            r->got = 0;
            if (r->len > r->max)
                return mt_err_set(err, MT_E_TOOBIG, "frame of %zu bytes is over the %zu-byte cap",
                                  r->len, r->max);
            if (!(r->body = malloc(r->len ? r->len : 1)))
                return mt_err_set(err, MT_E_NOMEM, "out of memory for a %zu-byte frame", r->len);
        }
        if (!take(r->body, &r->got, r->len, &p, &n))
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
