/* plot.c: pictures of stored jobs (plot.h) with cairo: an SVG or PNG
 * surface, one panel per picture, each with a title, labelled axes, a grid
 * and a legend; and `mtctl plot`, which fetches the jobs and writes one.
 *
 * Device units are pixels (the SVG's document unit is px). A job's
 * accuracy line is the only stroke of width SERIES_WIDTH, so a reader of
 * the SVG can count the lines. */
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "jobfig.h"
#include "plot.h"

#define PANEL_W 960.0
#define PANEL_H 540.0
#define MARGIN_L 84.0
#define MARGIN_R 220.0        /* the legend's column */
#define MARGIN_T 56.0
#define MARGIN_B 70.0
#define SERIES_WIDTH 2.5
#define FONT "DejaVu Sans"

/* ------------------------------------------------------------ drawing */

/* A job's colour: Tableau 10, then again dashed. */
static const double palette[10][3] = {
    {0.306, 0.475, 0.655}, {0.949, 0.557, 0.169}, {0.882, 0.341, 0.349}, {0.463, 0.718, 0.698},
    {0.349, 0.631, 0.310}, {0.929, 0.788, 0.282}, {0.690, 0.478, 0.631}, {1.000, 0.616, 0.655},
    {0.612, 0.459, 0.373}, {0.729, 0.690, 0.675},
};

/* The memory categories' colours, in category order (fmt_mem_label). */
static const double cat_colour[FMT_MEM_CATEGORIES][3] = {
    {0.306, 0.475, 0.655}, {0.882, 0.341, 0.349}, {0.949, 0.557, 0.169},
    {0.349, 0.631, 0.310}, {0.690, 0.478, 0.631}, {0.729, 0.690, 0.675},
};

static void set_job_colour(cairo_t *cr, size_t i)
{
    const double *c = palette[i % 10];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    if (i >= 10) {
        double dash[] = {8.0, 4.0};
        cairo_set_dash(cr, dash, 2, 0);
    } else {
        cairo_set_dash(cr, NULL, 0, 0);
    }
}

static void font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Text whose ink box has its point (ax, ay) (fractions: 0 left/top, 1
 * right/bottom) at (x, y). */
static void text_at(cairo_t *cr, double x, double y, const char *s, double ax, double ay)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - e.x_bearing - ax * e.width, y - e.y_bearing - ay * e.height);
    cairo_show_text(cr, s);
    cairo_new_path(cr);   /* no current point left for the next line or arc */
}

/* The plot area of a panel and the data range it shows. */
struct frame {
    double x0, y0, x1, y1;        /* device units; y0 top */
    double xmin, xmax, ymin, ymax;
};

static double fx(const struct frame *fr, double x)
{
    return fr->x0 + (x - fr->xmin) / (fr->xmax - fr->xmin) * (fr->x1 - fr->x0);
}

static double fy(const struct frame *fr, double y)
{
    return fr->y1 - (y - fr->ymin) / (fr->ymax - fr->ymin) * (fr->y1 - fr->y0);
}

static void frame_init(struct frame *fr)
{
    fr->x0 = MARGIN_L;
    fr->y0 = MARGIN_T;
    fr->x1 = PANEL_W - MARGIN_R;
    fr->y1 = PANEL_H - MARGIN_B;
}

/* A round step giving about `target` ticks over span. */
static double nice_step(double span, int target)
{
    if (!(span > 0))
        return 1;
    double raw = span / target, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
}

/* Widen [*lo, *hi] to multiples of a nice step; returns the step. */
static double snap_range(double *lo, double *hi, int target)
{
    if (!(*hi > *lo))
        *hi = *lo + 1;
    double s = nice_step(*hi - *lo, target);
    *lo = floor(*lo / s + 1e-9) * s;
    *hi = ceil(*hi / s - 1e-9) * s;
    return s;
}

