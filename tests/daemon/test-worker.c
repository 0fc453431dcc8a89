/* test-worker.c: memtrain-worker, the process that runs one job for
 * memtraind (daemon/memtrain-worker/), and its checkpoints (daemon/memtrain-worker/checkpoint.c).
 *
 * Each case spawns the real built worker (path in $MEMTRAIN_WORKER) with
 * pipes, writes a WorkerStart frame and reads WorkerEvent frames until
 * `done`: a small synthetic job completes with falling loss, memory
 * samples and a checkpoint; a limit below the plan ends OUT_OF_MEMORY with
 * the arena's message; a missing file ends FAILED naming it; SIGTERM
 * cancels; SIGUSR1 checkpoints mid-epoch and a worker resumed from that
 * checkpoint (or from an epoch-boundary one) ends bit-identical to a
 * straight run (one thread). The worker's stdout pipe is shrunk to one
 * page, so it can never run more than ~200 steps ahead of this reader: a
 * signal sent on a step event of epoch 2 lands inside epoch 2. */
#define _GNU_SOURCE 1   /* F_SETPIPE_SZ */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "graph.h"
#include "jobspec.h"
#include "memtrain/wire.h"
#include "spec.h"
#include "train.h"

/* Built with AddressSanitizer: RLIMIT_DATA cannot work (ASan reserves
 * terabytes of shadow address space), so the hard-limit cases skip. */
#if defined(__SANITIZE_ADDRESS__)
#define MT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_TEST_ASAN 1
#endif
#endif
#ifndef MT_TEST_ASAN
#define MT_TEST_ASAN 0
#endif

/* 20-32-32-4 on 512 blobs: 16 steps an epoch. */
static const char small_yaml[] =
    "name: worker-small\n"
    "dataset: {name: synthetic, synthetic_train: 512, synthetic_test: 128}\n"
    "model: {input: 20, hidden: [32, 32], classes: 4}\n"
    "rule: bp\n"
    "optimizer: {name: adam, lr: 0.003}\n"
    "batch: 32\n"
    "epochs: 3\n"
    "seed: 5\n"
    "threads: 1\n";

/* 16384 samples: 512 steps an epoch, so a signal in epoch 2 stops inside it. */
#define LONG_JOB(rule, optim)                                                  \
    "name: worker-resume\n"                                                    \
    "dataset: {name: synthetic, synthetic_train: 16384, synthetic_test: 256}\n" \
    "model: {input: 20, hidden: [32, 32], classes: 4}\n"                       \
    "rule: " rule "\n"                                                         \
    "optimizer: " optim "\n"                                                   \
    "batch: 32\n"                                                              \
    "epochs: 4\n"                                                              \
    "seed: 9\n"                                                                \
    "threads: 1\n"                                                             \
    "checkpoint_every: 1\n"
#define LONG_STEPS 512

/* ------------------------------------------------------------------------ */
/* Running a worker */

struct worker_proc {
    pid_t pid;
    int in, out;
};

/* What one run of a worker said, in order. */
struct run {
    int n_planned, n_log, n_memory, n_steps, n_epochs, n_ckpt;
    Memtrain__MemoryStats planned;
    Memtrain__EpochProgress epochs[8];
    long first_step, last_step;      /* StepProgress.step seen */
    int steps_in_order;
    int memory_ok;                   /* every sample had params, data and a total */
    uint8_t *ckpt[8];                /* packed CheckpointData, in order */
    size_t ckpt_len[8];
    char logs[8][256];
    Memtrain__JobState state;
    char reason[512];
    int exit_status;
};

/* Send `sig` to the worker on the first step event of epoch `epoch` whose
 * step within the epoch is at least `at`; sig 0 = never. */
struct trigger {
    int sig;
    unsigned epoch;
    long at, steps_per_epoch;
    int fired;
};

static const char *worker_path(void)
{
    const char *p = getenv("MEMTRAIN_WORKER");
    if (!p || !*p)
        fail_msg("MEMTRAIN_WORKER is not set (meson sets it to the built memtrain-worker)");
    return p;
}

