/* bytesize.h: the one grammar for byte counts (a job spec's memory_limit,
 * memtraind.yaml's sizes, mtctl --mem-limit) and, through mt_unit_parse,
 * for other numbers with units (memtraind.yaml's durations).
 *
 * A byte count is a decimal number, then optional spaces and a unit:
 *   plain bytes     4096, 4096B
 *   exponent        1e9, 2.5e6
 *   powers of 1000  kB KB MB GB TB PB EB
 *   powers of 1024  KiB MiB GiB TiB PiB EiB, and the short forms
 *                   K k M m G g T t (so 2G = 2g = 2GiB = 2147483648)
 * A fraction is rounded to the nearest byte (ties to even): 0.7 = 1 byte.
 * No signs, hex, inf or nan; no space before the number or after the unit.
 * The largest count is INT64_MAX bytes (just under 8 EiB). */
#ifndef MEMTRAIN_BYTESIZE_H
#define MEMTRAIN_BYTESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "memtrain/err.h"

/* How messages name the grammar ("expected " MT_BYTESIZE_FORMS ", got ..."). */
#define MT_BYTESIZE_FORMS "a byte count such as 512MiB, 2G or 1e9"

/* Parse a byte count into *bytes. 0 on success; MT_E_INVAL otherwise, with
 * `err` (may be NULL) saying either
 *   "expected a byte count such as 512MiB, 2G or 1e9, got '12 parsecs'" or
 *   "'20EiB' is too large (at most 9223372036854775807 bytes)".
 * Callers prefix the place ("spec.yaml:3: memory_limit: "). *bytes is
 * untouched on error. */
int mt_bytesize_parse(const char *text, uint64_t *bytes, struct mt_err *err);

/* One unit of a table for mt_unit_parse: its exact spelling and its value. */
struct mt_unit {
    const char *name;   /* "" for a bare number */
    uint64_t mult;
};

/* Outcomes of mt_unit_parse. */
enum {
    MT_UNIT_BAD = 1,    /* not a number followed by one of the units */
    MT_UNIT_RANGE = 2,  /* a number and a unit, but the value is above max */
};

/* Parse "<number>[spaces]<unit>" (the grammar above, with the units of
 * `units`) into *out, at most `max`. 0, MT_UNIT_BAD or MT_UNIT_RANGE; *out
 * is untouched unless 0 is returned. */
int mt_unit_parse(const char *text, const struct mt_unit *units, size_t n_units, uint64_t max,
                  uint64_t *out);

#endif
