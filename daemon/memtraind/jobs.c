/* jobs.c: the job table, admission by memory and the queue (jobs.h). */
#include "jobs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "jobspec.h"
#include "log.h"
#include "memstats.h"
#include "memtrain/clock.h"
#include "memtrain/procstat.h"
#include "promfile.h"
#include "train.h"
#include "watch.h"
#include "workerproc.h"

const char *job_state_name(int state)
{
    switch (state) {
    case MEMTRAIN__JOB_STATE__QUEUED: return "QUEUED";
    case MEMTRAIN__JOB_STATE__RUNNING: return "RUNNING";
    case MEMTRAIN__JOB_STATE__COMPLETED: return "COMPLETED";
    case MEMTRAIN__JOB_STATE__FAILED: return "FAILED";
    case MEMTRAIN__JOB_STATE__CANCELLED: return "CANCELLED";
    case MEMTRAIN__JOB_STATE__OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case MEMTRAIN__JOB_STATE__INTERRUPTED: return "INTERRUPTED";
    }
    return "UNSPECIFIED";
}

int job_state_final(int state)
{
    return state == MEMTRAIN__JOB_STATE__COMPLETED || state == MEMTRAIN__JOB_STATE__FAILED ||
           state == MEMTRAIN__JOB_STATE__CANCELLED || state == MEMTRAIN__JOB_STATE__OUT_OF_MEMORY;
}

int jobs_plan(const struct mt_spec *s, Memtrain__MemoryStats *out, struct mt_err *err)
{
    struct mt_mem_plan p;
    int rc = trainer_plan(s, &p, err);
    if (rc)
        return rc;
    memstats_from_plan(out, &p);
    return 0;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    store_job_clear(&j->row);
    if (j->sample)
        memtrain__memory_sample__free_unpacked(j->sample, NULL);
    if (j->last_epoch)
        memtrain__epoch_progress__free_unpacked(j->last_epoch, NULL);
    free(j);
}

/* Append in submit order (ids increase). */
static void link_job(struct daemon *d, struct job *j)
{
    struct job **p = &d->jobs;
    while (*p)
        p = &(*p)->next;
    j->next = NULL;
    *p = j;
}

static void unlink_job(struct daemon *d, struct job *j)
{
    for (struct job **p = &d->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            return;
        }
}

struct job *jobs_find(struct daemon *d, uint64_t id)
{
    for (struct job *j = d->jobs; j; j = j->next)
        if (j->row.id == id)
            return j;
    return NULL;
}

static void store_row(struct daemon *d, struct job *j)
{
    struct mt_err err = {0};
    if (store_job_update(d->store, &j->row, &err))
        log_err("job %llu: %s", (unsigned long long)j->row.id, err.msg);
}

/* Store the job's row and tell its watchers its state. */
static void jobs_changed(struct daemon *d, struct job *j)
{
    store_row(d, j);
    struct jobmsg m;
    jobmsg_init(&m, d, &j->row, j);
    Memtrain__WatchEvent ev = MEMTRAIN__WATCH_EVENT__INIT;
    ev.event_case = MEMTRAIN__WATCH_EVENT__EVENT_JOB;
    ev.job = &m.job;
    watch_event(d, j->row.id, j->row.owner_uid, &ev);
    jobmsg_free(&m);
    promfile_kick(d);
}

/* A live job from its stored row: the spec is unpacked and resolved again. */
static int job_from_row(struct store_job *row, struct job **out, struct mt_err *err)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    j->row = *row;
    memset(row, 0, sizeof *row); /* the job owns the row's strings now */
    spec_init(&j->spec);
    int rc = jobspec_unpack(j->row.spec, j->row.spec_len, &j->spec, err);
    if (!rc)
        rc = spec_finish(&j->spec, err);
    if (rc) {
        job_free(j);
        return rc;
    }
    Memtrain__MemoryStats *p = j->row.planned
        ? memtrain__memory_stats__unpack(NULL, j->row.planned_len, j->row.planned) : NULL;
    j->planned_total = p ? p->peak_total : 0;
    if (p)
        memtrain__memory_stats__free_unpacked(p, NULL);
    *out = j;
    return 0;
}

struct load_ctx {
    struct daemon *d;
    uint64_t *ids;
    size_t n, cap;
};