/* The panel's title and the axes' labels. */
static void panel_text(cairo_t *cr, const struct frame *fr, const char *title,
                       const char *xlabel, const char *ylabel)
{
    cairo_set_source_rgb(cr, 0, 0, 0);
    font(cr, 17, 1);
    text_at(cr, (fr->x0 + fr->x1) / 2, 20, title, 0.5, 0);
    font(cr, 13, 0);
    if (xlabel)
        text_at(cr, (fr->x0 + fr->x1) / 2, PANEL_H - 14, xlabel, 0.5, 1);
    if (ylabel) {
        cairo_save(cr);
        cairo_translate(cr, 18, (fr->y0 + fr->y1) / 2);
        cairo_rotate(cr, -M_PI / 2);
        text_at(cr, 0, 0, ylabel, 0.5, 0);
        cairo_restore(cr);
    }
}

/* Horizontal grid lines and y tick labels every `step`, and the box. */
static void y_axis(cairo_t *cr, const struct frame *fr, double step, const char *fmtstr)
{
    char lab[32];
    font(cr, 12, 0);
    cairo_set_line_width(cr, 1);
    for (double y = fr->ymin; y <= fr->ymax + step * 1e-6; y += step) {
        double py = round(fy(fr, y)) + 0.5;
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, fr->x0, py);
        cairo_line_to(cr, fr->x1, py);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        snprintf(lab, sizeof lab, fmtstr, fabs(y) < step * 1e-6 ? 0.0 : y);
        text_at(cr, fr->x0 - 6, py, lab, 1, 0.5);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_rectangle(cr, fr->x0 + 0.5, fr->y0 + 0.5, fr->x1 - fr->x0 - 1, fr->y1 - fr->y0 - 1);
    cairo_stroke(cr);
}

/* Vertical grid lines and x tick labels every `step`. */
static void x_axis(cairo_t *cr, const struct frame *fr, double step, const char *fmtstr)
{
    char lab[32];
    font(cr, 12, 0);
    cairo_set_line_width(cr, 1);
    for (double x = ceil(fr->xmin / step - 1e-9) * step; x <= fr->xmax + step * 1e-6; x += step) {
        double px = round(fx(fr, x)) + 0.5;
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, px, fr->y0);
        cairo_line_to(cr, px, fr->y1);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        snprintf(lab, sizeof lab, fmtstr, fabs(x) < step * 1e-6 ? 0.0 : x);
        text_at(cr, px, fr->y1 + 6, lab, 0.5, 0);
    }
}

/* "12 bp": how a job is named in legends and labels. */
static const char *job_label(char *buf, size_t len, const struct job_fig *f)
{
    snprintf(buf, len, "%llu %s", (unsigned long long)f->id, f->row.label);
    return buf;
}

/* The first job before f[i] whose accuracy curve f[i]'s repeats exactly
 * (bp and ckpt, dfa and memdfa train alike), or -1. */
static long same_curve(const struct job_fig *f, size_t i)
{
    const struct report_row *a = &f[i].row;
    for (size_t k = 0; k < i && a->n_epochs; k++) {
        const struct report_row *b = &f[k].row;
        int same = f[k].show && b->n_epochs == a->n_epochs;
        for (int e = 0; same && e < a->n_epochs; e++)
            same = b->ep[e].test_accuracy == a->ep[e].test_accuracy;
        if (same)
            return (long)k;
    }
    return -1;
}

/* The legend's column: one line per job with a swatch in its colour; for
 * lines, a curve that repeats an earlier job's says so ("= 14"). */
static void job_legend(cairo_t *cr, const struct frame *fr, const struct job_fig *f, size_t n,
                       int points)
{
    char lab[96];
    double y = fr->y0 + 8;
    font(cr, 13, 1);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, fr->x1 + 16, y, "job  rule", 0, 0);
    y += 24;
    font(cr, 13, 0);
    for (size_t i = 0; i < n && y < fr->y1; i++, y += 20) {
        if (!f[i].show)
            continue;
        long k = points ? -1 : same_curve(f, i);
        set_job_colour(cr, i);
        if (k >= 0) {
            double dash[] = {5.0, 4.0};
            cairo_set_dash(cr, dash, 2, 0);
        }
        if (points) {
            cairo_arc(cr, fr->x1 + 27, y + 6, 5, 0, 2 * M_PI);
            cairo_fill(cr);
        } else {
            cairo_set_line_width(cr, 2);   /* not SERIES_WIDTH: only lines have that */
            cairo_move_to(cr, fr->x1 + 16, y + 6);
            cairo_line_to(cr, fr->x1 + 38, y + 6);
            cairo_stroke(cr);
        }
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_source_rgb(cr, 0, 0, 0);
        job_label(lab, sizeof lab, &f[i]);
        if (k >= 0)
            snprintf(lab + strlen(lab), sizeof lab - strlen(lab), " (= %llu)",
                     (unsigned long long)f[k].id);
        text_at(cr, fr->x1 + 46, y + 6, lab, 0, 0.5);
    }
}

