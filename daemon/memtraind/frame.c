/* frame.c: packing messages into frames and blobs (frame.h). */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "memtrain/wire.h"

uint8_t *frame_pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > UINT32_MAX)
        return NULL;
    uint8_t *buf = malloc(MT_FRAME_HEADER + n);
    if (!buf)
        return NULL;
    wire_put_len(buf, (uint32_t)n);
    protobuf_c_message_pack(m, buf + MT_FRAME_HEADER);
    *len = MT_FRAME_HEADER + n;
    return buf;
}

uint8_t *msg_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        protobuf_c_message_pack(m, buf);
    return buf;
}

void msg_pack_into(uint8_t **buf, size_t *len, const ProtobufCMessage *m)
{
    free(*buf);
    if (!(*buf = msg_pack(m, len)))
        *len = 0;
}

void *msg_copy(const ProtobufCMessage *m)
{
    size_t n;
    uint8_t *b = msg_pack(m, &n);
    if (!b)
        return NULL;
    void *c = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
    free(b);
    return c;
}
