/* memtrain-worker: runs one training job for memtraind.
 *
 * The daemon starts one worker per running job, with stdin, stdout and
 * stderr as pipes, and writes one WorkerStart frame (wire.h) on stdin. The
 * worker answers on stdout with WorkerEvent frames (proto/memtrain.proto,
 * "worker"): the plan once, then steps, memory samples, epochs and
 * checkpoints as training goes, and always last `done` with the job's end
 * state. stderr is only for stray diagnostics; the daemon logs it.
 *
 * Signals are noticed between two steps: SIGTERM cancels (done CANCELLED),
 * SIGUSR1 (the daemon is stopping) and SIGINT first send a checkpoint of the
 * exact position, then done INTERRUPTED. SIGPIPE is ignored: a write error
 * on stdout means the daemon is gone, so the worker stops and exits 1.
 *
 * Exit status, once `done` is written: the job's end state as mtctl's wait
 * exits with it (0 COMPLETED, 10 FAILED, 11 CANCELLED, 12 OUT_OF_MEMORY,
 * 13 INTERRUPTED), which `mtctl show` prints as the exit code; 1 when `done`
 * could not be written (stdin closed before the start frame, stdout broken). This is not the engine's
 * foreground trainer (daemon/memtrain-run/): it prints nothing for people. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "blas.h"
#include "par.h"
#include "checkpoint.h"
#include "jobspec.h"
#include "memtrain/procstat.h"
#include "memstats.h"
#include "memtrain/clock.h"
#include "memtrain/plural.h"
#include "memtrain/wire.h"
#include "memtrain/usercreds.h"
#include "train.h"

/* The job's owner when this process reads the data for them without being
 * them (memtraind not running as root): owner_checks set (see take_owner). */
static struct mt_creds owner;
static int owner_checks;

static volatile sig_atomic_t cancel_requested, stop_requested;

static void on_signal(int sig)
{
    if (sig == SIGTERM)
        cancel_requested = 1;
    else
        stop_requested = 1;
}

struct worker {
    int out;                         /* the event pipe (the original stdout) */
    int broken;                      /* a write to it failed: the daemon is gone */
    uint64_t job_id;
    unsigned step_every;             /* 0 = no step events */
    long memory_every_ms;
    long next_memory_ms;             /* CLOCK_MONOTONIC */
    uint64_t interval_steps;         /* steps since the last memory sample */
    struct mt_spec spec;
    struct mt_trainer t;
    int have_trainer;
    Memtrain__EpochProgress **hist;  /* every finished epoch, oldest first: the `ep` of a
                                        malloc'd struct epoch_msg (checkpoint.h) each */
    size_t n_hist, cap_hist;
};

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* Events: each is packed straight into the pipe through a small staging
 * buffer, so a checkpoint of hundreds of megabytes is never copied whole. */

