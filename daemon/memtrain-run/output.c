/* output.c: epoch lines, JSON objects and plan tables for memtrain-run. */
#include "output.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "par.h"
#include "graph.h"
#include "graphnames.h"

void output_model_string(char *buf, size_t len, const struct mt_model_desc *d)
{
    size_t o = 0;
    if (model_is_graph(d)) {
        graph_model_string(buf, len, d);
        return;
    }
    for (int l = 0; l <= d->n_layers && o < len; l++)
        o += (size_t)snprintf(buf + o, len - o, l ? "-%d" : "%d", d->width[l]);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void output_epoch_json(FILE *f, const struct mt_trainer *t, const struct mt_epoch_report *r)
{
    const struct mt_mem_stats *m = &r->mem;
    fprintf(f, "{\"epoch\":%d,\"epochs\":%d,\"rule\":", r->epoch, t->spec.epochs);
    json_string(f, t->spec.rule.name);
    fprintf(f,
            ",\"loss\":%.6g,\"train_accuracy\":%.6g,\"test_loss\":%.6g,\"test_accuracy\":%.6g,"
            "\"seconds\":%.4f,\"eval_seconds\":%.4f,\"samples_per_second\":%.1f,\"lr\":%.6g,"
            "\"memory\":{",
            r->loss, r->train_accuracy, r->test_loss, r->test_accuracy, r->seconds,
            r->eval_seconds, r->samples_per_second, (double)r->lr);
    for (int c = 0; c < MT_MEM_NCAT; c++)
        fprintf(f, "\"%s\":%zu,", mt_mem_cat_name(c), m->peak[c]);
    fprintf(f,
            "\"peak_total\":%zu,\"limit\":%zu,\"phase_peak\":{\"forward\":%zu,\"gradient\":%zu,"
            "\"update\":%zu}},\"rss_peak\":%ld,\"rss\":%ld,\"blas_core\":",
            m->total_peak, m->limit, m->phase_peak[MT_PHASE_FORWARD],
            m->phase_peak[MT_PHASE_GRADIENT], m->phase_peak[MT_PHASE_UPDATE], r->rss_peak,
            r->rss_now);
    json_string(f, blas_corename());
    fprintf(f, ",\"threads\":%d,\"rule_metrics\":{", par_job_threads());
    int n = r->n_metrics < MT_MAX_RULE_METRICS ? r->n_metrics : MT_MAX_RULE_METRICS;
    for (int i = 0; i < n; i++) {    /* JSON has no NaN or infinity: null */
        const struct mt_rule_metric *rm = &r->metrics[i];
        char name[sizeof rm->name + 1];
        snprintf(name, sizeof name, "%.*s", (int)sizeof rm->name, rm->name);
        if (i)
            fputc(',', f);
        json_string(f, name);
        if (isfinite(rm->value))
            fprintf(f, ":%.6g", rm->value);
        else
            fputs(":null", f);
    }
    fputs("}}\n", f);
    fflush(f);
}

void output_epoch_text(FILE *f, const struct mt_trainer *t, const struct mt_epoch_report *r)
{
    char peak[32], acts[32], rss[32];
    mt_fmt_bytes(peak, sizeof peak, (double)r->mem.total_peak);
    mt_fmt_bytes(acts, sizeof acts, (double)r->mem.peak[MT_MEM_ACTS]);
    mt_fmt_bytes(rss, sizeof rss, (double)r->rss_peak);
    fprintf(f,
            "epoch %3d/%-3d loss %.4f  train %6.2f%%  test %6.2f%%  %6.1f s  %7.0f samples/s  "
            "memory %s (activations %s)  rss %s",
            r->epoch, t->spec.epochs, r->loss, 100 * r->train_accuracy, 100 * r->test_accuracy,
            r->seconds, r->samples_per_second, peak, acts, rss);
    int n = r->n_metrics < MT_MAX_RULE_METRICS ? r->n_metrics : MT_MAX_RULE_METRICS;
    for (int i = 0; i < n; i++)   /* "  li.2 0.031 li.3 0.024" */
        fprintf(f, "%s%.*s %.4g", i ? " " : "  ", (int)sizeof r->metrics[i].name,
                r->metrics[i].name, r->metrics[i].value);
    fputc('\n', f);
    fflush(f);
}

void output_plan_text(FILE *f, const struct mt_spec *s, const struct mt_mem_plan *p)
{
    char model[256], b[32];
    output_model_string(model, sizeof model, &s->model);
    fprintf(f, "plan for rule %s, model %s, batch %d\n", s->rule.name, model, s->batch);
    fprintf(f, "  %-12s %14s %12s\n", "category", "bytes", "");
    for (int c = 0; c < MT_MEM_NCAT; c++)
        fprintf(f, "  %-12s %14zu %12s\n", mt_mem_cat_name(c), p->cat[c],
                mt_fmt_bytes(b, sizeof b, (double)p->cat[c]));
    fprintf(f, "  %-12s %14zu %12s\n", "peak total", p->total,
            mt_fmt_bytes(b, sizeof b, (double)p->total));
    fprintf(f, "  phase peaks:");
    for (int ph = MT_PHASE_FORWARD; ph < MT_PHASE_N; ph++)
        fprintf(f, "  %s %s", mt_phase_name(ph), mt_fmt_bytes(b, sizeof b, (double)p->phase[ph]));
    fputc('\n', f);
}

/* The rules that train layer lists, and each one's kept bytes per node of
 * spec s's layer list (NULL where the rule refuses the spec, why[] says
 * why). Returns how many rules; free with layer_cols_free. */
#define MAX_LAYER_RULES 16
struct layer_cols {
    int n;
    const char *name[MAX_LAYER_RULES];
    size_t *kept[MAX_LAYER_RULES];
    char why[MAX_LAYER_RULES][sizeof ((struct mt_err *)0)->msg];
};

static void layer_cols_of(const struct mt_spec *s, struct layer_cols *c)
{
    const struct mt_rule *const *rules = rule_list();
    c->n = 0;
    for (int i = 0; rules[i] && c->n < MAX_LAYER_RULES; i++) {
        if (!(rules[i]->flags & MT_RULE_LAYERS))
            continue;
        struct mt_err err = {0};
        int k = c->n++;
        c->name[k] = rules[i]->name;
        c->why[k][0] = 0;
        c->kept[k] = malloc((size_t)s->model.n_nodes * sizeof *c->kept[k]);
        if (!c->kept[k])
            snprintf(c->why[k], sizeof c->why[k], "out of memory");
        else if (rule_node_kept_as(s, rules[i]->name, c->kept[k], &err)) {
            snprintf(c->why[k], sizeof c->why[k], "%s", err.msg);
            free(c->kept[k]);
            c->kept[k] = NULL;
        }
    }
}

static void layer_cols_free(struct layer_cols *c)
{
    for (int k = 0; k < c->n; k++)
        free(c->kept[k]);
}

/* Node i's layer: "[4] residual: conv1", "[0] conv". */
static void node_from(const struct mt_model_desc *d, int i, char *buf, size_t len)
{
    int o = d->node[i].origin;
    snprintf(buf, len, "[%d] %s%s", o, d->spec_layer[o].kind == MT_LK_RESIDUAL ? "residual: " : "",
             graph_node_part(d, i));
}

/* A layer list's nodes: kind (and the model.layers entry it came from),
 * output shape, parameters, and the bytes each rule that trains layer
 * lists keeps for it during a step (n/a: the rule refuses the spec). */
void output_layers_text(FILE *f, const struct mt_spec *s)
{
    const struct mt_model_desc *d = &s->model;
    if (!model_is_graph(d))
        return;
    struct layer_cols c;
    layer_cols_of(s, &c);
    char shape[48], b[32], from[64], head[40];
    fprintf(f, "  %-4s %-26s %-12s %10s", "node", "layer", "output", "params");
    for (int k = 0; k < c.n; k++) {
        snprintf(head, sizeof head, "kept %s%s", c.name[k],
                 strcmp(c.name[k], s->rule.name) == 0 ? "*" : "");
        fprintf(f, " %12s", head);
    }
    fputc('\n', f);
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        shape_format(L->out, shape, sizeof shape);
        node_from(d, i, from, sizeof from);
        fprintf(f, "  %-4d %-26s %-12s %10zu", i, from, shape, layer_n_params(L));
        for (int k = 0; k < c.n; k++)
            fprintf(f, " %12s", c.kept[k] ? mt_fmt_bytes(b, sizeof b, (double)c.kept[k][i])
                                          : "n/a");
        fputc('\n', f);
    }
    for (int k = 0; k < c.n; k++)
        if (!c.kept[k])
            fprintf(f, "  n/a %s: %s\n", c.name[k], c.why[k]);
    layer_cols_free(&c);
}

