/* watch.c: the streams: `watch` (a job's progress, live), `wait` (its end
 * only), `submit --follow`, and `logs`.
 *
 * A watch is one WatchRequest answered by WatchEvents: the Job first, then
 * epochs, steps (when asked for), memory samples and the Job again on every
 * state change; the stream ends (`end`) when the job reaches a final state.
 * On a terminal the view is redrawn in place with ANSI escapes (cursor up,
 * erase line); otherwise each event worth reading is one plain line, and
 * with --json each event is one JSON line. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "memtrain/clock.h"
#include "mtctl.h"
#include "spark.h"

#define TREND_KEEP 32             /* values the live view's sparklines show */

/* The latest of each kind of event; each Response is owned here. */
struct view {
    struct mtctl *c;
    uint64_t id;
    int quiet;                    /* wait: the final line only */
    int print_steps;              /* plain and JSON: a line per step */
    int live;                     /* redraw in place */
    Memtrain__Response *job_r, *epoch_r, *mem_r;
    Memtrain__StepProgress step;
    int have_step;
    int last_state;               /* the state last printed (plain mode) */
    uint32_t batch;
    uint64_t steps_per_epoch;     /* 0 = not known (yet) */
    int drawn;                    /* lines of the last live frame */
    double last_draw;             /* monotonic seconds */
    /* the live view's trends: test accuracy per epoch, and each memory
     * sample's step peak (the interval's, else the current total) */
    double acc[TREND_KEEP], mem[TREND_KEEP];
    size_t n_acc, n_mem;
};

/* Append x to v[0..*n), dropping the oldest when full. */
static void trend_push(double *v, size_t *n, double x)
{
    if (*n == TREND_KEEP) {
        memmove(v, v + 1, (TREND_KEEP - 1) * sizeof *v);
        (*n)--;
    }
    v[(*n)++] = x;
}

