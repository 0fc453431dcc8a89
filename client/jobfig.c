/* jobfig.c: stored jobs' figures for report, compare and plot (jobfig.h):
 * the job arguments (IDs and groups), Show and Metrics per job, the report
 * row drawn from them (with the TinyFoA paper's counting recomputed from
 * the stored spec, papermem.h), and the figures the comparisons rank by. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "jobfig.h"
#include "papermem.h"

#define MAX_WIDTHS 66

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
int jobfig_fetch(struct mtctl *c, struct job_fig *f, struct mt_err *err)
{
    if (conn_show(c, f->id, &f->show, err))
        return err->code == MT_E_UNREACHABLE ? err->code : conn_job_err(err, f->id);
    if (!f->show->show->job)
        return mt_err_set(err, MT_E_PROTO, "job %llu: memtraind sent no job record",
                          (unsigned long long)f->id);
    if (conn_epochs(c, f->id, &f->metrics, err))
        return conn_job_err(err, f->id);
    if (figure(f))
        return mt_err_set(err, MT_E_NOMEM, "job %llu: out of memory keeping its epochs",
                          (unsigned long long)f->id);
    return 0;
}


void jobfig_free(struct job_fig *f)
{
    if (f->show)
        memtrain__response__free_unpacked(f->show, NULL);
    if (f->metrics)
        memtrain__response__free_unpacked(f->metrics, NULL);
    f->show = f->metrics = NULL;
    report_row_deinit(&f->row);
}

void jobfig_free_all(struct job_fig *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        jobfig_free(&f[i]);
    free(f);
}

/* ------------------------------------------------------ naming the jobs */

/* "12" (a job), "g3" or "group:3" (a group): the number and whether it is
 * a group; -1 when arg is neither. */
static int parse_job_arg(const char *arg, uint64_t *n, int *group)
{
    const char *num = arg;
    *group = 0;
    if (strncmp(arg, "group:", 6) == 0)
        num = arg + 6, *group = 1;
    else if (arg[0] == 'g' || arg[0] == 'G')
        num = arg + 1, *group = 1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(num, &end, 10);
    if (num[0] < '0' || num[0] > '9' || *end || errno || v == 0)
        return -1;
    *n = v;
    return 0;
}

/* Every job the caller can see (all pages of a List), into *pages. */
static int list_visible(struct mtctl *c, Memtrain__Response ***pages, size_t *n_pages,
                        struct mt_err *err)
{
    Memtrain__ListRequest lq = MEMTRAIN__LIST_REQUEST__INIT;
    lq.all_users = 1;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_LIST;
    req.list = &lq;
    *pages = NULL;
    *n_pages = 0;
    for (;;) {
        Memtrain__Response *resp, **more = realloc(*pages, (*n_pages + 1) * sizeof **pages);
        if (!more)
            return mt_err_set(err, MT_E_NOMEM, "out of memory listing the jobs");
        *pages = more;
        if (conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_LIST, &resp, err))
            return err->code;
        (*pages)[(*n_pages)++] = resp;
        lq.before_id = resp->list->next_before_id;
        if (!lq.before_id || resp->list->n_jobs == 0)
            return 0;
    }
}

static void free_pages(Memtrain__Response **pages, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memtrain__response__free_unpacked(pages[i], NULL);
    free(pages);
}

/* The job records of every page as one array (borrowed from the pages). */
static Memtrain__Job **flatten_pages(Memtrain__Response **pages, size_t n_pages, size_t *n)
{
    size_t total = 0, k = 0;
    for (size_t p = 0; p < n_pages; p++)
        total += pages[p]->list->n_jobs;
    Memtrain__Job **jobs = malloc((total ? total : 1) * sizeof *jobs);
    if (!jobs)
        return NULL;
    for (size_t p = 0; p < n_pages; p++)
        for (size_t i = 0; i < pages[p]->list->n_jobs; i++)
            jobs[k++] = pages[p]->list->jobs[i];
    *n = k;
    return jobs;
}

