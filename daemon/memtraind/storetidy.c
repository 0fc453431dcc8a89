/* storetidy.c: removing jobs and checkpoints from the store in short
 * steps, the incremental vacuum, and the store's size by job and kind
 * (storetidy.h). */
#include "storetidy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storedb.h"

/* The tables that hold a job's rows, in the order a removal empties them
 * (the job's row last). `payload` is an SQL expression of a row's bytes
 * beyond `row_bytes`, an estimate of its fixed columns and index entries;
 * `pages` names the table's and its indexes' b-trees for dbstat (NULL:
 * counted from the payload, as for the checkpoints, whose blobs dbstat
 * would read page by page). */
struct tidy_table {
    const char *name;
    const char *key;          /* the job id column */
    int kind;
    const char *payload;
    unsigned row_bytes;
    const char *const *pages;
};

static const char *const pages_mem[] = {"memory_samples", "memory_samples_job", NULL};
static const char *const pages_steps[] = {"steps", "sqlite_autoindex_steps_1", NULL};
static const char *const pages_logs[] = {"logs", "logs_job", NULL};
static const char *const pages_emetrics[] = {"epoch_metrics",
                                             "sqlite_autoindex_epoch_metrics_1", NULL};
static const char *const pages_epochs[] = {"epochs", "sqlite_autoindex_epochs_1", NULL};
static const char *const pages_jobs[] = {"jobs", "jobs_owner", "jobs_finished", NULL};

#define T_CHECKPOINTS 5
static const struct tidy_table tables[] = {
    {"memory_samples", "job_id", STORE_KIND_MEMORY, "0", 200, pages_mem},
    {"steps", "job_id", STORE_KIND_METRICS, "0", 40, pages_steps},
    {"logs", "job_id", STORE_KIND_LOGS, "length(text)", 30, pages_logs},
    {"epoch_metrics", "job_id", STORE_KIND_METRICS, "length(name)", 40, pages_emetrics},
    {"epochs", "job_id", STORE_KIND_METRICS, "0", 160, pages_epochs},
    {"checkpoints", "job_id", STORE_KIND_CHECKPOINTS, "bytes", 60, NULL},
    {"jobs", "id", STORE_KIND_JOBS,
     "length(spec) + length(planned) + length(measured) + length(name) + length(reason)", 120,
     pages_jobs},
};
#define N_TABLES (sizeof tables / sizeof tables[0])
_Static_assert(N_TABLES == T_CHECKPOINTS + 2, "checkpoints, then jobs, come last");

const char *store_kind_name(int kind)
{
    static const char *const names[STORE_KIND_N] = {"jobs", "metrics", "memory_samples",
                                                    "checkpoints", "logs"};
    return kind >= 0 && kind < STORE_KIND_N ? names[kind] : "?";
}

uint64_t store_usage_total(const uint64_t bytes[STORE_KIND_N])
{
    uint64_t t = 0;
    for (int k = 0; k < STORE_KIND_N; k++)
        t += bytes[k];
    return t;
}

/* ---- statements prepared per call (these run seldom) */

static int prepare(struct store *st, const char *sql, sqlite3_stmt **s, const char *op,
                   struct mt_err *err)
{
    int rc = sqlite3_prepare_v2(store_db(st), sql, -1, s, NULL);
    return rc == SQLITE_OK ? 0 : store_db_fail(st, rc, op, err);
}

/* Run `sql` (no rows wanted, or rows ignored) to the end. */
static int exec1(struct store *st, const char *sql, const char *op, struct mt_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, sql, &s, op, err);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    int ret = rc == SQLITE_DONE ? 0 : store_db_fail(st, rc, op, err);
    sqlite3_finalize(s);
    return ret;
}

static int query_u64(struct store *st, const char *sql, uint64_t *out, const char *op,
                     struct mt_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, sql, &s, op, err);
    if (rc)
        return rc;
    rc = sqlite3_step(s);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(s, 0);
    else
        ret = store_db_fail(st, rc == SQLITE_DONE ? SQLITE_ERROR : rc, op, err);
    sqlite3_finalize(s);
    return ret;
}

