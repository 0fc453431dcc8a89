/* report.c: `mtctl report ID...`, the reproduction report's table from
 * jobs the daemon has stored (the same figures memtrain-report prints from
 * its own runs, daemon/memtrain-report/main.c).
 *
 * Per job it asks the daemon for the record and its stored spec (Show) and
 * the epoch history (Metrics), and prints: test error (best epoch and
 * last), the arena's peaks (per phase, kept activations = the activations
 * category, total), seconds per epoch; and, recomputed from the stored spec,
 * memory under the TinyFoA paper's counting (papermem.h, compiled in from
 * the engine) beside the paper's Table 1 figures when the job is the
 * paper's setting (784 or 3072 inputs, 2000-wide hidden layers, 10 classes,
 * batch 100). Then the test-error curve, one column per job. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "mtctl.h"
#include "papermem.h"
#include "report.h"

#define MB 1e6
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

/* One job's figures. */
struct job_fig {
    uint64_t id;
    Memtrain__Response *show;       /* owned */
    Memtrain__Response *metrics;    /* owned */
    char label[48];                 /* "bp", "bp+bw+ba", "tinyfoa" */
    char net[96];
    int binary, groups, batch, n_layers;
    int width[MAX_WIDTHS];
    int best;                       /* index of the best epoch; -1 without epochs */
    const Memtrain__MemoryStats *mem;   /* the last epoch's peaks, or the job's measured */
    struct papermem pm;
    const struct papermem_paper *paper; /* when the job is the paper's setting */
    int cifar;                      /* the paper's CIFAR-10 error applies */
};

static const Memtrain__EpochProgress *epoch_at(const struct job_fig *f, size_t k)
{
    return f->metrics->metrics->epochs[k];
}

static size_t n_epochs(const struct job_fig *f)
{
    return f->metrics ? f->metrics->metrics->n_epochs : 0;
}

static double err_pct(const Memtrain__EpochProgress *e)
{
    return 100.0 * (1.0 - e->test_accuracy);
}

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

/* Everything the tables need, from the two responses. */
static void figure(struct job_fig *f)
{
    const Memtrain__Job *job = f->show->show->job;
    const Memtrain__JobSpec *s = f->show->show->spec;
    const char *rule = job->rule && job->rule[0] ? job->rule : "bp";
    f->binary = 0;
    f->groups = -1;
    f->batch = 0;
    f->n_layers = 0;
    if (s && s->rule) {
        if (s->rule->name && s->rule->name[0])
            rule = s->rule->name;
        f->binary = s->rule->opt_binary_case == MEMTRAIN__RULE_SPEC__OPT_BINARY_BINARY
                    && s->rule->binary;
        if (s->rule->opt_groups_case == MEMTRAIN__RULE_SPEC__OPT_GROUPS_GROUPS)
            f->groups = (int)s->rule->groups;
    }
    snprintf(f->label, sizeof f->label, "%s%s", rule, f->binary ? "+bw+ba" : "");
    snprintf(f->net, sizeof f->net, "-");
    if (s && s->model && s->model->n_hidden + 2 <= MAX_WIDTHS) {
        const Memtrain__ModelSpec *m = s->model;
        const char *ds = s->dataset ? s->dataset->name : NULL;
        f->batch = (int)s->batch;
        f->n_layers = (int)m->n_hidden + 1;
        f->width[0] = m->input ? (int)m->input : named_input(ds);
        for (size_t l = 0; l < m->n_hidden; l++)
            f->width[l + 1] = (int)m->hidden[l]->width;
        f->width[f->n_layers] = m->classes ? (int)m->classes : named_input(ds) ? 10 : 0;
        f->cifar = ds && strcmp(ds, "cifar10") == 0;
        int same = 1;
        for (size_t l = 1; l < m->n_hidden; l++)
            same &= m->hidden[l]->width == m->hidden[0]->width;
        const char *act = m->activation && m->activation[0] ? m->activation : "relu";
        const char *norm = m->norm && m->norm[0] && strcmp(m->norm, "none") ? m->norm : NULL;
        int n = 0;
        if (m->n_hidden && same)
            n = snprintf(f->net, sizeof f->net, "%d-%ux%zu-%d %s", f->width[0],
                         m->hidden[0]->width, m->n_hidden, f->width[f->n_layers], act);
        else {
            n = snprintf(f->net, sizeof f->net, "%d", f->width[0]);
            for (int l = 1; l <= f->n_layers && n > 0 && (size_t)n < sizeof f->net; l++)
                n += snprintf(f->net + n, sizeof f->net - (size_t)n, "-%d", f->width[l]);
            if (n > 0 && (size_t)n < sizeof f->net)
                n += snprintf(f->net + n, sizeof f->net - (size_t)n, " %s", act);
        }
        if (norm && n > 0 && (size_t)n < sizeof f->net)
            snprintf(f->net + n, sizeof f->net - (size_t)n, " + %s", norm);
        papermem_count(rule, f->binary, f->groups, f->batch, f->n_layers, f->width, &f->pm);
        const struct papermem_paper *row = papermem_paper_row(rule, f->binary);
        if (papermem_paper_net(row, f->batch, f->n_layers, f->width))
            f->paper = row;
    } else {
        memset(&f->pm, 0, sizeof f->pm);
    }
    f->best = -1;
    for (size_t k = 0; k < n_epochs(f); k++)
        if (f->best < 0 || epoch_at(f, k)->test_accuracy > epoch_at(f, (size_t)f->best)->test_accuracy)
            f->best = (int)k;
    f->mem = n_epochs(f) && epoch_at(f, n_epochs(f) - 1)->memory
             ? epoch_at(f, n_epochs(f) - 1)->memory : job->measured;
}

