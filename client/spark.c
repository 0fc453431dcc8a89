/* spark.c: sparklines (spark.h). */
#include "spark.h"

#include <math.h>
#include <string.h>

/* U+2581 LOWER ONE EIGHTH BLOCK .. U+2588 FULL BLOCK, 3 bytes each */
static const char *const blocks[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                      "\u2585", "\u2586", "\u2587", "\u2588"};

/* 0..7: the block for x between lo and hi */
static int level(double x, double lo, double hi)
{
    if (!(hi > lo))
        return 3;
    double t = (x - lo) / (hi - lo);
    int k = (int)floor(t * 8);
    return k < 0 ? 0 : k > 7 ? 7 : k;
}

char *spark_line(char *buf, size_t len, const double *v, size_t n, double lo, double hi,
                 int width)
{
    size_t cells = width > 0 ? (size_t)width : 0, used = 0;
    if (len)
        buf[0] = '\0';
    if (cells > n)
        cells = n;
    for (size_t i = 0; i < cells; i++) {
        size_t k = (i + 1) * n / cells - 1;   /* the last value of cell i's share */
        const char *s = isfinite(v[k]) ? blocks[level(v[k], lo, hi)] : " ";
        size_t sl = strlen(s);
        if (used + sl + 1 > len)
            break;
        memcpy(buf + used, s, sl + 1);
        used += sl;
    }
    return buf;
}
