/* jobs.c: the commands about jobs as records: submit, ls, show, cancel and
 * wait. Following a job live is watch.c. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "memtrain/age.h"
#include "memtrain/bytesize.h"
#include "memtrain/clock.h"
#include "mtctl.h"
#include "spec.h"

/* ---------------------------------------------------------------------- ls */

static const char ls_help[] =
    "Usage: mtctl ls [OPTIONS]\n"
    "\n"
    "List your jobs, most recent first: ID, NAME, OWNER, STATE, RULE, EPOCH (done\n"
    "of total), TEST-ACC (after the last epoch), PEAK (the measured peak of the\n"
    "job's memory arena), AGE (since submission), ELAPSED (its running time so\n"
    "far, or in all once finished) and NOTE (why a queued job waits, or why a\n"
    "job failed).\n"
    "\n"
    "Options:\n"
    "  -a, --all              every job you may read: all users' for root, or when\n"
    "                         the daemon has share_results: group; else your own\n"
    "  -s, --state S[,S...]   only jobs in these states: queued, running,\n"
    "                         completed, failed, cancelled, out-of-memory (oom),\n"
    "                         interrupted\n"
    "  -n, --limit N          at most N jobs\n"
    "  -l, --label KEY=VALUE  only jobs with this label (repeatable: all of them)\n"
    "  -g, --group N          only the jobs of group N (gN also), made by one\n"
    "                         `mtctl submit --rules`\n"
    "      --no-headers       no header row (text, wide and csv)\n"
    "  -o json, --json        one JSON document with a \"jobs\" array\n"
    "  -o wide                also PRIORITY, PLANNED (the plan's peak), LIMIT and,\n"
    "                         last, GROUP (gN, or - for none)\n"
    "  -o name                the job ids only, one a line (for xargs)\n"
    "  -o csv                 the table as CSV (the wide columns)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

/* "running,queued" into states[]; returns the count or -1 (mtctl.h). */
int parse_states(const char *list, Memtrain__JobState *states, int max, const char **bad)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int s = fmt_parse_state(tok);
        if (s < 0 || n == max) {
            *bad = tok;
            return -1;
        }
        states[n++] = (Memtrain__JobState)s;
    }
    if (n == 0)
        *bad = list;
    return n ? n : -1;
}

int jobs_opt_states(struct mtctl *c, const char *arg, Memtrain__JobState *states, int *n)
{
    const char *bad;
    if ((*n = parse_states(arg, states, 16, &bad)) < 0)
        return mtctl_usage_error(c, "unknown state '%s' (expected queued, running, completed, "
                                 "failed, cancelled, out-of-memory or interrupted)", bad);
    return 0;
}

int jobs_opt_limit(struct mtctl *c, const char *arg, unsigned long *limit)
{
    char *end;
    *limit = strtoul(arg, &end, 10);
    if (arg[0] < '0' || arg[0] > '9' || *end || *limit > UINT32_MAX)
        return mtctl_usage_error(c, "--limit '%s' is not a count", arg);
    return 0;
}

