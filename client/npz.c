/* npz.c: write float32 arrays as a NumPy .npz (npz.h).
 *
 * Formats: the .npy format is numpy's format.py ("NEP 1"): the magic
 * "\x93NUMPY", version 1.0, a little-endian uint16 header length, then a
 * Python dict literal ending in '\n'. The zip layout is PKWARE's APPNOTE
 * 4.3.7 (local file header), 4.3.12 (central directory header) and 4.3.16
 * (end of central directory record), all little-endian. */
#include "npz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP_LOCAL_LEN 30
#define ZIP_CENTRAL_LEN 46
#define ZIP_END_LEN 22
#define ZIP_VERSION 20          /* 2.0: what a stored member needs */
#define ZIP_LIMIT 0xFFFFFFFFull /* from here on zip64 would be needed */
#define NAME_MAX_LEN 200

size_t npy_header(char *buf, size_t len, const uint64_t *shape, size_t ndim)
{
    char dict[NPY_HEADER_MAX];
    if (ndim > NPZ_MAX_DIMS)
        return 0;
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (size_t i = 0; i < ndim; i++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%llu", i ? ", " : "",
                              (unsigned long long)shape[i]);
    /* a one-element tuple needs its comma: (10,) */
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
    size_t total = 10 + n + 1;           /* magic 6, version 2, length 2; dict; '\n' */
    total = (total + 63) / 64 * 64;
    if (total > len || n >= sizeof dict)
        return 0;
    size_t hlen = total - 10;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, n);
    memset(buf + 10 + n, ' ', hlen - n - 1);
    buf[total - 1] = '\n';
    return total;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN || s[0] == '.')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* Per member: where its local header starts and its CRC, found while writing. */
struct member {
    uint64_t offset;
    uint64_t size;            /* npy header + data */
    uint32_t crc;
    size_t hlen;
    char header[NPY_HEADER_MAX];
};

/* The member's file name: NAME.npy for an array, NAME for a raw member. */
static size_t member_name(char *buf, size_t len, const struct npz_entry *e)
{
    return (size_t)snprintf(buf, len, "%s%s", e->name, e->raw ? "" : ".npy");
}

/* An array member's checks, its .npy header and size. */
static int layout_array(const struct npz_entry *e, struct member *m, struct mt_err *err)
{
    if (e->ndim > NPZ_MAX_DIMS)
        return mt_err_set(err, MT_E_INVAL, "%s: %zu dimensions (at most %d)", e->name,
                          e->ndim, NPZ_MAX_DIMS);
    uint64_t count = 1;
    for (size_t d = 0; d < e->ndim; d++) {
        if (e->shape[d] && count > UINT64_MAX / 4 / e->shape[d])
            return mt_err_set(err, MT_E_INVAL, "%s: shape too large", e->name);
        count *= e->shape[d];
    }
    if (count * 4 != e->bytes)
        return mt_err_set(err, MT_E_INVAL, "%s: %llu bytes of data, but its shape needs "
                          "%llu (4 per float32)", e->name, (unsigned long long)e->bytes,
                          (unsigned long long)(count * 4));
    if (e->bytes && !e->data)
        return mt_err_set(err, MT_E_INVAL, "%s: no data", e->name);
    m->hlen = npy_header(m->header, sizeof m->header, e->shape, e->ndim);
    m->size = m->hlen + e->bytes;
    return 0;
}

/* Check every entry and lay out the archive; nothing is written yet. */
static int layout(const struct npz_entry *e, size_t n, struct member *m, struct mt_err *err)
{
    if (n > 0xFFFF)
        return mt_err_set(err, MT_E_TOOBIG, "%zu arrays: a zip without zip64 holds at most 65535", n);
    uint64_t off = 0, central = 0;
    for (size_t i = 0; i < n; i++) {
        if (!e[i].name || !name_ok(e[i].name))
            return mt_err_set(err, MT_E_INVAL, "array %zu: name '%s' is not usable in an .npz "
                              "(letters, digits, '.', '_', '-'; at most %d bytes)", i,
                              e[i].name ? e[i].name : "", NAME_MAX_LEN);
        for (size_t k = 0; k < i; k++)
            if (strcmp(e[k].name, e[i].name) == 0)
                return mt_err_set(err, MT_E_INVAL, "two arrays are named '%s'", e[i].name);
        if (e[i].raw && e[i].bytes && !e[i].data)
            return mt_err_set(err, MT_E_INVAL, "%s: no data", e[i].name);
        int rc = e[i].raw ? 0 : layout_array(&e[i], &m[i], err);
        if (rc)
            return rc;
        if (e[i].raw) {
            m[i].hlen = 0;
            m[i].size = e[i].bytes;
        }
        m[i].offset = off;
        char name[NAME_MAX_LEN + 8];
        size_t name_len = member_name(name, sizeof name, &e[i]);
        off += ZIP_LOCAL_LEN + name_len + m[i].size;
        central += ZIP_CENTRAL_LEN + name_len;
        if (m[i].size >= ZIP_LIMIT || off >= ZIP_LIMIT)
            return mt_err_set(err, MT_E_TOOBIG, "%s: the archive would pass 4 GiB (%llu bytes "
                              "so far), which needs zip64; this writer does not do zip64",
                              e[i].name, (unsigned long long)off);
    }
    if (off + central + ZIP_END_LEN >= ZIP_LIMIT)
        return mt_err_set(err, MT_E_TOOBIG, "the archive would pass 4 GiB, which needs zip64; "
                          "this writer does not do zip64");
    return 0;
}

