/* checked.h: size arithmetic that reports overflow instead of wrapping.
 *
 * Plans multiply widths, batch sizes and sample counts the user chose; a
 * product that wraps would plan a 4 EiB model at 16 GiB and admit it. Each
 * helper stores the exact result and returns 0, or returns 1 (the result
 * then meaningless) when it does not fit a size_t. */
#ifndef MT_CHECKED_H
#define MT_CHECKED_H

#include <stddef.h>

static inline int ck_mul(size_t *out, size_t a, size_t b)
{
    return __builtin_mul_overflow(a, b, out);
}

static inline int ck_add(size_t *out, size_t a, size_t b)
{
    return __builtin_add_overflow(a, b, out);
}

/* *acc += a * b. */
static inline int ck_muladd(size_t *acc, size_t a, size_t b)
{
    size_t p;
    return ck_mul(&p, a, b) || ck_add(acc, *acc, p);
}

#endif