static void ls_row(struct table *t, const Memtrain__Job *job, int64_t now, int wide)
{
    char id[24], user[64], epoch[32], acc[16], peak[32], age[32], el[32], prio[16], plan[32],
        lim[32], group[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)job->id);
    snprintf(epoch, sizeof epoch, "%u/%u", job->epochs_done, job->epochs);
    if (job->last_epoch && job->epochs_done > 0)
        fmt_percent(acc, sizeof acc, job->last_epoch->test_accuracy);
    else
        snprintf(acc, sizeof acc, "-");
    uint64_t pk = job->measured ? job->measured->peak_total : 0;
    if (pk)
        fmt_bytes(peak, sizeof peak, pk);
    else
        snprintf(peak, sizeof peak, "-");
    if (job->submitted_at > 0)
        fmt_duration(age, sizeof age, (double)(now - job->submitted_at) / 1000.0);
    else
        snprintf(age, sizeof age, "-");
    fmt_elapsed(el, sizeof el, job, now);
    snprintf(prio, sizeof prio, "%d", job->priority);
    if (job->planned && job->planned->peak_total)
        fmt_bytes(plan, sizeof plan, job->planned->peak_total);
    else
        snprintf(plan, sizeof plan, "-");
    if (job->memory_limit)
        fmt_bytes(lim, sizeof lim, job->memory_limit);
    else
        snprintf(lim, sizeof lim, "-");
    if (job->group_id)
        snprintf(group, sizeof group, "g%llu", (unsigned long long)job->group_id);
    else
        snprintf(group, sizeof group, "-");
    const char *note = "";
    if (job->state == MEMTRAIN__JOB_STATE__QUEUED)
        note = job->waiting;
    else if (job->state != MEMTRAIN__JOB_STATE__COMPLETED && job->state != MEMTRAIN__JOB_STATE__RUNNING)
        note = fmt_reason(job);
    const char *cells[] = {
        id, job->name[0] ? job->name : "-", fmt_user(job->owner_uid, user, sizeof user),
        fmt_state(job->state), job->rule[0] ? job->rule : "-", epoch, acc, peak, age, el,
        note, prio, plan, lim,
    };
    if (wide) {  /* the wide columns go before NOTE, the free text */
        const char *w[] = {cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6],
                           cells[7], prio, plan, lim, cells[8], cells[9], note, group};
        table_add(t, w);
    } else {
        table_add(t, cells);
    }
}

int jobs_fetch(struct mtctl *c, Memtrain__ListRequest *lq, unsigned long limit,
               struct job_pages *out, struct mt_err *err)
{
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_LIST;
    req.list = lq;
    memset(out, 0, sizeof *out);
    lq->before_id = 0;
    for (;;) {
        lq->limit = limit ? (uint32_t)(limit - out->n_jobs) : 0;
        Memtrain__Response *resp, **more = realloc(out->pages, (out->n_pages + 1) * sizeof *more);
        if (!more) {
            jobs_pages_free(out);
            return mt_err_set(err, MT_E_NOMEM, "out of memory listing %zu jobs", out->n_jobs);
        }
        out->pages = more;
        int rc = conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_LIST, &resp, err);
        if (rc) {
            jobs_pages_free(out);
            return rc;
        }
        out->pages[out->n_pages++] = resp;
        out->n_jobs += resp->list->n_jobs;
        lq->before_id = resp->list->next_before_id;
        if (!lq->before_id || resp->list->n_jobs == 0 || (limit && out->n_jobs >= limit))
            return 0;
    }
}

void jobs_pages_free(struct job_pages *p)
{
    for (size_t i = 0; i < p->n_pages; i++)
        memtrain__response__free_unpacked(p->pages[i], NULL);
    free(p->pages);
    memset(p, 0, sizeof *p);
}

