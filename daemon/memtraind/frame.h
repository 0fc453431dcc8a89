/* frame.h: the daemon's side of the framing in memtrain/wire.h.
 *
 * A frame_reader takes bytes as libuv delivers them (any split) and hands
 * out complete frames. The length is checked against the reader's cap as
 * soon as the 4 header bytes are in, before anything is allocated. */
#ifndef MT_FRAME_H
#define MT_FRAME_H

#include <protobuf-c/protobuf-c.h>
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

/* Called once per complete frame; `body` is valid during the call only.
 * Nonzero stops frame_feed, which returns that value. */
typedef int (*frame_fn)(void *ud, const uint8_t *body, size_t len);

void frame_reader_init(struct frame_reader *r, size_t max);
void frame_reader_deinit(struct frame_reader *r);
/* Feed n bytes. 0, fn's nonzero value, MT_E_TOOBIG (a length over the cap:
 * the stream is unusable from there) or MT_E_NOMEM. */
int frame_feed(struct frame_reader *r, const uint8_t *p, size_t n, frame_fn fn, void *ud,
               struct mt_err *err);
/* Nonzero while a frame is partly received (a close now truncates it). */
int frame_partial(const struct frame_reader *r);

/* Pack `m` with its header into one malloc'd buffer of *len bytes; NULL
 * when out of memory or over 4 GiB. */
uint8_t *frame_pack(const ProtobufCMessage *m, size_t *len);

/* `m` packed into a malloc'd buffer of *len bytes (no header); NULL when out
 * of memory. */
uint8_t *msg_pack(const ProtobufCMessage *m, size_t *len);
/* Replace the blob *buf (freed) with `m` packed; on failure *buf is NULL
 * and *len 0. */
void msg_pack_into(uint8_t **buf, size_t *len, const ProtobufCMessage *m);
/* A deep copy of `m` the caller owns (protobuf_c_message_free_unpacked);
 * NULL when out of memory. */
void *msg_copy(const ProtobufCMessage *m);

#endif
