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
 * 10 classes, batch 100). The rows then print as this command's summary
 * table and test-error curve (aligned text or markdown), as the report's
 * two CSVs (the table module's schema), or as JSON. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "mtctl.h"
#include "papermem.h"
#include "report.h"
#include "reporttable.h"

#define MAX_WIDTHS 66

static const char report_help[] =
    "Usage: mtctl report [OPTIONS] ID...\n"
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
    "epoch, one column per job. MB = 10^6 bytes, the paper's unit.\n"
    "\n"
    "Options:\n"
    "      --csv              CSV with a header row: one row per job (every\n"
    "                         figure in bytes), or one row per job per epoch with\n"
    "                         --curve\n"
    "      --curve            with --csv: the per-epoch rows instead\n"
    "      --markdown         the tables as markdown instead of aligned text\n"
    "  -o json, --json        one JSON document with \"jobs\", each with its figures\n"
    "                         and \"curve\" (test error per epoch)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n"
    "\n"
    "A job that cannot be fetched is reported on stderr and left out; the exit\n"
    "status is then that error's (4 when not found), else 0.\n";

/* One job: the daemon's answers and the report row drawn from them. */
struct job_fig {
    uint64_t id;
    Memtrain__Response *show;       /* owned */
    Memtrain__Response *metrics;    /* owned */
    const Memtrain__MemoryStats *mem;   /* the last epoch's peaks, or the job's measured */
    int cifar;                      /* the paper's CIFAR-10 error applies */
    struct report_row row;          /* owns its epochs */
};

/* Input width of a named dataset when the spec left it 0. */
static int named_input(const char *name)
{
    if (!name)
        return 0;
    if (strcmp(name, "cifar10") == 0)
        return 3072;
    if (strcmp(name, "mnist") == 0 || strcmp(name, "fashion-mnist") == 0
        || strcmp(name, "fashion") == 0)
        return 784;
    return 0;
}

static void mem_from_stats(struct report_mem *out, const Memtrain__MemoryStats *m)
{
    memset(out, 0, sizeof *out);
    if (!m)
        return;
    out->known = 1;
    out->params = m->params;
    out->grads = m->grads;
    out->optimizer = m->optimizer;
    out->kept_activations = m->activations;
    out->workspace = m->workspace;
    out->data = m->data;
    out->peak_total = m->peak_total;
    out->phase_peak[PAPERMEM_FORWARD] = m->phase_peak_forward;
    out->phase_peak[PAPERMEM_GRADIENT] = m->phase_peak_gradient;
    out->phase_peak[PAPERMEM_UPDATE] = m->phase_peak_update;
    out->rss_peak = m->rss_peak_bytes;
}

static void epoch_from_progress(struct report_epoch *out, const Memtrain__EpochProgress *e)
{
    memset(out, 0, sizeof *out);
    out->epoch = (int)e->epoch;
    out->loss = e->loss;
    out->train_accuracy = e->train_accuracy;
    out->test_accuracy = e->test_accuracy;
    out->test_loss = NAN;
    out->seconds = e->seconds;
    out->eval_seconds = NAN;
    out->samples_per_second = e->samples_per_second;
    out->lr = e->lr;
    mem_from_stats(&out->mem, e->memory);
    for (size_t q = 0; q < e->n_rule_metrics && q < REPORT_MAX_METRICS; q++) {
        snprintf(out->metrics[q].name, sizeof out->metrics[q].name, "%s",
                 e->rule_metrics[q]->name ? e->rule_metrics[q]->name : "");
        out->metrics[q].value = e->rule_metrics[q]->value;
        out->n_metrics++;
    }
}

/* The network as "784-2000x4-10 relu" (or every width when they differ),
 * "+ norm" when it has one; the widths into width[0..*n_layers]. */
static void describe_net(struct job_fig *f, const Memtrain__JobSpec *s, int *width,
                         int *n_layers)
{
    const Memtrain__ModelSpec *m = s->model;
    const char *ds = s->dataset ? s->dataset->name : NULL;
    char *net = f->row.network;
    size_t len = sizeof f->row.network;
    int L = (int)m->n_hidden + 1;
    *n_layers = L;
    width[0] = m->input ? (int)m->input : named_input(ds);
    for (size_t l = 0; l < m->n_hidden; l++)
        width[l + 1] = (int)m->hidden[l]->width;
    width[L] = m->classes ? (int)m->classes : named_input(ds) ? 10 : 0;
    f->cifar = ds && strcmp(ds, "cifar10") == 0;
    int same = 1;
    for (size_t l = 1; l < m->n_hidden; l++)
        same &= m->hidden[l]->width == m->hidden[0]->width;
    const char *act = m->activation && m->activation[0] ? m->activation : "relu";
    const char *norm = m->norm && m->norm[0] && strcmp(m->norm, "none") ? m->norm : NULL;
    int n = 0;
    if (m->n_hidden && same)
        n = snprintf(net, len, "%d-%ux%zu-%d %s", width[0], m->hidden[0]->width, m->n_hidden,
                     width[L], act);
    else {
        n = snprintf(net, len, "%d", width[0]);
        for (int l = 1; l <= L && n > 0 && (size_t)n < len; l++)
            n += snprintf(net + n, len - (size_t)n, "-%d", width[l]);
        if (n > 0 && (size_t)n < len)
            n += snprintf(net + n, len - (size_t)n, " %s", act);
    }
    if (norm && n > 0 && (size_t)n < len)
        snprintf(net + n, len - (size_t)n, " + %s", norm);
}

/* The report row from the two responses. -1 when out of memory. */
static int figure(struct job_fig *f)
{
    const Memtrain__Job *job = f->show->show->job;
    const Memtrain__JobSpec *s = f->show->show->spec;
    struct report_row *r = &f->row;
    const char *rule = job->rule && job->rule[0] ? job->rule : "bp";
    int binary = 0, groups = -1;
    report_row_init(r);
    if (s && s->rule) {
        if (s->rule->name && s->rule->name[0])
            rule = s->rule->name;
        binary = s->rule->opt_binary_case == MEMTRAIN__RULE_SPEC__OPT_BINARY_BINARY
                 && s->rule->binary;
        if (s->rule->opt_groups_case == MEMTRAIN__RULE_SPEC__OPT_GROUPS_GROUPS)
            groups = (int)s->rule->groups;
    }
    r->job_id = f->id;
    r->name = job->name;
    snprintf(r->label, sizeof r->label, "%s%s", rule, binary ? "+bw+ba" : "");
    snprintf(r->rule, sizeof r->rule, "%s", rule);
    r->state = fmt_state(job->state);
    snprintf(r->message, sizeof r->message, "%s", job->reason ? job->reason : "");
    r->epochs_planned = (int)job->epochs;
    r->epochs_done = (int)job->epochs_done;
    snprintf(r->network, sizeof r->network, "-");
    if (s && s->model && s->model->n_layers) {
        /* a layer list: named as mtctl show does; the paper counts only
         * fully connected networks (PAPER-COUNT n/a, no paper row) */
        char net[512];
        snprintf(r->network, sizeof r->network, "%s", fmt_model(net, sizeof net, s->model));
    } else if (s && s->model && s->model->n_hidden + 2 <= MAX_WIDTHS) {
        int width[MAX_WIDTHS], n_layers, batch = (int)s->batch;
        describe_net(f, s, width, &n_layers);
        papermem_count(rule, binary, groups, batch, n_layers, width, &r->pm);
        const struct papermem_paper *row = papermem_paper_row(rule, binary);
        if (papermem_paper_net(row, batch, n_layers, width)) {
            r->paper = row;
            r->paper_error_pct = f->cifar ? row->cifar_err : row->mnist_err;
        }
    }
    size_t n = f->metrics->metrics->n_epochs;
    for (size_t k = 0; k < n; k++) {
        struct report_epoch e;
        epoch_from_progress(&e, f->metrics->metrics->epochs[k]);
        if (report_row_add_epoch(r, &e))
            return -1;
    }
    f->mem = n && f->metrics->metrics->epochs[n - 1]->memory
             ? f->metrics->metrics->epochs[n - 1]->memory : job->measured;
    mem_from_stats(&r->mem, f->mem);
    return 0;
}

/* Show and Metrics for one job. */
static int fetch(struct mtctl *c, struct job_fig *f, struct mt_err *err)
{
    Memtrain__ShowRequest sq = MEMTRAIN__SHOW_REQUEST__INIT;
    sq.job_id = f->id;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_SHOW;
    req.show = &sq;
    if (conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_SHOW, &f->show, err))
        return err->code == MT_E_UNREACHABLE ? err->code : conn_job_err(err, f->id);
    if (!f->show->show->job)
        return mt_err_set(err, MT_E_PROTO, "job %llu: memtraind sent no job record",
                          (unsigned long long)f->id);
    Memtrain__MetricsRequest mq = MEMTRAIN__METRICS_REQUEST__INIT;
    mq.job_id = f->id;
    Memtrain__Request req2 = MEMTRAIN__REQUEST__INIT;
    req2.body_case = MEMTRAIN__REQUEST__BODY_METRICS;
    req2.metrics = &mq;
    if (conn_call(c, &req2, MEMTRAIN__RESPONSE__BODY_METRICS, &f->metrics, err))
        return conn_job_err(err, f->id);
    if (figure(f))
        return mt_err_set(err, MT_E_NOMEM, "job %llu: out of memory keeping its epochs",
                          (unsigned long long)f->id);
    return 0;
}

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