/* The memory figure a sample adds to the trend. */
static double sample_peak(const Memtrain__MemorySample *m)
{
    if (m->interval_peak && m->interval_steps)
        return (double)m->interval_peak->peak_total;
    return m->current ? (double)m->current->peak_total : NAN;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const Memtrain__Job *view_job(const struct view *v)
{
    return v->job_r ? v->job_r->watch->job : NULL;
}

static const Memtrain__EpochProgress *view_epoch(const struct view *v)
{
    if (v->epoch_r)
        return v->epoch_r->watch->epoch;
    const Memtrain__Job *j = view_job(v);
    return j && j->epochs_done > 0 ? j->last_epoch : NULL;
}

static const Memtrain__MemorySample *view_memory(const struct view *v)
{
    if (v->mem_r)
        return v->mem_r->watch->memory;
    const Memtrain__Job *j = view_job(v);
    return j ? j->memory : NULL;
}

/* Keep `r` as the latest of its kind, dropping the one it replaces. */
static void keep(Memtrain__Response **slot, Memtrain__Response *r)
{
    if (*slot)
        memtrain__response__free_unpacked(*slot, NULL);
    *slot = r;
}

/* Steps in an epoch from the spec, when the training set's size is known
 * without reading it: the named sets' sizes, synthetic_train, train_limit. */
static void plan_steps(struct view *v, const Memtrain__JobSpec *s)
{
    if (!s || !s->dataset || s->batch == 0)
        return;
    const Memtrain__DatasetSpec *d = s->dataset;
    uint64_t n = 0;
    if (strcmp(d->name, "synthetic") == 0)
        n = d->opt_synthetic_train_case ? d->synthetic_train : 2000;
    else if (strcmp(d->name, "mnist") == 0 || strcmp(d->name, "fashion-mnist") == 0)
        n = 60000;
    else if (strcmp(d->name, "cifar10") == 0)
        n = 50000;
    if (d->train_limit && (n == 0 || d->train_limit < n))
        n = d->train_limit;
    v->batch = s->batch;
    if (n)
        v->steps_per_epoch = (n + s->batch - 1) / s->batch;
}

/* Without the set's size, an epoch's samples/s times its seconds gives it. */
static void learn_steps(struct view *v, const Memtrain__EpochProgress *e)
{
    if (v->steps_per_epoch || !v->batch || e->seconds <= 0 || e->samples_per_second <= 0)
        return;
    double n = nearbyint(e->samples_per_second * e->seconds);
    if (n >= 1 && n < 1e15)
        v->steps_per_epoch = ((uint64_t)n + v->batch - 1) / v->batch;
}

/* ------------------------------------------------------------- live view */

/* A line cut to the terminal's width (on a UTF-8 boundary). */
static void put_line(const char *s, int cols)
{
    size_t n = strlen(s);
    if (cols > 1) {
        size_t w = 0, i = 0;
        for (; s[i]; i++)
            if (((unsigned char)s[i] & 0xC0) != 0x80 && ++w > (size_t)cols - 1)
                break;
        n = i;
    }
    fwrite(s, 1, n, stdout);
    fputs("\033[K\n", stdout);
}


/* The sparklines: accuracy per epoch on its own range, memory from 0 to
 * its highest sample. Returns the lines drawn. */
static int draw_trends(const struct view *v, int cols)
{
    char line[512], sa[TREND_KEEP * 3 + 1], sm[TREND_KEEP * 3 + 1], a[32], b[32], c3[32];
    double lo = INFINITY, hi = -INFINITY, top = 0;
    for (size_t i = 0; i < v->n_acc; i++)
        lo = fmin(lo, v->acc[i]), hi = fmax(hi, v->acc[i]);
    for (size_t i = 0; i < v->n_mem; i++)
        top = isfinite(v->mem[i]) ? fmax(top, v->mem[i]) : top;
    size_t k = (size_t)snprintf(line, sizeof line, "trend  test");
    if (v->n_acc)
        k += (size_t)snprintf(line + k, sizeof line - k, " %s %s..%s",
                              spark_line(sa, sizeof sa, v->acc, v->n_acc, lo, hi, TREND_KEEP),
                              fmt_percent(a, sizeof a, lo), fmt_percent(b, sizeof b, hi));
    else
        k += (size_t)snprintf(line + k, sizeof line - k, " -");
    if (v->n_mem && k < sizeof line)
        snprintf(line + k, sizeof line - k, "  memory %s 0..%s",
                 spark_line(sm, sizeof sm, v->mem, v->n_mem, 0, top, TREND_KEEP),
                 fmt_bytes(c3, sizeof c3, (uint64_t)top));
    put_line(line, cols);
    return 1;
}

static void draw(struct view *v)
{
    const Memtrain__Job *job = view_job(v);
    const Memtrain__EpochProgress *e = view_epoch(v);
    const Memtrain__MemorySample *m = view_memory(v);
    struct winsize ws;
    int cols = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    char line[512], a[48], b[32], c3[32], d[48];
    if (!job)
        return;
    if (v->drawn > 0)
        printf("\r\033[%dA", v->drawn);
    int n = 0;

    double run = job->started_at > 0
        ? (double)((job->finished_at > 0 ? job->finished_at : mt_now_ms()) - job->started_at) / 1000.0
        : 0;
    snprintf(line, sizeof line, "job %llu %s  %s  rule %s  %s", (unsigned long long)job->id,
             job->name, fmt_state(job->state), job->rule[0] ? job->rule : "-",
             job->started_at > 0 ? fmt_duration(a, sizeof a, run) : "");
    put_line(line, cols), n++;

    if (job->state == MEMTRAIN__JOB_STATE__QUEUED) {
        snprintf(line, sizeof line, "waiting: %s", job->waiting[0] ? job->waiting : "in the queue");
        put_line(line, cols), n++;
    } else if (job->reason[0] && job->state != MEMTRAIN__JOB_STATE__RUNNING) {
        snprintf(line, sizeof line, "reason: %s", job->reason);
        put_line(line, cols), n++;
    }
    if (job->state == MEMTRAIN__JOB_STATE__RUNNING) {
        uint32_t ep = v->have_step ? v->step.epoch : job->epochs_done + 1;
        size_t k = (size_t)snprintf(line, sizeof line, "epoch %u/%u ", ep, job->epochs);
        if (v->have_step && v->steps_per_epoch) {
            uint64_t first = (uint64_t)(ep - 1) * v->steps_per_epoch;
            uint64_t in = v->step.step + 1 > first ? v->step.step + 1 - first : 0;
            double frac = fmin((double)in / (double)v->steps_per_epoch, 1.0);
            k += (size_t)snprintf(line + k, sizeof line - k, "%s  step %llu/%llu  loss %.4f",
                                  fmt_bar(a, sizeof a, frac), (unsigned long long)in,
                                  (unsigned long long)v->steps_per_epoch, v->step.loss);
            /* ETA: the run so far over the share of all steps done */
            double done = ((double)(ep - 1) + frac) / (job->epochs ? job->epochs : 1);
            if (done > 0 && run > 0 && k < sizeof line)
                snprintf(line + k, sizeof line - k, "  ETA %s",
                         fmt_duration(b, sizeof b, run * (1 - fmin(done, 1.0)) / done));
        } else if (v->have_step) {
            snprintf(line + k, sizeof line - k, " step %llu  loss %.4f",
                     (unsigned long long)v->step.step + 1, v->step.loss);
        } else {
            snprintf(line + k, sizeof line - k, "%s",
                     fmt_bar(a, sizeof a, job->epochs ? (double)job->epochs_done / job->epochs : 0));
        }
        put_line(line, cols), n++;
    }
    if (e) {
        snprintf(line, sizeof line, "epoch %u  loss %.4f  train %s  test %s  %.0f/s  lr %s",
                 e->epoch, e->loss, fmt_percent(a, sizeof a, e->train_accuracy),
                 fmt_percent(b, sizeof b, e->test_accuracy), e->samples_per_second,
                 fmt_lr(d, sizeof d, e->lr));
        put_line(line, cols), n++;
        if (e->n_rule_metrics) {  /* the rule's own figures: "rule  stage 2  li.2 0.031" */
            size_t k = (size_t)snprintf(line, sizeof line, "rule %s ", job->rule);
            for (size_t i = 0; i < e->n_rule_metrics && k < sizeof line; i++)
                if (e->rule_metrics[i])
                    k += (size_t)snprintf(line + k, sizeof line - k, " %s %.4g",
                                          e->rule_metrics[i]->name ? e->rule_metrics[i]->name : "",
                                          e->rule_metrics[i]->value);
            put_line(line, cols), n++;
        }
    }
    if (v->n_acc || v->n_mem)
        n += draw_trends(v, cols);
    /* While it runs, the latest sample: its current bytes (taken between
     * steps, so without a step's activations and workspace), the peaks of
     * the steps since the sample before (INTERVAL) and since the start
     * (PEAK); after, the measured peaks; the plan beside them. */
    const Memtrain__MemoryStats *cur = m ? m->current : NULL;
    const Memtrain__MemoryStats *iv = m ? m->interval_peak : NULL;
    const Memtrain__MemoryStats *pk = m ? m->peak : job->measured;
    const Memtrain__MemoryStats *plan = job->planned;
    if (cur || pk) {
        snprintf(line, sizeof line, "%-13s %12s %12s %12s %12s", "memory", "current", "interval",
                 "peak", "planned");
        put_line(line, cols), n++;
        for (size_t i = 0; i <= FMT_MEM_CATEGORIES; i++) {   /* the categories, then the total */
            size_t row = i < FMT_MEM_CATEGORIES ? i : FMT_MEM_CATEGORIES; /* "peak total" */
            char f[32];
            snprintf(line, sizeof line, "  %-11s %12s %12s %12s %12s",
                     i < FMT_MEM_CATEGORIES ? fmt_mem_label(i) : "total",
                     cur ? fmt_bytes(a, sizeof a, fmt_mem_at(cur, row)) : "-",
                     iv ? fmt_bytes(b, sizeof b, fmt_mem_at(iv, row)) : "-",
                     pk ? fmt_bytes(c3, sizeof c3, fmt_mem_at(pk, row)) : "-",
                     plan ? fmt_bytes(f, sizeof f, fmt_mem_at(plan, row)) : "-");
            put_line(line, cols), n++;
        }
        if (m)
            snprintf(line, sizeof line, "  %-11s %12s %12s %12s", "rss",
                     fmt_bytes(a, sizeof a, m->rss_bytes), "", fmt_bytes(b, sizeof b, m->hwm_bytes));
        else
            snprintf(line, sizeof line, "  %-11s %12s %12s %12s", "rss", "-", "",
                     fmt_bytes(b, sizeof b, pk->rss_peak_bytes));
        put_line(line, cols), n++;
        uint64_t total = pk ? pk->peak_total : 0;
        uint64_t lim = m && m->limit ? m->limit : job->memory_limit;
        if (lim) {
            snprintf(line, sizeof line, "  %-11s %12s %s of it at the peak", "limit",
                     fmt_bytes(c3, sizeof c3, lim), fmt_bar(d, sizeof d, (double)total / (double)lim));
            put_line(line, cols), n++;
        }
        if (iv && m->interval_steps)
            snprintf(line, sizeof line, "  interval: the peaks of the %llu step%s since the "
                     "sample before", (unsigned long long)m->interval_steps,
                     mt_plural(m->interval_steps));
        else if (m)
            snprintf(line, sizeof line, "  interval: no step since the sample before");
        if (m)
            put_line(line, cols), n++;
    }
    fputs("\033[J", stdout);
    fflush(stdout);
    v->drawn = n;
    v->last_draw = mono();
}

/* ----------------------------------------------------------- plain / JSON */

static void plain_state(struct view *v, const Memtrain__Job *job)
{
    if ((int)job->state == v->last_state)
        return;
    v->last_state = job->state;
    printf("job %llu: %s", (unsigned long long)job->id, fmt_state(job->state));
    if (job->state == MEMTRAIN__JOB_STATE__QUEUED && job->waiting[0])
        printf(": %s", job->waiting);
    else if (fmt_reason(job)[0])
        printf(": %s", fmt_reason(job));
    putchar('\n');
}

static void plain_epoch(struct view *v, const Memtrain__EpochProgress *e)
{
    const Memtrain__Job *job = view_job(v);
    char a[16], b[16], p[32];
    printf("job %llu epoch %u/%u: loss %.4f, train %s, test %s, %.1f s, %.0f samples/s, lr %s",
           (unsigned long long)v->id, e->epoch, job ? job->epochs : 0, e->loss,
           fmt_percent(a, sizeof a, e->train_accuracy), fmt_percent(b, sizeof b, e->test_accuracy),
           e->seconds, e->samples_per_second, fmt_lr(p, sizeof p, e->lr));
    if (e->memory && e->memory->peak_total)
        printf(", peak %s", fmt_bytes(p, sizeof p, e->memory->peak_total));
    if (e->memory && e->memory->rss_peak_bytes)
        printf(", rss peak %s", fmt_bytes(p, sizeof p, e->memory->rss_peak_bytes));
    for (size_t i = 0; i < e->n_rule_metrics; i++)   /* ", li.2 0.031 li.3 0.024" */
        if (e->rule_metrics[i])
            printf("%s%s %.4g", i ? " " : ", ",
                   e->rule_metrics[i]->name ? e->rule_metrics[i]->name : "",
                   e->rule_metrics[i]->value);
    /* ETA: the run so far, per epoch done, times the epochs left */
    if (job && job->started_at > 0 && e->epoch > 0 && e->epoch < job->epochs) {
        double run = (double)(mt_now_ms() - job->started_at) / 1000.0;
        printf(", ETA %s", fmt_duration(p, sizeof p, run / e->epoch * (job->epochs - e->epoch)));
    }
    putchar('\n');
}

static void json_event(struct view *v, const Memtrain__WatchEvent *ev)
{
    struct json j;
    json_begin(&j, stdout);
    json_u64(&j, "job_id", ev->job_id ? ev->job_id : v->id);
    switch (ev->event_case) {
    case MEMTRAIN__WATCH_EVENT__EVENT_JOB:
        json_str(&j, "event", "job");
        json_job(&j, "job", ev->job);
        break;
    case MEMTRAIN__WATCH_EVENT__EVENT_EPOCH:
        json_str(&j, "event", "epoch");
        json_epoch(&j, "epoch", ev->epoch);
        break;
    case MEMTRAIN__WATCH_EVENT__EVENT_STEP:
        json_str(&j, "event", "step");
        json_step(&j, "step", ev->step);
        break;
    case MEMTRAIN__WATCH_EVENT__EVENT_MEMORY:
        json_str(&j, "event", "memory");
        json_memory_sample(&j, "memory", ev->memory);
        break;
    default:
        json_str(&j, "event", "unknown");
    }
    json_end(&j);
}

/* One event: remember it, then show it as the mode wants. */
static void on_event(struct view *v, Memtrain__Response *r)
{
    const Memtrain__WatchEvent *ev = r->watch;
    if (v->c->json && !v->quiet && (ev->event_case != MEMTRAIN__WATCH_EVENT__EVENT_STEP ||
                                     v->print_steps))
        json_event(v, ev);
    int redraw = 1;
    switch (ev->event_case) {
    case MEMTRAIN__WATCH_EVENT__EVENT_JOB:
        if (!ev->job)
            break;
        keep(&v->job_r, r);
        if (!v->c->json && !v->live && !v->quiet)
            plain_state(v, ev->job);
        if (v->live)
            draw(v);
        return;
    case MEMTRAIN__WATCH_EVENT__EVENT_EPOCH:
        if (!ev->epoch)
            break;
        learn_steps(v, ev->epoch);
        trend_push(v->acc, &v->n_acc, ev->epoch->test_accuracy);
        keep(&v->epoch_r, r);
        if (!v->c->json && !v->live && !v->quiet)
            plain_epoch(v, ev->epoch);
        if (v->live)
            draw(v);
        return;
    case MEMTRAIN__WATCH_EVENT__EVENT_STEP:
        if (ev->step) {
            v->step = *ev->step;
            v->step.base.unknown_fields = NULL;
            v->step.base.n_unknown_fields = 0;
            v->have_step = 1;
            if (!v->c->json && !v->live && !v->quiet && v->print_steps)
                printf("job %llu step %llu (epoch %u): loss %.4f\n", (unsigned long long)v->id,
                       (unsigned long long)ev->step->step, ev->step->epoch, ev->step->loss);
        }
        redraw = mono() - v->last_draw >= 0.1;
        break;
    case MEMTRAIN__WATCH_EVENT__EVENT_MEMORY:
        if (ev->memory) {
            trend_push(v->mem, &v->n_mem, sample_peak(ev->memory));
            keep(&v->mem_r, r);
            if (v->live)
                draw(v);
            return;
        }
        break;
    default:
        break;
    }
    if (v->live && redraw)
        draw(v);
    memtrain__response__free_unpacked(r, NULL);
}

/* The final line (and document) once the stream has ended. */
static int finish(struct view *v, int state)
{
    const Memtrain__Job *job = view_job(v);
    int status = fmt_state_exit(state);
    if (v->c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_u64(&j, "job_id", v->id);
        json_str(&j, "event", "end");
        json_str(&j, "state", fmt_state(state));
        json_i64(&j, "exit_status", status);
        if (v->quiet)
            json_job(&j, "job", job);
        json_end(&j);
    } else if (v->live || v->quiet || v->last_state != state) {
        printf("job %llu: %s", (unsigned long long)v->id, fmt_state(state));
        if (job && fmt_reason(job)[0])
            printf(": %s", fmt_reason(job));
        putchar('\n');
    }
    return status;
}

/* The epochs so far, for the accuracy trend of a view joined late. */
static void fetch_history(struct view *v)
{
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (conn_epochs(v->c, v->id, &resp, &err) == 0) {
        for (size_t i = 0; i < resp->metrics->n_epochs; i++)
            trend_push(v->acc, &v->n_acc, resp->metrics->epochs[i]->test_accuracy);
        memtrain__response__free_unpacked(resp, NULL);
    }
    v->c->status = -1;
}

/* Ask for the spec first: the live view's progress bar needs the batch. */
static void fetch_spec(struct view *v)
{
    Memtrain__ShowRequest sq = MEMTRAIN__SHOW_REQUEST__INIT;
    sq.job_id = v->id;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_SHOW;
    req.show = &sq;
    Memtrain__Response *resp;
    struct mt_err err = {0};
    /* a failure here shows again, with its message, when the watch is sent */
    if (conn_call(v->c, &req, MEMTRAIN__RESPONSE__BODY_SHOW, &resp, &err) == 0) {
        plan_steps(v, resp->show->spec);
        memtrain__response__free_unpacked(resp, NULL);
    }
    v->c->status = -1;
}

/* ---------------------------------------------------------- Ctrl-C */

/* What Ctrl-C prints: the job goes on without us. Two buffers, so the
 * handler never reads one being written. */
static char sigint_msg[2][200];
static volatile sig_atomic_t sigint_cur = -1;

static void on_sigint(int sig)
{
    (void)sig;
    int i = sigint_cur;
    if (i >= 0) {
        ssize_t n = write(STDERR_FILENO, sigint_msg[i], strlen(sigint_msg[i]));
        (void)n;
    }
    _exit(MTCTL_EXIT_SIGINT);
}

/* The Ctrl-C message for the job's state as last seen. */
static void sigint_say(const struct view *v)
{
    const Memtrain__Job *job = view_job(v);
    int state = job ? (int)job->state : MEMTRAIN__JOB_STATE__RUNNING;
    const char *goes_on = state == MEMTRAIN__JOB_STATE__QUEUED ? "it stays queued"
                          : state == MEMTRAIN__JOB_STATE__INTERRUPTED
                              ? "it resumes when memtraind starts again"
                              : "it keeps running";
    int next = sigint_cur == 0 ? 1 : 0;
    snprintf(sigint_msg[next], sizeof sigint_msg[next],
             "%sstopped following job %llu; %s (mtctl cancel %llu)\n",
             isatty(STDERR_FILENO) ? "\n" : "", (unsigned long long)v->id, goes_on,
             (unsigned long long)v->id);
    sigint_cur = next;
}

static void sigint_install(const struct view *v, struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigint_say(v);
    sigaction(SIGINT, &sa, old);
}

/* ------------------------------------------------------- one watch */

/* watch_once's outcomes besides 0 and MT_E_* codes */
enum { WATCH_TIMEOUT = 1, WATCH_STDOUT = 2 };

/* Wait until fd can be read or the deadline (monotonic seconds, 0 = none)
 * passes: 0, WATCH_TIMEOUT, or MT_E_IO. */
static int readable(int fd, double deadline, struct mt_err *err)
{
    if (deadline <= 0)
        return 0;
    for (;;) {
        double left = deadline - mono();
        if (left <= 0)
            return WATCH_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)ceil(left * 1000));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return mt_err_set(err, MT_E_IO, "poll: %s", strerror(errno));
    }
}

