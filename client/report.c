/* report.c: `mtctl report ID...`, the reproduction report's table from
 * jobs the daemon has stored (the same figures memtrain-report prints from
 * its own runs, daemon/memtrain-report/).
 *
 * Per job it asks the daemon for the record and its stored spec (Show) and
 * the epoch history (Metrics) and turns them into a report row
 * (daemon/report/reporttable.h): test error per epoch, the arena's peaks
 * (per phase, kept activations = the activations category, total), seconds
 * per epoch; and, recomputed from the stored spec, memory under the TinyFoA
 * paper's counting (papermem.h) beside the paper's Table 1 figures when the
 * job is the paper's setting (784 or 3072 inputs, 2000-wide hidden layers,
 * 10 classes, batch 100): jobfig.c. The rows then print as this command's
 * summary table and test-error curve (aligned text or markdown), as the
 * report's two CSVs (the table module's schema), as JSON, or (--html) as
 * one self-contained page with the compare table and the pictures
 * (htmlreport.c). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "htmlreport.h"
#include "jobfig.h"
#include "mtctl.h"
#include "papermem.h"
#include "report.h"
#include "reporttable.h"

static const char report_help[] =
    "Usage: mtctl report [OPTIONS] ID|GROUP...\n"
    "\n"
    "The reproduction report's table for stored jobs (see memtrain-report for\n"
    "the runs themselves): for each job ID, its rule and network, state, epochs,\n"
    "test error at its best epoch and at its last, seconds per epoch, and memory:\n"
    "the arena's peak total within each phase of a step (forward, gradient,\n"
    "update), its kept activations (the activations category's peak) and its\n"
    "peak total; beside them the TinyFoA paper's counting of the same job\n"
    "(only the hidden-to-hidden matrices, FP32 4 bytes, binary 1 bit, no\n"
    "optimizer state; recomputed from the stored spec for bp, bp with binary:\n"
    "true, ff, pepita and tinyfoa, n/a for other rules) and, when the job is\n"
    "the paper's setting (784-2000x4-10 or 3072-2000x4-10, PEPITA x3, batch\n"
    "100), the paper's error and figures. Then the test error after every\n"
    "epoch, one column per job. MB = 10^6 bytes, the paper's unit. A GROUP (gN\n"
    "or group:N) is every job you can see that one `submit --rules` made.\n"
    "\n"
    "Options:\n"
    "      --csv              CSV with a header row: one row per job (every\n"
    "                         figure in bytes), or one row per job per epoch with\n"
    "                         --curve\n"
    "      --curve            with --csv: the per-epoch rows instead\n"
    "      --markdown         the tables as markdown instead of aligned text\n"
    "      --html FILE        write one self-contained HTML page to FILE: the\n"
    "                         compare table (mtctl compare), this table, and\n"
    "                         the pictures of mtctl plot as inline SVG\n"
    "  -o json, --json        one JSON document with \"jobs\", each with its figures\n"
    "                         and \"curve\" (test error per epoch)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n"
    "\n"
    "A job that cannot be fetched is reported on stderr and left out; the exit\n"
    "status is then that error's (4 when not found), else 0.\n";

/* ------------------------------------------------------------- tables */

/* The summary table: one row per job. */
#define NSUM 14
static const char *const sum_head[NSUM] = {
    "JOB", "RULE", "NETWORK", "STATE", "EPOCHS", "ERR-BEST (EPOCH)", "ERR-LAST", "PAPER-ERR",
    "PAPER-COUNT F/G/U MB", "PAPER F/G/U MB", "PHASE-PEAK F/G/U MB", "KEPT-ACTS MB",
    "PEAK MB", "S/EPOCH"};