struct pipe_buffer {
    ProtobufCBuffer base;
    int fd;
    int failed;
    size_t used;
    uint8_t buf[1 << 16];
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void pipe_flush(struct pipe_buffer *pb)
{
    if (!pb->failed && pb->used && write_all(pb->fd, pb->buf, pb->used))
        pb->failed = 1;
    pb->used = 0;
}

static void pipe_append(ProtobufCBuffer *base, size_t len, const uint8_t *data)
{
    struct pipe_buffer *pb = (struct pipe_buffer *)base;
    if (pb->failed)
        return;
    if (pb->used + len > sizeof pb->buf)
        pipe_flush(pb);
    if (len >= sizeof pb->buf) {
        if (!pb->failed && write_all(pb->fd, data, len))
            pb->failed = 1;
        return;
    }
    memcpy(pb->buf + pb->used, data, len);
    pb->used += len;
}

static int send_event(struct worker *w, const Memtrain__WorkerEvent *ev)
{
    static struct pipe_buffer pb;   /* 64 KiB: kept off the stack */
    if (w->broken)
        return MT_E_IO;
    size_t len = memtrain__worker_event__get_packed_size(ev);
    if (len > MT_FRAME_MAX_WORKER)
        return MT_E_TOOBIG;
    pb.base.append = pipe_append;
    pb.fd = w->out;
    pb.failed = 0;
    pb.used = MT_FRAME_HEADER;
    wire_put_len(pb.buf, (uint32_t)len);
    memtrain__worker_event__pack_to_buffer(ev, &pb.base);
    pipe_flush(&pb);
    if (pb.failed) {
        w->broken = 1;
        return MT_E_IO;
    }
    return 0;
}

static int send_log(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int send_log(struct worker *w, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Memtrain__WorkerEvent ev = MEMTRAIN__WORKER_EVENT__INIT;
    ev.event_case = MEMTRAIN__WORKER_EVENT__EVENT_LOG;
    ev.log = text;
    return send_event(w, &ev);
}

static int send_memory(struct worker *w)
{
    struct mt_mem_stats st;
    struct mt_procstat ps;
    Memtrain__MemoryStats cur, peak, interval;
    Memtrain__MemorySample ms = MEMTRAIN__MEMORY_SAMPLE__INIT;
    arena_stats(w->t.arena, &st);
    mt_procstat_read(0, &ps, NULL);
    memstats_from_current(&cur, &st);
    memstats_from_peaks(&peak, &st, (long)ps.hwm);
    memstats_from_interval(&interval, &st);
    ms.time = mt_now_ms();
    ms.current = &cur;
    ms.peak = &peak;
    ms.interval_peak = &interval;
    ms.interval_steps = w->interval_steps;
    arena_interval_reset(w->t.arena);
    w->interval_steps = 0;
    ms.rss_bytes = ps.rss;
    ms.hwm_bytes = ps.hwm;
    ms.limit = w->t.spec.memory_limit;
    Memtrain__WorkerEvent ev = MEMTRAIN__WORKER_EVENT__INIT;
    ev.event_case = MEMTRAIN__WORKER_EVENT__EVENT_MEMORY;
    ev.memory = &ms;
    w->next_memory_ms = mono_ms() + w->memory_every_ms;
    return send_event(w, &ev);
}

/* The plan: the daemon's as it sent it (`given`), else the worker's own. */
static int send_planned(struct worker *w, const struct mt_mem_plan *p,
                        Memtrain__MemoryStats *given)
{
    Memtrain__MemoryStats m;
    memstats_from_plan(&m, p);
    Memtrain__WorkerEvent ev = MEMTRAIN__WORKER_EVENT__INIT;
    ev.event_case = MEMTRAIN__WORKER_EVENT__EVENT_PLANNED;
    ev.planned = given ? given : &m;
    return send_event(w, &ev);
}

static int send_checkpoint(struct worker *w)
{
    Memtrain__CheckpointData *cd;
    struct mt_err err = {0};
    if (checkpoint_build(&w->t, w->job_id, w->hist, w->n_hist, &cd, &err)) {
        send_log(w, "checkpoint at epoch %d failed: %s", w->t.epoch, err.msg);
        return err.code;
    }
    Memtrain__WorkerEvent ev = MEMTRAIN__WORKER_EVENT__INIT;
    ev.event_case = MEMTRAIN__WORKER_EVENT__EVENT_CHECKPOINT;
    ev.checkpoint = cd;
    int rc = send_event(w, &ev);
    checkpoint_free(cd);
    if (rc == MT_E_TOOBIG)
        send_log(w, "checkpoint at epoch %d is over the %u-byte frame cap; not sent", w->t.epoch,
                 MT_FRAME_MAX_WORKER);
    return rc;
}

/* The exit status of a worker whose `done` said `state` (see the top). */
static int state_exit_status(Memtrain__JobState state)
{
    switch (state) {
    case MEMTRAIN__JOB_STATE__COMPLETED: return 0;
    case MEMTRAIN__JOB_STATE__CANCELLED: return 11;
    case MEMTRAIN__JOB_STATE__OUT_OF_MEMORY: return 12;
    case MEMTRAIN__JOB_STATE__INTERRUPTED: return 13;
    default: return 10;   /* FAILED */
    }
}

/* The last event. Returns the exit status: state_exit_status(state) when it
 * was written, else 1. */
static int send_done(struct worker *w, Memtrain__JobState state, const char *reason)
{
    Memtrain__WorkerDone done = MEMTRAIN__WORKER_DONE__INIT;
    Memtrain__MemoryStats measured = MEMTRAIN__MEMORY_STATS__INIT;
    struct mt_procstat ps;
    mt_procstat_read(0, &ps, NULL);
    if (w->have_trainer) {
        struct mt_mem_stats st;
        arena_stats(w->t.arena, &st);
        memstats_from_peaks(&measured, &st, (long)ps.hwm);
    } else {
        measured.rss_peak_bytes = ps.hwm;
    }
    done.state = state;
    done.reason = (char *)reason;
    done.measured = &measured;
    Memtrain__WorkerEvent ev = MEMTRAIN__WORKER_EVENT__INIT;
    ev.event_case = MEMTRAIN__WORKER_EVENT__EVENT_DONE;
    ev.done = &done;
    return send_event(w, &ev) ? 1 : state_exit_status(state);
}

/* An engine error's end state: the arena's limit (or the hard limit, which
 * malloc reports as out of system memory) is OUT_OF_MEMORY. */
static int send_error(struct worker *w, const struct mt_err *err)
{
    int oom = err->code == MT_E_LIMIT || err->code == MT_E_NOMEM;
    return send_done(w, oom ? MEMTRAIN__JOB_STATE__OUT_OF_MEMORY : MEMTRAIN__JOB_STATE__FAILED,
                     err->msg);
}

/* ------------------------------------------------------------------------ */
/* History */

/* A new zeroed entry at the end of the history. */
static struct epoch_msg *hist_push(struct worker *w)
{
    if (w->n_hist == w->cap_hist) {
        size_t cap = w->cap_hist ? 2 * w->cap_hist : 16;
        Memtrain__EpochProgress **h = realloc(w->hist, cap * sizeof *h);
        if (!h)
            return NULL;
        w->hist = h;
        w->cap_hist = cap;
    }
    struct epoch_msg *e = calloc(1, sizeof *e);
    if (e)
        w->hist[w->n_hist++] = &e->ep;
    return e;
}

static void hist_free(struct worker *w)
{
    for (size_t i = 0; i < w->n_hist; i++)
        free((struct epoch_msg *)w->hist[i]);
    free(w->hist);
    w->hist = NULL;
    w->n_hist = w->cap_hist = 0;
}

static Memtrain__EpochProgress *hist_add_report(struct worker *w,
                                                const struct mt_epoch_report *rep)
{
    struct epoch_msg *e = hist_push(w);
    if (e)
        checkpoint_epoch_progress(e, rep);
    return e ? &e->ep : NULL;
}

/* Copy field by field: an unpacked message may carry unknown fields that
 * its free_unpacked releases. */
static int hist_add_copy(struct worker *w, const Memtrain__EpochProgress *src)
{
    struct epoch_msg *e = hist_push(w);
    if (!e)
        return MT_E_NOMEM;
    checkpoint_epoch_copy(e, src);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Training */

static int on_step(void *ud, const struct mt_trainer *t, const struct mt_step_result *r)
{
    struct worker *w = ud;
    long step = t->step - 1;   /* the step just taken, from 0 */
    w->interval_steps++;
    if (w->step_every && step % w->step_every == 0) {
        Memtrain__StepProgress sp = MEMTRAIN__STEP_PROGRESS__INIT;
        sp.step = (uint64_t)step;
        sp.epoch = (uint32_t)t->epoch + 1;
        sp.loss = r->loss;
        Memtrain__WorkerEvent ev = MEMTRAIN__WORKER_EVENT__INIT;
        ev.event_case = MEMTRAIN__WORKER_EVENT__EVENT_STEP;
        ev.step = &sp;
        send_event(w, &ev);
    }
    if (mono_ms() >= w->next_memory_ms)
        send_memory(w);
    return cancel_requested || stop_requested || w->broken;
}

static int epoch_finished(struct worker *w, const struct mt_epoch_report *rep)
{
    Memtrain__EpochProgress *ep = hist_add_report(w, rep);
    if (!ep)
        return MT_E_NOMEM;
    Memtrain__WorkerEvent ev = MEMTRAIN__WORKER_EVENT__INIT;
    ev.event_case = MEMTRAIN__WORKER_EVENT__EVENT_EPOCH;
    ev.epoch = ep;
    send_event(w, &ev);
    send_memory(w);
    int every = w->t.spec.checkpoint_every;
    if (w->t.epoch == w->t.spec.epochs || (every > 0 && w->t.epoch % every == 0))
        send_checkpoint(w);
    return w->broken ? MT_E_IO : 0;
}

/* How the job stopped between two steps on a signal. */
static int stopped(struct worker *w)
{
    if (w->broken)
        return 1;
    if (cancel_requested)
        return send_done(w, MEMTRAIN__JOB_STATE__CANCELLED, "cancelled");
    send_checkpoint(w);
    return send_done(w, MEMTRAIN__JOB_STATE__INTERRUPTED, "daemon stopping");
}

static int train(struct worker *w)
{
    struct mt_trainer *t = &w->t;
    struct mt_err err = {0};
    while (t->epoch < t->spec.epochs) {
        struct mt_epoch_report rep;
        if (cancel_requested || stop_requested)
            return stopped(w);
        int rc = trainer_run_epoch(t, NULL, NULL, &rep, &err);
        if (rc == MT_E_CANCELLED)
            return stopped(w);
        if (rc)
            return send_error(w, &err);
        if (epoch_finished(w, &rep))
            return w->broken ? 1 : send_done(w, MEMTRAIN__JOB_STATE__FAILED,
                                             "worker: out of memory keeping the history");
    }
    char reason[64];
    snprintf(reason, sizeof reason, "trained %d epoch%s", t->spec.epochs,
             mt_plural((uint64_t)t->spec.epochs));
    return send_done(w, MEMTRAIN__JOB_STATE__COMPLETED, reason);
}

/* ------------------------------------------------------------------------ */
/* Setup */

/* OpenBLAS maps one buffer per thread on first use (128 MiB of address
 * space each with Debian's build, barely touched) and, when that mmap
 * fails, retries forever at full CPU. So its threads start and its buffers
 * are taken before RLIMIT_DATA goes on, with the job's thread count: its
 * own threads (an MLP's products), and one buffer per engine worker (par.h:
 * a layer-list model's workers call OpenBLAS on one thread each, at once). */
enum { WARM_N = 128 };

static void warm_worker(void *ctx, int w, int nw)
{
    (void)nw;
    float *m = ctx;
    float *c = m + 2 * WARM_N * WARM_N + (size_t)w * WARM_N * WARM_N;
    blas_gemm(0, 0, WARM_N, WARM_N, WARM_N, 1.0f, m, m + WARM_N * WARM_N, 0.0f, c);
}

static void blas_warm_up(int threads)
{
    int n = threads > 0 ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    float *m = calloc((size_t)(2 + n) * WARM_N * WARM_N, sizeof *m); /* a, b, a c per worker */
    if (!m)
        return; /* the job's own allocations will say so */
    blas_set_threads(n);
    blas_gemm(0, 0, WARM_N, WARM_N, WARM_N, 1.0f, m, m + WARM_N * WARM_N, 0.0f,
              m + 2 * WARM_N * WARM_N);
    par_set_threads(n);
    blas_set_threads(1);
    par_run(warm_worker, m);
    blas_set_threads(n);
    free(m);
}

/* What a resume of `len` bytes holds beyond the job while it is restored:
 * the start message's copy and the unpacked CheckpointData, plus slack for
 * the allocator's rounding. */
static uint64_t resume_allowance(size_t len)
{
    return len ? 2 * (uint64_t)len + ((uint64_t)4 << 20) : 0;
}

/* RLIMIT_DATA counts the address space already mapped: a limit at or below
 * it would fail every later allocation, so it is refused up front. `bytes`
 * is the limit set now; `job` the job's own (what is reported), below
 * `bytes` while a resume blob is held. */
static int set_hard_limit(struct worker *w, uint64_t bytes, uint64_t job, struct mt_err *err)
{
    struct rlimit rl;
    struct mt_procstat ps;
    mt_procstat_read(0, &ps, NULL);
    long base = (long)ps.data;
    char lim_s[32], base_s[32];
    mt_fmt_bytes(lim_s, sizeof lim_s, (double)bytes);
    mt_fmt_bytes(base_s, sizeof base_s, (double)base);
    if (base > 0 && bytes <= (uint64_t)base)
        return mt_err_set(err, MT_E_NOMEM,
                          "hard limit %s is below the %s of data address space the worker "
                          "holds before loading the job (mostly OpenBLAS's per-thread buffers)",
                          lim_s, base_s);
    if (getrlimit(RLIMIT_DATA, &rl))
        return mt_err_set(err, MT_E_IO, "worker: getrlimit(RLIMIT_DATA): %s", strerror(errno));
    rlim_t lim = (rlim_t)bytes;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < lim)
        lim = rl.rlim_max;
    rl.rlim_cur = rl.rlim_max = lim;
    if (setrlimit(RLIMIT_DATA, &rl))
        return mt_err_set(err, MT_E_IO, "worker: setrlimit(RLIMIT_DATA, %llu): %s",
                          (unsigned long long)bytes, strerror(errno));
    if (job == bytes) {
        send_log(w, "hard limit %s on the worker's data (%s held before loading the job)", lim_s,
                 base_s);
    } else {
        char job_s[32];
        mt_fmt_bytes(job_s, sizeof job_s, (double)job);
        send_log(w, "hard limit %s on the worker's data (%s held before loading the job), "
                 "%s while the resume checkpoint is held", job_s, base_s, lim_s);
    }
    return 0;
}

/* Bring RLIMIT_DATA down to the job's own limit once the resume blob is
 * freed (lowering needs no privilege). */
static int lower_hard_limit(struct worker *w, uint64_t bytes, struct mt_err *err)
{
    struct rlimit rl;
    struct mt_procstat ps;
    (void)w;
    mt_procstat_read(0, &ps, NULL);
    if (ps.data > 0 && bytes <= (uint64_t)ps.data) {
        char lim_s[32], now_s[32];
        mt_fmt_bytes(lim_s, sizeof lim_s, (double)bytes);
        mt_fmt_bytes(now_s, sizeof now_s, (double)ps.data);
        return mt_err_set(err, MT_E_NOMEM,
                          "hard limit %s is below the %s of data address space the worker "
                          "holds after resuming", lim_s, now_s);
    }
    if (getrlimit(RLIMIT_DATA, &rl))
        return mt_err_set(err, MT_E_IO, "worker: getrlimit(RLIMIT_DATA): %s", strerror(errno));
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= (rlim_t)bytes)
        return 0;
    rl.rlim_cur = rl.rlim_max = (rlim_t)bytes;
    if (setrlimit(RLIMIT_DATA, &rl))
        return mt_err_set(err, MT_E_IO, "worker: setrlimit(RLIMIT_DATA, %llu): %s",
                          (unsigned long long)bytes, strerror(errno));
    return 0;
}

/* Resume from a CheckpointData, then tell the daemon where. */
static int resume(struct worker *w, const ProtobufCBinaryData *bytes, struct mt_err *err)
{
    Memtrain__CheckpointData *cd = memtrain__checkpoint_data__unpack(NULL, bytes->len,
                                                                     bytes->data);
    if (!cd)
        return mt_err_set(err, MT_E_INVAL, "worker: malformed resume checkpoint");
    int rc = checkpoint_restore(&w->t, cd, err);
    for (size_t i = 0; !rc && i < cd->n_history; i++)
        if (hist_add_copy(w, cd->history[i]))
            rc = mt_err_set(err, MT_E_NOMEM, "worker: out of memory copying the history");
    memtrain__checkpoint_data__free_unpacked(cd, NULL);
    if (rc)
        return rc;
    if (w->t.epoch_step > 0)
        send_log(w, "resumed from epoch %d, step %ld (step %ld of epoch %d)", w->t.epoch,
                 w->t.step, w->t.epoch_step, w->t.epoch + 1);
    else
        send_log(w, "resumed from epoch %d, step %ld", w->t.epoch, w->t.step);
    return 0;
}

/* Read the start frame and set the job up. Returns -1 to go on training,
 * otherwise the exit status (done already sent, or nothing to send to). */
static int start(struct worker *w, Memtrain__WorkerStart **startp)
{
    struct mt_err err = {0};
    uint8_t *buf;
    size_t len;
    int rc = wire_read_frame(0, &buf, &len, MT_FRAME_MAX_WORKER, &err);
    if (rc == MT_E_EOF)
        return 1;
    if (rc)
        return send_done(w, MEMTRAIN__JOB_STATE__FAILED, "worker: malformed start message");
    Memtrain__WorkerStart *ws = memtrain__worker_start__unpack(NULL, len, buf);
    free(buf);
    *startp = ws;
    if (!ws || !ws->spec)
        return send_done(w, MEMTRAIN__JOB_STATE__FAILED, "worker: malformed start message");
    w->job_id = ws->job_id;
    w->step_every = ws->step_every;
    w->memory_every_ms = ws->memory_every_ms ? (long)ws->memory_every_ms : 1000;
    spec_init(&w->spec);
    if (jobspec_to_spec(ws->spec, &w->spec, &err) || spec_finish(&w->spec, &err))
        return send_error(w, &err);
    if (owner_checks && data_check_reader(&w->spec.data, &owner, &err))
        return send_error(w, &err);
    if (ws->threads > 0)
        w->spec.threads = (int)ws->threads;
    /* A resume blob is held twice while it is restored (in the start
     * message and unpacked): the hard limit allows for both until then and
     * comes down to the job's own once they are freed, so a resume never
     * counts against the job's limit. */
    uint64_t held = ws->hard_limit ? resume_allowance(ws->resume.len) : 0;
    if (ws->hard_limit) {
        blas_warm_up(w->spec.threads);
        uint64_t lim = ws->hard_limit > UINT64_MAX - held ? UINT64_MAX : ws->hard_limit + held;
        if (set_hard_limit(w, lim, ws->hard_limit, &err))
            return send_error(w, &err);
    }

    /* the daemon planned the job at submit; plan here only without its plan */
    struct mt_mem_plan plan = {0};
    if (ws->planned)
        plan.total = ws->planned->peak_total;
    else if (trainer_plan(&w->spec, &plan, &err))
        return send_error(w, &err);
    send_planned(w, &plan, ws->planned);
    if (trainer_init_planned(&w->t, &w->spec, plan.total, &err))
        return w->broken ? 1 : send_error(w, &err);
    w->have_trainer = 1;
    trainer_set_step_fn(&w->t, on_step, w);
    if (ws->resume.len > 0 && resume(w, &ws->resume, &err))
        return w->broken ? 1 : send_error(w, &err);
    free(ws->resume.data);   /* free_unpacked skips a NULL field */
    ws->resume.data = NULL;
    ws->resume.len = 0;
    if (held && lower_hard_limit(w, ws->hard_limit, &err))
        return w->broken ? 1 : send_error(w, &err);
    send_log(w, "OpenBLAS core %s, %d threads", blas_corename(), par_job_threads());
    arena_interval_reset(w->t.arena);   /* the first sample's interval: training only */
    w->next_memory_ms = mono_ms() + w->memory_every_ms;
    return w->broken ? 1 : -1;
}

/* The job's owner (--owner UID). As root, become them before reading the
 * start message or any data file; pipes, rlimits and the checkpoints (sent
 * over stdout) are unaffected by the change of user. Otherwise their rights
 * are checked on the data files before the job loads them (check_owner). */
static int take_owner(const char *arg)
{
    char *end;
    struct mt_err err = {0};
    unsigned long uid = strtoul(arg, &end, 10);
    if (!*arg || *end || uid >= (uid_t)-1) {
        fprintf(stderr, "memtrain-worker: --owner: not a uid: '%s'\n", arg);
        return -1;
    }
    if ((uid_t)uid == geteuid())
        return 0;
    int root = geteuid() == 0;
    if (mt_creds_lookup((uid_t)uid, &owner, &err) ||
        (root && mt_creds_drop_process(&owner, &err))) {
        fprintf(stderr, "memtrain-worker: %s\n", err.msg);
        return -1;
    }
    owner_checks = !root;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--owner") == 0) {
        if (take_owner(argv[2]))
            return 1;
    } else if (argc > 1) {
        fputs("memtrain-worker: runs one job for memtraind, which writes a WorkerStart frame\n"
              "on its stdin; its only option, --owner UID, reads the data with UID's rights\n"
              "(as root: becomes UID, with its groups, before anything is read).\n",
              stderr);
        return 2;
    }
    /* Die with the daemon, even stopped (SIGKILL reaches a stopped
     * process): a restarted daemon resumes the job, which must not run
     * twice. If the daemon died before prctl, the parent has changed; if it
     * died before the first getppid, the first event write fails (EPIPE). */
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() != parent)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Events go to a private copy of stdout; whatever a library prints on
     * stdout lands on stderr instead of inside a frame. */
    static struct worker w;
    w.out = dup(1);
    if (w.out < 0 || dup2(2, 1) < 0) {
        fprintf(stderr, "memtrain-worker: dup: %s\n", strerror(errno));
        return 1;
    }
    Memtrain__WorkerStart *ws = NULL;
    int status = start(&w, &ws);
    if (status < 0)
        status = train(&w);
    if (w.have_trainer)
        trainer_fini(&w.t);
    hist_free(&w);
    if (ws)
        memtrain__worker_start__free_unpacked(ws, NULL);
    close(w.out);
    return status;
}