static void no_data(cairo_t *cr, const struct frame *fr, const char *what)
{
    font(cr, 14, 0);
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    text_at(cr, (fr->x0 + fr->x1) / 2, (fr->y0 + fr->y1) / 2, what, 0.5, 0.5);
}

/* A byte scale for an axis whose largest value is max: the divisor and the
 * unit's name (binary units, as mtctl prints bytes). */
static double byte_unit(double max, const char **unit)
{
    static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double d = 1;
    int k = 0;
    while (k < 4 && max >= 1024 * d)
        d *= 1024, k++;
    *unit = names[k];
    return d;
}

/* --------------------------------------------------------- the panels */

/* Test accuracy (%) after each epoch, a line per job. */
static void panel_accuracy(cairo_t *cr, const struct job_fig *f, size_t n, struct plot_counts *k)
{
    struct frame fr;
    frame_init(&fr);
    int maxe = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!f[i].show)
            continue;
        const struct report_row *r = &f[i].row;
        if (r->n_epochs > maxe)
            maxe = r->n_epochs;
        for (int e = 0; e < r->n_epochs; e++) {
            lo = fmin(lo, 100 * r->ep[e].test_accuracy);
            hi = fmax(hi, 100 * r->ep[e].test_accuracy);
        }
    }
    panel_text(cr, &fr, "Test accuracy after each epoch", "epoch", "test accuracy (%)");
    if (maxe == 0) {
        y_axis(cr, &(struct frame){fr.x0, fr.y0, fr.x1, fr.y1, 0, 1, 0, 100}, 20, "%.0f");
        no_data(cr, &fr, "no job has finished an epoch yet");
        job_legend(cr, &fr, f, n, 0);
        return;
    }
    double pad = fmax((hi - lo) * 0.08, 0.5);
    fr.ymin = fmax(0, lo - pad);
    fr.ymax = fmin(100, hi + pad);
    double ystep = snap_range(&fr.ymin, &fr.ymax, 6);
    fr.xmin = 1;
    fr.xmax = maxe > 1 ? maxe : 2;
    double xstep = fmax(1, round(nice_step(fr.xmax - fr.xmin, 10)));
    y_axis(cr, &fr, ystep, ystep < 1 ? "%.1f" : "%.0f");
    x_axis(cr, &fr, xstep, "%.0f");
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (size_t i = 0; i < n; i++) {
        if (!f[i].show || f[i].row.n_epochs == 0)
            continue;
        const struct report_row *r = &f[i].row;
        set_job_colour(cr, i);
        if (same_curve(f, i) >= 0) {
            /* dashed over the curve it repeats, which shows in the gaps */
            double dash[] = {7.0, 7.0};
            cairo_set_dash(cr, dash, 2, 0);
        }
        cairo_set_line_width(cr, SERIES_WIDTH);
        for (int e = 0; e < r->n_epochs; e++)
            cairo_line_to(cr, fx(&fr, e + 1), fy(&fr, 100 * r->ep[e].test_accuracy));
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        for (int e = 0; e < r->n_epochs; e++) {
            cairo_arc(cr, fx(&fr, e + 1), fy(&fr, 100 * r->ep[e].test_accuracy), 3.5, 0,
                      2 * M_PI);
            cairo_fill(cr);
        }
        k->lines++;
    }
    job_legend(cr, &fr, f, n, 0);
}

/* One stacked bar: the categories of m bottom up, the peak total as a
 * black line across it. */
