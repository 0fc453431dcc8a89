/* workerproc.c: spawning and supervising memtrain-worker processes (workerproc.h). */
#define _GNU_SOURCE
#include "workerproc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "framereader.h"
#include "log.h"
#include "memtrain/utf8.h"
#include "memtrain/procstat.h"
#include "memtrain/clock.h"
#include "memtrain/wire.h"
#include "watch.h"

#define WORKER_READ_BUF (256 * 1024)
#define OPENBLAS_MAP_PER_THREAD (160ull << 20)

struct workerproc {
    struct daemon *d;
    struct job *job;              /* NULL once the job has been finished */
    const struct workerproc_hooks *hooks;
    uv_process_t proc;
    uv_pipe_t in, out, errp;
    uv_timer_t timer;             /* the grace period before SIGKILL */
    uv_write_t start_req;
    uint8_t *start_buf;
    size_t start_len;
    int open_handles;
    struct frame_reader fr;
    char *rbuf;
    int exited, out_done, err_done, finished;
    int64_t exit_status;
    int term_signal;
    int sent;                     /* 0, SIGTERM (cancel) or SIGUSR1 (interrupt) */
    int killed;                   /* we sent SIGKILL after the grace period */
    char oom_events[600];         /* the worker's own cgroup's memory.events, or "" */
    long oom_kills_before;        /* its oom_kill count at start; -1 unknown */
    int got_done;
    int done_state;
    char done_reason[MT_ERR_LEN];
    char line[1024];              /* stderr line being assembled */
    size_t line_len;
    int pid;
};

int workerproc_pid(const struct workerproc *w)
{
    return w ? w->pid : 0;
}

/* The cgroup v2 path of a process ("0::/path" in /proc/PID/cgroup) into
 * out; 0, or -1 when there is none. */
static int cgroup_of(const char *proc_file, char *out, size_t n)
{
    FILE *f = fopen(proc_file, "r");
    char line[512];
    int rc = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, n, "%s", line + 3);
            rc = 0;
            break;
        }
    fclose(f);
    return rc;
}

/* The oom_kill count of a cgroup's memory.events file, or -1. */
static long cgroup_oom_kills(const char *events)
{
    FILE *f = events[0] ? fopen(events, "r") : NULL;
    char key[64];
    long v, n = -1;
    if (!f)
        return -1;
    while (fscanf(f, "%63s %ld", key, &v) == 2)
        if (strcmp(key, "oom_kill") == 0) {
            n = v;
            break;
        }
    fclose(f);
    return n;
}

/* OOM evidence for this worker alone: its cgroup's memory.events when the
 * worker sits in a cgroup of its own (delegated: not memtraind's), never the
 * machine-wide /proc/vmstat count, which another process's OOM kill moves.
 * Without one, a SIGKILL is reported as the signal it is. */
static void oom_watch_start(struct workerproc *w)
{
    char mine[512], theirs[512], path[64];
    w->oom_events[0] = '\0';
    w->oom_kills_before = -1;
    snprintf(path, sizeof path, "/proc/%d/cgroup", w->pid);
    if (cgroup_of("/proc/self/cgroup", mine, sizeof mine) || cgroup_of(path, theirs, sizeof theirs) ||
        strcmp(mine, theirs) == 0)
        return;
    snprintf(w->oom_events, sizeof w->oom_events, "/sys/fs/cgroup%s/memory.events", theirs);
    w->oom_kills_before = cgroup_oom_kills(w->oom_events);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct workerproc *w = h->data;
    if (--w->open_handles == 0) {
        frame_reader_deinit(&w->fr);
        free(w->rbuf);
        free(w->start_buf);
        free(w);
    }
}