static double mean_seconds(const struct job_fig *f)
{
    double s = 0;
    size_t n = n_epochs(f);
    for (size_t k = 0; k < n; k++)
        s += epoch_at(f, k)->seconds;
    return n ? s / (double)n : NAN;
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
    figure(f);
    return 0;
}

/* ------------------------------------------------------------- cells */

static const char *mb3(char *buf, size_t len, double a, double b, double c)
{
    snprintf(buf, len, "%.2f / %.2f / %.2f", a / MB, b / MB, c / MB);
    return buf;
}

static const char *mbv(char *buf, size_t len, double bytes)
{
    double v = bytes / MB;
    snprintf(buf, len, v >= 100 ? "%.1f" : v >= 0.995 ? "%.2f" : "%.3f", v);
    return buf;
}

/* The summary table: one row per job. */
#define NSUM 14
static const char *const sum_head[NSUM] = {
    "JOB", "RULE", "NETWORK", "STATE", "EPOCHS", "ERR-BEST (EPOCH)", "ERR-LAST", "PAPER-ERR",
    "PAPER-COUNT F/G/U MB", "PAPER F/G/U MB", "PHASE-PEAK F/G/U MB", "KEPT-ACTS MB",
    "PEAK MB", "S/EPOCH"};

static void summary_row(const struct job_fig *f, struct table *t)
{
    const Memtrain__Job *job = f->show->show->job;
    const Memtrain__MemoryStats *m = f->mem;
    char id[24], ep[32], best[40], last[24], perr[24], cnt[64], pap[64], ph[64], kept[24],
        tot[24], sec[24];
    size_t n = n_epochs(f);
    snprintf(id, sizeof id, "%llu", (unsigned long long)f->id);
    snprintf(ep, sizeof ep, "%u/%u", job->epochs_done, job->epochs);
    if (f->best >= 0) {
        snprintf(best, sizeof best, "%.2f%% (%d)", err_pct(epoch_at(f, (size_t)f->best)),
                 f->best + 1);
        snprintf(last, sizeof last, "%.2f%%", err_pct(epoch_at(f, n - 1)));
        snprintf(sec, sizeof sec, "%.1f", mean_seconds(f));
    } else {
        snprintf(best, sizeof best, "-");
        snprintf(last, sizeof last, "-");
        snprintf(sec, sizeof sec, "-");
    }
    if (f->paper)
        snprintf(perr, sizeof perr, "%.2f%%", f->cifar ? f->paper->cifar_err : f->paper->mnist_err);
    else
        snprintf(perr, sizeof perr, "-");
    if (f->pm.scope != PAPERMEM_NA)
        mb3(cnt, sizeof cnt, (double)f->pm.bytes[0], (double)f->pm.bytes[1],
            (double)f->pm.bytes[2]);
    else
        snprintf(cnt, sizeof cnt, "n/a");
    if (f->paper)
        snprintf(pap, sizeof pap, "%.2f / %.2f / %.2f", f->paper->mb[0], f->paper->mb[1],
                 f->paper->mb[2]);
    else
        snprintf(pap, sizeof pap, "-");
    if (m) {
        mb3(ph, sizeof ph, (double)m->phase_peak_forward, (double)m->phase_peak_gradient,
            (double)m->phase_peak_update);
        mbv(kept, sizeof kept, (double)m->activations);
        mbv(tot, sizeof tot, (double)m->peak_total);
    } else {
        snprintf(ph, sizeof ph, "-");
        snprintf(kept, sizeof kept, "-");
        snprintf(tot, sizeof tot, "-");
    }
    const char *cells[NSUM] = {id, f->label, f->net, fmt_state(job->state), ep, best, last, perr,
                               cnt, pap, ph, kept, tot, sec};
    table_add(t, cells);
}

