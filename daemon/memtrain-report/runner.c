/* runner.c: one memtrain-report row trained to its end, in a child
 * process of its own (fork) so that a rule that is not implemented,
 * diverges or even crashes becomes a message in its row and the report
 * goes on (--no-fork trains in this process, for a debugger). The child
 * sends START, EPOCH per epoch and FAIL over a pipe; the parent keeps the
 * epochs in the row (daemon/report's struct report_row). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memtrain-report.h"
#include "papermem.h"
#include "train.h"

volatile sig_atomic_t interrupted;

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What a training run reports, in order: START, then EPOCH per epoch, then
 * FAIL (with a message) or nothing. Written to a pipe by the child, or
 * straight into the result with --no-fork. */
enum { MSG_START = 1, MSG_EPOCH, MSG_FAIL };

struct sink {
    int fd;                           /* >= 0: the pipe to the parent */
    struct result *res;               /* fd < 0: record here */
};

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void fail_res(struct result *r, const char *msg)
{
    r->status = RUN_FAILED;
    snprintf(r->row.message, sizeof r->row.message, "%.*s", (int)sizeof r->row.message - 1, msg);
}

/* The engine's epoch report as a report row's epoch. */
static void epoch_from_report(struct report_epoch *out, const struct mt_epoch_report *rep)
{
    const struct mt_mem_stats *m = &rep->mem;
    memset(out, 0, sizeof *out);
    out->epoch = rep->epoch;
    out->loss = rep->loss;
    out->train_accuracy = rep->train_accuracy;
    out->test_loss = rep->test_loss;
    out->test_accuracy = rep->test_accuracy;
    out->seconds = rep->seconds;
    out->eval_seconds = rep->eval_seconds;
    out->samples_per_second = rep->samples_per_second;
    out->lr = rep->lr;
    out->mem.known = 1;
    out->mem.params = m->peak[MT_MEM_PARAMS];
    out->mem.grads = m->peak[MT_MEM_GRADS];
    out->mem.optimizer = m->peak[MT_MEM_OPTIM];
    out->mem.kept_activations = m->peak[MT_MEM_ACTS];
    out->mem.workspace = m->peak[MT_MEM_WORKSPACE];
    out->mem.data = m->peak[MT_MEM_DATA];
    out->mem.peak_total = m->total_peak;
    out->mem.phase_peak[PAPERMEM_FORWARD] = m->phase_peak[MT_PHASE_FORWARD];
    out->mem.phase_peak[PAPERMEM_GRADIENT] = m->phase_peak[MT_PHASE_GRADIENT];
    out->mem.phase_peak[PAPERMEM_UPDATE] = m->phase_peak[MT_PHASE_UPDATE];
    out->mem.rss_peak = (uint64_t)rep->rss_peak;
    for (int q = 0; q < rep->n_metrics && q < REPORT_MAX_METRICS; q++) {
        snprintf(out->metrics[q].name, sizeof out->metrics[q].name, "%s", rep->metrics[q].name);
        out->metrics[q].value = rep->metrics[q].value;
        out->n_metrics++;
    }
}

static int add_epoch(struct result *r, const struct mt_epoch_report *rep)
{
    struct report_epoch e;
    if (r->row.n_epochs >= MAX_EPOCHS)
        return -1;
    epoch_from_report(&e, rep);
    return report_row_add_epoch(&r->row, &e);
}

static void emit(struct sink *k, int type, const void *payload, size_t n)
{
    if (k->fd >= 0) {
        int hdr[2] = {type, (int)n};
        if (write_all(k->fd, hdr, sizeof hdr) == 0)
            write_all(k->fd, payload, n);
        return;
    }
    switch (type) {
    case MSG_START: k->res->row.steps_per_epoch = *(const long *)payload; break;
    case MSG_EPOCH:
        if (add_epoch(k->res, payload))
            fail_res(k->res, "out of memory keeping the epochs");
        break;
    case MSG_FAIL: fail_res(k->res, payload); break;
    }
}

