/* framereader.h: assembling frames (memtrain/wire.h) from bytes that come
 * in pieces.
 *
 * The daemon's reads are non-blocking: libuv hands over whatever arrived,
 * which may be part of a header, several frames, or a frame's tail and the
 * next one's head. A frame_reader keeps what is missing between calls and
 * hands out each frame once it is whole. The length is checked against the
 * reader's cap as soon as the 4 header bytes are in, before anything is
 * allocated. Pure bytes: no libuv, no protobuf; a test feeds it directly. */
#ifndef MT_FRAMEREADER_H
#define MT_FRAMEREADER_H

#include <stddef.h>
#include <stdint.h>

#include "memtrain/err.h"

struct frame_reader {
    size_t max;                  /* cap on a frame's payload */
    uint8_t hdr[4];
    size_t hdr_got;
    uint8_t *body;               /* owned; the frame being filled */
    size_t len, got;
};

/* Called once per complete frame; `body` is valid during the call only (a
 * zero-length frame has len 0). Nonzero stops frame_reader_feed, which
 * returns that value; the bytes after that frame are not looked at. */
typedef int (*frame_fn)(void *ud, const uint8_t *body, size_t len);

/* A reader with nothing received, refusing payloads over `max` bytes. */
void frame_reader_init(struct frame_reader *r, size_t max);
/* Free the partly received frame, if any. */
void frame_reader_deinit(struct frame_reader *r);
/* Feed n bytes (any split of the stream). Returns 0, fn's nonzero value,
 * MT_E_TOOBIG (a length over the cap: nothing was allocated and the stream
 * is unusable from there) or MT_E_NOMEM, with the message in err. */
int frame_reader_feed(struct frame_reader *r, const uint8_t *p, size_t n, frame_fn fn, void *ud,
                      struct mt_err *err);
/* Nonzero while a frame is partly received (a close now truncates it). */
int frame_reader_partial(const struct frame_reader *r);

#endif