int store_tidy_begin(struct store *st, int *secure_delete, struct mt_err *err)
{
    uint64_t v = 0;
    int rc = store_flush(st, err);
    if (!rc)
        rc = query_u64(st, "PRAGMA secure_delete", &v, "read secure_delete", err);
    if (!rc)
        rc = exec1(st, "PRAGMA secure_delete = FAST", "set secure_delete", err);
    *secure_delete = (int)v;
    return rc ? rc : exec1(st, "BEGIN IMMEDIATE", "begin", err);
}

int store_tidy_end(struct store *st, int secure_delete, int rc, struct mt_err *err)
{
    if (rc) {
        if (!sqlite3_get_autocommit(store_db(st)))
            sqlite3_exec(store_db(st), "ROLLBACK", NULL, NULL, NULL);
    } else {
        rc = exec1(st, "COMMIT", "commit", err);
    }
    char sql[48];
    snprintf(sql, sizeof sql, "PRAGMA secure_delete = %d", secure_delete);
    sqlite3_exec(store_db(st), sql, NULL, NULL, NULL);
    return rc;
}

/* ---- sizes */

/* u's entry for job_id (u->jobs is sorted by id), or NULL. */
static struct store_job_usage *usage_entry(const struct store_usage *u, uint64_t job_id)
{
    size_t lo = 0, hi = u->n_jobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->jobs[mid].job_id == job_id)
            return &u->jobs[mid];
        if (u->jobs[mid].job_id < job_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct store_job_usage *store_usage_find(const struct store_usage *u, uint64_t job_id)
{
    return usage_entry(u, job_id);
}

/* Add table t's rows of one job (job_id > 0: into *one) or of every job
 * (into u's jobs; rows of ids not in it are left out). */
static int table_payload(struct store *st, const struct tidy_table *t, uint64_t job_id,
                         struct store_job_usage *one, struct store_usage *u, struct mt_err *err)
{
    char sql[512], op[64];
    if (job_id)
        snprintf(sql, sizeof sql, "SELECT %s, count(*), total(%s) FROM %s WHERE %s = ?1",
                 t->key, t->payload, t->name, t->key);
    else
        snprintf(sql, sizeof sql, "SELECT %s, count(*), total(%s) FROM %s GROUP BY %s", t->key,
                 t->payload, t->name, t->key);
    snprintf(op, sizeof op, "size of %s", t->name);
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, sql, &s, op, err);
    if (rc)
        return rc;
    if (job_id)
        sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t rows = (uint64_t)sqlite3_column_int64(s, 1);
        if (rows == 0)
            continue;
        struct store_job_usage *ju =
            job_id ? one : usage_entry(u, (uint64_t)sqlite3_column_int64(s, 0));
        if (!ju)
            continue;     /* rows of a job that is gone */
        double payload = sqlite3_column_double(s, 2);
        ju->bytes[t->kind] += rows * t->row_bytes + (uint64_t)(payload > 0 ? payload : 0);
        if (t->kind == STORE_KIND_CHECKPOINTS)
            ju->checkpoints += (uint32_t)rows;
        if (t->kind == STORE_KIND_MEMORY)
            ju->memory_samples += rows;
    }
    int ret = rc == SQLITE_DONE ? 0 : store_db_fail(st, rc, op, err);
    sqlite3_finalize(s);
    return ret;
}

int store_job_usage(struct store *st, uint64_t job_id, struct store_job_usage *u,
                    struct mt_err *err)
{
    memset(u, 0, sizeof *u);
    u->job_id = job_id;
    int rc = store_flush(st, err);
    for (size_t i = 0; !rc && i < N_TABLES; i++)
        rc = table_payload(st, &tables[i], job_id, u, NULL, err);
    return rc;
}

