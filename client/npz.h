/* npz.h: NumPy .npz files of float32 arrays (npz.c).
 *
 * An .npz is a zip archive holding one .npy file per array. This writer
 * stores (method 0, no compression), so numpy.load can map the data
 * directly; every member's CRC-32 comes from zlib. Zip64 is not written: an
 * archive that would pass 4 GiB (or 65535 members) is refused before any
 * byte is written. The file appears whole or not at all: it is written to
 * PATH.tmp, flushed to disk, then renamed over PATH. */
#ifndef MTCTL_NPZ_H
#define MTCTL_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "memtrain/err.h"

/* One array: dtype '<f4' (little-endian float32), C order; or a raw member. */
struct npz_entry {
    const char *name;         /* member "NAME.npy": letters, digits, '.', '_', '-';
                               * 1..200 bytes, not starting with '.' */
    const uint64_t *shape;    /* ndim dimensions (ndim 0: a scalar) */
    size_t ndim;              /* at most NPZ_MAX_DIMS */
    const void *data;         /* bytes = 4 * product(shape), read only */
    uint64_t bytes;
    int raw;                  /* 1: a member named `name` as is (no ".npy"), holding the
                               * bytes unchanged (memtrain.json); shape and ndim unused.
                               * numpy.load(FILE)[name] gives its bytes */
};

#define NPZ_MAX_DIMS 32
#define NPY_HEADER_MAX 1024   /* enough for NPZ_MAX_DIMS 20-digit dimensions */

/* Write the n arrays to `path`. Returns 0, or MT_E_INVAL (a bad name, a
 * duplicate, data whose size does not match its shape), MT_E_TOOBIG (the
 * archive would need zip64), MT_E_IO (naming the file and the system's
 * reason), MT_E_NOMEM; on failure PATH is untouched and PATH.tmp removed. */
int npz_write(const char *path, const struct npz_entry *e, size_t n, struct mt_err *err);

/* The .npy (version 1.0) header of a '<f4' array of this shape: magic,
 * version, length, and the dict padded with spaces and a newline so that the
 * data starts at a multiple of 64 bytes. Returns its length, or 0 if `len`
 * is too small or ndim > NPZ_MAX_DIMS. */
size_t npy_header(char *buf, size_t len, const uint64_t *shape, size_t ndim);

#endif
