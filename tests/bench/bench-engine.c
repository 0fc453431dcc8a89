/* bench-engine.c: memtrain-bench, the engine's benchmark. It prints figures;
 * it asserts nothing about speed.
 *
 *   speed   BP (or --rule) on 784-1024-1024-1024-10, batch 128, SGD momentum:
 *           samples/s against the GEMM-only ceiling, i.e. the same sgemm calls
 *           of one step (recorded from a real step), timed alone in this run.
 *   rules   every rule on the full MNIST: accuracy per epoch, seconds per epoch,
 *           samples/s, GFLOP/s and its ratio to the ceiling, peaks per category
 *           and per phase.
 *   depth   kept-activation peaks per rule at 2, 4, 8, 16 hidden layers of 1024.
 *   torch   side by side with PyTorch CPU (tests/bench/torch_mlp.py), both as
 *           separate processes, interleaved, same network, data, batch,
 *           optimizer and OpenBLAS core: samples/s and peak RSS, and ratios;
 *           the order alternates run by run. torch-sgd and torch-adam run
 *           only the first or the second network.
 *   conv-depth, torch-conv  the same for conv nets (bench-conv.c).
 *   robust  every rule with its defaults on a grid of MLPs on Fashion-MNIST
 *           (bench-robust.c): final test accuracy, whether the training
 *           loss fell, gap to BP.
 *   all     speed, depth, rules (1 epoch) and torch, in that order.
 * Every kernel is checked against its reference by the test suite first;
 * here each measured step also trains for real (accuracy is printed). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-robust.h"
#include "bench.h"
#include "blas.h"
#include "spec.h"
#include "train.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void mnist_spec(struct mt_spec *s, const struct bench_opts *o, const char *rule,
                       const int *hidden, int nh, int batch, enum mt_optim_kind opt, float lr)
{
    spec_init(s);
    snprintf(s->name, sizeof s->name, "bench-%s", rule);
    snprintf(s->rule.name, sizeof s->rule.name, "%s", rule);
    s->data.kind = MT_DATA_MNIST;
    snprintf(s->data.dir, sizeof s->data.dir, "%s", o->data_dir);
    s->model.n_layers = nh + 1;
    s->model.width[0] = 784;
    for (int l = 1; l <= nh; l++) {
        s->model.width[l] = hidden[l - 1];
        s->model.act[l] = MT_ACT_RELU;
    }
    s->model.width[nh + 1] = 10;
    s->batch = batch;
    s->epochs = o->epochs;
    s->seed = 1;
    s->threads = o->threads;
    s->optim.kind = opt;
    if (!isnan(lr))
        s->optim.lr = lr;
    if (opt == MT_OPT_SGD)
        s->optim.momentum = 0.9f;
}

/* ---------------------------------------------------------------- ceiling */

/* Record the sgemm calls of one real training step; the number of calls,
 * or -1 with err set when the step failed. */
static int record_step(struct mt_trainer *t, struct blas_call *calls, int cap, struct mt_err *err)
{
    struct mt_step_result r;
    data_batch(&t->train, &t->norm, t->perm, t->spec.batch, t->x, t->y);
    blas_log_start(calls, cap);
    int rc = t->rule->step(t, t->x, t->y, t->spec.batch, &r, err);
    int n = blas_log_stop();
    arena_set_phase(t->arena, MT_PHASE_IDLE);
    return rc ? -1 : n;
}

static double calls_flops(const struct blas_call *c, int n)
{
    double f = 0;
    for (int i = 0; i < n; i++)
        f += 2.0 * c[i].M * c[i].N * c[i].K;
    return f;
}

/* Seconds for the recorded calls replayed back to back on the buffers they
 * used in the step (weights, gradients, the stack chunks that held the
 * activations: all still mapped), median of `reps`. Outputs are overwritten
 * (every engine call has beta 0), inputs are untouched. */