int cmd_ls(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_NO_HEADERS = 0x2001 };
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},
        {"state", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'n'},
        {"no-headers", no_argument, NULL, OPT_NO_HEADERS},
        {"label", required_argument, NULL, 'l'},
        {"group", required_argument, NULL, 'g'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    Memtrain__JobState states[16];
    uint64_t group = 0;
    struct mtctl_labels labels = {.n = 0};
    int n_states = 0, all = 0, opt, no_headers = 0;
    unsigned long limit = 0;
    mtctl_getopt_reset(c, argv, "ls");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "as:n:l:g:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (mtctl_parse_label(c, optarg, &labels))
                return MTCTL_EXIT_USAGE;
            break;
        case 'g':
            if (mtctl_parse_id(c, optarg[0] == 'g' ? optarg + 1 : optarg, &group))
                return MTCTL_EXIT_USAGE;
            break;
        case 'a':
            all = 1;
            break;
        case 's':
            if (jobs_opt_states(c, optarg, states, &n_states))
                return MTCTL_EXIT_USAGE;
            break;
        case 'n':
            if (jobs_opt_limit(c, optarg, &limit))
                return MTCTL_EXIT_USAGE;
            break;
        case OPT_NO_HEADERS:
            no_headers = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, ls_help)
        }
    }
    if (optind < argc)
        return mtctl_usage_error(c, "unexpected argument '%s'", argv[optind]);

    /* The daemon answers a page at a time (next_before_id): fetch them all
     * (or up to --limit), then print them as one table. */
    Memtrain__ListRequest lq = MEMTRAIN__LIST_REQUEST__INIT;
    lq.all_users = all;
    lq.n_states = (size_t)n_states;
    lq.states = states;
    lq.n_labels = labels.n;
    lq.labels = labels.ptrs;
    lq.group_id = group;
    struct job_pages jp;
    struct mt_err err = {0};
    if (jobs_fetch(c, &lq, limit, &jp, &err))
        return mtctl_fail(c, &err);
    int rc = MTCTL_EXIT_OK;
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_arr(&j, "jobs");
        for (size_t p = 0; p < jp.n_pages; p++)
            for (size_t i = 0; i < jp.pages[p]->list->n_jobs; i++)
                json_job(&j, NULL, jp.pages[p]->list->jobs[i]);
        json_end(&j);
    } else if (c->output == MTCTL_OUT_NAME) {
        for (size_t p = 0; p < jp.n_pages; p++)
            for (size_t i = 0; i < jp.pages[p]->list->n_jobs; i++)
                printf("%llu\n", (unsigned long long)jp.pages[p]->list->jobs[i]->id);
    } else {
        static const char *const head[] = {"ID", "NAME", "OWNER", "STATE", "RULE", "EPOCH",
                                           "TEST-ACC", "PEAK", "AGE", "ELAPSED", "NOTE"};
        static const char *const whead[] = {"ID", "NAME", "OWNER", "STATE", "RULE", "EPOCH",
                                            "TEST-ACC", "PEAK", "PRIORITY", "PLANNED", "LIMIT",
                                            "AGE", "ELAPSED", "NOTE", "GROUP"};
        int wide = c->output == MTCTL_OUT_WIDE || c->output == MTCTL_OUT_CSV;
        struct table t;
        table_init(&t, wide ? 15 : 11, no_headers ? NULL : wide ? whead : head,
                   wide ? "r....rrrrrrrr.." : "r....rrrrr.");
        int64_t now = mt_now_ms();
        for (size_t p = 0; p < jp.n_pages; p++)
            for (size_t i = 0; i < jp.pages[p]->list->n_jobs; i++)
                ls_row(&t, jp.pages[p]->list->jobs[i], now, wide);
        if (c->output == MTCTL_OUT_CSV ? table_print_csv(&t, stdout) : table_print(&t, stdout)) {
            mt_err_set(&err, MT_E_NOMEM, "out of memory listing %zu jobs", jp.n_jobs);
            rc = mtctl_fail(c, &err);
        }
        table_free(&t);
    }
    jobs_pages_free(&jp);
    return rc;
}

/* -------------------------------------------------------------------- show */

static const char show_help[] =
    "Usage: mtctl show [OPTIONS] ID\n"
    "\n"
    "Everything about job ID: its state and the reason for it, its times, a\n"
    "summary of its spec (dataset, model, rule, optimizer, schedule, batch), its\n"
    "memory planned at submission against what the arena measured, per category\n"
    "(params, grads, optimizer, activations, workspace, data) and per phase of a\n"
    "step (forward, gradient, update), the kernel's peak RSS, the last epoch's\n"
    "figures and the worker's exit status. While the job runs, its latest memory\n"
    "sample too: the bytes in use NOW (between two steps) and the INTERVAL's\n"
    "peaks (the steps since the sample before, about a second).\n"
    "\n"
    "Options:\n"
    "  -o json, --json        one JSON document with \"job\" and \"spec\"\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