static void spawn(struct worker_proc *w)
{
    int in[2], out[2];
    const char *path = worker_path();
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    fcntl(out[1], F_SETPIPE_SZ, 4096);
    w->pid = fork();
    assert_true(w->pid >= 0);
    if (w->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl(path, "memtrain-worker", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    w->in = in[1];
    w->out = out[0];
}

static int finish(struct worker_proc *w)
{
    int status;
    close(w->out);
    if (w->in >= 0)
        close(w->in);
    assert_int_equal(waitpid(w->pid, &status, 0), w->pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void send_frame(struct worker_proc *w, const void *buf, size_t len)
{
    struct mt_err err = {0};
    if (wire_write_frame(w->in, buf, len, &err))
        fail_msg("writing the start frame: %s", err.msg);
    close(w->in);
    w->in = -1;
}

static Memtrain__JobSpec *job_from_yaml(const char *yaml, struct mt_spec *s)
{
    struct mt_err err = {0};
    Memtrain__JobSpec *js;
    spec_init(s);
    if (spec_parse_string(yaml, strlen(yaml), "test.yaml", s, &err) ||
        jobspec_from_spec(s, &js, &err))
        fail_msg("spec: %s", err.msg);
    return js;
}

/* The plan send_start passes on as the daemon's (WorkerStart.planned); NULL
 * = none, the worker plans. */
static Memtrain__MemoryStats *start_planned;

static void send_start(struct worker_proc *w, const struct mt_spec *s, const uint8_t *resume,
                       size_t resume_len, unsigned step_every, uint64_t hard_limit)
{
    struct mt_err err = {0};
    Memtrain__WorkerStart ws = MEMTRAIN__WORKER_START__INIT;
    if (jobspec_from_spec(s, &ws.spec, &err))
        fail_msg("spec: %s", err.msg);
    ws.job_id = 42;
    ws.step_every = step_every;
    ws.hard_limit = hard_limit;
    ws.resume.data = (uint8_t *)resume;
    ws.resume.len = resume_len;
    ws.planned = start_planned;
    size_t len = memtrain__worker_start__get_packed_size(&ws);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memtrain__worker_start__pack(&ws, buf);
    jobspec_free(ws.spec);
    send_frame(w, buf, len);
    free(buf);
}

static void on_event(struct run *r, const Memtrain__WorkerEvent *ev, const uint8_t *bytes,
                     size_t len, struct worker_proc *w, struct trigger *tr)
{
    switch (ev->event_case) {
    case MEMTRAIN__WORKER_EVENT__EVENT_PLANNED:
        r->n_planned++;
        r->planned = *ev->planned;
        break;
    case MEMTRAIN__WORKER_EVENT__EVENT_LOG:
        if (r->n_log < 8)
            snprintf(r->logs[r->n_log], sizeof r->logs[0], "%s", ev->log);
        r->n_log++;
        break;
    case MEMTRAIN__WORKER_EVENT__EVENT_STEP: {
        long step = (long)ev->step->step;
        if (r->n_steps == 0)
            r->first_step = step;
        else if (step != r->last_step + 1)
            r->steps_in_order = 0;
        r->last_step = step;
        r->n_steps++;
        if (tr && tr->sig && !tr->fired && ev->step->epoch == tr->epoch &&
            step - (long)(tr->epoch - 1) * tr->steps_per_epoch >= tr->at) {
            kill(w->pid, tr->sig);
            tr->fired = 1;
        }
        break;
    }
    case MEMTRAIN__WORKER_EVENT__EVENT_MEMORY: {
        const Memtrain__MemorySample *m = ev->memory;
        if (!m->current || !m->peak || !m->current->params || !m->current->data ||
            !m->current->peak_total || m->peak->peak_total < m->current->peak_total ||
            !m->rss_bytes || !m->hwm_bytes || !m->time)
            r->memory_ok = 0;
        r->n_memory++;
        break;
    }
    case MEMTRAIN__WORKER_EVENT__EVENT_EPOCH:
        if (r->n_epochs < 8) {
            r->epochs[r->n_epochs] = *ev->epoch;
            r->epochs[r->n_epochs].memory = NULL;
        }
        r->n_epochs++;
        break;
    case MEMTRAIN__WORKER_EVENT__EVENT_CHECKPOINT: {
        /* Keep the checkpoint's own bytes, as the daemon stores them. */
        size_t n = memtrain__checkpoint_data__get_packed_size(ev->checkpoint);
        assert_true(n < len);
        (void)bytes;
        if (r->n_ckpt < 8) {
            r->ckpt[r->n_ckpt] = malloc(n);
            assert_non_null(r->ckpt[r->n_ckpt]);
            memtrain__checkpoint_data__pack(ev->checkpoint, r->ckpt[r->n_ckpt]);
            r->ckpt_len[r->n_ckpt] = n;
        }
        r->n_ckpt++;
        break;
    }
    case MEMTRAIN__WORKER_EVENT__EVENT_DONE:
        r->state = ev->done->state;
        snprintf(r->reason, sizeof r->reason, "%s", ev->done->reason);
        break;
    default:
        fail_msg("unexpected event case %d", (int)ev->event_case);
    }
}

/* Read events until `done` (or EOF), then reap the worker. */
static void collect(struct worker_proc *w, struct run *r, struct trigger *tr)
{
    struct mt_err err = {0};
    int done = 0;
    r->steps_in_order = r->memory_ok = 1;
    while (!done) {
        uint8_t *buf;
        size_t len;
        int rc = wire_read_frame(w->out, &buf, &len, MT_FRAME_MAX_WORKER, &err);
        if (rc == MT_E_EOF)
            break;
        if (rc)
            fail_msg("reading an event: %s", err.msg);
        Memtrain__WorkerEvent *ev = memtrain__worker_event__unpack(NULL, len, buf);
        if (!ev)
            fail_msg("an event of %zu bytes does not parse", len);
        on_event(r, ev, buf, len, w, tr);
        done = ev->event_case == MEMTRAIN__WORKER_EVENT__EVENT_DONE;
        memtrain__worker_event__free_unpacked(ev, NULL);
        free(buf);
        /* After done the worker must close its end: nothing may follow. */
        if (done && wire_read_frame(w->out, &buf, &len, MT_FRAME_MAX_WORKER, &err) != MT_E_EOF)
            fail_msg("an event after done");
    }
    r->exit_status = finish(w);
}

static void run_job_limited(const struct mt_spec *s, const uint8_t *resume, size_t resume_len,
                            unsigned step_every, uint64_t hard_limit, struct trigger *tr,
                            struct run *r)
{
    struct worker_proc w;
    memset(r, 0, sizeof *r);
    spawn(&w);
    send_start(&w, s, resume, resume_len, step_every, hard_limit);
    collect(&w, r, tr);
}

static void run_job(const struct mt_spec *s, const uint8_t *resume, size_t resume_len,
                    unsigned step_every, struct trigger *tr, struct run *r)
{
    run_job_limited(s, resume, resume_len, step_every, 0, tr, r);
}

static void run_free(struct run *r)
{
    for (int i = 0; i < 8 && i < r->n_ckpt; i++)
        free(r->ckpt[i]);
}

static int has_log(const struct run *r, const char *text)
{
    for (int i = 0; i < r->n_log && i < 8; i++)
        if (strstr(r->logs[i], text))
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Cases */

static void test_small_job_completes_with_events(void **state)
{
    struct mt_spec s;
    struct run r;
    (void)state;
    jobspec_free(job_from_yaml(small_yaml, &s));
    run_job(&s, NULL, 0, 1, NULL, &r);
    assert_int_equal(r.exit_status, 0);
    if (r.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("ended in state %d: %s", (int)r.state, r.reason);
    assert_int_equal(r.n_planned, 1);
    assert_true(r.planned.params > 0 && r.planned.data > 0 && r.planned.peak_total > 0);
    assert_int_equal(r.n_epochs, 3);
    for (int e = 0; e < 3; e++) {
        assert_int_equal(r.epochs[e].epoch, e + 1);
        assert_true(r.epochs[e].test_accuracy >= 0 && r.epochs[e].test_accuracy <= 1);
        if (e > 0 && !(r.epochs[e].loss < r.epochs[e - 1].loss))
            fail_msg("loss did not fall: epoch %d %g, epoch %d %g", e, r.epochs[e - 1].loss,
                     e + 1, r.epochs[e].loss);
    }
    /* Every step once, in order, from 0: 3 epochs of 16. */
    assert_int_equal(r.n_steps, 48);
    assert_int_equal(r.first_step, 0);
    assert_int_equal(r.last_step, 47);
    assert_true(r.steps_in_order);
    assert_true(r.n_memory >= 3);
    assert_true(r.memory_ok);
    assert_int_equal(r.n_ckpt, 1);   /* checkpoint_every 0: only at the end */
    assert_true(has_log(&r, "OpenBLAS core"));

    Memtrain__CheckpointData *cd = memtrain__checkpoint_data__unpack(NULL, r.ckpt_len[0],
                                                                     r.ckpt[0]);
    assert_non_null(cd);
    assert_int_equal(cd->format, 1);
    assert_int_equal(cd->job_id, 42);
    assert_int_equal(cd->epoch, 3);
    assert_int_equal(cd->step, 48);
    assert_int_equal(cd->step_in_epoch, 0);
    assert_int_equal(cd->n_weights, 6);
    assert_string_equal(cd->weights[0]->name, "W1");
    assert_int_equal(cd->weights[0]->n_shape, 2);
    assert_int_equal(cd->weights[0]->shape[0], 32);
    assert_int_equal(cd->weights[0]->shape[1], 20);
    assert_int_equal(cd->weights[0]->data.len, 32 * 20 * 4);
    assert_string_equal(cd->weights[5]->name, "b3");
    assert_int_equal(cd->weights[5]->shape[0], 4);
    assert_int_equal(cd->n_optimizer, 2);
    assert_string_equal(cd->optimizer[0]->name, "adam.m");
    assert_string_equal(cd->optimizer[1]->name, "adam.v");
    assert_int_equal(cd->optimizer_t, 48);
    assert_int_equal(cd->shuffle_rng.len, 32);
    assert_int_equal(cd->n_history, 3);
    assert_true(cd->history[2]->loss == r.epochs[2].loss);
    assert_non_null(cd->spec);
    assert_int_equal(cd->spec->model->input, 20);
    memtrain__checkpoint_data__free_unpacked(cd, NULL);
    run_free(&r);
}

/* small_yaml's spec and its plan. */
static void small_job_planned(struct mt_spec *s, struct mt_mem_plan *plan)
{
    struct mt_err err = {0};
    jobspec_free(job_from_yaml(small_yaml, s));
    if (trainer_plan(s, plan, &err))
        fail_msg("plan: %s", err.msg);
}

static void test_limit_below_plan_is_out_of_memory(void **state)
{
    struct mt_spec s;
    struct mt_mem_plan plan;
    struct run r;
    (void)state;
    small_job_planned(&s, &plan);
    s.memory_limit = plan.total / 2;
    run_job(&s, NULL, 0, 0, NULL, &r);
    assert_int_equal(r.exit_status, 12);
    if (r.state != MEMTRAIN__JOB_STATE__OUT_OF_MEMORY)
        fail_msg("ended in state %d: %s", (int)r.state, r.reason);
    assert_non_null(strstr(r.reason, "memory limit exceeded"));
    assert_non_null(strstr(r.reason, "asked"));
    assert_int_equal(r.n_planned, 1);
    assert_int_equal(r.planned.peak_total, plan.total);
    assert_int_equal(r.n_epochs, 0);
    run_free(&r);
}

/* The daemon planned the job at submit: the worker reports that plan as it
 * came (a marked figure shows it did not plan again) and trains. */
static void test_worker_takes_the_daemons_plan(void **state)
{
    struct mt_spec s;
    struct mt_mem_plan plan;
    struct run r;
    (void)state;
    small_job_planned(&s, &plan);
    Memtrain__MemoryStats given = MEMTRAIN__MEMORY_STATS__INIT;
    given.params = 12345;   /* a mark no plan of this job has */
    given.peak_total = plan.total;
    start_planned = &given;
    run_job(&s, NULL, 0, 0, NULL, &r);
    start_planned = NULL;
    assert_int_equal(r.exit_status, 0);
    if (r.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("ended in state %d: %s", (int)r.state, r.reason);
    assert_int_equal(r.n_planned, 1);
    assert_int_equal(r.planned.params, 12345);
    assert_int_equal(r.planned.peak_total, plan.total);
    run_free(&r);
}

/* RLIMIT_DATA: a generous one lets the job run; one below what the worker
 * already maps is refused up front, never left to fail (or, inside
 * OpenBLAS, spin) at some later allocation. */
static void test_hard_limit(void **state)
{
    struct mt_spec s;
    struct run r;
    (void)state;
#if MT_TEST_ASAN
    print_message("skipped: RLIMIT_DATA cannot work under AddressSanitizer (its shadow memory)\n");
    skip();
#endif
    jobspec_free(job_from_yaml(small_yaml, &s));
    run_job_limited(&s, NULL, 0, 0, (uint64_t)1 << 30, NULL, &r);
    if (r.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("with a 1 GiB hard limit: state %d: %s", (int)r.state, r.reason);
    assert_true(has_log(&r, "hard limit 1.00 GiB"));
    run_free(&r);

    run_job_limited(&s, NULL, 0, 0, (uint64_t)16 << 20, NULL, &r);
    assert_int_equal(r.exit_status, 12);
    if (r.state != MEMTRAIN__JOB_STATE__OUT_OF_MEMORY)
        fail_msg("with a 16 MiB hard limit: state %d: %s", (int)r.state, r.reason);
    assert_non_null(strstr(r.reason, "hard limit 16.00 MiB is below"));
    assert_int_equal(r.n_epochs, 0);
    run_free(&r);
}

/* The data address space a run's worker held before loading its job, from
 * its "hard limit" log line. */
static uint64_t held_before_job(const struct run *r)
{
    for (int i = 0; i < r->n_log && i < 8; i++) {
        const char *p = strstr(r->logs[i], "on the worker's data (");
        double v;
        char unit[8];
        if (p && sscanf(p, "on the worker's data (%lf %7s", &v, unit) == 2) {
            double scale = !strcmp(unit, "GiB") ? 1 << 30 : !strcmp(unit, "MiB") ? 1 << 20
                         : !strcmp(unit, "KiB") ? 1 << 10 : 1;
            return (uint64_t)(v * scale);
        }
    }
    fail_msg("no hard-limit log line");
    return 0;
}

/* Issue 11, finding 4: a job whose hard limit leaves it only a small margin
 * over its plan resumes from a checkpoint much larger than that margin (Adam:
 * weights, m and v, 3 x 17 MiB): the resume blob must not count against the
 * job's limit. The same limit lets the job run from scratch. */
static void test_resume_at_limit_with_large_checkpoint(void **state)
{
    static const char yaml[] =
        "name: worker-big-resume\n"
        "dataset: {name: synthetic, synthetic_train: 128, synthetic_test: 32}\n"
        "model: {input: 20, hidden: [2048, 2048], classes: 4}\n"
        "rule: bp\n"
        "optimizer: {name: adam, lr: 0.001}\n"
        "batch: 32\n"
        "epochs: 2\n"
        "seed: 3\n"
        "threads: 1\n"
        "checkpoint_every: 1\n";
    const uint64_t margin = (uint64_t)8 << 20;
    struct mt_spec s;
    struct mt_mem_plan plan;
    struct mt_err err = {0};
    struct run probe, fresh, resumed;
    (void)state;
#if MT_TEST_ASAN
    print_message("skipped: RLIMIT_DATA cannot work under AddressSanitizer (its shadow memory)\n");
    skip();
#endif
    jobspec_free(job_from_yaml(yaml, &s));
    if (trainer_plan(&s, &plan, &err))
        fail_msg("plan: %s", err.msg);
    s.memory_limit = plan.total;

    run_job_limited(&s, NULL, 0, 0, (uint64_t)1 << 30, NULL, &probe);
    if (probe.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("with a 1 GiB hard limit: state %d: %s", (int)probe.state, probe.reason);
    assert_int_equal(probe.n_ckpt, 2);
    assert_true(probe.ckpt_len[0] > 4 * margin);
    uint64_t hard = held_before_job(&probe) + plan.total + margin;

    run_job_limited(&s, NULL, 0, 0, hard, NULL, &fresh);
    if (fresh.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("from scratch at plan + %llu: state %d: %s", (unsigned long long)margin,
                 (int)fresh.state, fresh.reason);

    run_job_limited(&s, probe.ckpt[0], probe.ckpt_len[0], 0, hard, NULL, &resumed);
    if (resumed.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("resumed from a %zu-byte checkpoint at plan + %llu: state %d: %s",
                 probe.ckpt_len[0], (unsigned long long)margin, (int)resumed.state,
                 resumed.reason);
    assert_true(has_log(&resumed, "resumed from epoch 1, step 4"));
    assert_int_equal(resumed.n_epochs, 1);
    assert_true(resumed.epochs[0].loss == probe.epochs[1].loss);
    run_free(&probe);
    run_free(&fresh);
    run_free(&resumed);
}

static void test_missing_data_file_fails_naming_it(void **state)
{
    static const char yaml[] =
        "dataset:\n"
        "  name: idx\n"
        "  train_images: /nonexistent/memtrain/train-images\n"
        "  train_labels: /nonexistent/memtrain/train-labels\n"
        "  test_images: /nonexistent/memtrain/test-images\n"
        "  test_labels: /nonexistent/memtrain/test-labels\n"
        "model: {input: 20, hidden: [8], classes: 4}\n"
        "batch: 8\n"
        "epochs: 1\n";
    struct mt_spec s;
    struct run r;
    (void)state;
    jobspec_free(job_from_yaml(yaml, &s));
    run_job(&s, NULL, 0, 0, NULL, &r);
    assert_int_equal(r.exit_status, 10);
    if (r.state != MEMTRAIN__JOB_STATE__FAILED)
        fail_msg("ended in state %d: %s", (int)r.state, r.reason);
    assert_non_null(strstr(r.reason, "/nonexistent/memtrain/train-"));
    assert_int_equal(r.n_epochs, 0);
    run_free(&r);
}

static void test_sigterm_cancels_mid_run(void **state)
{
    struct mt_spec s;
    struct run r;
    struct trigger tr = {.sig = SIGTERM, .epoch = 2, .at = 10, .steps_per_epoch = LONG_STEPS};
    (void)state;
    jobspec_free(job_from_yaml(LONG_JOB("bp", "{name: adam, lr: 0.001}"), &s));
    run_job(&s, NULL, 0, 1, &tr, &r);
    assert_true(tr.fired);
    assert_int_equal(r.exit_status, 11);
    if (r.state != MEMTRAIN__JOB_STATE__CANCELLED)
        fail_msg("ended in state %d: %s", (int)r.state, r.reason);
    assert_string_equal(r.reason, "cancelled");
    assert_int_equal(r.n_epochs, 1);
    assert_int_equal(r.n_ckpt, 1);    /* epoch 1's (checkpoint_every 1), none on cancel */
    assert_true(r.last_step >= LONG_STEPS + 10 && r.last_step < 2 * LONG_STEPS - 1);
    run_free(&r);
}

static void assert_same_epoch(const Memtrain__EpochProgress *a, const Memtrain__EpochProgress *b)
{
    assert_int_equal(a->epoch, b->epoch);
    if (a->loss != b->loss || a->train_accuracy != b->train_accuracy ||
        a->test_accuracy != b->test_accuracy || a->lr != b->lr)
        fail_msg("epoch %u differs: loss %.17g vs %.17g, train %.17g vs %.17g, test %.17g vs "
                 "%.17g, lr %g vs %g", a->epoch, a->loss, b->loss, a->train_accuracy,
                 b->train_accuracy, a->test_accuracy, b->test_accuracy, (double)a->lr,
                 (double)b->lr);
}

/* Final checkpoints agree on every weight and optimizer byte and the history. */
static void assert_same_final(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    Memtrain__CheckpointData *x = memtrain__checkpoint_data__unpack(NULL, alen, a);
    Memtrain__CheckpointData *y = memtrain__checkpoint_data__unpack(NULL, blen, b);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(x->epoch, y->epoch);
    assert_int_equal(x->step, y->step);
    assert_int_equal(x->optimizer_t, y->optimizer_t);
    assert_int_equal(x->n_weights, y->n_weights);
    for (size_t i = 0; i < x->n_weights; i++) {
        assert_int_equal(x->weights[i]->data.len, y->weights[i]->data.len);
        if (memcmp(x->weights[i]->data.data, y->weights[i]->data.data, x->weights[i]->data.len))
            fail_msg("weights %s differ", x->weights[i]->name);
    }
    assert_int_equal(x->n_optimizer, y->n_optimizer);
    for (size_t i = 0; i < x->n_optimizer; i++)
        if (memcmp(x->optimizer[i]->data.data, y->optimizer[i]->data.data,
                   x->optimizer[i]->data.len))
            fail_msg("optimizer state %s differs", x->optimizer[i]->name);
    assert_int_equal(x->n_history, y->n_history);
    for (size_t i = 0; i < x->n_history; i++)
        assert_same_epoch(x->history[i], y->history[i]);
    memtrain__checkpoint_data__free_unpacked(x, NULL);
    memtrain__checkpoint_data__free_unpacked(y, NULL);
}

/* Straight 4 epochs; SIGUSR1 inside epoch 2 then resume; resume from the
 * straight run's epoch-2 checkpoint: all three end the same, bit for bit. */
static void exact_resume(const char *yaml)
{
    struct mt_spec s;
    struct run straight, stopped, resumed, from_boundary;
    struct trigger tr = {.sig = SIGUSR1, .epoch = 2, .at = 20, .steps_per_epoch = LONG_STEPS};
    jobspec_free(job_from_yaml(yaml, &s));

    run_job(&s, NULL, 0, 0, NULL, &straight);
    if (straight.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("straight run ended in state %d: %s", (int)straight.state, straight.reason);
    assert_int_equal(straight.n_epochs, 4);
    assert_int_equal(straight.n_ckpt, 4);

    run_job(&s, NULL, 0, 1, &tr, &stopped);
    assert_true(tr.fired);
    assert_int_equal(stopped.exit_status, 13);
    if (stopped.state != MEMTRAIN__JOB_STATE__INTERRUPTED)
        fail_msg("stopped run ended in state %d: %s", (int)stopped.state, stopped.reason);
    assert_string_equal(stopped.reason, "daemon stopping");
    assert_int_equal(stopped.n_epochs, 1);
    assert_same_epoch(&stopped.epochs[0], &straight.epochs[0]);
    assert_int_equal(stopped.n_ckpt, 2);   /* epoch 1's, then the stop's */
    Memtrain__CheckpointData *cd = memtrain__checkpoint_data__unpack(NULL, stopped.ckpt_len[1],
                                                                     stopped.ckpt[1]);
    assert_non_null(cd);
    assert_int_equal(cd->epoch, 1);
    if (!(cd->step_in_epoch >= 20 && cd->step_in_epoch < LONG_STEPS))
        fail_msg("stopped at step %llu of epoch 2, not inside it",
                 (unsigned long long)cd->step_in_epoch);
    assert_int_equal(cd->step, LONG_STEPS + cd->step_in_epoch);
    assert_true(cd->partial_hits > 0 && cd->partial_loss_sum > 0);
    assert_int_equal(cd->n_history, 1);
    memtrain__checkpoint_data__free_unpacked(cd, NULL);

    run_job(&s, stopped.ckpt[1], stopped.ckpt_len[1], 0, NULL, &resumed);
    if (resumed.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("resumed run ended in state %d: %s", (int)resumed.state, resumed.reason);
    assert_true(has_log(&resumed, "resumed from epoch 1, step"));
    assert_int_equal(resumed.n_epochs, 3);
    for (int e = 0; e < 3; e++)
        assert_same_epoch(&resumed.epochs[e], &straight.epochs[e + 1]);
    assert_int_equal(resumed.n_ckpt, 3);
    assert_same_final(resumed.ckpt[2], resumed.ckpt_len[2], straight.ckpt[3],
                      straight.ckpt_len[3]);

    run_job(&s, straight.ckpt[1], straight.ckpt_len[1], 0, NULL, &from_boundary);
    if (from_boundary.state != MEMTRAIN__JOB_STATE__COMPLETED)
        fail_msg("run resumed at epoch 2 ended in state %d: %s", (int)from_boundary.state,
                 from_boundary.reason);
    assert_true(has_log(&from_boundary, "resumed from epoch 2, step 1024"));
    assert_int_equal(from_boundary.n_epochs, 2);
    for (int e = 0; e < 2; e++)
        assert_same_epoch(&from_boundary.epochs[e], &straight.epochs[e + 2]);
    assert_same_final(from_boundary.ckpt[1], from_boundary.ckpt_len[1], straight.ckpt[3],
                      straight.ckpt_len[3]);

    run_free(&straight);
    run_free(&stopped);
    run_free(&resumed);
    run_free(&from_boundary);
}

static void test_resume_is_exact_bp_adam(void **state)
{
    (void)state;
    exact_resume(LONG_JOB("bp", "{name: adam, lr: 0.001}"));
}

/* DFA's feedback matrices come back from the seed; momentum is the state. */
static void test_resume_is_exact_dfa_momentum(void **state)
{
    (void)state;
    exact_resume(LONG_JOB("dfa", "{name: sgd, lr: 0.01, momentum: 0.9}"));
}

/* BP adds its gradients straight into the momentum buffer (no gradient
 * buffer): the buffer is all the state a resume needs. */
static void test_resume_is_exact_bp_accumulated_momentum(void **state)
{
    (void)state;
    exact_resume(LONG_JOB("bp", "{name: sgd, lr: 0.01, momentum: 0.9, weight_decay: 0.0001}"));
}

static void test_resume_is_exact_memdfa_adamw_cosine(void **state)
{
    (void)state;
    exact_resume(LONG_JOB("memdfa", "{name: adamw, lr: 0.001, weight_decay: 0.01}")
                 "schedule: {name: cosine, warmup_epochs: 0.5}\n");
}

/* A layer list with batch-norm (its running statistics are state a resume
 * needs) and a residual block with a projection shortcut. */
#define LONG_CONV_JOB(rule, optim)                                                   \
    "name: worker-resume-conv\n"                                                      \
    "dataset: {name: synthetic, synthetic_train: 16384, synthetic_test: 256}\n"       \
    "model:\n  input: [1, 6, 6]\n  classes: 4\n  layers:\n"                            \
    "    - conv: {channels: 4, kernel: 3, padding: 1}\n    - batchnorm\n    - relu\n"    \
    "    - maxpool: 2\n    - residual: {channels: 6}\n    - flatten\n    - dense: 4\n" \
    "rule: " rule "\n"                                                                \
    "optimizer: " optim "\n"                                                          \
    "batch: 32\nepochs: 4\nseed: 9\nthreads: 1\ncheckpoint_every: 1\n"

static void test_resume_is_exact_conv_batchnorm(void **state)
{
    (void)state;
    exact_resume(LONG_CONV_JOB("bp", "{name: sgd, lr: 0.02, momentum: 0.9}"));
}

/* In process: a layer-list checkpoint restored into a fresh trainer gives
 * back every tensor (the running statistics too, which a resumed run would
 * otherwise forget only slowly) and evaluates as the worker's last epoch. */
static void test_restore_layer_list_in_process(void **state)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    struct run r;
    (void)state;
    jobspec_free(job_from_yaml(LONG_CONV_JOB("bp", "{name: sgd, lr: 0.02, momentum: 0.9}"), &s));
    s.data.synthetic_train = 2048;
    s.epochs = 2;
    run_job(&s, NULL, 0, 0, NULL, &r);
    assert_int_equal(r.n_ckpt, 2);
    Memtrain__CheckpointData *cd = memtrain__checkpoint_data__unpack(NULL, r.ckpt_len[1],
                                                                     r.ckpt[1]);
    assert_non_null(cd);
    assert_string_equal(cd->weights[0]->name, "layers.0.conv.weight");
    assert_int_equal(cd->weights[0]->n_shape, 4);
    if (trainer_init(&t, &s, &err))
        fail_msg("init: %s", err.msg);
    if (checkpoint_restore(&t, cd, &err))
        fail_msg("restore: %s", err.msg);
    double loss, acc;
    if (trainer_evaluate(&t, &t.test, &loss, &acc, &err))
        fail_msg("evaluate: %s", err.msg);
    assert_true(acc == r.epochs[1].test_accuracy);
    /* The tensors, in order, tile the parameter block and then the
     * statistics block (weights, bias; gamma, beta; mean, var). */
    size_t po = 0, so = 0;
    for (size_t k = 0; k < cd->n_weights; k++) {
        const Memtrain__Tensor *tn = cd->weights[k];
        int stat = strstr(tn->name, ".running_") != NULL;
        const float *at = stat ? t.net.stats + so : t.net.params + po;
        if (memcmp(at, tn->data.data, tn->data.len))
            fail_msg("%s is not the %s block at %zu", tn->name, stat ? "statistics" : "parameter",
                     stat ? so : po);
        *(stat ? &so : &po) += tn->data.len / sizeof(float);
    }
    assert_int_equal(po, model_param_count(&t.net.d));
    assert_int_equal(so, graph_stat_count(&t.net.d));
    Memtrain__CheckpointData *again;
    if (checkpoint_build(&t, cd->job_id, cd->history, cd->n_history, &again, &err))
        fail_msg("build: %s", err.msg);
    size_t len = memtrain__checkpoint_data__get_packed_size(again);
    uint8_t *bytes = malloc(len);
    assert_non_null(bytes);
    memtrain__checkpoint_data__pack(again, bytes);
    assert_same_final(bytes, len, r.ckpt[1], r.ckpt_len[1]);
    free(bytes);
    checkpoint_free(again);
    trainer_fini(&t);
    memtrain__checkpoint_data__free_unpacked(cd, NULL);
    run_free(&r);
}

static void test_malformed_start_fails(void **state)
{
    struct worker_proc w;
    struct run r;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x22};
    (void)state;

    memset(&r, 0, sizeof r);
    spawn(&w);
    send_frame(&w, garbage, sizeof garbage);
    collect(&w, &r, NULL);
    assert_int_equal(r.exit_status, 10);
    assert_int_equal(r.state, MEMTRAIN__JOB_STATE__FAILED);
    assert_string_equal(r.reason, "worker: malformed start message");

    /* A well-formed message without a spec is malformed too. */
    Memtrain__WorkerStart ws = MEMTRAIN__WORKER_START__INIT;
    uint8_t buf[64];
    ws.job_id = 3;
    size_t len = memtrain__worker_start__pack(&ws, buf);
    memset(&r, 0, sizeof r);
    spawn(&w);
    send_frame(&w, buf, len);
    collect(&w, &r, NULL);
    assert_int_equal(r.state, MEMTRAIN__JOB_STATE__FAILED);
    assert_string_equal(r.reason, "worker: malformed start message");

    /* A resume that is not a CheckpointData. */
    struct mt_spec s;
    jobspec_free(job_from_yaml(small_yaml, &s));
    memset(&r, 0, sizeof r);
    spawn(&w);
    send_start(&w, &s, garbage, sizeof garbage, 0, 0);
    collect(&w, &r, NULL);
    assert_int_equal(r.state, MEMTRAIN__JOB_STATE__FAILED);
    assert_string_equal(r.reason, "worker: malformed resume checkpoint");
}

static void test_eof_before_start_exits_1_quietly(void **state)
{
    struct worker_proc w;
    struct run r;
    (void)state;
    memset(&r, 0, sizeof r);
    spawn(&w);
    close(w.in);
    w.in = -1;
    collect(&w, &r, NULL);
    assert_int_equal(r.exit_status, 1);
    assert_int_equal(r.n_planned + r.n_log + r.n_epochs, 0);
    assert_int_equal(r.state, 0);
}

/* The daemon died: the worker's next write fails (SIGPIPE ignored), it
 * stops training and exits 1 instead of training on for nobody. */
static void test_broken_stdout_exits_1(void **state)
{
    struct worker_proc w;
    struct mt_spec s;
    struct mt_err err = {0};
    uint8_t *buf;
    size_t len;
    int status;
    (void)state;
    jobspec_free(job_from_yaml(LONG_JOB("bp", "{name: adam, lr: 0.001}"), &s));
    spawn(&w);
    send_start(&w, &s, NULL, 0, 1, 0);
    assert_int_equal(wire_read_frame(w.out, &buf, &len, MT_FRAME_MAX_WORKER, &err), 0);
    free(buf);
    close(w.out);
    assert_int_equal(waitpid(w.pid, &status, 0), w.pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

static int stop_at_step_20(void *ud, const struct mt_trainer *t, const struct mt_step_result *r)
{
    (void)ud;
    (void)r;
    return t->step == 20;
}

/* In-process: a trainer stopped by its step callback inside epoch 2 goes on
 * in the same process, and a fresh trainer restored from its checkpoint
 * goes on in another; both end where a straight trainer does. */
static void stop_continue_restore(int batchnorm)
{
    struct mt_spec s;
    struct mt_trainer a, b, c;
    struct mt_epoch_report ra[2], rb, rc2;
    struct mt_err err = {0};
    Memtrain__CheckpointData *cd;
    jobspec_free(job_from_yaml(small_yaml, &s));
    s.epochs = 2;
    if (batchnorm)  /* gamma, beta and the running statistics travel too */
        for (int l = 1; l < s.model.n_layers; l++)
            s.model.norm[l] = MT_NK_BATCH;
    if (trainer_init(&a, &s, &err) || trainer_init(&b, &s, &err) || trainer_init(&c, &s, &err))
        fail_msg("init: %s", err.msg);
    for (int e = 0; e < 2; e++)
        if (trainer_run_epoch(&a, NULL, NULL, &ra[e], &err))
            fail_msg("straight: %s", err.msg);

    trainer_set_step_fn(&b, stop_at_step_20, NULL);
    if (trainer_run_epoch(&b, NULL, NULL, &rb, &err))
        fail_msg("epoch 1: %s", err.msg);
    assert_int_equal(trainer_run_epoch(&b, NULL, NULL, &rb, &err), MT_E_CANCELLED);
    assert_int_equal(b.step, 20);
    assert_int_equal(b.epoch_step, 4);

    /* Through the wire format, as the worker sends it. */
    if (checkpoint_build(&b, 7, NULL, 0, &cd, &err))
        fail_msg("build: %s", err.msg);
    size_t len = memtrain__checkpoint_data__get_packed_size(cd);
    uint8_t *bytes = malloc(len);
    assert_non_null(bytes);
    memtrain__checkpoint_data__pack(cd, bytes);
    checkpoint_free(cd);
    cd = memtrain__checkpoint_data__unpack(NULL, len, bytes);
    free(bytes);
    assert_non_null(cd);
    assert_int_equal(cd->step_in_epoch, 4);
    if (checkpoint_restore(&c, cd, &err))
        fail_msg("restore: %s", err.msg);
    memtrain__checkpoint_data__free_unpacked(cd, NULL);

    trainer_set_step_fn(&b, NULL, NULL);
    if (trainer_run_epoch(&b, NULL, NULL, &rb, &err) ||
        trainer_run_epoch(&c, NULL, NULL, &rc2, &err))
        fail_msg("epoch 2: %s", err.msg);
    assert_int_equal(rb.epoch, 2);
    assert_int_equal(rc2.epoch, 2);
    assert_true(rb.loss == ra[1].loss && rb.train_accuracy == ra[1].train_accuracy);
    assert_true(rc2.loss == ra[1].loss && rc2.train_accuracy == ra[1].train_accuracy);
    assert_true(rc2.test_accuracy == ra[1].test_accuracy);
    size_t P = model_param_count(&a.spec.model) * sizeof(float);
    assert_memory_equal(a.net.params, b.net.params, P);
    assert_memory_equal(a.net.params, c.net.params, P);
    assert_memory_equal(a.opt.m, c.opt.m, a.opt.n * sizeof(float));
    assert_memory_equal(a.opt.v, c.opt.v, a.opt.n * sizeof(float));
    size_t ns = model_stat_count(&a.spec.model) * sizeof(float);
    assert_int_equal(ns > 0, batchnorm);
    if (ns)
        assert_memory_equal(a.net.stats, c.net.stats, ns);
    trainer_fini(&a);
    trainer_fini(&b);
    trainer_fini(&c);
}

static void test_stop_continue_and_restore_in_process(void **state)
{
    (void)state;
    stop_continue_restore(0);
}

static void test_restore_with_batchnorm_layers(void **state)
{
    (void)state;
    stop_continue_restore(1);
}

/* checkpoint_restore in-process: a checkpoint fits only its own job. */
static void test_restore_checks_model_and_seed(void **state)
{
    struct mt_spec s, other;
    struct mt_trainer t;
    struct mt_err err = {0};
    struct run r;
    (void)state;
    jobspec_free(job_from_yaml(small_yaml, &s));
    run_job(&s, NULL, 0, 0, NULL, &r);
    assert_int_equal(r.n_ckpt, 1);
    Memtrain__CheckpointData *cd = memtrain__checkpoint_data__unpack(NULL, r.ckpt_len[0],
                                                                     r.ckpt[0]);
    assert_non_null(cd);

    /* The same job: restores, and evaluates as the worker's last epoch did. */
    if (trainer_init(&t, &s, &err))
        fail_msg("init: %s", err.msg);
    if (checkpoint_restore(&t, cd, &err))
        fail_msg("restore: %s", err.msg);
    assert_int_equal(t.epoch, 3);
    assert_int_equal(t.step, 48);
    double loss, acc;
    if (trainer_evaluate(&t, &t.test, &loss, &acc, &err))
        fail_msg("evaluate: %s", err.msg);
    assert_true(acc == r.epochs[2].test_accuracy);
    trainer_fini(&t);

    /* Another model: MT_E_INVAL naming the width. */
    jobspec_free(job_from_yaml(small_yaml, &other));
    other.model.width[2] = 16;
    if (trainer_init(&t, &other, &err))
        fail_msg("init: %s", err.msg);
    assert_int_equal(checkpoint_restore(&t, cd, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "width 32 at layer 2, the job's is 16"));
    trainer_fini(&t);

    /* Another seed: the shuffle generator gives it away. */
    jobspec_free(job_from_yaml(small_yaml, &other));
    other.seed = 6;
    if (trainer_init(&t, &other, &err))
        fail_msg("init: %s", err.msg);
    float w0 = t.net.W[1][0];
    assert_int_equal(checkpoint_restore(&t, cd, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "shuffle generator"));
    assert_true(t.net.W[1][0] == w0 && t.epoch == 0);   /* untouched */
    trainer_fini(&t);

    /* Another optimizer: its state does not fit. */
    jobspec_free(job_from_yaml(small_yaml, &other));
    other.optim.kind = MT_OPT_SGD;
    other.optim.momentum = 0.9f;
    if (trainer_init(&t, &other, &err))
        fail_msg("init: %s", err.msg);
    assert_int_equal(checkpoint_restore(&t, cd, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "optimizer"));
    trainer_fini(&t);

    memtrain__checkpoint_data__free_unpacked(cd, NULL);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_job_completes_with_events),
        cmocka_unit_test(test_limit_below_plan_is_out_of_memory),
        cmocka_unit_test(test_worker_takes_the_daemons_plan),
        cmocka_unit_test(test_hard_limit),
        cmocka_unit_test(test_resume_at_limit_with_large_checkpoint),
        cmocka_unit_test(test_missing_data_file_fails_naming_it),
        cmocka_unit_test(test_sigterm_cancels_mid_run),
        cmocka_unit_test(test_resume_is_exact_bp_adam),
        cmocka_unit_test(test_resume_is_exact_dfa_momentum),
        cmocka_unit_test(test_resume_is_exact_bp_accumulated_momentum),
        cmocka_unit_test(test_resume_is_exact_memdfa_adamw_cosine),
        cmocka_unit_test(test_resume_is_exact_conv_batchnorm),
        cmocka_unit_test(test_restore_layer_list_in_process),
        cmocka_unit_test(test_malformed_start_fails),
        cmocka_unit_test(test_eof_before_start_exits_1_quietly),
        cmocka_unit_test(test_broken_stdout_exits_1),
        cmocka_unit_test(test_stop_continue_and_restore_in_process),
        cmocka_unit_test(test_restore_with_batchnorm_layers),
        cmocka_unit_test(test_restore_checks_model_and_seed),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