static void close_handle(struct workerproc *w, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/* Decide how the job ended, once the process is gone and its pipes drained. */
static void finish(struct workerproc *w)
{
    if (w->finished || !w->exited || !w->out_done || !w->err_done)
        return;
    w->finished = 1;
    struct daemon *d = w->d;
    struct job *j = w->job;
    int state;
    char reason[MT_ERR_LEN + 128];
    long oom_now = w->oom_kills_before >= 0 ? cgroup_oom_kills(w->oom_events) : -1;
    if (w->got_done) {
        state = w->done_state;
        snprintf(reason, sizeof reason, "%s", w->done_reason);
    } else if (w->sent == SIGTERM) {
        state = MEMTRAIN__JOB_STATE__CANCELLED;
        snprintf(reason, sizeof reason, "cancelled%s",
                 w->killed ? " (killed after the grace period)" : "");
    } else if (w->sent == SIGUSR1) {
        state = MEMTRAIN__JOB_STATE__INTERRUPTED;
        snprintf(reason, sizeof reason, "memtraind stopped%s",
                 w->killed ? " (the worker was killed after the grace period)" : "");
    } else if (w->term_signal == SIGKILL && oom_now > w->oom_kills_before &&
               w->oom_kills_before >= 0) {
        char a[32];
        uint64_t peak = j->sample ? j->sample->hwm_bytes : 0;
        state = MEMTRAIN__JOB_STATE__OUT_OF_MEMORY;
        snprintf(reason, sizeof reason,
                 "out of memory: killed by the kernel's OOM killer (signal 9) at %s resident",
                 mt_fmt_bytes(a, sizeof a, (double)peak));
    } else if (w->term_signal) {
        state = MEMTRAIN__JOB_STATE__FAILED;
        snprintf(reason, sizeof reason, "killed by signal %d (%s)", w->term_signal,
                 strsignal(w->term_signal));
    } else {
        state = MEMTRAIN__JOB_STATE__FAILED;
        snprintf(reason, sizeof reason, "the worker exited with status %lld without a result",
                 (long long)w->exit_status);
    }
    j->row.exit_code = w->term_signal ? -w->term_signal : (int32_t)w->exit_status;
    j->w = NULL;
    w->job = NULL;
    w->hooks->finished(d, j, state, reason);
    close_handle(w, (uv_handle_t *)&w->timer);
    close_handle(w, (uv_handle_t *)&w->proc);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct workerproc *w = p->data;
    w->exited = 1;
    w->exit_status = status;
    w->term_signal = sig;
    uv_timer_stop(&w->timer);
    finish(w);
}

static void store_err(struct workerproc *w, int rc, const struct mt_err *err)
{
    if (rc)
        log_err("job %llu: %s", (unsigned long long)w->job->row.id, err->msg);
}

static void set_measured(struct job *j, const Memtrain__MemoryStats *m)
{
    msg_pack_into(&j->row.measured, &j->row.measured_len, &m->base);
}

static void on_memory(struct workerproc *w, Memtrain__MemorySample *m)
{
    struct job *j = w->job;
    struct mt_err err = {0};
    struct mt_procstat ps;
    mt_procstat_read(w->pid, &ps, NULL);
    if (ps.hwm) {
        m->rss_bytes = ps.rss;
        m->hwm_bytes = ps.hwm;
    }
    if (!m->time)
        m->time = mt_now_ms();
    store_err(w, store_memory_add(w->d->store, j->row.id, m, &err), &err);
    if (m->peak) {
        m->peak->rss_peak_bytes = m->hwm_bytes;
        set_measured(j, m->peak);
    }
    Memtrain__WatchEvent ev = MEMTRAIN__WATCH_EVENT__INIT;
    ev.event_case = MEMTRAIN__WATCH_EVENT__EVENT_MEMORY;
    ev.memory = m;
    watch_event(w->d, j->row.id, j->row.owner_uid, &ev);
}

/* A worker's log line (its stderr, or a log event) is stored and echoed to
 * clients: scrubbed to UTF-8 first (a line cut at the buffer's end may split
 * a character; a library may print anything). */
static void on_log(struct workerproc *w, char *text)
{
    struct mt_err err = {0};
    mt_utf8_scrub(text);
    struct job *j = w->job;
    store_err(w, store_log_add(w->d->store, j->row.id, mt_now_ms(), text, &err), &err);
    watch_logs_poke(w->d, j->row.id);
}

/* An epoch's line in the job's log, as `mtctl watch` prints it without a
 * terminal: "epoch 2/3: loss 0.4321, train 85.20 %, test 84.10 %, 1.2 s,
 * 12345 samples/s". */
static void log_epoch(struct workerproc *w, const Memtrain__EpochProgress *e)
{
    char line[256];
    snprintf(line, sizeof line, "epoch %u/%u: loss %.4f, train %.2f %%, test %.2f %%, %.1f s, "
             "%.0f samples/s", e->epoch, w->job->row.epochs, e->loss, 100.0 * e->train_accuracy,
             100.0 * e->test_accuracy, e->seconds, e->samples_per_second);
    on_log(w, line);
}

/* Handle one event; the job takes ownership of parts it keeps (*ev fields
 * set to NULL so the caller's free skips them). */
static void on_event(struct workerproc *w, Memtrain__WorkerEvent *ev)
{
    struct job *j = w->job;
    struct daemon *d = w->d;
    struct mt_err err = {0};
    Memtrain__WatchEvent we = MEMTRAIN__WATCH_EVENT__INIT;
    switch (ev->event_case) {
    case MEMTRAIN__WORKER_EVENT__EVENT_PLANNED:
        msg_pack_into(&j->row.planned, &j->row.planned_len, &ev->planned->base);
        break;
    case MEMTRAIN__WORKER_EVENT__EVENT_STEP:
        store_err(w, store_step_add(d->store, j->row.id, ev->step, &err), &err);
        we.event_case = MEMTRAIN__WATCH_EVENT__EVENT_STEP;
        we.step = ev->step;
        watch_event(d, j->row.id, j->row.owner_uid, &we);
        break;
    case MEMTRAIN__WORKER_EVENT__EVENT_MEMORY:
        on_memory(w, ev->memory);
        if (j->sample)
            memtrain__memory_sample__free_unpacked(j->sample, NULL);
        j->sample = msg_copy(&ev->memory->base); /* the event is freed by the caller */
        break;
    case MEMTRAIN__WORKER_EVENT__EVENT_EPOCH: {
        Memtrain__EpochProgress *e = ev->epoch;
        store_err(w, store_epoch_add(d->store, j->row.id, e, &err), &err);
        log_epoch(w, e);
        if (j->last_epoch)
            memtrain__epoch_progress__free_unpacked(j->last_epoch, NULL);
        j->last_epoch = msg_copy(&e->base);
        j->row.epochs_done = e->epoch;
        if (e->memory)
            set_measured(j, e->memory);
        we.event_case = MEMTRAIN__WATCH_EVENT__EVENT_EPOCH;
        we.epoch = e;
        watch_event(d, j->row.id, j->row.owner_uid, &we);
        w->hooks->changed(d, j);
        break;
    }
    case MEMTRAIN__WORKER_EVENT__EVENT_CHECKPOINT: {
        Memtrain__CheckpointData *c = ev->checkpoint;
        size_t n;
        uint8_t *b = msg_pack(&c->base, &n);
        if (!b) {
            log_err("job %llu: out of memory storing a checkpoint", (unsigned long long)j->row.id);
            break;
        }
        uint32_t keep = j->spec.keep_checkpoints > 0 ? (uint32_t)j->spec.keep_checkpoints : 0;
        int rc = store_ckpt_add(d->store, j->row.id, c->epoch, mt_now_ms(), b, n, keep, &err);
        store_err(w, rc, &err);
        free(b);
        if (rc) {
            /* Say so where the owner looks (the job's log and, at its end,
             * its reason), not only in the daemon's log. */
            char line[256];
            j->ckpt_lost_epoch = c->epoch;
            snprintf(j->ckpt_lost_why, sizeof j->ckpt_lost_why, "%.150s", err.msg);
            snprintf(line, sizeof line, "checkpoint of epoch %u NOT stored: %.200s", c->epoch,
                     err.msg);
            on_log(w, line);
        } else {
            j->ckpt_lost_epoch = 0;
            char a[32], line[128];
            snprintf(line, sizeof line, "checkpoint stored: epoch %u%s, %s", c->epoch,
                     c->step_in_epoch ? " (mid-epoch)" : "", mt_fmt_bytes(a, sizeof a, (double)n));
            on_log(w, line);
        }
        break;
    }
    case MEMTRAIN__WORKER_EVENT__EVENT_DONE:
        w->got_done = 1;
        w->done_state = ev->done->state;
        snprintf(w->done_reason, sizeof w->done_reason, "%s",
                 ev->done->reason ? ev->done->reason : "");
        if (ev->done->measured)
            set_measured(j, ev->done->measured);
        break;
    case MEMTRAIN__WORKER_EVENT__EVENT_LOG:
        on_log(w, ev->log);
        break;
    default:
        break;
    }
}

static int on_frame(void *ud, const uint8_t *body, size_t len)
{
    struct workerproc *w = ud;
    Memtrain__WorkerEvent *ev = memtrain__worker_event__unpack(NULL, len, body);
    if (!ev) {
        log_err("job %llu: malformed message from the worker; stopping it",
                (unsigned long long)w->job->row.id);
        uv_process_kill(&w->proc, SIGKILL);
        return 1;
    }
    on_event(w, ev);
    memtrain__worker_event__free_unpacked(ev, NULL);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct workerproc *w = h->data;
    (void)hint;
    *buf = uv_buf_init(w->rbuf, WORKER_READ_BUF);
}

static void on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct workerproc *w = s->data;
    (void)buf;
    if (n == 0)
        return;
    if (n < 0 || w->finished) {
        uv_read_stop(s);
        w->out_done = 1;
        close_handle(w, (uv_handle_t *)s);
        finish(w);
        return;
    }
    struct mt_err err = {0};
    int rc = frame_reader_feed(&w->fr, (const uint8_t *)w->rbuf, (size_t)n, on_frame, w, &err);
    if (rc < 0) {
        log_err("job %llu: worker output: %s; stopping it", (unsigned long long)w->job->row.id,
                err.msg);
        uv_process_kill(&w->proc, SIGKILL);
    }
}

