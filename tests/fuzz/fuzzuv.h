/* fuzzuv.h: libuv's stream calls for conn.c, in memory (fuzzuv.c).
 *
 * The seam of the dispatch target: it links the daemon's own conn.c,
 * dispatch.c and job table, and the linker routes conn.c's uv_read_start,
 * uv_read_stop, uv_write and uv_close here (-Wl,--wrap=...), so no daemon
 * source changes for it. Reads are pushed in by fuzzuv_feed; each write is
 * checked to be one whole frame holding a Response a client can decode,
 * and completed by fuzzuv_drain as the loop would complete it; a close
 * cancels the writes still pending, then calls its callback. */
#ifndef MT_FUZZUV_H
#define MT_FUZZUV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Nonzero: print each reply's id, status, body and message on stderr. */
extern int fuzzuv_verbose;

/* Hand n bytes to the stream's read callback, as one read of the loop
 * (through its alloc callback: at most the buffer it gives). Returns the
 * bytes taken: 0 when the stream is not reading. n = 0 delivers UV_EOF. */
size_t fuzzuv_feed(uv_stream_t *s, const uint8_t *p, size_t n);
/* Complete the writes and closes queued so far (their callbacks may queue
 * more; all are run). */
void fuzzuv_drain(void);

#endif