static double time_calls(const struct blas_call *c, int n, int reps)
{
    double best[64];
    if (reps > 64)
        reps = 64;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < n; i++)
            blas_gemm_ld(c[i].transA, c[i].transB, c[i].M, c[i].N, c[i].K, c[i].alpha, c[i].A,
                         c[i].lda, c[i].B, c[i].ldb, c[i].beta, c[i].C, c[i].ldc);
        best[r] = now_s() - t0;
    }
    for (int i = 1; i < reps; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && best[j] < best[j - 1]; j--) {
            double tmp = best[j];
            best[j] = best[j - 1];
            best[j - 1] = tmp;
        }
    return best[reps / 2];
}

struct speed {
    double sps, ceiling_sps, gflops, ceiling_gflops, step_flops;
    double test_acc;
};

/* Train `steps` steps of a prepared trainer, timing the loop; then the
 * ceiling from the same step's sgemm calls. */
static int measure_speed(struct mt_trainer *t, long steps, struct speed *out, struct mt_err *err)
{
    struct blas_call calls[512];
    int n = record_step(t, calls, 512, err);
    int B = t->spec.batch;
    if (n < 0)
        return err->code;
    long done = 0;
    double t0 = now_s();
    data_shuffle(t->perm, t->train.n, &t->shuffle_rng);
    while (done < steps) {
        for (long k = 0; k < t->steps_per_epoch && done < steps; k++, done++) {
            struct mt_step_result r;
            int nb = t->train.n - k * B < B ? (int)(t->train.n - k * B) : B;
            data_batch(&t->train, &t->norm, t->perm + k * B, nb, t->x, t->y);
            t->lr = optim_sched_lr(&t->spec.sched, t->spec.optim.lr, t->step, t->steps_per_epoch,
                             t->spec.epochs);
            if (t->rule->step(t, t->x, t->y, nb, &r, err))
                return err->code;
            arena_set_phase(t->arena, MT_PHASE_IDLE);
            t->step++;
        }
    }
    double secs = now_s() - t0;
    double loss;
    if (trainer_evaluate(t, &t->test, &loss, &out->test_acc, err))
        return err->code;
    double step_time = secs / (double)steps;
    double ceil_time = time_calls(calls, n, 21);
    out->step_flops = calls_flops(calls, n);
    out->sps = B / step_time;
    out->ceiling_sps = B / ceil_time;
    out->gflops = out->step_flops / step_time * 1e-9;
    out->ceiling_gflops = out->step_flops / ceil_time * 1e-9;
    return 0;
}

static void print_header(const struct bench_opts *o)
{
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("# memtrain-bench\nOpenBLAS core %s (OPENBLAS_CORETYPE=%s), %d threads; %s\n\n",
           blas_corename(), ct ? ct : "unset", blas_threads(), blas_config());
}

static int bench_speed(const struct bench_opts *o)
{
    static const int hidden[] = {1024, 1024, 1024};
    const char *rules[] = {"bp", "fa", "dfa", "memdfa"};
    printf("## speed: 784-1024-1024-1024-10, batch 128, SGD momentum 0.9, lr 0.01\n\n");
    printf("| rule | samples/s | GEMM-only ceiling samples/s | ratio | GFLOP/s | ceiling GFLOP/s | "
           "test acc after %ld steps |\n|---|---|---|---|---|---|---|\n", o->max_steps);
    for (int r = 0; r < 4; r++) {
        if (o->rule && strcmp(o->rule, rules[r]))
            continue;
        struct mt_spec s;
        struct mt_trainer t;
        struct mt_err err = {0};
        struct speed sp;
        mnist_spec(&s, o, rules[r], hidden, 3, 128, MT_OPT_SGD, 0.01f);
        if (trainer_init(&t, &s, &err) || measure_speed(&t, o->max_steps, &sp, &err)) {
            fprintf(stderr, "memtrain-bench: %s\n", err.msg);
            return 1;
        }
        printf("| %s | %.0f | %.0f | %.1f %% | %.1f | %.1f | %.2f %% |\n", rules[r], sp.sps,
               sp.ceiling_sps, 100 * sp.sps / sp.ceiling_sps, sp.gflops, sp.ceiling_gflops,
               100 * sp.test_acc);
        fflush(stdout);
        trainer_fini(&t);
    }
    printf("\n");
    return 0;
}