static void stacked_bar(cairo_t *cr, const struct frame *fr, double x, double w,
                        const Memtrain__MemoryStats *m, double unit)
{
    double base = 0;
    for (size_t c = 0; c < FMT_MEM_CATEGORIES; c++) {
        double v = (double)fmt_mem_at(m, c) / unit;
        if (v <= 0)
            continue;
        cairo_set_source_rgb(cr, cat_colour[c][0], cat_colour[c][1], cat_colour[c][2]);
        cairo_rectangle(cr, x, fy(fr, base + v), w, fy(fr, base) - fy(fr, base + v));
        cairo_fill(cr);
        base += v;
    }
    double peak = (double)m->peak_total / unit;
    if (peak > 0) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, x - 3, fy(fr, peak));
        cairo_line_to(cr, x + w + 3, fy(fr, peak));
        cairo_stroke(cr);
    }
}

/* The sum of m's categories (a bar's height). */
static double categories_sum(const Memtrain__MemoryStats *m)
{
    double s = 0;
    for (size_t c = 0; c < FMT_MEM_CATEGORIES; c++)
        s += (double)fmt_mem_at(m, c);
    return fmax(s, m ? (double)m->peak_total : 0);
}

/* Memory by category, per job a planned (P) and a measured (M) bar. */
static void panel_memory(cairo_t *cr, const struct job_fig *f, size_t n, struct plot_counts *k)
{
    struct frame fr;
    frame_init(&fr);
    fr.y1 -= 18;   /* room for the job labels under the P/M letters */
    size_t shown = 0;
    double max = 0;
    for (size_t i = 0; i < n; i++) {
        if (!f[i].show)
            continue;
        shown++;
        max = fmax(max, categories_sum(jobfig_job(&f[i])->planned));
        max = fmax(max, categories_sum(f[i].mem));
    }
    const char *unit;
    double div = byte_unit(max, &unit);
    char ylabel[64];
    snprintf(ylabel, sizeof ylabel, "memory (%s)", unit);
    panel_text(cr, &fr, "Memory by category: planned (P) and measured peaks (M)",
               "job and rule", ylabel);
    fr.xmin = 0;
    fr.xmax = shown ? (double)shown : 1;
    fr.ymin = 0;
    fr.ymax = max > 0 ? max / div * 1.05 : 1;
    double ystep = snap_range(&fr.ymin, &fr.ymax, 6);
    y_axis(cr, &fr, ystep, ystep < 1 ? "%.2g" : "%.0f");
    double slot = (fr.x1 - fr.x0) / fr.xmax, w = fmin(slot * 0.32, 60);
    char lab[96];
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        if (!f[i].show)
            continue;
        double mid = fr.x0 + slot * ((double)col + 0.5);
        const Memtrain__MemoryStats *planned = jobfig_job(&f[i])->planned;
        font(cr, 11, 0);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        if (categories_sum(planned) > 0) {
            stacked_bar(cr, &fr, mid - w - 3, w, planned, div);
            k->bars++;
        }
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        text_at(cr, mid - w / 2 - 3, fr.y1 + 4, "P", 0.5, 0);
        if (categories_sum(f[i].mem) > 0) {
            stacked_bar(cr, &fr, mid + 3, w, f[i].mem, div);
            k->bars++;
        }
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        text_at(cr, mid + w / 2 + 3, fr.y1 + 4, "M", 0.5, 0);
        font(cr, shown > 8 ? 10 : 12, 1);
        set_job_colour(cr, i);
        text_at(cr, mid, fr.y1 + 20, job_label(lab, sizeof lab, &f[i]), 0.5, 0);
        col++;
    }
    cairo_set_dash(cr, NULL, 0, 0);
    /* the legend: the categories top down as stacked, then the peak line */
    double y = fr.y0 + 8;
    font(cr, 13, 1);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, fr.x1 + 16, y, "category (peak)", 0, 0);
    y += 24;
    font(cr, 13, 0);
    for (size_t c = FMT_MEM_CATEGORIES; c-- > 0; y += 20) {
        cairo_set_source_rgb(cr, cat_colour[c][0], cat_colour[c][1], cat_colour[c][2]);
        cairo_rectangle(cr, fr.x1 + 16, y, 14, 12);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, fr.x1 + 38, y + 6, fmt_mem_label(c), 0, 0.5);
    }
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, fr.x1 + 14, y + 6);
    cairo_line_to(cr, fr.x1 + 32, y + 6);
    cairo_stroke(cr);
    text_at(cr, fr.x1 + 38, y + 6, "peak total", 0, 0.5);
    font(cr, 11, 0);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    text_at(cr, fr.x1 + 16, y + 26, "each category's own peak;", 0, 0);
    text_at(cr, fr.x1 + 16, y + 41, "they need not coincide,", 0, 0);
    text_at(cr, fr.x1 + 16, y + 56, "so a bar can top the line", 0, 0);
}

