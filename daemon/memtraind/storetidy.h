/* storetidy.h: removing what the store keeps, a little at a time, giving the
 * space back to the file system, and measuring it (mtctl rm, prune, ckpt rm,
 * df and the daemon's retention).
 *
 * Every call here is short: one call removes at most `max_rows` rows of one
 * table, or one checkpoint, or vacuums at most `max_pages` pages, so the
 * daemon can interleave them with its other work. Removals run inside
 * store_tidy_begin .. store_tidy_end (one transaction: a slice of steps, one
 * commit); the vacuum outside. The space of removed rows goes to
 * SQLite's free list; store_vacuum_step hands it back (the file has
 * auto_vacuum INCREMENTAL, store.c) and store_wal_shrink makes the file on
 * disk shrink (the database is in WAL mode: the end of the file is cut when
 * the log is copied back).
 *
 * Sizes. A kind (jobs, metrics, memory samples, checkpoints, logs) is the
 * tables in it: jobs; epochs, epoch_metrics and steps; memory_samples;
 * checkpoints; logs. Its bytes in store_usage_read are the pages SQLite's
 * dbstat counts for those tables and their indexes (checkpoints: their
 * blobs' bytes plus the pages of the rest, so the blobs are not read). A
 * job's share of a kind is in proportion to its payload there (rows times
 * an estimate of a row's bytes, plus its text and blobs); store_job_usage
 * gives that payload estimate alone, quickly, for one job. */
#ifndef MT_STORETIDY_H
#define MT_STORETIDY_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum store_kind {
    STORE_KIND_JOBS,
    STORE_KIND_METRICS,
    STORE_KIND_MEMORY,
    STORE_KIND_CHECKPOINTS,
    STORE_KIND_LOGS,
    STORE_KIND_N
};

/* "jobs", "metrics", "memory_samples", "checkpoints", "logs". */
const char *store_kind_name(int kind);

/* One job's bytes by kind, its checkpoints and memory samples. */
struct store_job_usage {
    uint64_t job_id;
    uint64_t bytes[STORE_KIND_N];
    uint32_t checkpoints;
    uint64_t memory_samples;
};

uint64_t store_usage_total(const uint64_t bytes[STORE_KIND_N]);

/* The payload estimate of one job (fast: indexed lookups only). A job with
 * no rows gives zeros. */
int store_job_usage(struct store *st, uint64_t job_id, struct store_job_usage *u,
                    struct mt_err *err);

/* The whole store: bytes by kind, free pages' bytes, and every job's share
 * (ascending id). Reads every table's index once and the pages of all but
 * the checkpoints' blobs: for a store of a few hundred MB, a fraction of a
 * second. */
struct store_usage {
    uint64_t kind_bytes[STORE_KIND_N];
    uint64_t free_bytes;
    struct store_job_usage *jobs;
    size_t n_jobs;
};
int store_usage_read(struct store *st, struct store_usage *u, struct mt_err *err);
void store_usage_free(struct store_usage *u);
/* The job's entry in u, or NULL. */
const struct store_job_usage *store_usage_find(const struct store_usage *u, uint64_t job_id);

/* Open the transaction of a slice of removal steps (the store's batch is
 * committed first) with secure_delete FAST: Debian's SQLite zeroes every
 * freed page by default, which wrote a removed checkpoint's size again into
 * the log (0.9 s for 50 MB); the vacuum after the removal gives those pages
 * back anyway. *secure_delete keeps the setting before, for store_tidy_end,
 * which commits (rc 0) or rolls back, restores it and returns rc or the
 * commit's error. */
int store_tidy_begin(struct store *st, int *secure_delete, struct mt_err *err);
int store_tidy_end(struct store *st, int secure_delete, int rc, struct mt_err *err);

/* One step of removing job_id and everything stored for it: up to max_rows
 * rows of one table (memory samples, steps, logs, rule metrics, epochs), or
 * one checkpoint, or, when nothing else is left, the job's row. *done is 1
 * once the job's row is gone (also when there was none). */
int store_job_remove_step(struct store *st, uint64_t job_id, unsigned max_rows, int *done,
                          struct mt_err *err);

/* Remove the checkpoint of (job_id, epoch); *bytes (may be NULL) gets its
 * size. MT_E_NOTFOUND when there is none. */
int store_ckpt_remove(struct store *st, uint64_t job_id, uint32_t epoch, uint64_t *bytes,
                      struct mt_err *err);

/* Give at most max_pages free pages back (PRAGMA incremental_vacuum);
 * *left: the free pages still held. */
int store_vacuum_step(struct store *st, unsigned max_pages, uint64_t *left, struct mt_err *err);

/* Copy the write-ahead log into the database file and empty it, so that
 * the file shrinks by what the vacuum gave back. It does not wait for
 * another connection (sqlite3 run by hand): then the log stays as it is
 * and the file shrinks at SQLite's next automatic checkpoint. */
int store_wal_shrink(struct store *st, struct mt_err *err);

/* The database's size now: its pages times the page size (what the file
 * holds once the WAL is copied back). */
uint64_t store_db_bytes(struct store *st);

/* The bytes of the database file and of its WAL on disk now (0 when a file
 * is missing). */
void store_file_bytes(struct store *st, uint64_t *db, uint64_t *wal);

#endif