/* Append id to ids[0..*n) unless it is there. */
static void add_id(uint64_t *ids, size_t *n, uint64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if (ids[i] == id)
            return;
    ids[(*n)++] = id;
}

/* The ids the arguments name, groups expanded through one List. */
static int resolve_ids(struct mtctl *c, int argc, char **argv, uint64_t **ids_out,
                       size_t *n_ids, struct mt_err *err)
{
    Memtrain__Response **pages = NULL;
    Memtrain__Job **jobs = NULL;
    size_t n_pages = 0, n_jobs = 0, cap = (size_t)argc, n = 0;
    uint64_t *ids = malloc(cap * sizeof *ids), *members = NULL;
    int rc = 0;
    if (!ids)
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    for (int a = 0; a < argc && !rc; a++) {
        uint64_t v;
        int group;
        parse_job_arg(argv[a], &v, &group);   /* checked by the caller */
        if (!group) {
            add_id(ids, &n, v);
            continue;
        }
        if (!jobs) {
            if ((rc = list_visible(c, &pages, &n_pages, err)))
                break;
            if (!(jobs = flatten_pages(pages, n_pages, &n_jobs))
                || !(members = malloc((n_jobs ? n_jobs : 1) * sizeof *members))) {
                rc = mt_err_set(err, MT_E_NOMEM, "out of memory");
                break;
            }
        }
        size_t k = jobfig_group_members(jobs, n_jobs, v, members);
        if (k == 0) {
            rc = mt_err_set(err, MT_E_NOTFOUND, "group %llu: no job you can see belongs to it",
                            (unsigned long long)v);
            break;
        }
        uint64_t *more = realloc(ids, (cap + k) * sizeof *ids);
        if (!more) {
            rc = mt_err_set(err, MT_E_NOMEM, "out of memory");
            break;
        }
        ids = more;
        cap += k;
        for (size_t i = 0; i < k; i++)
            add_id(ids, &n, members[i]);
    }
    free(members);
    free(jobs);
    free_pages(pages, n_pages);
    if (rc) {
        free(ids);
        return rc;
    }
    *ids_out = ids;
    *n_ids = n;
    return 0;
}

int jobfig_fetch_args(struct mtctl *c, int argc, char **argv, struct job_fig **out,
                      size_t *n_out, size_t *got)
{
    *out = NULL;
    *n_out = *got = 0;
    if (argc < 1)
        return mtctl_usage_error(c, "expected one or more job IDs or groups");
    for (int a = 0; a < argc; a++) {
        uint64_t v;
        int group;
        if (parse_job_arg(argv[a], &v, &group))
            return mtctl_usage_error(c, "'%s' is neither a job id (a positive integer) nor "
                                     "a group (gN or group:N)", argv[a]);
    }
    struct mt_err err = {0};
    uint64_t *ids = NULL;
    size_t n = 0;
    if (resolve_ids(c, argc, argv, &ids, &n, &err))
        return mtctl_fail(c, &err);
    struct job_fig *f = calloc(n ? n : 1, sizeof *f);
    if (!f) {
        free(ids);
        mt_err_set(&err, MT_E_NOMEM, "out of memory");
        return mtctl_fail(c, &err);
    }
    int status = MTCTL_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        f[i].id = ids[i];
        report_row_init(&f[i].row);
    }
    free(ids);
    for (size_t i = 0; i < n; i++) {
        memset(&err, 0, sizeof err);
        if (jobfig_fetch(c, &f[i], &err) == 0) {
            (*got)++;
            continue;
        }
        /* leave this job out, go on with the others */
        fflush(stdout);
        fprintf(stderr, "mtctl: %s\n", err.msg[0] ? err.msg : mt_strerror(err.code));
        if (status == MTCTL_EXIT_OK)
            status = mtctl_exit_code(err.code);
        jobfig_free(&f[i]);
        if (err.code == MT_E_UNREACHABLE)
            break;
    }
    *out = f;
    *n_out = n;
    return status;
}
