/* reportcsv.c: the report's two CSVs, one schema for both programs
 * (reporttable.h; the columns are listed in docs/rules/report.md). */
#include "reporttable.h"

#include <math.h>

const char report_csv_summary_head[] =
    "job_id,name,label,rule,table,network,optimizer,state,message,epochs_planned,epochs_done,"
    "best_error_pct,best_epoch,last_error_pct,paper_error_pct,paper_count_scope,"
    "paper_count_forward,paper_count_gradient,paper_count_update,formula_extra_forward,"
    "formula_extra_gradient,formula_extra_update,paper_forward_mb,paper_gradient_mb,"
    "paper_update_mb,phase_peak_forward,phase_peak_gradient,phase_peak_update,"
    "kept_activations,bp_kept_activations,ratio_to_bp,peak_total,params,grads,"
    "optimizer_bytes,workspace,data,rss_peak,seconds_per_epoch,steps_per_epoch";

const char report_csv_epochs_head[] =
    "job_id,label,rule,table,network,optimizer,epochs_planned,epoch,loss,train_accuracy,"
    "test_loss,test_accuracy,test_error_pct,seconds,eval_seconds,samples_per_second,lr,"
    "params,grads,optimizer_bytes,kept_activations,workspace,data,peak_total,"
    "phase_peak_forward,phase_peak_gradient,phase_peak_update,rss_peak,"
    "paper_count_forward,paper_count_gradient,paper_count_update,rule_metrics";

/* A quoted field: '"' doubled, line breaks as spaces; NULL as "". */
static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
    fputc('"', f);
}

/* ",v" when known, "," otherwise. */
static void csv_u64(FILE *f, int known, uint64_t v)
{
    if (known)
        fprintf(f, ",%llu", (unsigned long long)v);
    else
        fputc(',', f);
}

static void csv_num(FILE *f, const char *fmt, double v)
{
    fputc(',', f);
    if (!isnan(v))
        fprintf(f, fmt, v);
}

/* The memory columns, in the order each CSV wants them. */
enum mem_col {
    MC_PARAMS, MC_GRADS, MC_OPTIMIZER, MC_KEPT, MC_WORKSPACE, MC_DATA, MC_TOTAL,
    MC_FORWARD, MC_GRADIENT, MC_UPDATE, MC_RSS
};

static uint64_t mem_col(const struct report_mem *m, enum mem_col c)
{
    switch (c) {
    case MC_PARAMS: return m->params;
    case MC_GRADS: return m->grads;
    case MC_OPTIMIZER: return m->optimizer;
    case MC_KEPT: return m->kept_activations;
    case MC_WORKSPACE: return m->workspace;
    case MC_DATA: return m->data;
    case MC_TOTAL: return m->peak_total;
    case MC_FORWARD: return m->phase_peak[PAPERMEM_FORWARD];
    case MC_GRADIENT: return m->phase_peak[PAPERMEM_GRADIENT];
    case MC_UPDATE: return m->phase_peak[PAPERMEM_UPDATE];
    case MC_RSS: return m->rss_peak;
    }
    return 0;
}

/* ",v" per column, all empty when the memory is not known. */
static void csv_mem(FILE *f, const struct report_mem *m, const enum mem_col *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        csv_u64(f, m->known, mem_col(m, cols[i]));
}
#define CSV_MEM(f, m, cols) csv_mem(f, m, cols, sizeof cols / sizeof cols[0])

/* phase_peak_*, kept_activations | bp_kept_activations, ratio_to_bp |
 * peak_total ... rss_peak */
static const enum mem_col summary_mem_a[] = {MC_FORWARD, MC_GRADIENT, MC_UPDATE, MC_KEPT};
static const enum mem_col summary_mem_b[] = {MC_TOTAL, MC_PARAMS, MC_GRADS, MC_OPTIMIZER,
                                             MC_WORKSPACE, MC_DATA, MC_RSS};
/* params ... rss_peak */
static const enum mem_col epoch_mem[] = {MC_PARAMS, MC_GRADS, MC_OPTIMIZER, MC_KEPT,
                                         MC_WORKSPACE, MC_DATA, MC_TOTAL, MC_FORWARD,
                                         MC_GRADIENT, MC_UPDATE, MC_RSS};

/* The columns both CSVs open with, up to the network and optimizer:
 * job_id, [name,] label, rule, table, network, optimizer. */