/* Send one WatchRequest on c's connection (opened if need be) and show its
 * events until the stream ends. 0 with *state the job's state at the end
 * (final, or INTERRUPTED: the daemon stopped), WATCH_TIMEOUT, WATCH_STDOUT
 * (stdout failed), or an MT_E_*
 * code in err (with *state the last state seen, -1 if none). */
static int watch_once(struct view *v, double deadline, int *state, struct mt_err *err)
{
    struct mtctl *c = v->c;
    *state = -1;
    Memtrain__WatchRequest wq = MEMTRAIN__WATCH_REQUEST__INIT;
    wq.job_id = v->id;
    wq.steps = !v->quiet && (v->print_steps || v->live);
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_WATCH;
    req.watch = &wq;
    int rc = conn_send(c, &req, err);
    while (!rc) {
        Memtrain__Response *r;
        if ((rc = readable(c->fd, deadline, err)) || (rc = conn_recv(c, &r, err)))
            break;
        if (r->body_case != MEMTRAIN__RESPONSE__BODY_WATCH || !r->watch) {
            int end = r->end;
            memtrain__response__free_unpacked(r, NULL);
            if (end) {
                rc = mt_err_set(err, MT_E_PROTO, "the watch ended without a job state");
                break;
            }
            continue;
        }
        int end = r->end;
        on_event(v, r);  /* r is kept or freed */
        sigint_say(v);
        if (fflush(stdout) != 0 || ferror(stdout))
            return WATCH_STDOUT;  /* the reader went away (| head): main says so */
        if (end) {
            const Memtrain__Job *job = view_job(v);
            *state = job ? (int)job->state : -1;
            if (fmt_state_final(*state) || *state == MEMTRAIN__JOB_STATE__INTERRUPTED)
                return 0;  /* the Job event has drawn the last view */
            return mt_err_set(err, MT_E_PROTO, "the watch ended while the job is %s",
                              fmt_state(*state));
        }
    }
    const Memtrain__Job *job = view_job(v);
    *state = job ? (int)job->state : -1;
    return rc;
}