/* A table as markdown: header, separator, rows; '|' in cells becomes '/'. */
static void print_markdown(const struct table *t, FILE *out)
{
    for (long r = -1; r < (long)t->nrows; r++) {
        const char *const *row = r < 0 ? (const char *const *)t->head
                                       : (const char *const *)t->cells + (size_t)r * (size_t)t->ncols;
        fputc('|', out);
        for (int col = 0; col < t->ncols; col++) {
            fputc(' ', out);
            for (const char *p = row[col] ? row[col] : "-"; *p; p++)
                fputc(*p == '|' ? '/' : *p, out);
            fputs(" |", out);
        }
        fputc('\n', out);
        if (r < 0) {
            fputc('|', out);
            for (int col = 0; col < t->ncols; col++)
                fputs("---|", out);
            fputc('\n', out);
        }
    }
}

static int print_table(const struct table *t, int markdown)
{
    if (!markdown)
        return table_print(t, stdout);
    print_markdown(t, stdout);
    return t->oom ? -1 : 0;
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

    /* the curve: EPOCH, then one column per job */
    size_t cols = 1, maxe = 0;
    for (size_t i = 0; i < nf; i++)
        if (f[i].show) {
            cols++;
            if (n_epochs(&f[i]) > maxe)
                maxe = n_epochs(&f[i]);
        }
    if (cols > 64)
        cols = 64;   /* table_print's limit */
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
        snprintf(h, sizeof h, "%llu:%s", (unsigned long long)f[i].id, f[i].label);
        head[c] = strdup(h);
        right[c++] = 'r';
    }
    for (size_t c = 0; c < cols; c++)
        if (!head[c])
            rc = -1;
    if (!rc) {
        table_init(&t, (int)cols, (const char *const *)head, right);
        for (size_t k = 0; k < maxe; k++) {
            snprintf(buf[0], sizeof buf[0], "%zu", k + 1);
            cells[0] = buf[0];
            for (size_t i = 0, c = 1; i < nf && c < cols; i++) {
                if (!f[i].show)
                    continue;
                buf[c][0] = '\0';
                if (k < n_epochs(&f[i]))
                    snprintf(buf[c], sizeof buf[c], "%.2f", err_pct(epoch_at(&f[i], k)));
                cells[c] = buf[c];
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
    printf("%sMB = 10^6 bytes. PAPER-COUNT: the TinyFoA paper's counting (hidden-to-hidden "
           "matrices only, no\noptimizer state) of the same job; PAPER: its Table 1, shown "
           "only for the paper's setting.\nPHASE-PEAK, KEPT-ACTS, PEAK: the arena's measured "
           "peaks (the whole job). S/EPOCH: training time.\n", "\n");
    return rc;
}

/* -------------------------------------------------------- CSV and JSON */

static void csv_quoted(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void csv_summary(const struct job_fig *f, size_t nf)
{
    printf("job_id,name,rule,network,state,epochs_done,epochs,best_error_pct,best_epoch,"
           "last_error_pct,paper_error_pct,paper_count_scope,paper_count_forward,"
           "paper_count_gradient,paper_count_update,paper_forward_mb,paper_gradient_mb,"
           "paper_update_mb,phase_peak_forward,phase_peak_gradient,phase_peak_update,"
           "activations,peak_total,params,grads,optimizer,workspace,data,rss_peak_bytes,"
           "seconds_per_epoch\n");
    for (size_t i = 0; i < nf; i++) {
        if (!f[i].show)
            continue;
        const struct job_fig *g = &f[i];
        const Memtrain__Job *job = g->show->show->job;
        printf("%llu,", (unsigned long long)g->id);
        csv_quoted(job->name);
        printf(",%s,", g->label);
        csv_quoted(g->net);
        printf(",%s,%u,%u,", fmt_state(job->state), job->epochs_done, job->epochs);
        if (g->best >= 0)
            printf("%.4f,%d,%.4f,", err_pct(epoch_at(g, (size_t)g->best)), g->best + 1,
                   err_pct(epoch_at(g, n_epochs(g) - 1)));
        else
            printf(",,,");
        if (g->paper)
            printf("%.2f,", g->cifar ? g->paper->cifar_err : g->paper->mnist_err);
        else
            printf(",");
        printf("%s,", papermem_scope_name(g->pm.scope));
        if (g->pm.scope != PAPERMEM_NA)
            printf("%zu,%zu,%zu,", g->pm.bytes[0], g->pm.bytes[1], g->pm.bytes[2]);
        else
            printf(",,,");
        if (g->paper)
            printf("%.2f,%.2f,%.2f,", g->paper->mb[0], g->paper->mb[1], g->paper->mb[2]);
        else
            printf(",,,");
        const Memtrain__MemoryStats *m = g->mem;
        if (m)
            printf("%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,",
                   (unsigned long long)m->phase_peak_forward,
                   (unsigned long long)m->phase_peak_gradient,
                   (unsigned long long)m->phase_peak_update, (unsigned long long)m->activations,
                   (unsigned long long)m->peak_total, (unsigned long long)m->params,
                   (unsigned long long)m->grads, (unsigned long long)m->optimizer,
                   (unsigned long long)m->workspace, (unsigned long long)m->data,
                   (unsigned long long)m->rss_peak_bytes);
        else
            printf(",,,,,,,,,,,");
        if (n_epochs(g))
            printf("%.6g\n", mean_seconds(g));
        else
            printf("\n");
    }
}

static void csv_curve(const struct job_fig *f, size_t nf)
{
    printf("job_id,rule,epoch,loss,train_accuracy,test_accuracy,test_error_pct,seconds,"
           "phase_peak_forward,phase_peak_gradient,phase_peak_update,activations,peak_total\n");
    for (size_t i = 0; i < nf; i++) {
        if (!f[i].show)
            continue;
        for (size_t k = 0; k < n_epochs(&f[i]); k++) {
            const Memtrain__EpochProgress *e = epoch_at(&f[i], k);
            static const Memtrain__MemoryStats zero = MEMTRAIN__MEMORY_STATS__INIT;
            const Memtrain__MemoryStats *m = e->memory ? e->memory : &zero;
            printf("%llu,%s,%u,%.10g,%.10g,%.10g,%.6f,%.6g,%llu,%llu,%llu,%llu,%llu\n",
                   (unsigned long long)f[i].id, f[i].label, e->epoch, e->loss, e->train_accuracy,
                   e->test_accuracy, err_pct(e), e->seconds,
                   (unsigned long long)m->phase_peak_forward,
                   (unsigned long long)m->phase_peak_gradient,
                   (unsigned long long)m->phase_peak_update, (unsigned long long)m->activations,
                   (unsigned long long)m->peak_total);
        }
    }
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
        const Memtrain__Job *job = g->show->show->job;
        json_obj(&j, NULL);
        json_u64(&j, "job_id", g->id);
        json_str(&j, "name", job->name);
        json_str(&j, "rule", g->label);
        json_str(&j, "network", g->net);
        json_str(&j, "state", fmt_state(job->state));
        json_u64(&j, "epochs_done", job->epochs_done);
        json_u64(&j, "epochs", job->epochs);
        if (g->best >= 0) {
            json_double(&j, "best_error_pct", err_pct(epoch_at(g, (size_t)g->best)));
            json_i64(&j, "best_epoch", g->best + 1);
            json_double(&j, "last_error_pct", err_pct(epoch_at(g, n_epochs(g) - 1)));
            json_double(&j, "seconds_per_epoch", mean_seconds(g));
        } else {
            json_null(&j, "best_error_pct");
            json_null(&j, "best_epoch");
            json_null(&j, "last_error_pct");
            json_null(&j, "seconds_per_epoch");
        }
        json_memory_stats(&j, "memory", g->mem);
        if (g->pm.scope != PAPERMEM_NA) {
            json_obj(&j, "paper_counting");
            json_str(&j, "scope", papermem_scope_name(g->pm.scope));
            json_u64(&j, "forward", g->pm.bytes[0]);
            json_u64(&j, "gradient", g->pm.bytes[1]);
            json_u64(&j, "update", g->pm.bytes[2]);
            json_u64(&j, "formula_extra_forward", g->pm.extra[0]);
            json_u64(&j, "formula_extra_gradient", g->pm.extra[1]);
            json_u64(&j, "formula_extra_update", g->pm.extra[2]);
            json_obj_end(&j);
        } else {
            json_null(&j, "paper_counting");
        }
        if (g->paper) {
            json_obj(&j, "paper");
            json_str(&j, "method", g->paper->method);
            json_double(&j, "error_pct", g->cifar ? g->paper->cifar_err : g->paper->mnist_err);
            json_double(&j, "forward_mb", g->paper->mb[0]);
            json_double(&j, "gradient_mb", g->paper->mb[1]);
            json_double(&j, "update_mb", g->paper->mb[2]);
            json_obj_end(&j);
        } else {
            json_null(&j, "paper");
        }
        json_arr(&j, "curve");
        for (size_t k = 0; k < n_epochs(g); k++)
            json_double(&j, NULL, err_pct(epoch_at(g, k)));
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
            if (err.code == MT_E_UNREACHABLE)
                break;
            continue;
        }
        got++;
    }
    if (got) {
        if (c->json)
            json_report(f, nf);
        else if (csv && curve)
            csv_curve(f, nf);
        else if (csv)
            csv_summary(f, nf);
        else if (text_report(f, nf, markdown)) {
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
    }
    free(f);
    return status;
}