static void err_line(struct workerproc *w)
{
    if (w->line_len == 0)
        return;
    w->line[w->line_len] = '\0';
    log_info("job %llu: worker: %s", (unsigned long long)w->job->row.id, w->line);
    on_log(w, w->line);
    w->line_len = 0;
}

static void on_err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char b[4096]; /* the loop is single-threaded; the data is consumed at once */
    (void)h;
    (void)hint;
    *buf = uv_buf_init(b, sizeof b);
}

static void on_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct workerproc *w = s->data;
    if (n < 0) {
        if (!w->finished)
            err_line(w);
        uv_read_stop(s);
        w->err_done = 1;
        close_handle(w, (uv_handle_t *)s);
        finish(w);
        return;
    }
    for (ssize_t i = 0; i < n && !w->finished; i++) {
        char ch = buf->base[i];
        if (ch == '\n' || w->line_len == sizeof w->line - 1)
            err_line(w);
        if (ch != '\n')
            w->line[w->line_len++] = ch;
    }
}

static void on_start_written(uv_write_t *req, int status)
{
    struct workerproc *w = req->data;
    if (status < 0)
        log_warn("job %llu: writing the start message: %s",
                 w->job ? (unsigned long long)w->job->row.id : 0ULL, uv_strerror(status));
    close_handle(w, (uv_handle_t *)&w->in);
}

