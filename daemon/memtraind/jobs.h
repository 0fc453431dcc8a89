/* jobs.h: the job table, the queue and the scheduler.
 *
 * Only QUEUED and RUNNING jobs live in memory (d->jobs); every job, live or
 * ended, has its row in the store, which is written on every state change
 * before anyone is told. Admission is by memory: a job starts only when its
 * planned peak fits in the daemon's budget beside the running jobs' plans,
 * in priority order (then submit order); the head of the queue is never
 * overtaken, so a big job cannot starve. */
#ifndef MT_JOBS_H
#define MT_JOBS_H

#include <stdint.h>
#include <sys/types.h>

#include "daemon.h"
#include "labels.h"
#include "job.h"
#include "memtrain.pb-c.h"
#include "spec.h"

/* At start: RUNNING jobs left by a daemon that died become INTERRUPTED and
 * are queued again (they resume from their newest checkpoint); QUEUED jobs
 * are queued. */
/* Whether pid is still the worker process that started at `start` (ticks
 * after boot, /proc/PID/stat field 22) under the name memtrain-worker. */
int jobs_leftover_worker(int pid, uint64_t start);
int jobs_load(struct daemon *d, struct mt_err *err);

/* The plan of a resolved spec as MemoryStats (the dataset's files are read
 * for their sizes). */
int jobs_plan(const struct mt_spec *s, Memtrain__MemoryStats *out, struct mt_err *err);

/* The largest memory_limit a job may ask for (1 EiB): the worker's hard
 * limit adds the margin and OpenBLAS's maps to it without overflowing. */
#define JOBS_LIMIT_MAX (1ull << 60)

/* Admission: may a job whose plan peaks at `peak` bytes run here? It must
 * fit its own memory limit (`limit`, 0 = none) and what memtraind allows
 * one job (max_job_memory, else the whole memory_budget; 0 = no cap); the
 * limit itself may not exceed that cap nor JOBS_LIMIT_MAX.
 * 0, or MT_E_LIMIT with the reason in err (may be NULL). Submit refuses
 * with it; plan reports it as `fits`. */
int jobs_admit(const struct mt_config *cfg, uint64_t limit, uint64_t peak, struct mt_err *err);

/* jobs_submit's group for a job that leads a new one (group id = its id). */
#define JOBS_GROUP_NEW UINT64_MAX

/* Check, plan and queue a spec (not yet resolved) with its encoded labels
 * (labels.h; NULL = none), in `group` (0 = none, a leader's id, or
 * JOBS_GROUP_NEW; the caller checked it). On refusal: *status says why
 * (INVALID, OVER_LIMIT) with the message in err. */
int jobs_submit(struct daemon *d, uid_t owner, struct mt_spec *spec, int32_t priority,
                const char *labels, uint64_t group, struct job **out,
                Memtrain__Status *status, struct mt_err *err);

struct job *jobs_find(struct daemon *d, uint64_t id);

/* Cancel a live job: QUEUED ends at once; RUNNING gets SIGTERM, then
 * SIGKILL after the grace period; either way it ends CANCELLED. */
void jobs_cancel(struct daemon *d, struct job *j);

/* Start what fits. */
void jobs_schedule(struct daemon *d);

/* SIGTERM: ask every worker to checkpoint and stop (their jobs end
 * INTERRUPTED and are resumed at the next start). */
void jobs_shutdown(struct daemon *d);
/* Free every live job (workers must be gone). */
void jobs_free_all(struct daemon *d);

/* A Job message for a store row (plus the live job, if any). The message
 * and what hangs off it are owned by `m`; jobmsg_free releases them. */
struct jobmsg {
    Memtrain__Job job;
    Memtrain__MemoryStats *planned, *measured;
    Memtrain__EpochProgress *last;
    Memtrain__MemorySample *sample;
    struct labels_msg labels;
};
void jobmsg_init(struct jobmsg *m, struct daemon *d, const struct store_job *row,
                 const struct job *live);
void jobmsg_free(struct jobmsg *m);

const char *job_state_name(int state);
int job_state_final(int state);

#endif
