/* compare.c: `mtctl compare ID|GROUP...`, stored jobs side by side in a
 * table that fits 100 columns: rule, best and last test accuracy, peak
 * memory, kept activations, seconds per epoch, sorted by peak memory, the
 * Pareto front of accuracy against memory marked; on a terminal a
 * sparkline of the accuracy per epoch; with -o json one document. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "spark.h"

#define COMPARE_COLUMNS 100   /* the widest a line may be */
#define SPARK_MIN 4           /* a narrower sparkline is left out */

#define NCMP 11
static const char *const cmp_head[NCMP] = {
    "", "JOB", "RULE", "STATE", "EPOCHS", "BEST (EP)", "LAST", "PEAK", "KEPT ACTS", "S/EPOCH",
    "ACCURACY"};

const char compare_note[] =
    "* the Pareto front: no other job has at least its best accuracy with at most its\n"
    "peak memory. BEST (EP): the best test accuracy and its epoch; LAST: the last\n"
    "epoch's. PEAK: the arena's peak total; KEPT ACTS: its activations' peak (what a\n"
    "step keeps for the backward pass). S/EPOCH: mean training seconds per epoch.\n";

/* The row of job f (its sparkline cell left empty). */
static void compare_row(const struct job_fig *f, int front, struct table *t)
{
    const Memtrain__Job *job = jobfig_job(f);
    const struct report_row *r = &f->row;
    char id[24], ep[32], best[40], last[24], peak[24], kept[24], sec[24];
    int b = report_best_epoch(r);
    snprintf(id, sizeof id, "%llu", (unsigned long long)f->id);
    snprintf(ep, sizeof ep, "%u/%u", job->epochs_done, job->epochs);
    if (b >= 0) {
        char pct[16];
        snprintf(best, sizeof best, "%s (%d)", fmt_percent(pct, sizeof pct,
                                                           r->ep[b].test_accuracy), b + 1);
        fmt_percent(last, sizeof last, jobfig_last_accuracy(f));
        double m = report_mean_seconds(r);
        snprintf(sec, sizeof sec, m >= 100 ? "%.0f" : m >= 10 ? "%.1f" : "%.2f", m);
    } else {
        snprintf(best, sizeof best, "-");
        snprintf(last, sizeof last, "-");
        snprintf(sec, sizeof sec, "-");
    }
    if (jobfig_peak(f)) {
        fmt_bytes(peak, sizeof peak, jobfig_peak(f));
        fmt_bytes(kept, sizeof kept, r->mem.kept_activations);
    } else {
        snprintf(peak, sizeof peak, "-");
        snprintf(kept, sizeof kept, "-");
    }
    const char *cells[NCMP] = {front ? "*" : "", id, r->label, fmt_state(job->state), ep, best,
                               last, peak, kept, sec, ""};
    table_add(t, cells);
}

/* The printed width of t: its columns and the gaps between them. */
static size_t table_width(const struct table *t)
{
    size_t w = 0;
    for (int col = 0; col < t->ncols; col++) {
        size_t cw = strlen(t->head[col]);
        for (size_t r = 0; r < t->nrows; r++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)col];
            size_t sw = 0;
            for (; *s; s++)
                sw += ((unsigned char)*s & 0xC0) != 0x80;
            cw = sw > cw ? sw : cw;
        }
        w += cw + (col ? 2 : 0);
    }
    return w;
}

/* Job f's test accuracy per epoch (its last 64) as `width` cells. */
static const char *spark_cell(char *buf, size_t len, const struct job_fig *f, double lo,
                              double hi, int width)
{
    double acc[64];
    const struct report_row *r = &f->row;
    size_t n = 0, first = r->n_epochs > 64 ? (size_t)r->n_epochs - 64 : 0;
    for (size_t e = first; e < (size_t)r->n_epochs; e++)
        acc[n++] = r->ep[e].test_accuracy;
    return spark_line(buf, len, acc, n, lo, hi, width);
}

/* t's rows again with a sparkline cell each, into wide (NCMP columns). */
static void add_sparks(const struct table *t, const struct job_fig *f, const size_t *order,
                       int width, struct table *wide)
{
    double lo = INFINITY, hi = -INFINITY;   /* one scale for every row */
    for (size_t q = 0; q < t->nrows; q++)
        for (int e = 0; e < f[order[q]].row.n_epochs; e++) {
            lo = fmin(lo, f[order[q]].row.ep[e].test_accuracy);
            hi = fmax(hi, f[order[q]].row.ep[e].test_accuracy);
        }
    table_init(wide, NCMP, cmp_head, ".r..rrrrrr.");
    for (size_t q = 0; q < t->nrows; q++) {
        const char *cells[NCMP];
        char buf[256];
        memcpy(cells, t->cells + q * (size_t)t->ncols, (NCMP - 1) * sizeof *cells);
        cells[NCMP - 1] = spark_cell(buf, sizeof buf, &f[order[q]], lo, hi, width);
        table_add(wide, cells);
    }
}