static void print_mem_row(const char *rule, const struct mt_mem_stats *m)
{
    printf("| %s |", rule);
    for (int c = 0; c < MT_MEM_NCAT; c++)
        printf(" %zu |", m->peak[c]);
    printf(" %zu | %zu | %zu | %zu |\n", m->total_peak, m->phase_peak[MT_PHASE_FORWARD],
           m->phase_peak[MT_PHASE_GRADIENT], m->phase_peak[MT_PHASE_UPDATE]);
}

static int bench_rules(const struct bench_opts *o, const int *hidden, int nh, int batch,
                       enum mt_optim_kind opt, float lr)
{
    const char *rules[] = {"bp", "fa", "dfa", "memdfa"};
    struct mt_mem_stats mem[4];
    int ran[4] = {0};
    printf("## rules on MNIST: 784");
    for (int i = 0; i < nh; i++)
        printf("-%d", hidden[i]);
    printf("-10, batch %d, %d epochs, %s\n\n", batch, o->epochs,
           opt == MT_OPT_DEFAULT ? "each rule's default optimizer" : optim_kind_name(opt));
    printf("| rule | epoch | test acc | train loss | s/epoch | samples/s | GFLOP/s | ratio to "
           "GEMM ceiling |\n|---|---|---|---|---|---|---|---|\n");
    for (int r = 0; r < 4; r++) {
        if (o->rule && strcmp(o->rule, rules[r]))
            continue;
        struct mt_spec s;
        struct mt_trainer t;
        struct mt_err err = {0};
        mnist_spec(&s, o, rules[r], hidden, nh, batch, opt, lr);
        if (trainer_init(&t, &s, &err)) {
            fprintf(stderr, "memtrain-bench: %s\n", err.msg);
            return 1;
        }
        struct blas_call calls[512];
        int n = record_step(&t, calls, 512, &err);
        if (n < 0) {
            fprintf(stderr, "memtrain-bench: %s\n", err.msg);
            return 1;
        }
        double flops = calls_flops(calls, n), ceil_t = time_calls(calls, n, 9);
        for (int e = 0; e < o->epochs; e++) {
            struct mt_epoch_report rep;
            if (trainer_run_epoch(&t, NULL, NULL, &rep, &err)) {
                fprintf(stderr, "memtrain-bench: %s\n", err.msg);
                return 1;
            }
            double step_t = rep.seconds / (double)t.steps_per_epoch;
            printf("| %s | %d | %.2f %% | %.4f | %.2f | %.0f | %.1f | %.1f %% |\n", rules[r],
                   rep.epoch, 100 * rep.test_accuracy, rep.loss, rep.seconds,
                   rep.samples_per_second, flops / step_t * 1e-9, 100 * ceil_t / step_t);
            fflush(stdout);
            mem[r] = rep.mem;
        }
        ran[r] = 1;
        trainer_fini(&t);
    }
    printf("\nPeak bytes per category and per phase (arena, exact):\n\n| rule | params | grads | "
           "optimizer | activations | workspace | data | peak total | forward | gradient | "
           "update |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int r = 0; r < 4; r++)
        if (ran[r])
            print_mem_row(rules[r], &mem[r]);
    printf("\n");
    return 0;
}

int kept_acts_run(const struct mt_spec *s, struct kept_acts *k, struct mt_err *err)
{
    struct mt_trainer t;
    struct mt_mem_plan plan;
    struct mt_epoch_report rep;
    if (trainer_init(&t, s, err))
        return err->code;
    if (trainer_run_epoch(&t, NULL, NULL, &rep, err)) {
        trainer_fini(&t);
        return err->code;
    }
    struct mt_data_shape shape = data_shape_of(&t.train, &t.test);
    trainer_plan_shape(&t.spec, &shape, &plan);
    k->measured = rep.mem.peak[MT_MEM_ACTS];
    k->planned = plan.cat[MT_MEM_ACTS];
    k->total_measured = rep.mem.total_peak;
    k->total_planned = plan.total;
    trainer_fini(&t);
    return 0;
}

void format_ratio(char *buf, size_t len, size_t part, size_t whole)
{
    if (!whole)
        snprintf(buf, len, "—");
    else if (!part)
        snprintf(buf, len, "0");
    else if (part < whole)
        snprintf(buf, len, "1/%.2f", (double)whole / (double)part);
    else
        snprintf(buf, len, "%.2fx", (double)part / (double)whole);
}

/* Kept activations of one rule at one depth: measured (one epoch on a
 * slice), checked against the plan. TinyFoA trains one layer per stage and
 * its plan is the largest stage's, so its figure is the plan's. */
static int depth_point(const struct bench_opts *o, const char *rule, int depth, size_t *acts,
                       struct mt_err *err)
{
    static int hidden[16] = {1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024,
                             1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024};
    struct mt_spec s;
    struct kept_acts k;
    struct bench_opts small = *o;
    small.epochs = 1;
    mnist_spec(&s, &small, rule, hidden, depth, 128, MT_OPT_DEFAULT, NAN);
    s.data.train_limit = 4 * 128;
    s.data.test_limit = 128;
    int staged = strcmp(rule, "tinyfoa") == 0;
    if (staged)
        s.epochs = depth;
    if (kept_acts_run(&s, &k, err))
        return err->code;
    *acts = staged ? k.planned : k.measured;
    if (!staged && (k.planned != k.measured || k.total_planned != k.total_measured))
        printf("(plan mismatch for %s at depth %d: planned %zu, measured %zu)\n", rule, depth,
               k.planned, k.measured);
    return 0;
}

static int bench_depth(const struct bench_opts *o)
{
    static const int depths[] = {2, 4, 8, 16};
    size_t bp16 = 0;
    printf("## depth sweep: hidden layers of 1024, batch 128; kept activations (bytes), "
           "measured = plan (tinyfoa: its plan, the largest stage)\n\n| rule | depth 2 | "
           "depth 4 | depth 8 | depth 16 | 16 vs 2 | vs bp at 16 |\n"
           "|---|---|---|---|---|---|---|\n");
    for (const struct mt_rule *const *r = rule_list(); *r; r++) {
        if (o->rule && strcmp(o->rule, (*r)->name))
            continue;
        size_t acts[4];
        struct mt_err err = {0};
        int d;
        for (d = 0; d < 4; d++)
            if (depth_point(o, (*r)->name, depths[d], &acts[d], &err))
                break;
        if (d < 4) {
            printf("| %s | (%s) | | | | | |\n", (*r)->name, err.msg);
            continue;
        }
        if (strcmp((*r)->name, "bp") == 0)
            bp16 = acts[3];
        printf("| %s | %zu | %zu | %zu | %zu | %.2fx |", (*r)->name, acts[0], acts[1], acts[2],
               acts[3], acts[0] ? (double)acts[3] / (double)acts[0] : 0.0);
        if (bp16 && acts[3])
            printf(" 1/%.1f |\n", (double)bp16 / (double)acts[3]);
        else
            printf(" — |\n");
        fflush(stdout);
    }
    printf("\n");
    return 0;
}

/* ------------------------------------------------------------------ torch */

struct proc_fig {
    double sps, acc, params;
    long rss;
    char blas[160];
    int ok;
};

/* The value after "key": in a JSON line we printed ourselves. */
static double json_num(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* The string after "key": (no escapes expected), or "" when absent. */
static void json_str(const char *line, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    size_t n = 0;
    if (p)
        for (p += strlen(pat); p[n] && p[n] != '"' && n + 1 < len; n++)
            out[n] = p[n];
    out[n] = '\0';
}

/* Run argv, read its JSON lines, keep the last epoch's figures. */
static int run_json(char *const argv[], struct proc_fig *f)
{
    int fd[2];
    memset(f, 0, sizeof *f);
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "memtrain-bench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    FILE *in = fdopen(fd[0], "r");
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        if (line[0] != '{')
            continue;
        f->sps = json_num(line, "samples_per_second");
        f->acc = json_num(line, "test_accuracy");
        f->rss = (long)json_num(line, "rss_peak");
        f->params = json_num(line, "parameters");
        json_str(line, "blas", f->blas, sizeof f->blas);
        f->ok = 1;
    }
    fclose(in);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        f->ok = 0;
    return f->ok ? 0 : -1;
}

int torch_section(const struct bench_opts *o, const char *title)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", o->python);
    if (system(cmd) != 0) {
        printf("## %s: skipped: %s cannot import torch (apt-get install python3-torch)\n\n",
               title, o->python);
        return 0;
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("## %s (same OpenBLAS core: OPENBLAS_CORETYPE=%s for both; memtrain's %s), "
           "interleaved, %d threads, OMP_WAIT_POLICY=passive for PyTorch\n\n", title,
           ct ? ct : "unset", blas_corename(), o->threads);
    return 1;
}

/* The MLP's spec for memtrain-run, as YAML text in buf. */
static void mlp_yaml(char *buf, size_t len, const struct bench_opts *o, const char *hidden,
                     int batch, const char *opt, const char *lr)
{
    int n = snprintf(buf, len, "name: bench-vs-torch\ndataset:\n  name: mnist\n");
    if (o->data_dir[0])
        n += snprintf(buf + n, len - (size_t)n, "  dir: %s\n", o->data_dir);
    snprintf(buf + n, len - (size_t)n, "model:\n  input: 784\n  hidden: [%s]\n  classes: 10\n"
             "rule: bp\noptimizer:\n  name: %s\n  lr: %s\n%sbatch: %d\nepochs: 1\nseed: 1\n"
             "threads: %d\n", hidden, opt, lr,
             strcmp(opt, "sgd") == 0 ? "  momentum: 0.9\n" : "", batch, o->threads);
}

/* The middle value of v (sorted in place); the mean of the two middle
 * ones when n is even. */
static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    if (!n)
        return NAN;
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define CEILING_CALLS 16384

/* The sgemm calls of one BP step of the spec `yaml`, recorded in this
 * process so each side-by-side run can be set against the GEMM-only
 * ceiling of the moment (the machine's speed drifts). *t must be finished
 * by the caller when this returns >= 0; *params gets the model's count. */
static int ceiling_calls(const char *yaml, struct mt_trainer *t, struct blas_call *calls,
                         size_t *params)
{
    struct mt_spec s;
    struct mt_err err = {0};
    spec_init(&s);
    int n = spec_parse_string(yaml, strlen(yaml), "bench-vs-torch.yaml", &s, &err) ||
            trainer_init(t, &s, &err) ? -1 : record_step(t, calls, CEILING_CALLS, &err);
    if (n < 0)
        fprintf(stderr, "memtrain-bench: %s\n", err.msg);
    else
        *params = model_param_count(&t->net.d);
    if (n == CEILING_CALLS)
        printf("(the step made %d sgemm calls or more: the ceiling counts the first %d)\n",
               CEILING_CALLS, CEILING_CALLS);
    return n;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

int side_by_side(const struct bench_opts *o, const char *yaml, char *const torch_argv[])
{
    struct mt_trainer ct;
    size_t params = 0;
    struct blas_call *calls = malloc(CEILING_CALLS * sizeof *calls);
    int ncalls = calls ? ceiling_calls(yaml, &ct, calls, &params) : -1;
    if (ncalls < 0) {
        free(calls);
        return 1;
    }
    int batch = ct.spec.batch;
    char spec[] = "/tmp/memtrain-bench-XXXXXX.yaml";
    int fd = mkstemps(spec, 5);
    if (fd < 0 || close(fd) || write_file(spec, yaml)) {
        fprintf(stderr, "memtrain-bench: cannot write %s: %s\n", spec, strerror(errno));
        trainer_fini(&ct);
        free(calls);
        return 1;
    }
    char *run_argv[] = {(char *)o->run_path, "--json", "--quiet", spec, NULL};
    double ms[16], ts[16], ratio[16], cs[16], mfrac[16], tfrac[16];
    long mr = 0, tr = 0;
    struct proc_fig m = {0}, t = {0};
    int n = 0;
    printf("| run | first | memtrain samples/s | PyTorch samples/s | ratio | GEMM-only ceiling "
           "samples/s | memtrain / ceiling | PyTorch / ceiling | memtrain peak RSS | PyTorch "
           "peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (int r = 0; r < o->reps && r < 16; r++) {
        /* The order alternates (ABBA...) so a drift in the machine's speed
         * does not always land on the same side. */
        int torch_first = r % 2 == 1;
        int bad = torch_first ? run_json(torch_argv, &t) || run_json(run_argv, &m)
                              : run_json(run_argv, &m) || run_json(torch_argv, &t);
        if (bad) {
            fprintf(stderr, "memtrain-bench: a side-by-side run failed (memtrain %s, torch %s)\n",
                    m.ok ? "ok" : "failed", t.ok ? "ok" : "failed");
            unlink(spec);
            trainer_fini(&ct);
            free(calls);
            return 1;
        }
        double ceil_sps = batch / time_calls(calls, ncalls, 21);
        printf("| %d | %s | %.0f | %.0f | %.2fx | %.0f | %.1f %% | %.1f %% | %.1f MiB | %.1f MiB "
               "|\n", r + 1, torch_first ? "PyTorch" : "memtrain", m.sps, t.sps, m.sps / t.sps,
               ceil_sps, 100 * m.sps / ceil_sps, 100 * t.sps / ceil_sps, m.rss / 1048576.0,
               t.rss / 1048576.0);
        fflush(stdout);
        ms[n] = m.sps, ts[n] = t.sps, ratio[n] = m.sps / t.sps, cs[n] = ceil_sps;
        mfrac[n] = m.sps / ceil_sps, tfrac[n] = t.sps / ceil_sps, n++;
        mr = m.rss > mr ? m.rss : mr;
        tr = t.rss > tr ? t.rss : tr;
    }
    unlink(spec);
    trainer_fini(&ct);
    free(calls);
    double mm = median(ms, n), tm = median(ts, n), rm = median(ratio, n), tf = median(tfrac, n);
    printf("\nmedian: memtrain %.0f samples/s, PyTorch %.0f samples/s: **%.2fx**; median of the "
           "per-run ratios **%.2fx**; peak RSS memtrain %.1f MiB, PyTorch %.1f MiB (%.2fx less)\n",
           mm, tm, mm / tm, rm, mr / 1048576.0, tr / 1048576.0, (double)tr / (double)mr);
    printf("GEMM-only ceiling (BP's sgemm calls of one step on this network, timed alone after "
           "each pair), median %.0f samples/s: memtrain runs at %.1f %% of it, PyTorch at %.1f %%, "
           "so an engine making the same sgemm calls would be at most %.2fx PyTorch\n",
           median(cs, n), 100 * median(mfrac, n), 100 * tf, 1.0 / tf);
    printf("test accuracy of the last run: memtrain %.2f %%, PyTorch %.2f %%\n", 100 * m.acc,
           100 * t.acc);
    if (!isnan(t.params))
        printf("parameters: memtrain %zu, PyTorch %.0f%s\n", params, t.params,
               (double)params == t.params ? " (equal)" : " (**differ**)");
    if (t.blas[0])
        printf("PyTorch's BLAS: %s\n", t.blas);
    printf("\n");
    return 0;
}

static int bench_torch_net(const struct bench_opts *o, const int *hidden_w, int nh, int batch,
                           enum mt_optim_kind kind, float lr_f)
{
    char hidden[128] = "", opt[16], lr[32], yaml[2048];
    for (int i = 0; i < nh; i++)
        snprintf(hidden + strlen(hidden), sizeof hidden - strlen(hidden), "%s%d", i ? "," : "",
                 hidden_w[i]);
    snprintf(opt, sizeof opt, "%s", optim_kind_name(kind));
    snprintf(lr, sizeof lr, "%g", (double)lr_f);
    mlp_yaml(yaml, sizeof yaml, o, hidden, batch, opt, lr);
    char threads[16], batch_s[16];
    snprintf(threads, sizeof threads, "%d", o->threads);
    snprintf(batch_s, sizeof batch_s, "%d", batch);
    char *torch_argv[24];
    int k = 0;
    torch_argv[k++] = (char *)o->python;
    torch_argv[k++] = (char *)o->torch_script;
    torch_argv[k++] = "--json";
    if (o->data_dir[0]) {
        torch_argv[k++] = "--data-dir";
        torch_argv[k++] = (char *)o->data_dir;
    }
    char *rest[] = {"--hidden", hidden, "--batch", batch_s, "--optimizer", opt, "--lr", lr,
                    "--momentum", "0.9", "--epochs", "1", "--threads",
                    threads, "--seed", "1"};
    for (size_t i = 0; i < sizeof rest / sizeof *rest; i++)
        torch_argv[k++] = rest[i];
    torch_argv[k] = NULL;
    return side_by_side(o, yaml, torch_argv);
}

/* which: 1 the SGD network, 2 the Adam network, 3 both. */
static int bench_torch(const struct bench_opts *o, int which)
{
    if (!torch_section(o, "versus PyTorch CPU"))
        return 0;
    /* Full epochs on both sides, so both hold the whole dataset and the
     * peak RSS figures compare like with like. */
    static const int small[] = {1024, 1024, 1024}, big[] = {2000, 2000, 2000, 2000};
    if (which & 1) {
        printf("### 784-1024-1024-1024-10, batch 128, SGD momentum 0.9, lr 0.01, 1 epoch\n\n");
        if (bench_torch_net(o, small, 3, 128, MT_OPT_SGD, 0.01f))
            return 1;
    }
    if (which & 2) {
        printf("### 784-2000-2000-2000-2000-10, batch 100, Adam lr 1e-4, 1 epoch\n\n");
        return bench_torch_net(o, big, 4, 100, MT_OPT_ADAM, 1e-4f);
    }
    return 0;
}

/* ------------------------------------------------------------------- main */

static int run_robust(const struct bench_opts *o)
{
    struct robust_opts r = {.data_dir = o->data_dir, .rule = o->rule, .net = o->net,
                            .threads = o->threads, .epochs = o->epochs_given ? o->epochs : 3,
                            .train_samples = o->train_samples, .json = o->json};
    return bench_robust(&r);
}

static void usage(FILE *f)
{
    fputs("Usage: memtrain-bench [OPTION]... [speed|rules|rules-big|robust|depth|conv-depth|"
          "torch|torch-sgd|torch-adam|torch-conv|all]...\n"
          "Print memtrain's speed and memory figures on MNIST (see tests/bench/README.md).\n\n"
          "  -d, --data-dir DIR     MNIST IDX files (default: the engine's search path)\n"
          "      --fashion-dir DIR  Fashion-MNIST for 'torch-conv --net resnet' (default:\n"
          "                         $MEMTRAIN_DATA_DIR/fashion-mnist, then\n"
          "                         /usr/share/datasets/fashion-mnist)\n"
          "  -t, --threads N        OpenBLAS threads (default 2)\n"
          "  -e, --epochs N         epochs for 'rules' (default 1) and 'robust' (default 3)\n"
          "  -s, --steps N          steps for 'speed' (default 300) and 'torch-conv'\n"
          "                         (default 100); 0 = a full epoch\n"
          "  -n, --reps N           interleaved repetitions for 'torch' and 'torch-conv'\n"
          "                         (default 3)\n"
          "  -r, --rule NAME        only this rule in 'speed', 'rules' and 'conv-depth';\n"
          "                         in 'robust' a comma-separated list (add bp for the\n"
          "                         gap to BP)\n"
          "      --net TEXT         'robust': only networks whose name contains TEXT\n"
          "                         (conv: the conv rows, mlp: the MLP rows);\n"
          "                         'torch-conv': lenet or resnet (default both)\n"
          "      --optimizer NAME   'torch-conv': sgd or adam (default both)\n"
          "      --train-samples N  'robust': the first N training samples, 0 = all\n"
          "                         (default 10000)\n"
          "      --json             'robust': one JSON object per run\n"
          "      --memtrain-run P   the memtrain-run binary (for 'torch', 'torch-conv')\n"
          "      --torch-script P   tests/bench/torch_mlp.py\n"
          "      --torch-conv-script P  tests/bench/torch_conv.py\n"
          "      --python P         Python with torch (default /usr/bin/python3)\n"
          "  -h, --help             this help\n",
          f);
}

int main(int argc, char **argv)
{
    struct bench_opts o = {.data_dir = "", .fashion_dir = "", .run_path = "memtrain-run",
                           .torch_script = "tests/bench/torch_mlp.py",
                           .torch_conv_script = "tests/bench/torch_conv.py",
                           .python = "/usr/bin/python3", .threads = 2, .epochs = 1, .reps = 3,
                           .max_steps = 300, .steps_arg = -1, .train_samples = 10000};
    static const struct option longopts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"threads", required_argument, 0, 't'},
        {"epochs", required_argument, 0, 'e'},   {"steps", required_argument, 0, 's'},
        {"reps", required_argument, 0, 'n'},     {"rule", required_argument, 0, 'r'},
        {"memtrain-run", required_argument, 0, 1}, {"torch-script", required_argument, 0, 2},
        {"python", required_argument, 0, 3},     {"net", required_argument, 0, 4},
        {"train-samples", required_argument, 0, 5}, {"json", no_argument, 0, 6},
        {"fashion-dir", required_argument, 0, 7}, {"optimizer", required_argument, 0, 8},
        {"torch-conv-script", required_argument, 0, 9},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "d:t:e:s:n:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o.data_dir = optarg; break;
        case 't': o.threads = atoi(optarg); break;
        case 'e': o.epochs = atoi(optarg); o.epochs_given = 1; break;
        case 's': o.max_steps = o.steps_arg = atol(optarg); break;
        case 'n': o.reps = atoi(optarg); break;
        case 'r': o.rule = optarg; break;
        case 1: o.run_path = optarg; break;
        case 2: o.torch_script = optarg; break;
        case 3: o.python = optarg; break;
        case 4: o.net = optarg; break;
        case 5: o.train_samples = atol(optarg); break;
        case 6: o.json = 1; break;
        case 7: o.fashion_dir = optarg; break;
        case 8: o.optimizer = optarg; break;
        case 9: o.torch_conv_script = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (o.threads < 1 || o.epochs < 1 || o.reps < 1 || o.max_steps < 0 || o.train_samples < 0) {
        fprintf(stderr, "memtrain-bench: threads, epochs and reps must be positive\n");
        return 2;
    }
    if (o.max_steps == 0)
        o.max_steps = 469; /* one epoch of MNIST at batch 128 */
    blas_set_threads(o.threads);
    if (!o.json)
        print_header(&o);
    static const int small[] = {1024, 1024, 1024}, big[] = {2000, 2000, 2000, 2000};
    int rc = 0;
    const char *what = optind < argc ? argv[optind] : "all";
    do {
        if (optind < argc)
            what = argv[optind];
        if (!strcmp(what, "speed"))
            rc |= bench_speed(&o);
        else if (!strcmp(what, "rules"))
            rc |= bench_rules(&o, small, 3, 128, MT_OPT_SGD, 0.01f);
        else if (!strcmp(what, "rules-big"))
            rc |= bench_rules(&o, big, 4, 100, MT_OPT_DEFAULT, NAN);
        else if (!strcmp(what, "robust"))
            rc |= run_robust(&o);
        else if (!strcmp(what, "depth"))
            rc |= bench_depth(&o);
        else if (!strcmp(what, "conv-depth"))
            rc |= bench_conv_depth(&o);
        else if (!strcmp(what, "torch"))
            rc |= bench_torch(&o, 3);
        else if (!strcmp(what, "torch-sgd"))
            rc |= bench_torch(&o, 1);
        else if (!strcmp(what, "torch-adam"))
            rc |= bench_torch(&o, 2);
        else if (!strcmp(what, "torch-conv"))
            rc |= bench_torch_conv(&o);
        else if (!strcmp(what, "all")) {
            rc |= bench_speed(&o);
            rc |= bench_depth(&o);
            rc |= bench_rules(&o, small, 3, 128, MT_OPT_SGD, 0.01f);
            rc |= bench_torch(&o, 3);
        } else {
            fprintf(stderr, "memtrain-bench: unknown benchmark '%s'\n", what);
            return 2;
        }
    } while (++optind < argc);
    return rc ? 1 : 0;
}