static void summary_row(const struct job_fig *f, struct table *t)
{
    const Memtrain__Job *job = f->show->show->job;
    const struct report_row *r = &f->row;
    const struct report_mem *m = &r->mem;
    char id[24], ep[32], best[40], last[24], perr[24], cnt[64], pap[64], ph[64], kept[24],
        tot[24], sec[24];
    int b = report_best_epoch(r);
    snprintf(id, sizeof id, "%llu", (unsigned long long)f->id);
    snprintf(ep, sizeof ep, "%u/%u", job->epochs_done, job->epochs);
    if (b >= 0) {
        snprintf(best, sizeof best, "%.2f%% (%d)", report_error_pct(&r->ep[b]), b + 1);
        snprintf(last, sizeof last, "%.2f%%", report_error_pct(&r->ep[r->n_epochs - 1]));
        snprintf(sec, sizeof sec, "%.1f", report_mean_seconds(r));
    } else {
        snprintf(best, sizeof best, "-");
        snprintf(last, sizeof last, "-");
        snprintf(sec, sizeof sec, "-");
    }
    if (r->paper)
        snprintf(perr, sizeof perr, "%.2f%%", r->paper_error_pct);
    else
        snprintf(perr, sizeof perr, "-");
    if (r->pm.scope != PAPERMEM_NA)
        report_mb3(cnt, sizeof cnt, (double)r->pm.bytes[0], (double)r->pm.bytes[1],
                   (double)r->pm.bytes[2]);
    else
        snprintf(cnt, sizeof cnt, "n/a");
    if (r->paper)
        snprintf(pap, sizeof pap, "%.2f / %.2f / %.2f", r->paper->mb[0], r->paper->mb[1],
                 r->paper->mb[2]);
    else
        snprintf(pap, sizeof pap, "-");
    if (m->known) {
        report_mb3(ph, sizeof ph, (double)m->phase_peak[0], (double)m->phase_peak[1],
                   (double)m->phase_peak[2]);
        report_mb(kept, sizeof kept, (double)m->kept_activations);
        report_mb(tot, sizeof tot, (double)m->peak_total);
    } else {
        snprintf(ph, sizeof ph, "-");
        snprintf(kept, sizeof kept, "-");
        snprintf(tot, sizeof tot, "-");
    }
    const char *cells[NSUM] = {id, r->label, r->network, r->state, ep, best, last, perr,
                               cnt, pap, ph, kept, tot, sec};
    table_add(t, cells);
}

static int print_table(const struct table *t, int markdown)
{
    if (!markdown)
        return table_print(t, stdout);
    report_md_table(stdout, t->ncols, t->head, (const char *const *)t->cells, t->nrows);
    return t->oom ? -1 : 0;
}

/* The test error after every epoch: EPOCH, then one column per job (at
 * most 63, table_print's limit). */
static int curve_table(const struct job_fig *f, size_t nf, int markdown)
{
    size_t cols = 1;
    int maxe = 0, rc = 0;
    for (size_t i = 0; i < nf; i++)
        if (f[i].show) {
            cols++;
            if (f[i].row.n_epochs > maxe)
                maxe = f[i].row.n_epochs;
        }
    if (cols > 64)
        cols = 64;
    char **head = calloc(cols, sizeof *head);
    char *right = calloc(cols + 1, 1);
    const char **cells = calloc(cols, sizeof *cells);
    char (*buf)[24] = calloc(cols, sizeof *buf);
    if (!head || !right || !cells || !buf) {
        free(head), free(right), free(cells), free(buf);
        return -1;
    }
    head[0] = strdup("EPOCH");
    right[0] = 'r';
    for (size_t i = 0, c = 1; i < nf && c < cols; i++) {
        if (!f[i].show)
            continue;
        char h[80];
        snprintf(h, sizeof h, "%llu:%s", (unsigned long long)f[i].id, f[i].row.label);
        head[c] = strdup(h);
        right[c++] = 'r';
    }
    for (size_t c = 0; c < cols; c++)
        if (!head[c])
            rc = -1;
    if (!rc) {
        struct table t;
        table_init(&t, (int)cols, (const char *const *)head, right);
        for (int k = 0; k < maxe; k++) {
            snprintf(buf[0], sizeof buf[0], "%d", k + 1);
            cells[0] = buf[0];
            for (size_t i = 0, c = 1; i < nf && c < cols; i++) {
                if (!f[i].show)
                    continue;
                cells[c] = report_curve_cell(buf[c], sizeof buf[c], &f[i].row, k);
                c++;
            }
            table_add(&t, cells);
        }
        printf(markdown ? "\n## Test error (%%) after each epoch\n\n" : "\nTest error (%%) after "
               "each epoch:\n");
        rc |= print_table(&t, markdown);
        table_free(&t);
    }
    for (size_t c = 0; c < cols; c++)
        free(head[c]);
    free(head), free(right), free(cells), free(buf);
    return rc;
}

