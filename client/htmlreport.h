/* htmlreport.h: `mtctl report --html FILE`, one self-contained page
 * (htmlreport.c). */
#ifndef MTCTL_HTMLREPORT_H
#define MTCTL_HTMLREPORT_H

#include <stddef.h>

#include "fmt.h"
#include "jobfig.h"

/* Write to PATH a page with the compare table of the fetched jobs among
 * f[0..n), the report's summary table (`summary`, with `note` under it)
 * and the three pictures (plot.h) as one inline SVG. Nothing outside the
 * file: no script, no style sheet, no image to fetch. */
int htmlreport_write(const char *path, const struct job_fig *f, size_t n,
                     const struct table *summary, const char *note, struct mt_err *err);

#endif