void output_plan_json(FILE *f, const struct mt_spec *s, const struct mt_mem_plan *p)
{
    fputs("{\"rule\":", f);
    json_string(f, s->rule.name);
    fprintf(f, ",\"batch\":%d,\"memory\":{", s->batch);
    for (int c = 0; c < MT_MEM_NCAT; c++)
        fprintf(f, "\"%s\":%zu,", mt_mem_cat_name(c), p->cat[c]);
    fprintf(f, "\"peak_total\":%zu,\"phase_peak\":{\"forward\":%zu,\"gradient\":%zu,\"update\":%zu}}}\n",
            p->total, p->phase[MT_PHASE_FORWARD], p->phase[MT_PHASE_GRADIENT],
            p->phase[MT_PHASE_UPDATE]);
    const struct mt_model_desc *d = &s->model;
    if (!model_is_graph(d))
        return;
    struct layer_cols c;
    layer_cols_of(s, &c);
    /* the layers, one JSON line each after the plan; "kept" per rule, null
     * where the rule refuses the spec (then the last line gives why) */
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        size_t own = 0;
        fprintf(f, "{\"node\":%d,\"layer\":%d,\"kind\":\"%s\",\"part\":\"%s\","
                "\"output\":[%d,%d,%d],\"params\":%zu,\"kept\":{", i, L->origin,
                layer_kind_name(L->s.kind), graph_node_part(d, i), L->out.c, L->out.h, L->out.w,
                layer_n_params(L));
        for (int k = 0; k < c.n; k++) {
            fprintf(f, "%s\"%s\":", k ? "," : "", c.name[k]);
            if (c.kept[k])
                fprintf(f, "%zu", c.kept[k][i]);
            else
                fputs("null", f);
            if (c.kept[k] && strcmp(c.name[k], s->rule.name) == 0)
                own = c.kept[k][i];
        }
        fprintf(f, "},\"kept_bp\":%zu}\n", own);
    }
    fputs("{\"refused\":{", f);
    for (int k = 0, n = 0; k < c.n; k++)
        if (!c.kept[k]) {
            fprintf(f, "%s\"%s\":", n++ ? "," : "", c.name[k]);
            json_string(f, c.why[k]);
        }
    fputs("}}\n", f);
    layer_cols_free(&c);
}
