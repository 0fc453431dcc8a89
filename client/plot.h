/* plot.h: pictures of stored jobs, drawn with cairo (plot.c) for `mtctl
 * plot` and `mtctl report --html`.
 *
 * Three pictures, each one panel: test accuracy after every epoch, one
 * line per job; memory by category per job, a stacked bar of the plan
 * beside one of the measured peaks; and each job's best test accuracy
 * against its peak memory, the Pareto front joined. PLOT_ALL stacks the
 * three. A job keeps its colour in every panel (its place in the list). */
#ifndef MTCTL_PLOT_H
#define MTCTL_PLOT_H

#include <stddef.h>
#include <stdio.h>

#include "jobfig.h"

enum plot_kind { PLOT_ACCURACY, PLOT_MEMORY, PLOT_PARETO, PLOT_ALL };
enum plot_format { PLOT_SVG, PLOT_PNG };

/* What a picture shows, for the caller's summary (and tests). */
struct plot_counts {
    int lines;      /* accuracy panel: jobs with at least one epoch */
    int bars;       /* memory panel: stacked bars drawn (planned, measured; not empty) */
    int points;     /* Pareto panel: jobs with an accuracy and a peak */
    int front;      /* of those, on the front */
};

/* "accuracy", "memory", "pareto", "all" -> the kind; -1 if unknown. */
int plot_parse_kind(const char *name);
const char *plot_kind_name(enum plot_kind kind);

/* Draw `kind` for the fetched jobs of f[0..n) into PATH. */
int plot_write_file(const char *path, enum plot_format format, enum plot_kind kind,
                    const struct job_fig *f, size_t n, struct plot_counts *counts,
                    struct mt_err *err);

/* The same as SVG onto `out`, without the XML declaration (for inlining
 * in an HTML page). */
int plot_write_svg(FILE *out, enum plot_kind kind, const struct job_fig *f, size_t n,
                   struct plot_counts *counts, struct mt_err *err);

/* Release what cairo and fontconfig cache for the life of the process
 * (fonts, glyphs), after the last picture, so that a leak checker sees
 * none. Drawing again afterwards is allowed: they start afresh. */
void plot_release(void);

struct mtctl;
/* mtctl plot ID...|GROUP -o FILE.svg|FILE.png [--kind K]. */
int cmd_plot(struct mtctl *c, int argc, char **argv);

#endif