/* Whether rc means the daemon went away (stopped, restarting). */
static int daemon_gone(int rc)
{
    return rc == MT_E_EOF || rc == MT_E_IO || rc == MT_E_TRUNCATED || rc == MT_E_BUSY ||
           rc == MT_E_UNREACHABLE;
}

/* Connect again, every 200 ms, until the daemon answers or the deadline
 * passes: 0, WATCH_TIMEOUT. */
static int reconnect(struct view *v, double deadline)
{
    struct mtctl *c = v->c;
    conn_close(c);
    for (;;) {
        if (deadline > 0 && mono() + 0.2 > deadline)
            return WATCH_TIMEOUT;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        struct mt_err err = {0};
        if (conn_open(c, &err) == 0)
            return 0;
    }
}

/* --timeout passed: say so (and, with --json, as an event); exit 124. */
static int timed_out(struct view *v, double timeout)
{
    const Memtrain__Job *job = view_job(v);
    const char *state = job ? fmt_state(job->state) : "unknown";
    fflush(stdout);
    fprintf(stderr, "mtctl: job %llu is still %s after --timeout %g s\n",
            (unsigned long long)v->id, state, timeout);
    if (v->c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_u64(&j, "job_id", v->id);
        json_str(&j, "event", "timeout");
        json_str(&j, "state", state);
        json_i64(&j, "exit_status", MTCTL_EXIT_TIMEOUT);
        json_end(&j);
    }
    return MTCTL_EXIT_TIMEOUT;
}