/* The bytes of b-tree `name`'s pages (dbstat reads only that b-tree). */
static int btree_bytes(struct store *st, const char *name, uint64_t *out, struct mt_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT total(pgsize) FROM dbstat WHERE name = ?1", &s, "dbstat", err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *out += (uint64_t)sqlite3_column_double(s, 0);
    else
        ret = store_db_fail(st, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "dbstat", err);
    sqlite3_finalize(s);
    return ret;
}

static int list_jobs(struct store *st, struct store_usage *u, struct mt_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT id FROM jobs ORDER BY id", &s, "list jobs", err);
    if (rc)
        return rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (u->n_jobs == cap) {
            cap = cap ? 2 * cap : 64;
            struct store_job_usage *j = realloc(u->jobs, cap * sizeof *j);
            if (!j) {
                sqlite3_finalize(s);
                return mt_err_set(err, MT_E_NOMEM, "store: size: out of memory");
            }
            u->jobs = j;
        }
        struct store_job_usage *j = &u->jobs[u->n_jobs++];
        memset(j, 0, sizeof *j);
        j->job_id = (uint64_t)sqlite3_column_int64(s, 0);
    }
    int ret = rc == SQLITE_DONE ? 0 : store_db_fail(st, rc, "list jobs", err);
    sqlite3_finalize(s);
    return ret;
}

/* Scale every job's payload estimate of each kind so that the jobs' shares
 * add up to the kind's bytes. */
static void share_out(struct store_usage *u)
{
    for (int k = 0; k < STORE_KIND_N; k++) {
        double sum = 0;
        for (size_t i = 0; i < u->n_jobs; i++)
            sum += (double)u->jobs[i].bytes[k];
        if (sum <= 0)
            continue;
        double f = (double)u->kind_bytes[k] / sum;
        for (size_t i = 0; i < u->n_jobs; i++)
            u->jobs[i].bytes[k] = (uint64_t)((double)u->jobs[i].bytes[k] * f + 0.5);
    }
}

int store_usage_read(struct store *st, struct store_usage *u, struct mt_err *err)
{
    memset(u, 0, sizeof *u);
    uint64_t page = 0, free_pages = 0;
    int rc = store_flush(st, err);
    if (!rc)
        rc = list_jobs(st, u, err);
    for (size_t i = 0; !rc && i < N_TABLES; i++)
        rc = table_payload(st, &tables[i], 0, NULL, u, err);
    for (size_t i = 0; !rc && i < N_TABLES; i++)
        for (const char *const *p = tables[i].pages; !rc && p && *p; p++)
            rc = btree_bytes(st, *p, &u->kind_bytes[tables[i].kind], err);
    if (!rc)
        rc = btree_bytes(st, "sqlite_autoindex_checkpoints_1",
                         &u->kind_bytes[STORE_KIND_CHECKPOINTS], err);
    if (!rc) {   /* the checkpoints' own pages: their payload, unread */
        for (size_t i = 0; i < u->n_jobs; i++)
            u->kind_bytes[STORE_KIND_CHECKPOINTS] += u->jobs[i].bytes[STORE_KIND_CHECKPOINTS];
    }
    if (!rc && !(rc = query_u64(st, "PRAGMA page_size", &page, "page size", err)) &&
        !(rc = query_u64(st, "PRAGMA freelist_count", &free_pages, "free pages", err)))
        u->free_bytes = page * free_pages;
    if (rc) {
        store_usage_free(u);
        return rc;
    }
    share_out(u);
    return 0;
}

void store_usage_free(struct store_usage *u)
{
    free(u->jobs);
    memset(u, 0, sizeof *u);
}

/* ---- removing */