static const char summary_note[] =
    "MB = 10^6 bytes. PAPER-COUNT: the TinyFoA paper's counting (hidden-to-hidden matrices "
    "only, no\noptimizer state) of the same job; PAPER: its Table 1, shown only for the "
    "paper's setting.\nPHASE-PEAK, KEPT-ACTS, PEAK: the arena's measured peaks (the whole "
    "job). S/EPOCH: training time.\n";

static void summary_table(const struct job_fig *f, size_t nf, struct table *t)
{
    table_init(t, NSUM, sum_head, "r...rrrr...rrr");
    for (size_t i = 0; i < nf; i++)
        if (f[i].show)
            summary_row(&f[i], t);
}

static int text_report(struct job_fig *f, size_t nf, int markdown)
{
    struct table t;
    int rc = 0;
    summary_table(f, nf, &t);
    if (markdown)
        printf("## Jobs\n\n");
    rc |= print_table(&t, markdown);
    table_free(&t);
    if (curve_table(f, nf, markdown))
        return -1;
    printf("\n%s", summary_note);
    return rc;
}

/* -------------------------------------------------------- CSV and JSON */

/* The CSVs of the fetched jobs (reporttable.h's schema). -1 when out of
 * memory. */
static int csv_report(const struct job_fig *f, size_t nf, int curve)
{
    const struct report_row **rows = calloc(nf ? nf : 1, sizeof *rows);
    size_t n = 0;
    if (!rows)
        return -1;
    for (size_t i = 0; i < nf; i++)
        if (f[i].show)
            rows[n++] = &f[i].row;
    if (curve)
        report_csv_epochs(stdout, rows, n);
    else
        report_csv_summary(stdout, rows, n);
    free(rows);
    return 0;
}

