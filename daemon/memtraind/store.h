/* store.h: memtraind's SQLite store, the one place that keeps results.
 *
 * One writer (the daemon's loop thread) owns the handle. The file is in WAL
 * mode; its schema is versioned with PRAGMA user_version and migrated forward
 * by store_open. store.c is the only file that includes sqlite3.h.
 *
 * Durability: job rows, epoch rows and checkpoints are committed before the
 * call returns. Step losses, memory samples and log lines are batched: they
 * go into an open transaction that store_flush commits (the daemon calls it
 * from a timer about once a second, and before anything that must be
 * durable). A kill -9 loses at most the unflushed batch, never a committed
 * row.
 *
 * Every function returns 0 or a negative MT_E_* code with a message in err
 * that names the operation and SQLite's text ("store: insert job: disk I/O
 * error"). MT_E_NOTFOUND when the job or checkpoint does not exist. */
#ifndef MT_STORE_H
#define MT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "memtrain.pb-c.h"
#include "memtrain/err.h"

#define STORE_SCHEMA_VERSION 7

struct store;

/* One row of the jobs table. Strings and blobs are malloc'd and owned by the
 * struct; store_job_clear frees them. Blobs hold packed protobuf messages. */
struct store_job {
    uint64_t id;                 /* assigned by store_job_insert */
    char *name;
    uint32_t owner_uid;
    int state;                   /* Memtrain__JobState */
    char *reason;                /* "" when none */
    int32_t priority;
    int64_t submitted_at, started_at, finished_at; /* Unix ms; 0 = not yet */
    char *rule;
    uint32_t epochs, epochs_done;
    uint64_t memory_limit;
    int32_t exit_code;           /* worker exit status, or -signal; 0 */
    uint8_t *spec;               /* packed JobSpec */
    size_t spec_len;
    uint8_t *planned;            /* packed MemoryStats, may be NULL */
    size_t planned_len;
    uint8_t *measured;           /* packed MemoryStats, may be NULL */
    size_t measured_len;
    uint32_t resumes;            /* times the job was re-queued after INTERRUPTED */
    int32_t worker_pid;          /* RUNNING: its worker process; 0 otherwise */
    uint64_t worker_start;       /* that process's start time (/proc/PID/stat field 22) */
    char *labels;                /* "k=v\n" per label (labels.h); NULL = none */
    uint64_t group_id;           /* its `submit --rules` group (the first job's id); 0 */
};

void store_job_clear(struct store_job *j);

/* Open (creating it and its schema if needed) the database at `path`; the
 * parent directory must exist. Sets WAL, a busy timeout, foreign keys, and
 * migrates an older schema to STORE_SCHEMA_VERSION in one transaction. A
 * newer schema than this build knows is an error naming both versions.
 * A memtrain store is told by its PRAGMA application_id ("MTRN"), or, when
 * made before that was set, by its tables (then adopted: the id is set);
 * another program's SQLite file is refused (MT_E_FORMAT, "not a memtrain
 * store") before anything is written to it. A 0-byte file (a store whose
 * creation never finished: SQLite writes nothing until the schema) is
 * initialised as a new store; store_opened_empty says so, for the log. */
int store_open(struct store **out, const char *path, struct mt_err *err);
/* 1 when store_open found `path` as a 0-byte file and initialised it. */
int store_opened_empty(const struct store *st);
/* How long store_open's one VACUUM took (a file from before schema 5 gets
 * auto_vacuum INCREMENTAL that way), in ms; -1 when it had none to run. */
int64_t store_opened_vacuum_ms(const struct store *st);
/* Flush, then close. Accepts NULL. */
void store_close(struct store *st);
int store_schema_version(struct store *st);

/* Commit the open batch (no-op when nothing is pending). */
int store_flush(struct store *st, struct mt_err *err);

/* Jobs. insert sets j->id. update writes every column of the row j->id. */
int store_job_insert(struct store *st, struct store_job *j, struct mt_err *err);
int store_job_update(struct store *st, const struct store_job *j, struct mt_err *err);
int store_job_get(struct store *st, uint64_t id, struct store_job *out, struct mt_err *err);
/* Call fn for each job, newest first (id descending). owner < 0: everyone's.
 * state_mask: bit (1 << state) set for each wanted state; 0 = all. limit 0 =
 * no limit. fn returning nonzero stops the walk (that value is returned).
 * The row passed to fn is valid only during the call. */