/* Delete up to `limit` rows of table t for job_id; *n gets how many. */
static int delete_rows(struct store *st, const struct tidy_table *t, uint64_t job_id,
                       unsigned limit, int *n, struct mt_err *err)
{
    char sql[256], op[64];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE rowid IN (SELECT rowid FROM %s WHERE %s = ?1 "
             "LIMIT ?2)", t->name, t->name, t->key);
    snprintf(op, sizeof op, "remove %s of job %" PRIu64, t->name, job_id);
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, sql, &s, op, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, limit);
    rc = sqlite3_step(s);
    int ret = rc == SQLITE_DONE ? 0 : store_db_fail(st, rc, op, err);
    sqlite3_finalize(s);
    *n = ret ? 0 : sqlite3_changes(store_db(st));
    return ret;
}

int store_job_remove_step(struct store *st, uint64_t job_id, unsigned max_rows, int *done,
                          struct mt_err *err)
{
    *done = 0;
    int rc = 0, n = 0;
    for (size_t i = 0; !rc && i < N_TABLES; i++) {
        /* one checkpoint at a time: its blob may be hundreds of MB */
        unsigned limit = i == T_CHECKPOINTS ? 1 : max_rows ? max_rows : 1;
        if ((rc = delete_rows(st, &tables[i], job_id, limit, &n, err)) || n > 0)
            break;
    }
    if (!rc && n == 0)
        *done = 1;   /* the last table (jobs) had nothing left either */
    return rc;
}

int store_ckpt_remove(struct store *st, uint64_t job_id, uint32_t epoch, uint64_t *bytes,
                      struct mt_err *err)
{
    sqlite3_stmt *s = NULL;
    const char *op = "remove checkpoint";
    int rc = prepare(st, "DELETE FROM checkpoints WHERE job_id = ?1 AND epoch = ?2 "
                     "RETURNING bytes", &s, op, err);
    if (!rc) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
        sqlite3_bind_int64(s, 2, epoch);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            if (bytes)
                *bytes = (uint64_t)sqlite3_column_int64(s, 0);
            r = sqlite3_step(s);
        } else if (r == SQLITE_DONE) {
            rc = mt_err_set(err, MT_E_NOTFOUND, "job %" PRIu64 " has no checkpoint for epoch %"
                            PRIu32, job_id, epoch);
        }
        if (!rc && r != SQLITE_DONE)
            rc = store_db_fail(st, r, op, err);
        sqlite3_finalize(s);
    }
    return rc;
}

int store_vacuum_step(struct store *st, unsigned max_pages, uint64_t *left, struct mt_err *err)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%u)", max_pages ? max_pages : 1);
    int rc = store_flush(st, err);
    if (!rc)
        rc = exec1(st, sql, "incremental vacuum", err);
    if (!rc)
        rc = query_u64(st, "PRAGMA freelist_count", left, "free pages", err);
    return rc;
}

int store_wal_shrink(struct store *st, struct mt_err *err)
{
    int rc = store_flush(st, err);
    if (rc)
        return rc;
    /* TRUNCATE would wait for another connection's readers through the
     * busy handler: not on the daemon's loop. */
    sqlite3_busy_timeout(store_db(st), 0);
    int log = 0, done = 0;
    rc = sqlite3_wal_checkpoint_v2(store_db(st), NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    if (rc == SQLITE_BUSY)
        rc = sqlite3_wal_checkpoint_v2(store_db(st), NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                                       &done);
    int ret = rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : store_db_fail(st, rc, "checkpoint the WAL",
                                                                       err);
    sqlite3_busy_timeout(store_db(st), 5000);
    return ret;
}

uint64_t store_db_bytes(struct store *st)
{
    uint64_t pages = 0, size = 0;
    if (query_u64(st, "PRAGMA page_count", &pages, "page count", NULL) ||
        query_u64(st, "PRAGMA page_size", &size, "page size", NULL))
        return 0;
    return pages * size;
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

void store_file_bytes(struct store *st, uint64_t *db, uint64_t *wal)
{
    const char *path = sqlite3_db_filename(store_db(st), "main");
    *db = file_size(path);
    char w[4200];
    if (path && snprintf(w, sizeof w, "%s-wal", path) < (int)sizeof w)
        *wal = file_size(w);
    else
        *wal = 0;
}