static void json_report(const struct job_fig *f, size_t nf)
{
    struct json j;
    json_begin(&j, stdout);
    json_arr(&j, "jobs");
    for (size_t i = 0; i < nf; i++) {
        if (!f[i].show)
            continue;
        const struct job_fig *g = &f[i];
        const struct report_row *r = &g->row;
        const Memtrain__Job *job = g->show->show->job;
        int b = report_best_epoch(r);
        json_obj(&j, NULL);
        json_u64(&j, "job_id", g->id);
        json_str(&j, "name", job->name);
        json_str(&j, "rule", r->label);
        json_str(&j, "network", r->network);
        json_str(&j, "state", r->state);
        json_u64(&j, "epochs_done", job->epochs_done);
        json_u64(&j, "epochs", job->epochs);
        if (b >= 0) {
            json_double(&j, "best_error_pct", report_error_pct(&r->ep[b]));
            json_i64(&j, "best_epoch", b + 1);
            json_double(&j, "last_error_pct", report_error_pct(&r->ep[r->n_epochs - 1]));
            json_double(&j, "seconds_per_epoch", report_mean_seconds(r));
        } else {
            json_null(&j, "best_error_pct");
            json_null(&j, "best_epoch");
            json_null(&j, "last_error_pct");
            json_null(&j, "seconds_per_epoch");
        }
        json_memory_stats(&j, "memory", g->mem);
        if (r->pm.scope != PAPERMEM_NA) {
            json_obj(&j, "paper_counting");
            json_str(&j, "scope", papermem_scope_name(r->pm.scope));
            json_u64(&j, "forward", r->pm.bytes[0]);
            json_u64(&j, "gradient", r->pm.bytes[1]);
            json_u64(&j, "update", r->pm.bytes[2]);
            json_u64(&j, "formula_extra_forward", r->pm.extra[0]);
            json_u64(&j, "formula_extra_gradient", r->pm.extra[1]);
            json_u64(&j, "formula_extra_update", r->pm.extra[2]);
            json_obj_end(&j);
        } else {
            json_null(&j, "paper_counting");
        }
        if (r->paper) {
            json_obj(&j, "paper");
            json_str(&j, "method", r->paper->method);
            json_double(&j, "error_pct", r->paper_error_pct);
            json_double(&j, "forward_mb", r->paper->mb[0]);
            json_double(&j, "gradient_mb", r->paper->mb[1]);
            json_double(&j, "update_mb", r->paper->mb[2]);
            json_obj_end(&j);
        } else {
            json_null(&j, "paper");
        }
        json_arr(&j, "curve");
        for (int k = 0; k < r->n_epochs; k++)
            json_double(&j, NULL, report_error_pct(&r->ep[k]));
        json_arr_end(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_end(&j);
}

/* ----------------------------------------------------------- command */

/* --html FILE: the page, then a line (or document) naming the file. */
static int html_report(struct mtctl *c, const char *path, const struct job_fig *f, size_t nf)
{
    struct table t;
    struct mt_err err = {0};
    summary_table(f, nf, &t);
    int rc = htmlreport_write(path, f, nf, &t, summary_note, &err);
    table_free(&t);
    if (rc)
        return mtctl_fail(c, &err);
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_str(&j, "file", path);
        json_arr(&j, "job_ids");
        for (size_t i = 0; i < nf; i++)
            if (f[i].show)
                json_u64(&j, NULL, f[i].id);
        json_arr_end(&j);
        json_end(&j);
    } else {
        printf("wrote %s\n", path);
    }
    return MTCTL_EXIT_OK;
}

int cmd_report(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_CSV = 0x2001, OPT_CURVE, OPT_MARKDOWN, OPT_HTML };
    static const struct option longopts[] = {
        {"csv", no_argument, NULL, OPT_CSV},
        {"curve", no_argument, NULL, OPT_CURVE},
        {"markdown", no_argument, NULL, OPT_MARKDOWN},
        {"html", required_argument, NULL, OPT_HTML},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt, rc, csv = 0, curve = 0, markdown = 0;
    const char *html = NULL;
    mtctl_getopt_reset(c, argv, "report");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_CSV: csv = 1; break;
        case OPT_CURVE: curve = 1; break;
        case OPT_MARKDOWN: markdown = 1; break;
        case OPT_HTML: html = optarg; break;
        MTCTL_OPT_DEFAULT(c, opt, report_help)
        }
    }
    if (csv + c->json + markdown > 1)
        return mtctl_usage_error(c, "--csv, --json and --markdown exclude each other");
    if (html && (csv || markdown))
        return mtctl_usage_error(c, "--html excludes --csv and --markdown");
    if (curve && !csv)
        return mtctl_usage_error(c, "--curve goes with --csv");
    struct job_fig *f;
    size_t nf, got;
    int status = jobfig_fetch_args(c, argc - optind, argv + optind, &f, &nf, &got);
    if (!f)
        return status;
    if (got) {
        if (html) {
            rc = html_report(c, html, f, nf);
            if (status == MTCTL_EXIT_OK)
                status = rc;
        } else if (c->json) {
            json_report(f, nf);
        } else if (csv ? csv_report(f, nf, curve) : text_report(f, nf, markdown)) {
            struct mt_err err = {0};
            mt_err_set(&err, MT_E_NOMEM, "out of memory formatting the table");
            rc = mtctl_fail(c, &err);
            if (status == MTCTL_EXIT_OK)
                status = rc;
        }
    }
    jobfig_free_all(f, nf);
    return status;
}