/* A label's ink box. */
struct box {
    double x0, y0, x1, y1;
};

static int boxes_meet(const struct box *a, const struct box *b)
{
    return a->x0 < b->x1 && b->x0 < a->x1 && a->y0 < b->y1 && b->y0 < a->y1;
}

/* Label the point (x, y) at the first of eight spots beside it (right,
 * then left; just above, just below, then a line further) that meets no
 * label placed before (placed[0..*n)) and stays within the frame; the
 * first spot when every one does. Adds its box to placed (room for one
 * more). */
static void point_label(cairo_t *cr, const struct frame *fr, double x, double y, const char *s,
                        struct box *placed, size_t *n)
{
    static const double spot[8][2] = {{1, -1}, {1, 1}, {-1, -1}, {-1, 1},
                                      {1, -2}, {1, 2}, {-1, -2}, {-1, 2}};
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    struct box pick = {0};
    for (int k = 0; k < 8; k++) {
        double bx = spot[k][0] > 0 ? x + 9 : x - 9 - e.width;
        double by = fabs(spot[k][1]) < 1.5 ? 4 : 4 + e.height + 4;
        by = spot[k][1] < 0 ? y - by - e.height : y + by;
        struct box b = {bx, by, bx + e.width, by + e.height};
        int ok = b.x0 >= fr->x0 && b.x1 <= fr->x1 && b.y0 >= fr->y0 && b.y1 <= fr->y1;
        for (size_t i = 0; i < *n && ok; i++)
            ok = !boxes_meet(&b, &placed[i]);
        if (k == 0 || ok)
            pick = b;
        if (ok)
            break;
    }
    text_at(cr, pick.x0, pick.y0, s, 0, 0);
    placed[(*n)++] = pick;
}

