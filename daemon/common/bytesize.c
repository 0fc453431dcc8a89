/* bytesize.c: numbers with units, and byte counts in particular (see
 * include/memtrain/bytesize.h for the grammar).
 *
 * Whole numbers are scaled with exact integer arithmetic, so every count up
 * to INT64_MAX is exact; numbers with a fraction or an exponent go through a
 * double and are rounded to the nearest integer. */
#include "memtrain/bytesize.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NUM_LEN 64   /* longest number with a fraction or exponent */

/* The number at the start of text: its end, whether it is plain digits,
 * and its value (exact in *ivalue for plain digits that fit, else in
 * *value). NULL when text does not start with a number. */
static const char *split_number(const char *text, int *whole, unsigned long long *ivalue,
                                double *value, int *huge)
{
    const char *p = text;
    size_t digits = strspn(p, "0123456789");
    p += digits;
    *whole = 1;
    *huge = 0;
    if (*p == '.') {
        size_t frac = strspn(p + 1, "0123456789");
        digits += frac;
        p += 1 + frac;
        *whole = 0;
    }
    if (digits == 0)
        return NULL;
    /* an exponent needs digits; "1EiB" is a number and a unit */
    /* p[1] is read only after *p is known not to be the terminator */
    const char *q = (*p == 'e' || *p == 'E') ? p + 1 + (p[1] == '+' || p[1] == '-') : NULL;
    if (q && *q >= '0' && *q <= '9') {
        p = q + strspn(q, "0123456789");
        *whole = 0;
    }
    size_t n = (size_t)(p - text);
    if (*whole) {
        unsigned long long v = 0;
        for (size_t i = 0; i < n && !*huge; i++) {
            unsigned d = (unsigned)(text[i] - '0');
            if (v > (~0ull - d) / 10)
                *huge = 1;
            v = v * 10 + d;
        }
        *ivalue = v;
        return p;
    }
    char num[NUM_LEN];
    if (n >= sizeof num)
        return NULL;
    memcpy(num, text, n);
    num[n] = '\0';
    errno = 0;
    *value = strtod(num, NULL);
    if (errno == ERANGE && *value != 0.0)
        *huge = 1;
    else if (!isfinite(*value))
        return NULL;
    return p;
}

int mt_unit_parse(const char *text, const struct mt_unit *units, size_t n_units, uint64_t max,
                  uint64_t *out)
{
    int whole, huge;
    unsigned long long iv = 0;
    double v = 0;
    const char *p = text ? split_number(text, &whole, &iv, &v, &huge) : NULL;
    if (!p)
        return MT_UNIT_BAD;
    p += strspn(p, " ");
    const struct mt_unit *u = NULL;
    for (size_t i = 0; i < n_units && !u; i++)
        if (strcmp(p, units[i].name) == 0)
            u = &units[i];
    if (!u)
        return MT_UNIT_BAD;
    if (huge)
        return MT_UNIT_RANGE;
    if (whole) {
        if (iv > max / u->mult)
            return MT_UNIT_RANGE;
        *out = iv * u->mult;
        return 0;
    }
    double b = nearbyint(v * (double)u->mult);
    /* (double)max + 1 is exact for the maxima used (2^32, 2^63) */
    if (!(b < (double)max + 1.0))
        return MT_UNIT_RANGE;
    *out = (uint64_t)b;
    return 0;
}

int mt_bytesize_parse(const char *text, uint64_t *bytes, struct mt_err *err)
{
    static const struct mt_unit units[] = {
        {"", 1}, {"B", 1},
        {"kB", 1000ull}, {"KB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull},
        {"TB", 1000000000000ull}, {"PB", 1000000000000000ull},
        {"EB", 1000000000000000000ull},
        {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
        {"PiB", 1ull << 50}, {"EiB", 1ull << 60},
        {"K", 1ull << 10}, {"k", 1ull << 10}, {"M", 1ull << 20}, {"m", 1ull << 20},
        {"G", 1ull << 30}, {"g", 1ull << 30}, {"T", 1ull << 40}, {"t", 1ull << 40},
    };
    char shown[MT_SHOW_LEN + 4];
    mt_err_show(shown, sizeof shown, text ? text : "", text ? strlen(text) : 0);
    switch (mt_unit_parse(text, units, sizeof units / sizeof units[0], (uint64_t)INT64_MAX,
                          bytes)) {
    case 0:
        return 0;
    case MT_UNIT_RANGE:
        return mt_err_set(err, MT_E_INVAL, "'%s' is too large (at most %lld bytes)", shown,
                          (long long)INT64_MAX);
    default:
        return mt_err_set(err, MT_E_INVAL, "expected " MT_BYTESIZE_FORMS ", got '%s'", shown);
    }
}