int watch_job(struct mtctl *c, uint64_t id, const struct follow_opts *o)
{
    struct view v = {.c = c, .id = id, .quiet = o->quiet, .print_steps = o->steps,
                     .last_state = -1};
    v.live = c->tty && !c->json && !o->quiet;
    struct sigaction old_int;
    sigint_install(&v, &old_int);
    double deadline = o->timeout > 0 ? mono() + o->timeout : 0;
    if (v.live) {
        fetch_spec(&v);
        fetch_history(&v);
    }
    struct mt_err err = {0};
    int state, rc, status = MTCTL_EXIT_ERROR, said = 0;
    for (;;) {
        rc = watch_once(&v, deadline, &state, &err);
        int gone = state == MEMTRAIN__JOB_STATE__INTERRUPTED || (rc && daemon_gone(rc));
        if (rc == WATCH_TIMEOUT || rc == WATCH_STDOUT ||
            (rc == 0 && state != MEMTRAIN__JOB_STATE__INTERRUPTED) || !o->reconnect || !gone)
            break;
        /* the daemon stopped: the job resumes when it starts again */
        if (!said++)
            fprintf(stderr, "mtctl: memtraind stopped (job %llu is %s); waiting for it to "
                    "start again, when the job goes on (--no-reconnect: exit instead)\n",
                    (unsigned long long)id, state >= 0 ? fmt_state(state) : "unknown");
        if ((rc = reconnect(&v, deadline)))
            break;
        mt_err_clear(&err);
    }
    if (rc == WATCH_TIMEOUT) {
        status = timed_out(&v, o->timeout);
        rc = 0;
    } else if (rc == WATCH_STDOUT) {
        rc = 0;  /* main says so */
    } else if (rc == 0 || state == MEMTRAIN__JOB_STATE__INTERRUPTED) {
        /* a final state, or the daemon stopped and said so: the job's last word stands */
        status = finish(&v, state);
        rc = 0;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigint_cur = -1;
    keep(&v.job_r, NULL);
    keep(&v.epoch_r, NULL);
    keep(&v.mem_r, NULL);
    if (rc) {
        conn_job_err(&err, id);
        return mtctl_fail(c, &err);
    }
    return status;
}

/* ------------------------------------------------------------------ watch */

static const char watch_help[] =
    "Usage: mtctl watch [OPTIONS] ID\n"
    "\n"
    "Follow job ID until it ends, then exit with its final state's status. On a\n"
    "terminal the view is redrawn in place: the state (and, while queued, why the\n"
    "job waits), a progress bar within the current epoch with the step's loss,\n"
    "the last epoch's loss, training and test accuracy, speed and learning rate,\n"
    "and the memory arena by category: current (sampled between steps, so a\n"
    "step's activations and workspace are gone), interval (the peak of the steps\n"
    "since the previous sample, about a second), peak (since the start) and\n"
    "planned, with the job's limit and the worker's RSS and its high-water\n"
    "mark; a trend line draws sparklines of the test accuracy per epoch (on its\n"
    "own range) and of each memory sample's step peak (from 0), the last 32 of\n"
    "each. When standard output is not a terminal, it prints one line per state\n"
    "change and per epoch.\n"
    "\n"
    "Options:\n"
    "      --steps            also print a line per reported training step (not\n"
    "                         on a terminal, where steps drive the progress bar)\n"
    "  -o json, --json        one JSON object per event: {\"event\": \"job\" | \"epoch\"\n"
    "                         | \"step\" | \"memory\" | \"end\", ...}; a memory event's\n"
    "                         \"interval_peak\" holds the interval's peaks and\n"
    "                         \"interval_steps\" its steps\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 COMPLETED, 10 FAILED, 11 CANCELLED, 12 OUT_OF_MEMORY,\n"
    "13 INTERRUPTED; 130 Ctrl-C stopped following (the job goes on: \"stopped\n"
    "following job N; it keeps running (mtctl cancel N)\"); 1 error, 3 daemon\n"
    "unreachable, 4 no such job.\n";

int cmd_watch(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_STEPS = 0x2001 };
    static const struct option longopts[] = {
        {"steps", no_argument, NULL, OPT_STEPS},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt, rc, steps = 0;
    uint64_t id;
    mtctl_getopt_reset(c, argv, "watch");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_STEPS:
            steps = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, watch_help)
        }
    }
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one job ID");
    if ((rc = mtctl_parse_id(c, argv[optind], &id)))
        return rc;
    struct follow_opts fo = {.steps = steps};
    return watch_job(c, id, &fo);
}