static void on_grace_over(uv_timer_t *t)
{
    struct workerproc *w = t->data;
    if (!w->exited) {
        w->killed = 1;
        log_warn("job %llu: worker did not stop within the grace period; SIGKILL",
                 (unsigned long long)w->job->row.id);
        uv_process_kill(&w->proc, SIGKILL);
    }
}

static void send_signal(struct workerproc *w, int sig, uint64_t grace_ms)
{
    if (w->exited || w->sent)
        return;
    w->sent = sig;
    uv_process_kill(&w->proc, sig);
    uv_timer_start(&w->timer, on_grace_over, grace_ms, 0);
}

void workerproc_cancel(struct workerproc *w, uint64_t grace_ms)
{
    send_signal(w, SIGTERM, grace_ms);
}

void workerproc_interrupt(struct workerproc *w, uint64_t grace_ms)
{
    send_signal(w, SIGUSR1, grace_ms);
}

/* The OpenBLAS threads a job's worker runs: the spec's, else the daemon's
 * threads_per_job, at least one. */
static int pack_threads(const struct daemon *d, const struct job *j)
{
    int t = j->spec.threads > 0 ? j->spec.threads : (int)d->cfg.threads_per_job;
    return t > 0 ? t : 1;
}

static int pack_start(struct daemon *d, struct job *j, const uint8_t *resume, size_t resume_len,
                      struct workerproc *w, struct mt_err *err)
{
    Memtrain__JobSpec *js = memtrain__job_spec__unpack(NULL, j->row.spec_len, j->row.spec);
    if (!js)
        return mt_err_set(err, MT_E_PROTO, "the stored spec does not unpack");
    Memtrain__WorkerStart st = MEMTRAIN__WORKER_START__INIT;
    st.job_id = j->row.id;
    st.spec = js;
    st.resume.data = (uint8_t *)resume;
    st.resume.len = resume ? resume_len : 0;
    st.planned = j->row.planned   /* the plan made at submit: the worker does not plan again */
        ? memtrain__memory_stats__unpack(NULL, j->row.planned_len, j->row.planned) : NULL;
    st.step_every = (uint32_t)d->cfg.step_every;
    st.memory_every_ms = (uint32_t)d->cfg.memory_sample_ms;
    st.threads = j->spec.threads > 0 ? 0 : (uint32_t)d->cfg.threads_per_job;
    /* RLIMIT_DATA counts address space: OpenBLAS maps about 128 MiB per
     * thread before the job allocates anything, so the backstop sits that
     * far above the arena's limit (plus the configured margin). */
    uint64_t threads = (uint64_t)pack_threads(d, j);
    st.hard_limit = j->spec.memory_limit
        ? j->spec.memory_limit + d->cfg.hard_limit_margin + threads * OPENBLAS_MAP_PER_THREAD
        : 0;
    w->start_buf = frame_pack(&st.base, &w->start_len);
    memtrain__job_spec__free_unpacked(js, NULL);
    if (st.planned)
        memtrain__memory_stats__free_unpacked(st.planned, NULL);
    return w->start_buf ? 0 : mt_err_set(err, MT_E_NOMEM, "out of memory for the start message");
}

