/* job.h: one live job, as the job table (jobs.c) keeps it and its worker
 * (workerproc.c) updates it.
 *
 * Only QUEUED and RUNNING jobs are live. The job table owns every struct
 * job; the worker of a RUNNING job writes the figures its events bring
 * (planned, measured, the latest sample and epoch) and tells the table of
 * changes and of the end through its hooks (workerproc.h), never by
 * calling into jobs.c. */
#ifndef MT_JOB_H
#define MT_JOB_H

#include <stdint.h>

#include "memtrain.pb-c.h"
#include "spec.h"
#include "store.h"

struct workerproc;

struct job {
    struct job *next;
    struct store_job row;         /* mirror of the store's row */
    struct mt_spec spec;          /* resolved (spec_finish has run) */
    uint64_t planned_total;       /* bytes: what admission reserves */
    struct workerproc *w;             /* while RUNNING */
    char waiting[256];            /* QUEUED: why it has not started */
    Memtrain__MemorySample *sample;   /* latest, owned (free_unpacked) */
    Memtrain__EpochProgress *last_epoch; /* latest, owned */
    int cancel_requested;
    /* A checkpoint the store refused (a full disk): its epoch and why; 0 =
     * none, or a later one was stored since. */
    uint32_t ckpt_lost_epoch;
    char ckpt_lost_why[160];
};

#endif
