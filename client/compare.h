/* compare.h: `mtctl compare`, jobs side by side by accuracy and memory
 * (compare.c); its table also goes into `mtctl report --html`. */
#ifndef MTCTL_COMPARE_H
#define MTCTL_COMPARE_H

#include <stddef.h>

#include "fmt.h"
#include "jobfig.h"

/* The compare table of the fetched jobs among f[0..n): a row per job,
 * sorted by peak memory, the Pareto front marked '*'. spark > 0 adds a
 * last column ACCURACY/EPOCH: test accuracy per epoch as a sparkline of at
 * most `spark` cells, every row on one scale. t is initialised here;
 * table_free it. */
void compare_table(const struct job_fig *f, size_t n, int spark, struct table *t);

/* The note printed under the table: what the columns mean. */
extern const char compare_note[];

int cmd_compare(struct mtctl *c, int argc, char **argv);

#endif