/* The worker's environment: the daemon's, with OPENBLAS_NUM_THREADS set to
 * the job's thread count. malloc'd; free_env. */
static char **worker_env(int threads)
{
    extern char **environ;
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21) != 0)
            env[k++] = environ[i];
    char *mine = malloc(48);
    if (!mine) {
        free(env);
        return NULL;
    }
    snprintf(mine, 48, "OPENBLAS_NUM_THREADS=%d", threads);
    env[k] = mine; /* the last entry is the one this owns */
    return env;
}

static void free_env(char **env)
{
    size_t k = 0;
    while (env[k + 1])
        k++;
    free(env[k]);
    free(env);
}

int workerproc_start(struct daemon *d, struct job *j, const uint8_t *resume, size_t resume_len,
                     const struct workerproc_hooks *hooks, struct mt_err *err)
{
    struct workerproc *w = calloc(1, sizeof *w);
    if (!w || !(w->rbuf = malloc(WORKER_READ_BUF))) {
        free(w);
        return mt_err_set(err, MT_E_NOMEM, "out of memory starting a worker");
    }
    w->d = d;
    w->job = j;
    w->hooks = hooks;
    frame_reader_init(&w->fr, MT_FRAME_MAX_WORKER);
    int rc = pack_start(d, j, resume, resume_len, w, err);
    if (rc) {
        frame_reader_deinit(&w->fr);
        free(w->rbuf);
        free(w);
        return rc;
    }
    uv_pipe_init(d->loop, &w->in, 0);
    uv_pipe_init(d->loop, &w->out, 0);
    uv_pipe_init(d->loop, &w->errp, 0);
    uv_timer_init(d->loop, &w->timer);
    w->in.data = w->out.data = w->errp.data = w->timer.data = w->proc.data = w;
    w->start_req.data = w;
    w->open_handles = 5; /* in, out, errp, timer, proc */

    /* The worker reads the job's data with its owner's rights (memtrain-worker
     * --owner: as root it becomes that user before it opens anything). */
    char uid_arg[24];
    snprintf(uid_arg, sizeof uid_arg, "%u", (unsigned)j->row.owner_uid);
    char *args[] = {d->cfg.worker_path, "--owner", uid_arg, NULL};
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&w->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&w->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&w->errp;
    /* OpenBLAS sizes its buffers by the thread count it starts with: the
     * worker's is the job's, which the hard limit allows for (another count
     * from the daemon's environment could make OpenBLAS map a buffer the
     * limit refuses, and it retries such a map forever). */
    char **env = worker_env(pack_threads(d, j));
    if (!env) {
        frame_reader_deinit(&w->fr);
        free(w->start_buf);
        free(w->rbuf);
        free(w);
        return mt_err_set(err, MT_E_NOMEM, "out of memory starting a worker");
    }
    uv_process_options_t opt = {0};
    opt.file = d->cfg.worker_path;
    opt.args = args;
    opt.env = env;
    opt.exit_cb = on_exit_cb;
    opt.stdio_count = 3;
    opt.stdio = stdio;
    rc = uv_spawn(d->loop, &w->proc, &opt);
    free_env(env);
    if (rc < 0) {
        mt_err_set(err, MT_E_IO, "cannot start the worker %s: %s", d->cfg.worker_path,
                   uv_strerror(rc));
        /* The process handle must be closed even when spawn fails. */
        w->finished = 1;
        close_handle(w, (uv_handle_t *)&w->in);
        close_handle(w, (uv_handle_t *)&w->out);
        close_handle(w, (uv_handle_t *)&w->errp);
        close_handle(w, (uv_handle_t *)&w->timer);
        close_handle(w, (uv_handle_t *)&w->proc);
        return MT_E_IO;
    }
    w->pid = w->proc.pid;
    oom_watch_start(w);
    j->w = w;
    uv_buf_t b = uv_buf_init((char *)w->start_buf, (unsigned)w->start_len);
    if ((rc = uv_write(&w->start_req, (uv_stream_t *)&w->in, &b, 1, on_start_written)) < 0) {
        log_err("job %llu: writing the start message: %s", (unsigned long long)j->row.id,
                uv_strerror(rc));
        close_handle(w, (uv_handle_t *)&w->in);
    }
    uv_read_start((uv_stream_t *)&w->out, on_alloc, on_out);
    uv_read_start((uv_stream_t *)&w->errp, on_err_alloc, on_err);
    return 0;
}
