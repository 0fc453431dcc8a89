/* frame.h: the daemon's side of the framing in memtrain/wire.h: protobuf
 * messages packed into frames and blobs. Reading frames is framereader.h. */
#ifndef MT_FRAME_H
#define MT_FRAME_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

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