static int text_report(struct job_fig *f, size_t nf, int markdown)
{
    struct table t;
    int rc = 0;
    table_init(&t, NSUM, sum_head, "r...rrrr...rrr");
    for (size_t i = 0; i < nf; i++)
        if (f[i].show)
            summary_row(&f[i], &t);
    if (markdown)
        printf("## Jobs\n\n");
    rc |= print_table(&t, markdown);
    table_free(&t);
    if (curve_table(f, nf, markdown))
        return -1;
    printf("%sMB = 10^6 bytes. PAPER-COUNT: the TinyFoA paper's counting (hidden-to-hidden "
           "matrices only, no\noptimizer state) of the same job; PAPER: its Table 1, shown "
           "only for the paper's setting.\nPHASE-PEAK, KEPT-ACTS, PEAK: the arena's measured "
           "peaks (the whole job). S/EPOCH: training time.\n", "\n");
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

int cmd_report(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_CSV = 0x2001, OPT_CURVE, OPT_MARKDOWN };
    static const struct option longopts[] = {
        {"csv", no_argument, NULL, OPT_CSV},
        {"curve", no_argument, NULL, OPT_CURVE},
        {"markdown", no_argument, NULL, OPT_MARKDOWN},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt, rc, csv = 0, curve = 0, markdown = 0;
    mtctl_getopt_reset(c, argv, "report");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_CSV: csv = 1; break;
        case OPT_CURVE: curve = 1; break;
        case OPT_MARKDOWN: markdown = 1; break;
        MTCTL_OPT_DEFAULT(c, opt, report_help)
        }
    }
    if (argc - optind < 1)
        return mtctl_usage_error(c, "expected one or more job IDs");
    if (csv + c->json + markdown > 1)
        return mtctl_usage_error(c, "--csv, --json and --markdown exclude each other");
    if (curve && !csv)
        return mtctl_usage_error(c, "--curve goes with --csv");
    size_t nf = (size_t)(argc - optind);
    struct job_fig *f = calloc(nf, sizeof *f);
    if (!f) {
        struct mt_err err = {0};
        mt_err_set(&err, MT_E_NOMEM, "out of memory");
        return mtctl_fail(c, &err);
    }
    for (size_t i = 0; i < nf; i++)
        if ((rc = mtctl_parse_id(c, argv[optind + (int)i], &f[i].id))) {
            free(f);
            return rc;
        }

    int status = MTCTL_EXIT_OK, got = 0;
    for (size_t i = 0; i < nf; i++) {
        struct mt_err err = {0};
        if (fetch(c, &f[i], &err)) {
            /* leave this job out, go on with the others */
            fflush(stdout);
            fprintf(stderr, "mtctl: %s\n", err.msg[0] ? err.msg : mt_strerror(err.code));
            if (status == MTCTL_EXIT_OK)
                status = mtctl_exit_code(err.code);
            if (f[i].show)
                memtrain__response__free_unpacked(f[i].show, NULL);
            if (f[i].metrics)
                memtrain__response__free_unpacked(f[i].metrics, NULL);
            f[i].show = f[i].metrics = NULL;
            report_row_deinit(&f[i].row);
            if (err.code == MT_E_UNREACHABLE)
                break;
            continue;
        }
        got++;
    }
    if (got) {
        if (c->json)
            json_report(f, nf);
        else if (csv ? csv_report(f, nf, curve) : text_report(f, nf, markdown)) {
            struct mt_err err = {0};
            mt_err_set(&err, MT_E_NOMEM, "out of memory formatting the table");
            rc = mtctl_fail(c, &err);
            if (status == MTCTL_EXIT_OK)
                status = rc;
        }
    }
    for (size_t i = 0; i < nf; i++) {
        if (f[i].show)
            memtrain__response__free_unpacked(f[i].show, NULL);
        if (f[i].metrics)
            memtrain__response__free_unpacked(f[i].metrics, NULL);
        report_row_deinit(&f[i].row);
    }
    free(f);
    return status;
}