static int put(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1;
}

/* MS-DOS date and time of now (local), as zip stores them. */
static void dos_now(unsigned *date, unsigned *tm)
{
    time_t t = time(NULL);
    struct tm lt;
    if (!localtime_r(&t, &lt) || lt.tm_year < 80) {
        *date = (0 << 9) | (1 << 5) | 1;  /* 1980-01-01 */
        *tm = 0;
        return;
    }
    *date = (unsigned)((lt.tm_year - 80) << 9 | (lt.tm_mon + 1) << 5 | lt.tm_mday);
    *tm = (unsigned)(lt.tm_hour << 11 | lt.tm_min << 5 | lt.tm_sec / 2);
}

static int write_archive(FILE *f, const struct npz_entry *e, size_t n, struct member *m)
{
    unsigned date, tm;
    dos_now(&date, &tm);
    uint8_t h[ZIP_CENTRAL_LEN];
    char name[NAME_MAX_LEN + 8];
    for (size_t i = 0; i < n; i++) {
        size_t nl = member_name(name, sizeof name, &e[i]);
        uLong crc = crc32_z(0L, (const Bytef *)m[i].header, m[i].hlen);
        if (e[i].bytes)
            crc = crc32_z(crc, (const Bytef *)e[i].data, (z_size_t)e[i].bytes);
        m[i].crc = (uint32_t)crc;
        put32(h, ZIP_LOCAL_SIG);
        put16(h + 4, ZIP_VERSION);
        put16(h + 6, 0);                        /* flags: sizes are in this header */
        put16(h + 8, 0);                        /* method: stored */
        put16(h + 10, tm);
        put16(h + 12, date);
        put32(h + 14, m[i].crc);
        put32(h + 18, (uint32_t)m[i].size);     /* compressed = uncompressed */
        put32(h + 22, (uint32_t)m[i].size);
        put16(h + 26, (unsigned)nl);
        put16(h + 28, 0);                       /* no extra field */
        if (put(f, h, ZIP_LOCAL_LEN) || put(f, name, nl) || put(f, m[i].header, m[i].hlen) ||
            put(f, e[i].data, (size_t)e[i].bytes))
            return -1;
    }
    uint64_t central_off = n ? m[n - 1].offset + ZIP_LOCAL_LEN +
                                   member_name(name, sizeof name, &e[n - 1]) + m[n - 1].size
                             : 0;
    uint64_t central_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = member_name(name, sizeof name, &e[i]);
        put32(h, ZIP_CENTRAL_SIG);
        put16(h + 4, 3 << 8 | ZIP_VERSION);     /* made by: Unix */
        put16(h + 6, ZIP_VERSION);
        put16(h + 8, 0);
        put16(h + 10, 0);
        put16(h + 12, tm);
        put16(h + 14, date);
        put32(h + 16, m[i].crc);
        put32(h + 20, (uint32_t)m[i].size);
        put32(h + 24, (uint32_t)m[i].size);
        put16(h + 28, (unsigned)nl);
        put16(h + 30, 0);                       /* extra */
        put16(h + 32, 0);                       /* comment */
        put16(h + 34, 0);                       /* disk */
        put16(h + 36, 0);                       /* internal attributes */
        put32(h + 38, 0100644u << 16);          /* external: a regular file, rw-r--r-- */
        put32(h + 42, (uint32_t)m[i].offset);
        if (put(f, h, ZIP_CENTRAL_LEN) || put(f, name, nl))
            return -1;
        central_len += ZIP_CENTRAL_LEN + nl;
    }
    put32(h, ZIP_END_SIG);
    put16(h + 4, 0);
    put16(h + 6, 0);
    put16(h + 8, (unsigned)n);
    put16(h + 10, (unsigned)n);
    put32(h + 12, (uint32_t)central_len);
    put32(h + 16, (uint32_t)central_off);
    put16(h + 20, 0);
    return put(f, h, ZIP_END_LEN);
}

int npz_write(const char *path, const struct npz_entry *e, size_t n, struct mt_err *err)
{
    struct member *m = calloc(n ? n : 1, sizeof *m);
    if (!m)
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", path);
    int rc = layout(e, n, m, err);
    if (rc) {
        free(m);
        return mt_err_prefix(err, "%s: ", path);
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(m);
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        rc = mt_err_set(err, MT_E_IO, "%s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        free(m);
        return rc;
    }
    const char *what = "write";
    int ok = write_archive(f, e, n, m) == 0;
    if (ok && (fflush(f) != 0 || fsync(fd) != 0)) {
        what = "flush";
        ok = 0;
    }
    int e1 = errno;
    if (fclose(f) != 0 && ok) {
        e1 = errno;
        what = "close";
        ok = 0;
    }
    if (ok && rename(tmp, path) != 0) {
        e1 = errno;
        rc = mt_err_set(err, MT_E_IO, "renaming %s to %s: %s", tmp, path, strerror(e1));
    } else if (!ok) {
        rc = mt_err_set(err, MT_E_IO, "%s: %s: %s", tmp, what, strerror(e1));
    }
    if (rc)
        unlink(tmp);
    free(tmp);
    free(m);
    return rc;
}