/* Best test accuracy against peak memory; the front joined, dashed. */
static void panel_pareto(cairo_t *cr, const struct job_fig *f, size_t n, struct plot_counts *k)
{
    struct frame fr;
    frame_init(&fr);
    unsigned char *front = calloc(n ? n : 1, 1);
    size_t *order = calloc(n ? n : 1, sizeof *order), n_placed = 0;
    struct box *placed = calloc(n ? n : 1, sizeof *placed);
    double max = 0, min = INFINITY, lo = INFINITY, hi = -INFINITY;
    if (front && order)
        jobfig_pareto(f, n, front);
    for (size_t i = 0; i < n; i++) {
        if (!f[i].show || isnan(jobfig_best_accuracy(&f[i])) || jobfig_peak(&f[i]) == 0)
            continue;
        max = fmax(max, (double)jobfig_peak(&f[i]));
        min = fmin(min, (double)jobfig_peak(&f[i]));
        lo = fmin(lo, 100 * jobfig_best_accuracy(&f[i]));
        hi = fmax(hi, 100 * jobfig_best_accuracy(&f[i]));
    }
    const char *unit;
    double div = byte_unit(max, &unit);
    char xlabel[80];
    snprintf(xlabel, sizeof xlabel, "peak memory, the arena's total (%s)", unit);
    panel_text(cr, &fr, "Best test accuracy against peak memory (Pareto front dashed)",
               xlabel, "best test accuracy (%)");
    if (!(max > 0) || !front || !order || !placed) {
        y_axis(cr, &(struct frame){fr.x0, fr.y0, fr.x1, fr.y1, 0, 1, 0, 100}, 20, "%.0f");
        no_data(cr, &fr, "no job has both an accuracy and a peak yet");
        job_legend(cr, &fr, f, n, 1);
        free(front);
        free(order);
        free(placed);
        return;
    }
    double pad = fmax((hi - lo) * 0.15, 0.5);
    fr.ymin = fmax(0, lo - pad);
    fr.ymax = fmin(100, hi + pad);
    double ystep = snap_range(&fr.ymin, &fr.ymax, 6);
    /* the points' range, widened so that no point sits on the frame */
    double xpad = fmax((max - min) * 0.12, max * 0.03) / div;
    fr.xmin = fmax(0, min / div - xpad);
    fr.xmax = max / div + xpad;
    double xstep = snap_range(&fr.xmin, &fr.xmax, 8);
    y_axis(cr, &fr, ystep, ystep < 1 ? "%.1f" : "%.0f");
    x_axis(cr, &fr, xstep, xstep < 0.1 ? "%.2f" : xstep < 1 ? "%.1f" : "%.0f");
    /* the front, by memory */
    size_t m = jobfig_order_by_peak(f, n, order), prev = (size_t)-1;
    double dash[] = {6.0, 4.0};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_set_line_width(cr, 1.5);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    for (size_t q = 0; q < m; q++) {
        size_t i = order[q];
        if (!front[i])
            continue;
        double x = fx(&fr, (double)jobfig_peak(&f[i]) / div);
        double y = fy(&fr, 100 * jobfig_best_accuracy(&f[i]));
        if (prev == (size_t)-1)
            cairo_move_to(cr, x, y);
        else
            cairo_line_to(cr, x, y);
        prev = i;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    char lab[96];
    for (size_t q = 0; q < m; q++) {
        size_t i = order[q];
        if (isnan(jobfig_best_accuracy(&f[i])) || jobfig_peak(&f[i]) == 0)
            continue;
        double x = fx(&fr, (double)jobfig_peak(&f[i]) / div);
        double y = fy(&fr, 100 * jobfig_best_accuracy(&f[i]));
        cairo_arc(cr, x, y, 6, 0, 2 * M_PI);
        if (front[i]) {
            set_job_colour(cr, i);
            cairo_fill(cr);
            k->front++;
        } else {
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_fill_preserve(cr);
            set_job_colour(cr, i);
            cairo_set_dash(cr, NULL, 0, 0);
            cairo_set_line_width(cr, 2);
            cairo_stroke(cr);
        }
        font(cr, 12, 0);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        point_label(cr, &fr, x, y, job_label(lab, sizeof lab, &f[i]), placed, &n_placed);
        k->points++;
    }
    job_legend(cr, &fr, f, n, 1);
    font(cr, 11, 0);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    text_at(cr, fr.x1 + 16, fr.y1 - 45, "filled: on the front", 0, 0);
    text_at(cr, fr.x1 + 16, fr.y1 - 30, "hollow: another job is at", 0, 0);
    text_at(cr, fr.x1 + 16, fr.y1 - 15, "least as accurate with at", 0, 0);
    text_at(cr, fr.x1 + 16, fr.y1, "most as much memory", 0, 0);
    free(front);
    free(order);
    free(placed);
}

/* The picture: white ground, then the panels (stacked for PLOT_ALL). */
static void draw(cairo_t *cr, enum plot_kind kind, const struct job_fig *f, size_t n,
                 struct plot_counts *k)
{
    memset(k, 0, sizeof *k);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    static void (*const panel[3])(cairo_t *, const struct job_fig *, size_t,
                                  struct plot_counts *) = {panel_accuracy, panel_memory,
                                                           panel_pareto};
    for (int p = 0; p < 3; p++) {
        if (kind != PLOT_ALL && (int)kind != p)
            continue;
        cairo_save(cr);
        if (kind == PLOT_ALL)
            cairo_translate(cr, 0, p * PANEL_H);
        panel[p](cr, f, n, k);
        cairo_restore(cr);
    }
}

static double picture_height(enum plot_kind kind)
{
    return kind == PLOT_ALL ? 3 * PANEL_H : PANEL_H;
}

/* Draw onto a fresh surface, finish it, report cairo's verdict. */
static int render(cairo_surface_t *s, enum plot_kind kind, const struct job_fig *f, size_t n,
                  struct plot_counts *k, const char *what, struct mt_err *err)
{
    cairo_t *cr = cairo_create(s);
    draw(cr, kind, f, n, k);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(s);
    if (st != CAIRO_STATUS_SUCCESS)
        return mt_err_set(err, MT_E_IO, "%s: drawing failed: %s", what,
                          cairo_status_to_string(st));
    return 0;
}

int plot_write_file(const char *path, enum plot_format format, enum plot_kind kind,
                    const struct job_fig *f, size_t n, struct plot_counts *counts,
                    struct mt_err *err)
{
    double h = picture_height(kind);
    int rc;
    if (format == PLOT_SVG) {
        cairo_surface_t *s = cairo_svg_surface_create(path, PANEL_W, h);
        cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
        rc = render(s, kind, f, n, counts, path, err);
        cairo_surface_finish(s);   /* writes the file */
        if (!rc && cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
            rc = mt_err_set(err, MT_E_IO, "%s: %s", path,
                            cairo_status_to_string(cairo_surface_status(s)));
        cairo_surface_destroy(s);
        return rc;
    }
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)PANEL_W, (int)h);
    rc = render(s, kind, f, n, counts, path, err);
    if (!rc) {
        cairo_status_t st = cairo_surface_write_to_png(s, path);
        if (st != CAIRO_STATUS_SUCCESS)
            rc = mt_err_set(err, MT_E_IO, "%s: cannot write the PNG: %s", path,
                            cairo_status_to_string(st));
    }
    cairo_surface_destroy(s);
    return rc;
}

