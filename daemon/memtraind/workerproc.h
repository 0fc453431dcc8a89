/* workerproc.h: one memtrain-worker process per RUNNING job.
 *
 * The daemon spawns the worker with three pipes, writes the WorkerStart
 * frame on its stdin, reads WorkerEvent frames from its stdout and log lines
 * from its stderr. Every event is stored before it is passed to watchers.
 * When the process has exited and its pipes are drained, the job ends with
 * the worker's own verdict (WorkerDone) or, when it died without one, with
 * what the kernel says: the signal, an OOM kill, the exit status. */
#ifndef MT_WORKERPROC_H
#define MT_WORKERPROC_H

#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "job.h"

struct workerproc;

/* How the job table hears from the worker of one of its jobs. */
struct workerproc_hooks {
    /* The job's row changed (an epoch ended): store it, tell the watchers. */
    void (*changed)(struct daemon *d, struct job *j);
    /* The worker is gone and its pipes are drained: the job ends in `state`
     * for `reason` (j->w is already NULL; the job may be freed). */
    void (*finished)(struct daemon *d, struct job *j, int state, const char *reason);
};

/* Spawn the worker for j (j->w is set); resume is a packed CheckpointData
 * or NULL. The bytes are copied. `hooks` must outlive the worker. */
int workerproc_start(struct daemon *d, struct job *j, const uint8_t *resume, size_t resume_len,
                     const struct workerproc_hooks *hooks, struct mt_err *err);
int workerproc_pid(const struct workerproc *w);
/* SIGTERM now, SIGKILL after grace_ms: the job ends CANCELLED. */
void workerproc_cancel(struct workerproc *w, uint64_t grace_ms);
/* SIGUSR1 (checkpoint and stop) now, SIGKILL after grace_ms: INTERRUPTED. */
void workerproc_interrupt(struct workerproc *w, uint64_t grace_ms);

#endif