/* ------------------------------------------------------------------- logs */

static const char logs_help[] =
    "Usage: mtctl logs [OPTIONS] ID\n"
    "\n"
    "Print the log lines of job ID: what its worker reported (start, resume,\n"
    "checkpoints, errors), one line per epoch (\"epoch 2/5: loss 0.3012, train\n"
    "91.20 %, test 90.85 %, 4.1 s, 14634 samples/s\"), what the daemon noted about\n"
    "it, and last how the job ended (\"FAILED: <why>\", \"COMPLETED: trained 5\n"
    "epochs\").\n"
    "\n"
    "Options:\n"
    "  -f, --follow           keep printing new lines until the job ends\n"
    "  -t, --timestamps       prefix each line with its local time and zone\n"
    "  -n, --tail N           only the last N lines so far (with -f, then the new\n"
    "                         ones)\n"
    "  -o json, --json        one JSON document with a \"lines\" array; with\n"
    "                         --follow, one JSON object per line\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

/* The number of log lines job `id` has now (a LogsRequest without follow,
 * counted): `logs --tail` skips all but the last N of them. */
static int count_log_lines(struct mtctl *c, uint64_t id, uint64_t *n, struct mt_err *err)
{
    Memtrain__LogsRequest lq = MEMTRAIN__LOGS_REQUEST__INIT;
    lq.job_id = id;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_LOGS;
    req.logs = &lq;
    *n = 0;
    int rc = conn_send(c, &req, err);
    while (!rc) {
        Memtrain__Response *r;
        if ((rc = conn_recv(c, &r, err)))
            break;
        if (r->body_case == MEMTRAIN__RESPONSE__BODY_LOGS && r->logs)
            *n += r->logs->n_lines;
        int end = r->end;
        memtrain__response__free_unpacked(r, NULL);
        if (end)
            break;
    }
    return rc;
}