static void emit_fail(struct sink *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit_fail(struct sink *k, const char *fmt, ...)
{
    char msg[MT_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(k, MSG_FAIL, msg, sizeof msg);
}

static int stop_requested(void *ud, long step, long steps, double loss)
{
    (void)ud, (void)step, (void)steps, (void)loss;
    return interrupted != 0;
}

/* Train one resolved spec to the end, reporting to k. */
static void train(const char *label, const struct mt_spec *s, struct sink *k)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    if (trainer_init(&t, s, &err)) {
        emit_fail(k, "%s", err.msg);
        return;
    }
    emit(k, MSG_START, &t.steps_per_epoch, sizeof t.steps_per_epoch);
    for (int e = 0; e < s->epochs; e++) {
        struct mt_epoch_report rep;
        double t0 = now_s();
        int rc = trainer_run_epoch(&t, stop_requested, NULL, &rep, &err);
        if (rc == MT_E_CANCELLED) {
            emit_fail(k, "interrupted during epoch %d", e + 1);
            break;
        }
        if (rc) {
            emit_fail(k, "%s", err.msg);   /* the trainer's message names the epoch and step */
            break;
        }
        emit(k, MSG_EPOCH, &rep, sizeof rep);
        fprintf(stderr, "memtrain-report: %-9s epoch %3d/%d  test acc %6.2f %%  loss %.4f  "
                "%.1f s (+%.1f s eval, %.0f s with setup)\n", label, rep.epoch, s->epochs,
                100 * rep.test_accuracy, rep.loss, rep.seconds, rep.eval_seconds, now_s() - t0);
        if (!isfinite(rep.loss) || !isfinite(rep.test_loss)) {
            emit_fail(k, "diverged: loss %g, test loss %g after epoch %d", rep.loss, rep.test_loss,
                      rep.epoch);
            break;
        }
    }
    trainer_fini(&t);
}

/* Read the child's messages into r until the pipe closes. */
static void collect(int fd, struct result *r)
{
    int hdr[2];
    while (read_all(fd, hdr, sizeof hdr) == 0) {
        char buf[sizeof(struct mt_epoch_report) + MT_ERR_LEN];
        if (hdr[1] < 0 || (size_t)hdr[1] > sizeof buf || read_all(fd, buf, (size_t)hdr[1])) {
            fail_res(r, "garbled report from the training process");
            return;
        }
        if (hdr[0] == MSG_START && hdr[1] == (int)sizeof(long)) {
            memcpy(&r->row.steps_per_epoch, buf, sizeof(long));
        } else if (hdr[0] == MSG_EPOCH && hdr[1] == (int)sizeof(struct mt_epoch_report)) {
            struct mt_epoch_report rep;
            memcpy(&rep, buf, sizeof rep);
            if (add_epoch(r, &rep))
                fail_res(r, "out of memory keeping the epochs");
        } else if (hdr[0] == MSG_FAIL) {
            buf[hdr[1] ? hdr[1] - 1 : 0] = '\0';
            fail_res(r, buf);
        }
    }
}

/* Run one resolved spec in a child process; a crash becomes a message. */
static void run_forked(const char *label, const struct mt_spec *s, struct result *r)
{
    int p[2];
    if (pipe(p)) {
        r->status = RUN_FAILED;
        snprintf(r->row.message, sizeof r->row.message, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->row.message, sizeof r->row.message, "fork: %s", strerror(errno));
        r->status = RUN_FAILED;
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        struct sink k = {p[1], NULL};
        train(label, s, &k);
        close(p[1]);
        fflush(stderr);
        _exit(0);
    }
    close(p[1]);
    collect(p[0], r);
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st) && r->status != RUN_FAILED) {
        r->status = RUN_FAILED;
        snprintf(r->row.message, sizeof r->row.message, "training process killed by signal %d (%s) after %d "
                 "epoch(s)", WTERMSIG(st), strsignal(WTERMSIG(st)), r->row.n_epochs);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) && r->status != RUN_FAILED) {
        r->status = RUN_FAILED;
        snprintf(r->row.message, sizeof r->row.message, "training process exited with status %d",
                 WEXITSTATUS(st));
    }
}

/* BP's kept activations on r's network and batch, from BP's plan (equal
 * to its measured peak: tests/engine/test-plan.c). 0 when it will not
 * resolve. */
static size_t bp_kept_acts(const struct mt_spec *built)
{
    struct mt_spec s = *built;
    struct mt_err err = {0};
    snprintf(s.rule.name, sizeof s.rule.name, "bp");
    s.rule.binary = -1;
    if (spec_finish(&s, &err))
        return 0;
    struct mt_mem_plan plan;
    memset(&plan, 0, sizeof plan);
    rule_find("bp")->plan(&s, &plan);
    return plan.cat[MT_MEM_ACTS];
}

/* The row's summary figures once its run is over: state, epochs done,
 * the last epoch's memory (the peaks since the trainer started). */
static void seal(struct result *r)
{
    struct report_row *row = &r->row;
    row->state = r->status == RUN_OK ? "ok" : "failed";
    if (r->status == RUN_OK)
        row->message[0] = '\0';
    row->epochs_done = row->n_epochs;
    if (row->n_epochs)
        row->mem = row->ep[row->n_epochs - 1].mem;
}

static void run(int i, const struct opts *o, struct result *r)
{
    const struct entry *e = &entries[i];
    int epochs = o->rule_epochs[i] > 0 ? o->rule_epochs[i] : o->epochs;
    if (e->per_layer)
        epochs *= e->hidden;
    entry_spec(&r->spec, e, o, epochs);
    entry_row(e, &r->spec, &r->row);
    r->row.epochs_planned = epochs;
    papermem_from_spec(&r->spec, &r->row.pm);
    r->row.bp_kept_activations = bp_kept_acts(&r->spec);
    if (interrupted) {
        fail_res(r, "not run: interrupted");
        return;
    }
    struct mt_spec s = r->spec;
    struct mt_err err = {0};
    if (spec_finish(&s, &err)) {
        mt_err_prefix(&err, "spec: ");
        fail_res(r, err.msg);
        return;
    }
    r->spec = s;
    r->resolved = 1;
    entry_describe_optim(r->row.optimizer, sizeof r->row.optimizer, &s);
    papermem_from_spec(&r->spec, &r->row.pm);
    r->status = RUN_OK;
    fprintf(stderr, "memtrain-report: %s: rule %s, %d epochs, %s\n", e->label, e->rule, epochs,
            r->row.optimizer);
    if (o->no_fork) {
        struct sink k = {-1, r};
        train(e->label, &s, &k);
    } else {
        run_forked(e->label, &s, r);
    }
    if (r->status == RUN_FAILED)
        fprintf(stderr, "memtrain-report: %s: %s\n", e->label, r->row.message);
}

void run_entry(int i, const struct opts *o, struct result *r)
{
    report_row_init(&r->row);
    run(i, o, r);
    seal(r);
}

void run_skip(int i, const struct opts *o, struct result *r)
{
    report_row_init(&r->row);
    entry_spec(&r->spec, &entries[i], o, o->epochs);
    papermem_from_spec(&r->spec, &r->row.pm);
}
