/* wire.h: how memtrain's messages travel on a socket or a pipe.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of one
 * protobuf message (proto/memtrain.proto): Request from mtctl, Response from
 * memtraind, WorkerStart/WorkerEvent between the daemon and its workers. A
 * reader checks the length against its cap before allocating anything.
 *
 * These are the blocking helpers mtctl, the worker and the tests use; the
 * daemon's non-blocking reader (daemon/memtraind/framereader.c) shares the
 * header format. */
#ifndef MEMTRAIN_WIRE_H
#define MEMTRAIN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "memtrain/err.h"

#define MT_PROTOCOL_VERSION 1
#define MT_FRAME_HEADER 4
#define MT_FRAME_MAX_DEFAULT (16u << 20)  /* client <-> daemon */
#define MT_FRAME_MAX_WORKER (1u << 31)    /* worker -> daemon: checkpoints are big */

void wire_put_len(uint8_t hdr[MT_FRAME_HEADER], uint32_t len);
uint32_t wire_get_len(const uint8_t hdr[MT_FRAME_HEADER]);

/* Write header and payload, retrying short writes and EINTR. MT_E_IO with
 * the errno text on failure (EPIPE included: callers ignore SIGPIPE). */
int wire_write_frame(int fd, const void *buf, size_t len, struct mt_err *err);

/* Read one frame into a malloc'd *buf (caller frees) of *len bytes.
 * MT_E_EOF on a clean close before the header, MT_E_TRUNCATED on a close
 * inside it, MT_E_TOOBIG when the length exceeds `max` (nothing allocated,
 * the payload left unread), MT_E_IO on a read error. */
int wire_read_frame(int fd, uint8_t **buf, size_t *len, size_t max, struct mt_err *err);

#endif