static int collect_id(void *ud, const struct store_job *row)
{
    struct load_ctx *c = ud;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        uint64_t *ids = realloc(c->ids, cap * sizeof *ids);
        if (!ids)
            return MT_E_NOMEM;
        c->ids = ids;
        c->cap = cap;
    }
    c->ids[c->n++] = row->id;
    return 0;
}

int jobs_leftover_worker(int pid, uint64_t start)
{
    char comm[16];
    uint64_t now;
    return pid > 0 && start && mt_proc_identity(pid, &now, comm) == 0 && now == start &&
           strcmp(comm, "memtrain-worker") == 0;
}

/* Kill job id's worker when it is still there (same pid, same start time,
 * named memtrain-worker) and wait up to 5 s for it to be gone. */
static void stop_leftover_worker(uint64_t id, int pid, uint64_t start)
{
    if (!jobs_leftover_worker(pid, start))
        return;
    log_warn("job %llu: its worker (pid %d) outlived the last memtraind; killing it before "
             "the job resumes", (unsigned long long)id, pid);
    kill(pid, SIGKILL);
    for (int i = 0; i < 500 && jobs_leftover_worker(pid, start); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (jobs_leftover_worker(pid, start))
        log_err("job %llu: its old worker (pid %d) is still there after SIGKILL", (unsigned long long)id,
                pid);
}

int jobs_load(struct daemon *d, struct mt_err *err)
{
    struct load_ctx c = {d, NULL, 0, 0};
    uint32_t mask = 1u << MEMTRAIN__JOB_STATE__QUEUED | 1u << MEMTRAIN__JOB_STATE__RUNNING |
                    1u << MEMTRAIN__JOB_STATE__INTERRUPTED;
    int rc = store_jobs_each(d->store, -1, mask, 0, collect_id, &c, err);
    if (rc) {
        free(c.ids);
        return rc;
    }
    /* The walk is newest first; queue oldest first. */
    for (size_t i = c.n; i-- > 0;) {
        struct store_job row = {0};
        struct job *j = NULL;
        if ((rc = store_job_get(d->store, c.ids[i], &row, err)))
            break;
        uint64_t id = row.id;
        int was = row.state;
        if ((rc = job_from_row(&row, &j, err))) {
            log_err("job %llu: cannot requeue: %s", (unsigned long long)id, err->msg);
            store_job_clear(&row);
            if (store_job_get(d->store, id, &row, err) == 0) {
                row.state = MEMTRAIN__JOB_STATE__FAILED;
                free(row.reason);
                row.reason = strdup("could not be resumed: its stored spec is invalid");
                row.finished_at = mt_now_ms();
                store_job_update(d->store, &row, err);
                store_job_clear(&row);
            }
            rc = 0;
            continue;
        }
        if (was == MEMTRAIN__JOB_STATE__RUNNING) {
            /* The daemon died under it: its worker must be gone before the
             * job runs again (it dies with the daemon, PR_SET_PDEATHSIG; a
             * worker that outlived it anyway is stopped here). */
            stop_leftover_worker(id, j->row.worker_pid, j->row.worker_start);
            j->row.worker_pid = 0;
            j->row.worker_start = 0;
            /* Record that first. */
            j->row.state = MEMTRAIN__JOB_STATE__INTERRUPTED;
            free(j->row.reason);
            j->row.reason = strdup("memtraind stopped while the job ran");
            store_row(d, j);
            log_warn("job %llu was RUNNING when memtraind stopped: INTERRUPTED",
                     (unsigned long long)id);
        }
        if (j->row.state == MEMTRAIN__JOB_STATE__INTERRUPTED) {
            j->row.resumes++;
            free(j->row.reason);
            j->row.reason = strdup("resuming after an interruption");
            log_info("job %llu: queued again to resume from its newest checkpoint",
                     (unsigned long long)id);
        }
        j->row.state = MEMTRAIN__JOB_STATE__QUEUED;
        store_row(d, j);
        link_job(d, j);
    }
    free(c.ids);
    return rc;
}

int jobs_admit(const struct mt_config *cfg, uint64_t limit, uint64_t peak, struct mt_err *err)
{
    char a[32], b[32];
    const char *key;
    uint64_t cap = config_job_cap(cfg, &key);
    if (cap && limit > cap)
        return mt_err_set(err, MT_E_LIMIT, "the job's memory limit %s (%llu bytes) is more than "
                          "the %s memtraind allows a job (its %s); ask for at most that",
                          mt_fmt_bytes(a, sizeof a, (double)limit), (unsigned long long)limit,
                          mt_fmt_bytes(b, sizeof b, (double)cap), key);
    if (limit > JOBS_LIMIT_MAX)   /* the worker's hard limit adds a margin to it: keep room */
        return mt_err_set(err, MT_E_LIMIT, "the job's memory limit %s (%llu bytes) is more than "
                          "the largest memtraind can enforce, %s",
                          mt_fmt_bytes(a, sizeof a, (double)limit), (unsigned long long)limit,
                          mt_fmt_bytes(b, sizeof b, (double)JOBS_LIMIT_MAX));
    if (limit && peak > limit)
        return mt_err_set(err, MT_E_LIMIT, "the plan needs %s (%llu bytes) but the job's memory "
                          "limit is %s", mt_fmt_bytes(a, sizeof a, (double)peak),
                          (unsigned long long)peak, mt_fmt_bytes(b, sizeof b, (double)limit));
    if (cap && peak > cap)
        return mt_err_set(err, MT_E_LIMIT, "the plan needs %s (%llu bytes), more than the %s "
                          "memtraind allows a job (its %s)", mt_fmt_bytes(a, sizeof a, (double)peak),
                          (unsigned long long)peak, mt_fmt_bytes(b, sizeof b, (double)cap), key);
    return 0;
}

int jobs_submit(struct daemon *d, uid_t owner, struct mt_spec *spec, int32_t priority,
                const char *labels, uint64_t group, struct job **out,
                Memtrain__Status *status, struct mt_err *err)
{
    char a[32];
    *status = MEMTRAIN__STATUS__INVALID;
    if (spec->memory_limit == 0)
        spec->memory_limit = config_job_default_limit(&d->cfg);
    int rc = spec_finish(spec, err);
    if (rc)
        return rc;
    Memtrain__MemoryStats plan;
    if ((rc = jobs_plan(spec, &plan, err)))
        return rc;
    if ((rc = jobs_admit(&d->cfg, spec->memory_limit, plan.peak_total, err))) {
        *status = MEMTRAIN__STATUS__OVER_LIMIT;
        return rc;
    }
    if (d->stopping) {
        *status = MEMTRAIN__STATUS__UNAVAILABLE;
        return mt_err_set(err, MT_E_BUSY, "memtraind is stopping");
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        *status = MEMTRAIN__STATUS__ERROR;
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    }
    j->spec = *spec;
    j->planned_total = plan.peak_total;
    struct store_job *r = &j->row;
    r->name = strdup(spec->name[0] ? spec->name : "job");
    r->owner_uid = owner;
    r->state = MEMTRAIN__JOB_STATE__QUEUED;
    r->reason = strdup("");
    r->priority = priority;
    r->submitted_at = mt_now_ms();
    r->rule = strdup(spec->rule.name);
    r->epochs = (uint32_t)spec->epochs;
    r->memory_limit = spec->memory_limit;
    r->labels = strdup(labels ? labels : "");
    r->group_id = group == JOBS_GROUP_NEW ? 0 : group;
    if (!r->labels) {
        *status = MEMTRAIN__STATUS__ERROR;
        job_free(j);
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    }
    msg_pack_into(&r->planned, &r->planned_len, &plan.base);
    if ((rc = jobspec_pack(spec, &r->spec, &r->spec_len, err)) ||
        (rc = store_job_insert(d->store, r, err))) {
        *status = MEMTRAIN__STATUS__ERROR;
        job_free(j);
        return rc;
    }
    if (group == JOBS_GROUP_NEW) {   /* a group is named by its first job */
        r->group_id = r->id;
        store_row(d, j);
    }
    link_job(d, j);
    log_info("job %llu submitted by uid %u: %s, rule %s, plan %s",
             (unsigned long long)r->id, (unsigned)owner, r->name, r->rule,
             mt_fmt_bytes(a, sizeof a, (double)plan.peak_total));
    *status = MEMTRAIN__STATUS__OK;
    *out = j;
    promfile_kick(d);
    return 0;
}

static uint64_t reserved_bytes(struct daemon *d)
{
    uint64_t sum = 0;
    for (struct job *j = d->jobs; j; j = j->next)
        if (j->row.state == MEMTRAIN__JOB_STATE__RUNNING)
            sum += j->planned_total;
    return sum;
}

/* The next job to start: highest priority, then oldest. */
static struct job *queue_head(struct daemon *d)
{
    struct job *best = NULL;
    for (struct job *j = d->jobs; j; j = j->next)
        if (j->row.state == MEMTRAIN__JOB_STATE__QUEUED && !j->cancel_requested &&
            (!best || j->row.priority > best->row.priority))
            best = j;
    return best;
}

static void jobs_finish(struct daemon *d, struct job *j, int state, const char *reason);

/* What a worker tells the job table. */
static const struct workerproc_hooks worker_hooks = {jobs_changed, jobs_finish};

struct ckpt_epochs {
    uint32_t epoch[64];
    size_t n;
};

/* The epochs of a job's checkpoints, oldest first (the newest 64). */
static int ckpt_epoch_add(void *ud, uint32_t epoch, int64_t time_ms, uint64_t bytes)
{
    (void)time_ms;
    (void)bytes;
    struct ckpt_epochs *e = ud;
    if (e->n < sizeof e->epoch / sizeof e->epoch[0])
        e->epoch[e->n++] = epoch;
    else {
        memmove(e->epoch, e->epoch + 1, sizeof e->epoch - sizeof e->epoch[0]);
        e->epoch[e->n - 1] = epoch;
    }
    return 0;
}

/* The newest checkpoint whose blob unpacks (format and epoch as stored):
 * a corrupt newer one is skipped, and the job's log names it and the
 * epoch resumed from. Nothing found: *blob stays NULL (start over). */
static void resume_pick(struct daemon *d, struct job *j, uint8_t **blob, size_t *len,
                        uint32_t *epoch)
{
    struct mt_err err = {0};
    struct ckpt_epochs e = {0};
    unsigned long long id = (unsigned long long)j->row.id;
    if (store_ckpts_each(d->store, j->row.id, ckpt_epoch_add, &e, &err)) {
        log_err("job %llu: %s; starting over", id, err.msg);
        return;
    }
    char bad[512] = "";
    for (size_t i = e.n; i-- > 0;) {
        uint8_t *b = NULL;
        size_t n = 0;
        if (store_ckpt_get(d->store, j->row.id, e.epoch[i], &b, &n, NULL, &err)) {
            log_err("job %llu: %s", id, err.msg);
            continue;
        }
        Memtrain__CheckpointData *cd = memtrain__checkpoint_data__unpack(NULL, n, b);
        const char *why = !cd ? "it does not unpack"
                          : cd->format != 1 ? "unknown format"
                          : cd->epoch != e.epoch[i] ? "its epoch differs from the stored one"
                                                    : NULL;
        if (cd)
            memtrain__checkpoint_data__free_unpacked(cd, NULL);
        if (why) {
            free(b);
            if (!bad[0])
                snprintf(bad, sizeof bad, "checkpoint of epoch %u is corrupt (%s)",
                         (unsigned)e.epoch[i], why);
            continue;
        }
        *blob = b;
        *len = n;
        *epoch = e.epoch[i];
        break;
    }
    if (bad[0]) {
        char line[600];
        if (*blob)
            snprintf(line, sizeof line, "%s; resuming from epoch %u", bad, (unsigned)*epoch);
        else
            snprintf(line, sizeof line, "%s; no intact checkpoint, starting over", bad);
        log_err("job %llu: %s", id, line);
        store_log_add(d->store, j->row.id, mt_now_ms(), line, &err);
    }
}

static void start_job(struct daemon *d, struct job *j)
{
    struct mt_err err = {0};
    uint8_t *resume = NULL;
    size_t resume_len = 0;
    uint32_t epoch = 0;
    if (j->row.resumes > 0)
        resume_pick(d, j, &resume, &resume_len, &epoch);
    j->waiting[0] = '\0';
    j->row.state = MEMTRAIN__JOB_STATE__RUNNING;
    j->row.started_at = mt_now_ms();
    free(j->row.reason);
    j->row.reason = strdup(resume ? "resumed from a checkpoint" : "");
    if (workerproc_start(d, j, resume, resume_len, &worker_hooks, &err)) {
        free(resume);
        log_err("job %llu: %s", (unsigned long long)j->row.id, err.msg);
        j->row.state = MEMTRAIN__JOB_STATE__RUNNING; /* jobs_finish expects a started job */
        d->running++;
        jobs_finish(d, j, MEMTRAIN__JOB_STATE__FAILED, err.msg);
        return;
    }
    free(resume);
    d->running++;
    /* Who the worker is, so a daemon started after this one dies can tell
     * a leftover worker from a process that later took its pid. */
    char comm[16];
    j->row.worker_pid = workerproc_pid(j->w);
    if (mt_proc_identity(j->row.worker_pid, &j->row.worker_start, comm))
        j->row.worker_start = 0;
    log_info("job %llu started (worker pid %d)%s", (unsigned long long)j->row.id,
             workerproc_pid(j->w), resume_len ? ", resuming" : "");
    jobs_changed(d, j);
}

void jobs_schedule(struct daemon *d)
{
    char a[32], b[32];
    while (!d->stopping) {
        struct job *j = queue_head(d);
        if (!j)
            return;
        uint64_t used = reserved_bytes(d), budget = d->cfg.memory_budget;
        uint64_t free_b = budget > used ? budget - used : 0;
        const char *why = NULL;
        char msg[160];
        if ((uint32_t)d->running >= d->cfg.slots) {
            snprintf(msg, sizeof msg, "waiting for a free slot, %d of %u in use", d->running,
                     d->cfg.slots);
            why = msg;
        } else if (budget && j->planned_total > free_b) {
            snprintf(msg, sizeof msg, "waiting for %s of the memory budget, %s free",
                     mt_fmt_bytes(a, sizeof a, (double)j->planned_total),
                     mt_fmt_bytes(b, sizeof b, (double)free_b));
            why = msg;
        }
        if (why) {
            /* Every queued job waits behind the head; tell each why. */
            for (struct job *q = d->jobs; q; q = q->next)
                if (q->row.state == MEMTRAIN__JOB_STATE__QUEUED) {
                    if (q == j)
                        snprintf(q->waiting, sizeof q->waiting, "%s", why);
                    else
                        snprintf(q->waiting, sizeof q->waiting, "behind job %llu, which is %s",
                                 (unsigned long long)j->row.id, why);
                }
            return;
        }
        start_job(d, j);
    }
}

void jobs_cancel(struct daemon *d, struct job *j)
{
    if (j->cancel_requested)
        return;
    j->cancel_requested = 1;
    if (j->row.state == MEMTRAIN__JOB_STATE__QUEUED) {
        j->row.state = MEMTRAIN__JOB_STATE__RUNNING; /* so jobs_finish treats it alike */
        d->running++;
        jobs_finish(d, j, MEMTRAIN__JOB_STATE__CANCELLED, "cancelled before it started");
        return;
    }
    workerproc_cancel(j->w, d->cfg.cancel_grace_ms);
}

/* The worker of a RUNNING job has ended (or a job is ended before it
 * started, counted as running): record the state and reason, tell the
 * watchers, free the job, start the next ones. */
/* A job whose last checkpoint the store refused: its reason says which
 * epoch was lost, why, and which one `ckpt export` gives instead. */
static void lost_ckpt_reason(struct daemon *d, const struct job *j, const char *reason,
                             char *out, size_t cap)
{
    struct ckpt_epochs e = {0};
    struct mt_err err = {0};
    uint32_t newest = 0;
    int rc = store_ckpts_each(d->store, j->row.id, ckpt_epoch_add, &e, &err);
    for (size_t i = 0; i < e.n; i++)
        if (e.epoch[i] > newest)
            newest = e.epoch[i];
    char have[160];
    if (rc)
        snprintf(have, sizeof have, "which checkpoints are stored could not be read (%.100s)",
                 err.msg);
    else if (newest)
        snprintf(have, sizeof have, "the newest stored is epoch %u", newest);
    else
        snprintf(have, sizeof have, "none is stored");
    snprintf(out, cap, "%s%sthe checkpoint of epoch %u was not stored (%s); %s",
             reason && *reason ? reason : "", reason && *reason ? "; " : "", j->ckpt_lost_epoch,
             j->ckpt_lost_why, have);
}

static void jobs_finish(struct daemon *d, struct job *j, int state, const char *reason)
{
    struct store_job *r = &j->row;
    char lost[512];
    if (j->ckpt_lost_epoch) {
        lost_ckpt_reason(d, j, reason, lost, sizeof lost);
        reason = lost;
        log_warn("job %llu: %s", (unsigned long long)r->id, lost);
    }
    d->running--;
    r->state = state;
    r->worker_pid = 0;
    r->worker_start = 0;
    free(r->reason);
    r->reason = strdup(reason ? reason : "");
    r->finished_at = state == MEMTRAIN__JOB_STATE__INTERRUPTED ? 0 : mt_now_ms();
    if (j->last_epoch)
        r->epochs_done = j->last_epoch->epoch;
    store_row(d, j);
    struct mt_err err = {0};
    /* the job's log ends with how it ended: `mtctl logs` of a FAILED job
     * says why */
    char line[MT_ERR_LEN + 640];
    snprintf(line, sizeof line, "%s%s%s", job_state_name(state), r->reason[0] ? ": " : "",
             r->reason);
    if (store_log_add(d->store, r->id, mt_now_ms(), line, &err))
        log_err("job %llu: %s", (unsigned long long)r->id, err.msg);
    if (store_flush(d->store, &err))
        log_err("job %llu: %s", (unsigned long long)r->id, err.msg);
    log_info("job %llu %s%s%s", (unsigned long long)r->id, job_state_name(state),
             r->reason[0] ? ": " : "", r->reason);
    struct jobmsg m;
    jobmsg_init(&m, d, r, j);
    watch_job_ended(d, r->id, r->owner_uid, &m.job);
    jobmsg_free(&m);
    unlink_job(d, j);
    job_free(j);
    jobs_schedule(d);
    promfile_kick(d);
}

void jobs_shutdown(struct daemon *d)
{
    for (struct job *j = d->jobs; j; j = j->next)
        if (j->w)
            workerproc_interrupt(j->w, d->cfg.cancel_grace_ms);
}

void jobs_free_all(struct daemon *d)
{
    while (d->jobs) {
        struct job *j = d->jobs;
        d->jobs = j->next;
        job_free(j);
    }
}

static int keep_last_epoch(void *ud, const Memtrain__EpochProgress *e)
{
    Memtrain__EpochProgress **last = ud;
    if (*last)
        memtrain__epoch_progress__free_unpacked(*last, NULL);
    *last = msg_copy(&e->base);
    return *last ? 0 : MT_E_NOMEM;
}

void jobmsg_init(struct jobmsg *m, struct daemon *d, const struct store_job *row,
                 const struct job *live)
{
    memset(m, 0, sizeof *m);
    Memtrain__Job *j = &m->job;
    memtrain__job__init(j);
    j->id = row->id;
    j->name = row->name ? row->name : "";
    j->owner_uid = row->owner_uid;
    j->state = row->state;
    j->reason = row->reason ? row->reason : "";
    j->submitted_at = row->submitted_at;
    j->started_at = row->started_at;
    j->finished_at = row->finished_at;
    j->rule = row->rule ? row->rule : "";
    j->epochs_done = row->epochs_done;
    j->epochs = row->epochs;
    j->priority = row->priority;
    j->memory_limit = row->memory_limit;
    j->exit_code = row->exit_code;
    j->group_id = row->group_id;
    if (labels_decode(row->labels, &m->labels) == 0) {  /* none when out of memory */
        j->n_labels = m->labels.n;
        j->labels = m->labels.ptrs;
    }
    /* A running job's figures move with every sample and epoch; the stored
     * row has them only as of its last write. */
    const struct store_job *mem = live ? &live->row : row;
    if (mem->planned)
        j->planned = m->planned = memtrain__memory_stats__unpack(NULL, mem->planned_len,
                                                                  mem->planned);
    if (mem->measured)
        j->measured = m->measured = memtrain__memory_stats__unpack(NULL, mem->measured_len,
                                                                    mem->measured);
    if (live && live->last_epoch)
        m->last = msg_copy(&live->last_epoch->base);
    else
        store_epochs_each(d->store, row->id, keep_last_epoch, &m->last, NULL);
    j->last_epoch = m->last;
    if (live) {
        if (live->sample)
            j->memory = m->sample = msg_copy(&live->sample->base);
        if (row->state == MEMTRAIN__JOB_STATE__QUEUED)
            j->waiting = (char *)live->waiting;
    }
    if (!j->waiting)
        j->waiting = "";
}

void jobmsg_free(struct jobmsg *m)
{
    if (m->planned)
        memtrain__memory_stats__free_unpacked(m->planned, NULL);
    if (m->measured)
        memtrain__memory_stats__free_unpacked(m->measured, NULL);
    if (m->last)
        memtrain__epoch_progress__free_unpacked(m->last, NULL);
    if (m->sample)
        memtrain__memory_sample__free_unpacked(m->sample, NULL);
    labels_free(&m->labels);
}