void compare_table(const struct job_fig *f, size_t n, int spark, struct table *t)
{
    size_t *order = calloc(n ? n : 1, sizeof *order);
    unsigned char *front = calloc(n ? n : 1, 1);
    table_init(t, NCMP - 1, cmp_head, ".r..rrrrrr");
    if (!order || !front) {
        t->oom = 1;
        free(order), free(front);
        return;
    }
    jobfig_pareto(f, n, front);
    size_t m = jobfig_order_by_peak(f, n, order);
    for (size_t q = 0; q < m; q++)
        compare_row(&f[order[q]], front[order[q]], t);
    long room = (long)COMPARE_COLUMNS - (long)table_width(t) - 2;
    int w = room < spark ? (int)room : spark;
    if (spark > 0 && w >= SPARK_MIN && room >= (long)strlen(cmp_head[NCMP - 1]) && !t->oom) {
        struct table wide;
        add_sparks(t, f, order, w, &wide);
        table_free(t);
        *t = wide;
    }
    free(order);
    free(front);
}

static void compare_json(const struct job_fig *f, size_t n)
{
    size_t *order = calloc(n ? n : 1, sizeof *order);
    unsigned char *front = calloc(n ? n : 1, 1);
    struct json j;
    json_begin(&j, stdout);
    json_arr(&j, "jobs");
    if (order && front) {
        jobfig_pareto(f, n, front);
        size_t m = jobfig_order_by_peak(f, n, order);
        for (size_t q = 0; q < m; q++) {
            const struct job_fig *g = &f[order[q]];
            const Memtrain__Job *job = jobfig_job(g);
            const struct report_row *r = &g->row;
            int b = report_best_epoch(r);
            json_obj(&j, NULL);
            json_u64(&j, "job_id", g->id);
            json_str(&j, "name", job->name);
            json_str(&j, "rule", r->label);
            json_str(&j, "state", fmt_state(job->state));
            json_u64(&j, "group_id", job->group_id);
            json_u64(&j, "epochs_done", job->epochs_done);
            json_u64(&j, "epochs", job->epochs);
            json_double(&j, "best_test_accuracy", jobfig_best_accuracy(g));
            if (b >= 0)
                json_i64(&j, "best_epoch", b + 1);
            else
                json_null(&j, "best_epoch");
            json_double(&j, "last_test_accuracy", jobfig_last_accuracy(g));
            if (jobfig_peak(g)) {
                json_u64(&j, "peak_total_bytes", jobfig_peak(g));
                json_u64(&j, "kept_activations_bytes", r->mem.kept_activations);
            } else {
                json_null(&j, "peak_total_bytes");
                json_null(&j, "kept_activations_bytes");
            }
            json_double(&j, "seconds_per_epoch", report_mean_seconds(r));
            json_bool(&j, "pareto_front", front[order[q]]);
            json_arr(&j, "test_accuracy");
            for (int e = 0; e < r->n_epochs; e++)
                json_double(&j, NULL, r->ep[e].test_accuracy);
            json_arr_end(&j);
            json_obj_end(&j);
        }
    }
    json_arr_end(&j);
    json_end(&j);
    free(order);
    free(front);
}

static const char compare_help[] =
    "Usage: mtctl compare [OPTIONS] ID|GROUP...\n"
    "\n"
    "Stored jobs side by side, one row each, sorted by peak memory: the rule, the\n"
    "state and epochs, the best test accuracy (and its epoch) and the last, the\n"
    "arena's peak total and its kept activations, and seconds per epoch. A '*'\n"
    "in the first column marks the Pareto front of accuracy against memory: the\n"
    "jobs no other job beats with at least as much accuracy and at most as much\n"
    "memory. On a terminal a last column, ACCURACY, draws each job's test accuracy\n"
    "per epoch as a sparkline on one scale for all rows: at most 16 cells (fewer\n"
    "when a line would pass 100 columns), each the last epoch of its share of\n"
    "the job's last 64. Lines fit 100 columns.\n"
    "\n"
    "Each ID is a job; a GROUP (gN or group:N) is every job you can see that one\n"
    "`submit --rules` made (group N).\n"
    "\n"
    "Options:\n"
    "  -o json, --json        one JSON document: \"jobs\" in the table's order, each\n"
    "                         with its figures, \"pareto_front\" and \"test_accuracy\"\n"
    "                         per epoch (docs/compare.md)\n"
    "      --no-spark         no sparkline column, even on a terminal\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n"
    "\n"
    "A job that cannot be fetched is reported on stderr and left out; the exit\n"
    "status is then that error's (4 when not found), else 0.\n";

int cmd_compare(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_NO_SPARK = 0x2001 };
    static const struct option longopts[] = {
        {"no-spark", no_argument, NULL, OPT_NO_SPARK},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt, rc, spark = 1;
    mtctl_getopt_reset(c, argv, "compare");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_NO_SPARK: spark = 0; break;
        MTCTL_OPT_DEFAULT(c, opt, compare_help)
        }
    }
    struct job_fig *f;
    size_t n, got;
    int status = jobfig_fetch_args(c, argc - optind, argv + optind, &f, &n, &got);
    if (!f)
        return status;
    if (got && c->json) {
        compare_json(f, n);
    } else if (got) {
        struct table t;
        compare_table(f, n, spark && c->tty ? 16 : 0, &t);
        if (table_print(&t, stdout)) {
            struct mt_err err = {0};
            mt_err_set(&err, MT_E_NOMEM, "out of memory formatting the table");
            rc = mtctl_fail(c, &err);
            status = status ? status : rc;
        } else {
            printf("\n%s", compare_note);
        }
        table_free(&t);
    }
    jobfig_free_all(f, n);
    return status;
}