/* The optimizer and the settings that apply to it. */
static void optimizer_summary(char *buf, size_t len, const Memtrain__OptimizerSpec *o)
{
    int sgd = strcmp(o->name, "sgd") == 0, adam = strncmp(o->name, "adam", 4) == 0;
    int any = !sgd && !adam;  /* the rule's default: show whatever was given */
    size_t n = (size_t)snprintf(buf, len, "%s", o->name[0] ? o->name : "(the rule's)");
    char lr[32];
    if (o->opt_lr_case && n < len)
        n += (size_t)snprintf(buf + n, len - n, " lr %s", fmt_lr(lr, sizeof lr, o->lr));
#define OPTF(field, label, applies)                                                     \
    if (o->opt_##field##_case && (applies || any) && n < len)                           \
        n += (size_t)snprintf(buf + n, len - n, " " label " %g", (double)o->field);
    OPTF(momentum, "momentum", sgd)
    OPTF(beta1, "beta1", adam)
    OPTF(beta2, "beta2", adam)
    OPTF(eps, "eps", adam)
    OPTF(weight_decay, "weight_decay", 1)
#undef OPTF
    if (o->opt_nesterov_case && (sgd || any) && n < len)
        snprintf(buf + n, len - n, " nesterov %s", o->nesterov ? "yes" : "no");
}

/* The schedule and its settings. */
static void schedule_summary(char *buf, size_t len, const Memtrain__ScheduleSpec *s)
{
    size_t n = (size_t)snprintf(buf, len, "%s", s->name[0] ? s->name : "constant");
    if (s->opt_warmup_epochs_case && s->warmup_epochs > 0 && n < len)
        n += (size_t)snprintf(buf + n, len - n, ", warm-up %g epoch%s", (double)s->warmup_epochs,
                              s->warmup_epochs == 1 ? "" : "s");
    if (strcmp(s->name, "step") == 0 && n < len) {
        uint32_t every = s->opt_step_epochs_case ? s->step_epochs : 10;
        n += (size_t)snprintf(buf + n, len - n, ", x%g every %u epoch%s",
                              s->opt_gamma_case ? (double)s->gamma : 0.1, every,
                              mt_plural(every));
    }
    char lr[32];
    if (s->opt_min_lr_case && s->min_lr > 0 && n < len)
        snprintf(buf + n, len - n, ", min lr %s", fmt_lr(lr, sizeof lr, s->min_lr));
}

static void dataset_summary(char *buf, size_t len, const Memtrain__DatasetSpec *d)
{
    size_t n = (size_t)snprintf(buf, len, "%s", d->name[0] ? d->name : "-");
    if (strcmp(d->name, "synthetic") == 0 && d->opt_synthetic_train_case && n < len)
        n += (size_t)snprintf(buf + n, len - n, ", %llu training samples",
                              (unsigned long long)d->synthetic_train);
    if (d->train_limit && n < len)
        n += (size_t)snprintf(buf + n, len - n, ", first %llu training samples",
                              (unsigned long long)d->train_limit);
    if (d->test_limit && n < len)
        n += (size_t)snprintf(buf + n, len - n, ", first %llu test samples",
                              (unsigned long long)d->test_limit);
    if (d->augment && d->augment->crop && n < len)
        n += (size_t)snprintf(buf + n, len - n, ", augment crop %u%s", d->augment->crop,
                              d->augment->flip ? ", flip" : "");
    else if (d->augment && d->augment->flip && n < len)
        n += (size_t)snprintf(buf + n, len - n, ", augment flip");
    if (d->dir[0] && n < len)
        snprintf(buf + n, len - n, " (from %s)", d->dir);
}

static void show_spec(const Memtrain__JobSpec *s)
{
    char buf[512];
    printf("spec\n");
    if (s->dataset) {
        dataset_summary(buf, sizeof buf, s->dataset);
        printf("  dataset       %s\n", buf);
    }
    if (s->model) {
        fmt_model(buf, sizeof buf, s->model);
        printf("  model         %s\n", buf);
    }
    if (s->rule)
        printf("  rule          %s\n", s->rule->name[0] ? s->rule->name : "bp");
    if (s->optimizer) {
        optimizer_summary(buf, sizeof buf, s->optimizer);
        printf("  optimizer     %s\n", buf);
    }
    if (s->schedule) {
        schedule_summary(buf, sizeof buf, s->schedule);
        printf("  schedule      %s\n", buf);
    }
    printf("  batch         %u\n", s->batch);
    printf("  epochs        %u\n", s->epochs);
    if (s->opt_seed_case)
        printf("  seed          %llu\n", (unsigned long long)s->seed);
    printf("  threads       %u%s\n", s->threads, s->threads ? "" : " (all cores)");
    if (s->memory_limit)
        printf("  memory limit  %s\n", fmt_bytes(buf, sizeof buf, s->memory_limit));
    if (s->checkpoint_every)
        printf("  checkpoints   every %u epoch%s\n", s->checkpoint_every,
               mt_plural(s->checkpoint_every));
}

static void mem_cell(char *buf, size_t len, const Memtrain__MemoryStats *m, size_t i)
{
    if (!m)
        snprintf(buf, len, "-");
    else
        fmt_bytes(buf, len, fmt_mem_at(m, i));
}

static void show_memory(const Memtrain__Job *job)
{
    const Memtrain__MemorySample *now = job->memory;
    const Memtrain__MemoryStats *iv = now ? now->interval_peak : NULL;
    static const char *const head[] = {"memory", "PLANNED", "MEASURED", "NOW", "INTERVAL"};
    struct table t;
    table_init(&t, iv ? 5 : now ? 4 : 3, head, ".rrrr");
    for (size_t i = 0; i < FMT_MEM_ROWS; i++) {
        char label[32], p[32], m[32], n[32], v[32];
        snprintf(label, sizeof label, "  %s", fmt_mem_label(i));
        mem_cell(p, sizeof p, job->planned, i);
        mem_cell(m, sizeof m, job->measured, i);
        mem_cell(n, sizeof n, now ? now->current : NULL, i);
        mem_cell(v, sizeof v, iv, i);
        if (i >= 7 && now)
            snprintf(n, sizeof n, "-");  /* a sample's current phase peaks are not "now" */
        const char *cells[] = {label, p, m, n, v};
        table_add(&t, cells);
    }
    char m[32], n[32];
    if (job->measured)
        fmt_bytes(m, sizeof m, job->measured->rss_peak_bytes);
    else
        snprintf(m, sizeof m, "-");
    if (now)
        fmt_bytes(n, sizeof n, now->rss_bytes);
    const char *rss[] = {"  rss (kernel)", "-", m, now ? n : "-", "-"};
    table_add(&t, rss);
    table_print(&t, stdout);
    table_free(&t);
    if (iv)
        printf("  interval      the %llu step%s before the latest sample\n",
               (unsigned long long)now->interval_steps, mt_plural(now->interval_steps));
    if (job->memory_limit) {
        char lim[32];
        printf("  limit         %s\n", fmt_bytes(lim, sizeof lim, job->memory_limit));
    }
}

static void show_job(const Memtrain__Job *job, const Memtrain__JobSpec *spec)
{
    char a[64], b[64];
    int64_t now = mt_now_ms();
    printf("job %llu%s%s\n", (unsigned long long)job->id, job->name[0] ? "  " : "", job->name);
    printf("  state         %s%s%s\n", fmt_state(job->state), job->reason[0] ? ": " : "",
           job->reason);
    if (job->state == MEMTRAIN__JOB_STATE__QUEUED && job->waiting[0])
        printf("  waiting       %s\n", job->waiting);
    printf("  owner         %s (uid %u)\n", fmt_user(job->owner_uid, a, sizeof a), job->owner_uid);
    printf("  priority      %d\n", job->priority);
    if (job->n_labels) {
        printf("  labels       ");
        for (size_t i = 0; i < job->n_labels; i++)
            printf(" %s=%s", job->labels[i]->key, job->labels[i]->value);
        putchar('\n');
    }
    if (job->submitted_at > 0)
        printf("  submitted     %s (%s ago)\n", fmt_time(a, sizeof a, job->submitted_at),
               fmt_duration(b, sizeof b, (double)(now - job->submitted_at) / 1000.0));
    if (job->started_at > 0)
        printf("  started       %s\n", fmt_time(a, sizeof a, job->started_at));
    if (job->finished_at > 0)
        printf("  finished      %s (ran %s)\n", fmt_time(a, sizeof a, job->finished_at),
               fmt_duration(b, sizeof b,
                            (double)(job->finished_at - job->started_at) / 1000.0));
    else if (job->started_at > 0)
        printf("  running for   %s\n",
               fmt_duration(b, sizeof b, (double)(now - job->started_at) / 1000.0));
    printf("  epochs        %u of %u\n", job->epochs_done, job->epochs);
    if (job->finished_at > 0 && job->started_at > 0) {
        if (job->exit_code < 0)
            printf("  exit          killed by signal %d\n", -job->exit_code);
        else
            printf("  exit code     %d\n", job->exit_code);
    }
    if (spec)
        show_spec(spec);
    show_memory(job);
    const Memtrain__EpochProgress *e = job->last_epoch;
    if (e && job->epochs_done > 0) {
        char tr[16], te[16], lr[32];
        printf("last epoch %u: loss %.4f, train %s, test %s, %.1f s, %.0f samples/s, lr %s\n",
               e->epoch, e->loss, fmt_percent(tr, sizeof tr, e->train_accuracy),
               fmt_percent(te, sizeof te, e->test_accuracy), e->seconds, e->samples_per_second,
               fmt_lr(lr, sizeof lr, e->lr));
    }
}

int cmd_show(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {MTCTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt, rc;
    uint64_t id;
    mtctl_getopt_reset(c, argv, "show");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        MTCTL_OPT_DEFAULT(c, opt, show_help)
        }
    }
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one job ID");
    if ((rc = mtctl_parse_id(c, argv[optind], &id)))
        return rc;
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (conn_show(c, id, &resp, &err)) {
        conn_job_err(&err, id);
        return mtctl_fail(c, &err);
    }
    if (!resp->show->job) {
        memtrain__response__free_unpacked(resp, NULL);
        mt_err_set(&err, MT_E_PROTO, "job %llu: memtraind sent no job record",
                   (unsigned long long)id);
        return mtctl_fail(c, &err);
    }
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_job(&j, "job", resp->show->job);
        json_spec(&j, "spec", resp->show->spec);
        json_end(&j);
    } else if (c->output == MTCTL_OUT_NAME) {
        printf("%llu\n", (unsigned long long)resp->show->job->id);
    } else {
        show_job(resp->show->job, resp->show->spec);
    }
    memtrain__response__free_unpacked(resp, NULL);
    return MTCTL_EXIT_OK;
}

