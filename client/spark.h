/* spark.h: sparklines, a series drawn in one line of Unicode block
 * characters (spark.c), for the terminal views of compare and watch. */
#ifndef MTCTL_SPARK_H
#define MTCTL_SPARK_H

#include <stddef.h>

/* v[0..n) as at most `width` cells of U+2581..U+2588 (lowest to highest
 * eighth) scaled from lo (one eighth) to hi (full), into buf; a value that
 * is not finite is a space. More values than cells: cell i shows the last
 * value of its share of the series (so the last cell is the last value).
 * lo >= hi draws every finite value at half height. Returns buf ("" when n
 * or width is 0; cut short, on a character boundary, when len is small). */
char *spark_line(char *buf, size_t len, const double *v, size_t n, double lo, double hi,
                 int width);

#endif