int cmd_logs(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"timestamps", no_argument, NULL, 't'},
        {"tail", required_argument, NULL, 'n'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt, rc, follow = 0, stamps = 0;
    uint64_t id, skip = 0;
    long long tail = -1;
    char *endp;
    mtctl_getopt_reset(c, argv, "logs");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "ftn:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            tail = strtoll(optarg, &endp, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *endp || tail < 0)
                return mtctl_usage_error(c, "--tail '%s' is not a count", optarg);
            break;
        case 'f':
            follow = 1;
            break;
        case 't':
            stamps = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, logs_help)
        }
    }
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one job ID");
    if ((rc = mtctl_parse_id(c, argv[optind], &id)))
        return rc;
    Memtrain__LogsRequest lq = MEMTRAIN__LOGS_REQUEST__INIT;
    lq.job_id = id;
    lq.follow = follow;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_LOGS;
    req.logs = &lq;
    struct mt_err err = {0};
    struct json doc;
    int open_doc = 0;
    /* --tail: the log only grows, so the first (count - N) lines of the
     * stream are the ones to leave out */
    rc = tail >= 0 ? count_log_lines(c, id, &skip, &err) : 0;
    if (!rc)
        skip = skip > (uint64_t)(tail >= 0 ? tail : 0) ? skip - (uint64_t)tail : 0;
    /* the lines come in pieces; the last Response has `end` */
    for (rc = rc ? rc : conn_send(c, &req, &err); !rc;) {
        Memtrain__Response *r;
        if ((rc = conn_recv(c, &r, &err)))
            break;
        const Memtrain__LogsResponse *lr = r->body_case == MEMTRAIN__RESPONSE__BODY_LOGS ? r->logs : NULL;
        for (size_t i = 0; lr && i < lr->n_lines; i++) {
            const Memtrain__LogLine *l = lr->lines[i];
            if (skip) {
                skip--;
                continue;
            }
            char t[32];
            if (c->json && follow) {
                struct json j;
                json_begin(&j, stdout);
                json_u64(&j, "job_id", id);
                json_i64(&j, "time", l->time);
                json_str(&j, "text", l->text);
                json_end(&j);
            } else if (c->json) {
                if (!open_doc) {
                    json_begin(&doc, stdout);
                    json_u64(&doc, "job_id", id);
                    json_arr(&doc, "lines");
                    open_doc = 1;
                }
                json_obj(&doc, NULL);
                json_i64(&doc, "time", l->time);
                json_str(&doc, "text", l->text);
                json_obj_end(&doc);
            } else if (stamps) {
                printf("%s %s\n", fmt_time(t, sizeof t, l->time), l->text);
            } else {
                printf("%s\n", l->text);
            }
        }
        int end = r->end;
        memtrain__response__free_unpacked(r, NULL);
        if (end)
            break;
        if (follow && (fflush(stdout) != 0 || ferror(stdout)))
            break;  /* the reader went away: main reports it */
    }
    if (c->json && !follow && (open_doc || !rc)) {
        if (!open_doc) {
            json_begin(&doc, stdout);
            json_u64(&doc, "job_id", id);
            json_arr(&doc, "lines");
        }
        json_end(&doc);
    }
    if (rc) {
        conn_job_err(&err, id);
        return mtctl_fail(c, &err);
    }
    return MTCTL_EXIT_OK;
}