/* ------------------------------------------------------------------ cancel */

static const char cancel_help[] =
    "Usage: mtctl cancel [OPTIONS] ID...\n"
    "\n"
    "Stop each job ID (all are tried; the exit status is the first failure's).\n"
    "A queued job ends CANCELLED at once; a running job's worker is\n"
    "asked to stop (then killed after the daemon's grace period) and ends\n"
    "CANCELLED. Prints the job's state after the request, and the daemon's note:\n"
    "  job 12: RUNNING (cancel requested: the worker has 10 s to stop)\n"
    "Use `mtctl wait ID` to block until it has stopped. Only the job's owner (or\n"
    "root) may cancel it.\n"
    "\n"
    "Options:\n"
    "  -o json, --json        one JSON document with the \"job\" per ID, a line each\n"
    "  -o name                the ids only, one a line\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

/* Cancel one job and print the outcome; returns its exit status. */
static int cancel_one(struct mtctl *c, uint64_t id)
{
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (conn_cancel(c, id, &resp, &err)) {
        conn_job_err(&err, id);
        return mtctl_fail(c, &err);
    }
    const Memtrain__Job *job = resp->cancel->job;
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_job(&j, "job", job);
        json_str(&j, "message", resp->message);
        json_end(&j);
    } else if (c->output == MTCTL_OUT_NAME) {
        printf("%llu\n", (unsigned long long)id);
    } else if (job) {
        printf("job %llu: %s", (unsigned long long)job->id, fmt_state(job->state));
        if (resp->message[0])
            printf(" (%s)", resp->message);
        else if (job->reason[0])
            printf(" (%s)", job->reason);
        putchar('\n');
    } else {
        printf("job %llu: %s\n", (unsigned long long)id,
               resp->message[0] ? resp->message : "cancel requested");
    }
    memtrain__response__free_unpacked(resp, NULL);
    return MTCTL_EXIT_OK;
}

