/* wire.c: blocking frame reads and writes (memtrain/wire.h). */
#include "memtrain/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void wire_put_len(uint8_t hdr[MT_FRAME_HEADER], uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

uint32_t wire_get_len(const uint8_t hdr[MT_FRAME_HEADER])
{
    return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
}

static int write_all(int fd, const uint8_t *p, size_t n, struct mt_err *err)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return mt_err_set(err, MT_E_IO, "write: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read exactly n bytes; *got says how many arrived before EOF. */
static int read_all(int fd, uint8_t *p, size_t n, size_t *got, struct mt_err *err)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, p + *got, n - *got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return mt_err_set(err, MT_E_IO, "read: %s", strerror(errno));
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

int wire_write_frame(int fd, const void *buf, size_t len, struct mt_err *err)
{
    if (len > UINT32_MAX)
        return mt_err_set(err, MT_E_TOOBIG, "message of %zu bytes is too big for a frame", len);
    uint8_t hdr[MT_FRAME_HEADER];
    wire_put_len(hdr, (uint32_t)len);
    int rc = write_all(fd, hdr, sizeof hdr, err);
    return rc ? rc : write_all(fd, buf, len, err);
}

int wire_read_frame(int fd, uint8_t **buf, size_t *len, size_t max, struct mt_err *err)
{
    uint8_t hdr[MT_FRAME_HEADER];
    size_t got;
    *buf = NULL;
    *len = 0;
    int rc = read_all(fd, hdr, sizeof hdr, &got, err);
    if (rc)
        return rc;
    if (got == 0)
        return mt_err_set(err, MT_E_EOF, "connection closed");
    if (got < sizeof hdr)
        return mt_err_set(err, MT_E_TRUNCATED, "connection closed inside a frame header");
    uint32_t n = wire_get_len(hdr);
    if (n > max)
        return mt_err_set(err, MT_E_TOOBIG, "frame of %u bytes is over the %zu-byte cap", n, max);
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return mt_err_set(err, MT_E_NOMEM, "out of memory for a %u-byte frame", n);
    if ((rc = read_all(fd, p, n, &got, err))) {
        free(p);
        return rc;
    }
    if (got < n) {
        free(p);
        return mt_err_set(err, MT_E_TRUNCATED, "connection closed after %zu of %u bytes of a frame",
                          got, n);
    }
    *buf = p;
    *len = n;
    return 0;
}