typedef int (*store_job_fn)(void *ud, const struct store_job *j);
int store_jobs_each(struct store *st, int64_t owner, uint32_t state_mask, uint32_t limit,
                    store_job_fn fn, void *ud, struct mt_err *err);
/* The same, only jobs with an id below before_id (0: from the newest): one
 * page of a list, the next starting below the last id seen. */
int store_jobs_page(struct store *st, int64_t owner, uint32_t state_mask, uint64_t before_id,
                    uint32_t limit, store_job_fn fn, void *ud, struct mt_err *err);

/* counts[s] = the number of jobs in state s, for s < n (states past n are
 * not counted). */
int store_jobs_count(struct store *st, uint64_t *counts, size_t n, struct mt_err *err);

/* Metrics. Epoch rows (one per epoch; a re-sent epoch replaces its row and
 * its rule metrics) are committed at once, with the epoch's rule_metrics
 * (one row each in table epoch_metrics, in the order given; a NaN value
 * comes back as NaN); steps, memory samples and log lines are batched. */
int store_epoch_add(struct store *st, uint64_t job_id, const Memtrain__EpochProgress *e,
                    struct mt_err *err);
int store_step_add(struct store *st, uint64_t job_id, const Memtrain__StepProgress *s,
                   struct mt_err *err);
int store_memory_add(struct store *st, uint64_t job_id, const Memtrain__MemorySample *m,
                     struct mt_err *err);
int store_log_add(struct store *st, uint64_t job_id, int64_t time_ms, const char *text,
                  struct mt_err *err);

/* Readers call fn per row in order (epoch, step, time, log id ascending); the
 * message passed is valid only during the call. Pending batched rows are
 * flushed first so a reader sees everything received. */
typedef int (*store_epoch_fn)(void *ud, const Memtrain__EpochProgress *e);
typedef int (*store_step_fn)(void *ud, const Memtrain__StepProgress *s);
typedef int (*store_memory_fn)(void *ud, const Memtrain__MemorySample *m);
/* `id` increases with every line; pass the last id seen as after_id to read
 * only newer lines (0 = from the start). */
typedef int (*store_log_fn)(void *ud, int64_t id, int64_t time_ms, const char *text);
int store_epochs_each(struct store *st, uint64_t job_id, store_epoch_fn fn, void *ud,
                      struct mt_err *err);
int store_steps_each(struct store *st, uint64_t job_id, store_step_fn fn, void *ud,
                     struct mt_err *err);
int store_memory_each(struct store *st, uint64_t job_id, store_memory_fn fn, void *ud,
                      struct mt_err *err);
int store_logs_each(struct store *st, uint64_t job_id, int64_t after_id, store_log_fn fn,
                    void *ud, struct mt_err *err);

/* Checkpoints: `blob` is a packed CheckpointData. Adding one for an epoch
 * that has one replaces it; then only the newest keep_last (by epoch) are
 * kept for the job (keep_last 0 = keep all). Committed at once. */
int store_ckpt_add(struct store *st, uint64_t job_id, uint32_t epoch, int64_t time_ms,
                   const uint8_t *blob, size_t len, uint32_t keep_last, struct mt_err *err);
typedef int (*store_ckpt_fn)(void *ud, uint32_t epoch, int64_t time_ms, uint64_t bytes);
int store_ckpts_each(struct store *st, uint64_t job_id, store_ckpt_fn fn, void *ud,
                     struct mt_err *err);
/* A checkpoint found but not read: its row, size and epoch. */
struct store_ckpt_ref {
    int64_t rowid;
    size_t len;
    uint32_t epoch;
};
/* Find the checkpoint of `epoch` (0 = the newest) without reading it. */
int store_ckpt_open(struct store *st, uint64_t job_id, uint32_t epoch,
                    struct store_ckpt_ref *ref, struct mt_err *err);
/* Read n bytes at off of it (incremental blob I/O: nothing else is held).
 * MT_E_NOTFOUND when the checkpoint was pruned or replaced meanwhile. */
int store_ckpt_read(struct store *st, const struct store_ckpt_ref *ref, size_t off, uint8_t *buf,
                    size_t n, struct mt_err *err);
/* The checkpoint of `epoch` (0 = the newest) into a malloc'd *blob. */
int store_ckpt_get(struct store *st, uint64_t job_id, uint32_t epoch, uint8_t **blob,
                   size_t *len, uint32_t *epoch_out, struct mt_err *err);

#endif