int cmd_cancel(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {MTCTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt, rc;
    mtctl_getopt_reset(c, argv, "cancel");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        MTCTL_OPT_DEFAULT(c, opt, cancel_help)
        }
    }
    if (argc - optind < 1)
        return mtctl_usage_error(c, "expected one or more job IDs");
    uint64_t ids[256];
    int n = argc - optind;
    if (n > 256)
        return mtctl_usage_error(c, "at most 256 job IDs at once");
    for (int i = 0; i < n; i++)  /* all ids are checked before any job is touched */
        if ((rc = mtctl_parse_id(c, argv[optind + i], &ids[i])))
            return rc;
    /* every job is tried; the exit status is the first failure's */
    int status = MTCTL_EXIT_OK;
    for (int i = 0; i < n; i++) {
        rc = cancel_one(c, ids[i]);
        c->status = -1;
        if (rc && !status)
            status = rc;
    }
    return status;
}

/* -------------------------------------------------------------------- wait */

static const char wait_help[] =
    "Usage: mtctl wait [OPTIONS] ID\n"
    "\n"
    "Block until job ID reaches a final state, print it (\"job 12: COMPLETED\",\n"
    "with the reason when there is one) and exit with its status. When memtraind\n"
    "stops meanwhile, its running job is INTERRUPTED and resumes from its newest\n"
    "checkpoint when memtraind starts again: wait says so on stderr, connects\n"
    "again every 200 ms and goes on waiting.\n"
    "\n"
    "Options:\n"
    "      --no-reconnect     end when memtraind stops: exit 13 INTERRUPTED for a\n"
    "                         job it stopped, 1 otherwise\n"
    "      --timeout DURATION give up after DURATION (a number and a unit: 90s,\n"
    "                         10m, 1.5h, 2d) and exit 124; the job goes on\n"
    "  -o json, --json        print the final job as one JSON document ({\"event\":\n"
    "                         \"timeout\", \"state\": ...} after --timeout)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 COMPLETED, 10 FAILED, 11 CANCELLED, 12 OUT_OF_MEMORY,\n"
    "13 INTERRUPTED (with --no-reconnect); 124 --timeout passed; 130 Ctrl-C;\n"
    "1 error, 3 daemon unreachable, 4 no such job, 5 permission denied.\n";

int cmd_wait(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_NO_RECONNECT = 0x2001, OPT_TIMEOUT };
    static const struct option longopts[] = {
        {"no-reconnect", no_argument, NULL, OPT_NO_RECONNECT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct follow_opts fo = {.quiet = 1, .reconnect = 1};
    struct mt_err perr = {0};
    uint64_t ms = 1;
    int opt, rc;
    uint64_t id;
    mtctl_getopt_reset(c, argv, "wait");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_NO_RECONNECT:
            fo.reconnect = 0;
            break;
        case OPT_TIMEOUT:
            if (mt_age_parse(optarg, &ms, &perr) || ms == 0)
                return mtctl_usage_error(c, "--timeout: %s", ms == 0 && !perr.msg[0]
                                         ? "expected more than 0" : perr.msg);
            fo.timeout = (double)ms / 1000.0;
            break;
        MTCTL_OPT_DEFAULT(c, opt, wait_help)
        }
    }
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one job ID");
    if ((rc = mtctl_parse_id(c, argv[optind], &id)))
        return rc;
    return watch_job(c, id, &fo);
}