static void csv_ident(FILE *f, const struct report_row *r, int with_name)
{
    if (r->job_id)
        fprintf(f, "%llu", (unsigned long long)r->job_id);
    if (with_name) {
        fputc(',', f);
        csv_str(f, r->name);
    }
    fprintf(f, ",%s,%s,", r->label, r->rule);
    if (r->table)
        fprintf(f, "%d", r->table);
    fputc(',', f);
    csv_str(f, r->network);
    fputc(',', f);
    csv_str(f, r->optimizer);
}

/* paper_count_forward, _gradient, _update (and the formula's extras):
 * empty for a rule outside the paper's table. */
static void csv_counting(FILE *f, const struct papermem *pm, int extras)
{
    int on = pm->scope != PAPERMEM_NA;
    for (int p = 0; p < PAPERMEM_NPHASE; p++)
        csv_u64(f, on, pm->bytes[p]);
    for (int p = 0; extras && p < PAPERMEM_NPHASE; p++)
        csv_u64(f, on, pm->extra[p]);
}

static void summary_row(FILE *f, const struct report_row *r)
{
    const struct report_mem *m = &r->mem;
    csv_ident(f, r, 1);
    fprintf(f, ",%s,", r->state ? r->state : "");
    csv_str(f, r->message);
    fprintf(f, ",%d,%d,", r->epochs_planned, r->epochs_done);
    int b = report_best_epoch(r);
    if (b >= 0)
        fprintf(f, "%.4f,%d,%.4f", report_error_pct(&r->ep[b]), b + 1,
                report_error_pct(&r->ep[r->n_epochs - 1]));
    else
        fprintf(f, ",,");
    csv_num(f, "%.2f", r->paper ? r->paper_error_pct : NAN);
    fprintf(f, ",%s", papermem_scope_name(r->pm.scope));
    csv_counting(f, &r->pm, 1);
    for (int p = 0; p < PAPERMEM_NPHASE; p++)
        csv_num(f, "%.2f", r->paper ? r->paper->mb[p] : NAN);
    CSV_MEM(f, m, summary_mem_a);
    csv_u64(f, r->bp_kept_activations != 0, r->bp_kept_activations);
    csv_num(f, "%.6g", m->known && r->bp_kept_activations
                       ? (double)m->kept_activations / (double)r->bp_kept_activations : NAN);
    CSV_MEM(f, m, summary_mem_b);
    csv_num(f, "%.6g", report_mean_seconds(r));
    if (r->steps_per_epoch > 0)
        fprintf(f, ",%ld\n", r->steps_per_epoch);
    else
        fputs(",\n", f);
}

void report_csv_summary(FILE *out, const struct report_row *const *rows, size_t n)
{
    fprintf(out, "%s\n", report_csv_summary_head);
    for (size_t i = 0; i < n; i++)
        summary_row(out, rows[i]);
}

static void epoch_row(FILE *f, const struct report_row *r, const struct report_epoch *e)
{
    const struct report_mem *m = &e->mem;
    csv_ident(f, r, 0);
    fprintf(f, ",%d,%d", r->epochs_planned, e->epoch);
    csv_num(f, "%.10g", e->loss);
    csv_num(f, "%.10g", e->train_accuracy);
    csv_num(f, "%.10g", e->test_loss);
    csv_num(f, "%.10g", e->test_accuracy);
    csv_num(f, "%.6f", report_error_pct(e));
    csv_num(f, "%.6g", e->seconds);
    csv_num(f, "%.6g", e->eval_seconds);
    csv_num(f, "%.6g", e->samples_per_second);
    csv_num(f, "%.7g", e->lr);
    CSV_MEM(f, m, epoch_mem);
    csv_counting(f, &r->pm, 0);
    char metrics[REPORT_MAX_METRICS * 48] = "";
    size_t n = 0;
    for (int q = 0; q < e->n_metrics && q < REPORT_MAX_METRICS && n < sizeof metrics; q++)
        n += (size_t)snprintf(metrics + n, sizeof metrics - n, "%s%s=%.6g", q ? ";" : "",
                              e->metrics[q].name, e->metrics[q].value);
    fputc(',', f);
    csv_str(f, metrics);
    fputc('\n', f);
}

void report_csv_epochs(FILE *out, const struct report_row *const *rows, size_t n)
{
    fprintf(out, "%s\n", report_csv_epochs_head);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < rows[i]->n_epochs; k++)
            epoch_row(out, rows[i], &rows[i]->ep[k]);
}