/* cairo's SVG output onto a FILE, its XML declaration (the first line)
 * left out. */
struct svg_sink {
    FILE *out;
    int in_decl;    /* still inside the "<?xml ...?>" line */
    int failed;
};

static cairo_status_t svg_write(void *closure, const unsigned char *data, unsigned int len)
{
    struct svg_sink *s = closure;
    if (s->in_decl) {
        const unsigned char *nl = memchr(data, '\n', len);
        if (!nl)
            return CAIRO_STATUS_SUCCESS;
        len -= (unsigned)(nl + 1 - data);
        data = nl + 1;
        s->in_decl = 0;
    }
    if (len && fwrite(data, 1, len, s->out) != len) {
        s->failed = 1;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}

int plot_write_svg(FILE *out, enum plot_kind kind, const struct job_fig *f, size_t n,
                   struct plot_counts *counts, struct mt_err *err)
{
    struct svg_sink sink = {.out = out, .in_decl = 1};
    cairo_surface_t *s = cairo_svg_surface_create_for_stream(svg_write, &sink, PANEL_W,
                                                             picture_height(kind));
    cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
    int rc = render(s, kind, f, n, counts, "the SVG picture", err);
    cairo_surface_finish(s);
    if (!rc && (sink.failed || cairo_surface_status(s) != CAIRO_STATUS_SUCCESS))
        rc = mt_err_set(err, MT_E_IO, "writing the SVG picture: %s",
                        cairo_status_to_string(cairo_surface_status(s)));
    cairo_surface_destroy(s);
    return rc;
}

void plot_release(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}

/* ---------------------------------------------------------- the command */

static const char *const kind_names[] = {"accuracy", "memory", "pareto", "all"};

int plot_parse_kind(const char *name)
{
    for (int k = 0; k < 4; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    return -1;
}

const char *plot_kind_name(enum plot_kind kind)
{
    return (unsigned)kind < 4 ? kind_names[kind] : "?";
}

/* FILE.svg or FILE.png (any case) -> the format; -1 otherwise. */
static int format_of(const char *path)
{
    size_t n = strlen(path);
    if (n > 4 && strcasecmp(path + n - 4, ".svg") == 0)
        return PLOT_SVG;
    if (n > 4 && strcasecmp(path + n - 4, ".png") == 0)
        return PLOT_PNG;
    return -1;
}

static const char plot_help[] =
    "Usage: mtctl plot [OPTIONS] -o FILE.svg|FILE.png ID|GROUP...\n"
    "\n"
    "Draw stored jobs side by side, as SVG or PNG (by FILE's extension). Each\n"
    "ID is a job; a GROUP (gN or group:N) is every job you can see that one\n"
    "`submit --rules` made (group N). Three pictures:\n"
    "  accuracy   test accuracy after each epoch, one line per job\n"
    "  memory     memory by category per job, stacked: the plan (P) beside the\n"
    "             measured peaks (M), with the peak total as a black line\n"
    "  pareto     each job's best test accuracy against its peak memory (the\n"
    "             arena's total); the Pareto front (no other job is at least as\n"
    "             accurate with at most as much memory) filled and joined\n"
    "A job keeps its colour in every picture.\n"
    "\n"
    "Options:\n"
    "  -o FILE.svg|FILE.png   the file to write (required)\n"
    "  -k, --kind KIND        accuracy, memory, pareto, or all (the three stacked;\n"
    "                         the default)\n"
    "  -o json, --json        print what was drawn as a JSON document (the file\n"
    "                         still comes from -o FILE)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n"
    "\n"
    "A job that cannot be fetched is reported on stderr and left out; the exit\n"
    "status is then that error's (4 when not found), else 0.\n";

static void plot_json(const char *path, enum plot_format format, enum plot_kind kind,
                      const struct job_fig *f, size_t n, const struct plot_counts *k)
{
    struct json j;
    json_begin(&j, stdout);
    json_str(&j, "file", path);
    json_str(&j, "format", format == PLOT_SVG ? "svg" : "png");
    json_str(&j, "kind", plot_kind_name(kind));
    json_arr(&j, "job_ids");
    for (size_t i = 0; i < n; i++)
        if (f[i].show)
            json_u64(&j, NULL, f[i].id);
    json_arr_end(&j);
    json_i64(&j, "accuracy_lines", k->lines);
    json_i64(&j, "memory_bars", k->bars);
    json_i64(&j, "pareto_points", k->points);
    json_i64(&j, "pareto_front", k->front);
    json_end(&j);
}

int cmd_plot(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"kind", required_argument, NULL, 'k'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt, rc, kind = PLOT_ALL, format = -1;
    const char *path = NULL;
    mtctl_getopt_reset(c, argv, "plot");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "k:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'k':
            if ((kind = plot_parse_kind(optarg)) < 0)
                return mtctl_usage_error(c, "unknown --kind '%s' (expected accuracy, memory, "
                                         "pareto or all)", optarg);
            break;
        case 'o':
            /* -o json and -o text stay the global output format */
            if (strcmp(optarg, "json") == 0 || strcmp(optarg, "text") == 0) {
                c->json = optarg[0] == 'j';
                break;
            }
            if ((format = format_of(optarg)) < 0)
                return mtctl_usage_error(c, "'%s': the picture's file must end in .svg or .png",
                                         optarg);
            path = optarg;
            break;
        MTCTL_OPT_DEFAULT(c, opt, plot_help)
        }
    }
    if (!path)
        return mtctl_usage_error(c, "expected -o FILE.svg or -o FILE.png");
    struct job_fig *f;
    size_t n, got;
    int status = jobfig_fetch_args(c, argc - optind, argv + optind, &f, &n, &got);
    if (!f)
        return status;
    if (got) {
        struct plot_counts k;
        struct mt_err err = {0};
        if (plot_write_file(path, (enum plot_format)format, (enum plot_kind)kind, f, n, &k,
                            &err)) {
            rc = mtctl_fail(c, &err);
            status = status ? status : rc;
        } else if (c->json) {
            plot_json(path, (enum plot_format)format, (enum plot_kind)kind, f, n, &k);
        } else {
            printf("wrote %s (%s, %zu job%s)\n", path, plot_kind_name((enum plot_kind)kind),
                   got, got == 1 ? "" : "s");
        }
        plot_release();
    }
    jobfig_free_all(f, n);
    return status;
}
