/* store.c: memtraind's SQLite store (see store.h for the contract).
 *
 * One connection, owned by the loop thread, with every statement prepared
 * once in store_open and reset after each use. The only transaction the
 * store leaves open is the batch of step losses, memory samples and log
 * lines; so "a batch is pending" is exactly "the connection is not in
 * autocommit mode", and there is no flag to get out of step with SQLite
 * (which may roll a transaction back on its own after an I/O error).
 * Durable writes commit that batch first and then run in their own
 * transaction. synchronous=FULL makes each commit survive a power loss too;
 * with the batch committed about once a second that is one fsync a second.
 *
 * The schema is the list of migrations below: entry i takes a file from
 * user_version i to i + 1, and store_open applies the missing ones in one
 * transaction; a migration keeps every row it finds. This file and
 * storetidy.c (removing, vacuum, sizes; through storedb.h) are the only
 * ones that include sqlite3.h.
 *
 * Not here: deciding what to keep (the daemon passes keep_last), or what a
 * job's state means. */
#include "store.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "memtrain/clock.h"
#include "storedb.h"

/* PRAGMA application_id of a memtrain store ("MTRN"): tells our file from
 * another program's SQLite database that happens to have a user_version. */
#define STORE_APP_ID 0x4d54524e

static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  owner_uid INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  state_name TEXT NOT NULL,"          /* 'RUNNING': for people using sqlite3 */
    "  reason TEXT NOT NULL DEFAULT '',"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  submitted_at INTEGER NOT NULL DEFAULT 0," /* Unix ms; 0 = not yet */
    "  started_at INTEGER NOT NULL DEFAULT 0,"
    "  finished_at INTEGER NOT NULL DEFAULT 0,"
    "  rule TEXT NOT NULL DEFAULT '',"
    "  epochs INTEGER NOT NULL DEFAULT 0,"
    "  epochs_done INTEGER NOT NULL DEFAULT 0,"
    "  memory_limit INTEGER NOT NULL DEFAULT 0,"
    "  exit_code INTEGER NOT NULL DEFAULT 0,"
    "  resumes INTEGER NOT NULL DEFAULT 0,"
    "  spec BLOB,"                         /* packed JobSpec */
    "  planned BLOB,"                      /* packed MemoryStats or NULL */
    "  measured BLOB"
    ");"
    "CREATE INDEX jobs_owner ON jobs(owner_uid, id);"
    "CREATE TABLE epochs ("
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch INTEGER NOT NULL,"
    "  loss REAL, train_accuracy REAL, test_accuracy REAL,"
    "  seconds REAL, samples_per_second REAL, lr REAL,"
    "  mem_params INTEGER, mem_grads INTEGER, mem_optimizer INTEGER,"
    "  mem_activations INTEGER, mem_workspace INTEGER, mem_data INTEGER,"
    "  mem_peak_total INTEGER,"
    "  phase_forward INTEGER, phase_gradient INTEGER, phase_update INTEGER,"
    "  rss_peak INTEGER,"                  /* the mem_* columns are NULL when the epoch had no figures */
    "  PRIMARY KEY (job_id, epoch)"
    ");"
    "CREATE TABLE steps ("
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  step INTEGER NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  loss REAL,"
    "  PRIMARY KEY (job_id, step)"
    ");"
    "CREATE TABLE memory_samples ("
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  time INTEGER NOT NULL,"             /* Unix ms */
    "  cur_params INTEGER, cur_grads INTEGER, cur_optimizer INTEGER,"
    "  cur_activations INTEGER, cur_workspace INTEGER, cur_data INTEGER,"
    "  cur_total INTEGER,"
    "  peak_params INTEGER, peak_grads INTEGER, peak_optimizer INTEGER,"
    "  peak_activations INTEGER, peak_workspace INTEGER, peak_data INTEGER,"
    "  peak_total INTEGER,"
    "  peak_phase_forward INTEGER, peak_phase_gradient INTEGER, peak_phase_update INTEGER,"
    "  rss INTEGER, hwm INTEGER, limit_bytes INTEGER"
    ");"
    "CREATE INDEX memory_samples_job ON memory_samples(job_id, time);"
    "CREATE TABLE checkpoints ("
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"       /* Unix ms */
    "  bytes INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"                /* packed CheckpointData */
    "  PRIMARY KEY (job_id, epoch)"
    ");"
    "CREATE TABLE logs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  time INTEGER NOT NULL,"             /* Unix ms */
    "  text TEXT NOT NULL"
    ");"
    "CREATE INDEX logs_job ON logs(job_id, id);",
    /* 1 -> 2: the learning rule's figures of each epoch (ASA's "li.2", ...) */
    "CREATE TABLE epoch_metrics ("
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"              /* the rule's order, from 0 */
    "  name TEXT NOT NULL,"
    "  value REAL,"                        /* NULL for NaN */
    "  PRIMARY KEY (job_id, epoch, seq)"
    ");",
    /* 2 -> 3: a running job's worker, to find one left over from a daemon
     * that died (its pid and its start time in clock ticks after boot, field
     * 22 of /proc/PID/stat, which tells it from a later process of that pid) */
    "ALTER TABLE jobs ADD COLUMN worker_pid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN worker_start INTEGER NOT NULL DEFAULT 0;",
    /* 3 -> 4: a memory sample's interval peaks (MemorySample.interval_peak:
     * what the steps since the previous sample held at most) and its steps;
     * NULL in samples that had none */
    "ALTER TABLE memory_samples ADD COLUMN int_params INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_grads INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_optimizer INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_activations INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_workspace INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_data INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_total INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_phase_forward INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_phase_gradient INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_phase_update INTEGER;"
    "ALTER TABLE memory_samples ADD COLUMN int_steps INTEGER;",
    /* 4 -> 5: a tidy store (storetidy.c). Freed pages go back to the file
     * system with PRAGMA incremental_vacuum: auto_vacuum INCREMENTAL, which
     * an existing file only takes with one VACUUM (not possible inside this
     * transaction: store_open runs it after the migration, see
     * use_incremental_vacuum). Prune and retention find ended jobs by their
     * end time. */
    "PRAGMA auto_vacuum = INCREMENTAL;"
    "CREATE INDEX jobs_finished ON jobs(finished_at);",
    /* 5 -> 6: a job's labels (`submit --label k=v`), "k=v\n" each (labels.h) */
    "ALTER TABLE jobs ADD COLUMN labels TEXT NOT NULL DEFAULT '';",
    /* 6 -> 7: the group of `mtctl submit --rules` (its first job's id; 0 = none) */
    "ALTER TABLE jobs ADD COLUMN group_id INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX jobs_group ON jobs(group_id);",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "one migration per schema version");

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_JOB_INSERT,
    S_JOB_UPDATE,
    S_JOB_GET,
    S_JOBS_EACH,
    S_EPOCH_ADD,
    S_EPOCHS_EACH,
    S_EMETRIC_CLEAR,
    S_EMETRIC_ADD,
    S_EMETRICS_OF,
    S_STEP_ADD,
    S_STEPS_EACH,
    S_MEM_ADD,
    S_MEM_EACH,
    S_LOG_ADD,
    S_LOGS_EACH,
    S_CKPT_ADD,
    S_CKPT_PRUNE,
    S_CKPTS_EACH,
    S_CKPT_FIND,
    S_N
};

#define JOB_COLS                                                                      \
    "name, owner_uid, state, state_name, reason, priority, submitted_at, started_at, " \
    "finished_at, rule, epochs, epochs_done, memory_limit, exit_code, resumes, spec, " \
    "planned, measured, worker_pid, worker_start, labels, group_id"

#define EPOCH_COLS                                                                 \
    "epoch, loss, train_accuracy, test_accuracy, seconds, samples_per_second, lr, " \
    "mem_params, mem_grads, mem_optimizer, mem_activations, mem_workspace, "       \
    "mem_data, mem_peak_total, phase_forward, phase_gradient, phase_update, rss_peak"

#define MEM_COLS                                                                    \
    "time, cur_params, cur_grads, cur_optimizer, cur_activations, cur_workspace, "   \
    "cur_data, cur_total, peak_params, peak_grads, peak_optimizer, peak_activations, " \
    "peak_workspace, peak_data, peak_total, peak_phase_forward, peak_phase_gradient, " \
    "peak_phase_update, rss, hwm, limit_bytes, int_params, int_grads, int_optimizer, "    \
    "int_activations, int_workspace, int_data, int_total, int_phase_forward, "            \
    "int_phase_gradient, int_phase_update, int_steps"

static const char *const stmt_sql[S_N] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_JOB_INSERT] = "INSERT INTO jobs (" JOB_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                     "?17, ?18, ?20, ?21, ?22, ?23)",
    [S_JOB_UPDATE] = "UPDATE jobs SET name = ?1, owner_uid = ?2, state = ?3, state_name = ?4, "
                     "reason = ?5, priority = ?6, submitted_at = ?7, started_at = ?8, "
                     "finished_at = ?9, rule = ?10, epochs = ?11, epochs_done = ?12, "
                     "memory_limit = ?13, exit_code = ?14, resumes = ?15, spec = ?16, "
                     "planned = ?17, measured = ?18, worker_pid = ?20, worker_start = ?21, labels = ?22, "
                     "group_id = ?23 "
                     "WHERE id = ?19",
    [S_JOB_GET] = "SELECT id, " JOB_COLS " FROM jobs WHERE id = ?1",
    [S_JOBS_EACH] = "SELECT id, " JOB_COLS " FROM jobs "
                    "WHERE (?1 < 0 OR owner_uid = ?1) AND (?2 = 0 OR (?2 >> state) & 1) "
                    "AND (?4 = 0 OR id < ?4) ORDER BY id DESC LIMIT ?3",
    [S_EPOCH_ADD] = "INSERT OR REPLACE INTO epochs (job_id, " EPOCH_COLS ") VALUES "
                    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                    "?17, ?18, ?19)",
    [S_EPOCHS_EACH] = "SELECT " EPOCH_COLS " FROM epochs WHERE job_id = ?1 ORDER BY epoch",
    [S_EMETRIC_CLEAR] = "DELETE FROM epoch_metrics WHERE job_id = ?1 AND epoch = ?2",
    [S_EMETRIC_ADD] = "INSERT INTO epoch_metrics (job_id, epoch, seq, name, value) "
                      "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_EMETRICS_OF] = "SELECT name, value FROM epoch_metrics WHERE job_id = ?1 AND epoch = ?2 "
                      "ORDER BY seq",
    [S_STEP_ADD] = "INSERT OR REPLACE INTO steps (job_id, step, epoch, loss) "
                   "VALUES (?1, ?2, ?3, ?4)",
    [S_STEPS_EACH] = "SELECT step, epoch, loss FROM steps WHERE job_id = ?1 ORDER BY step",
    [S_MEM_ADD] = "INSERT INTO memory_samples (job_id, " MEM_COLS ") VALUES "
                  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                  "?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, "
                  "?31, ?32, ?33)",
    [S_MEM_EACH] = "SELECT " MEM_COLS " FROM memory_samples WHERE job_id = ?1 "
                   "ORDER BY time, rowid",
    [S_LOG_ADD] = "INSERT INTO logs (job_id, time, text) VALUES (?1, ?2, ?3)",
    [S_LOGS_EACH] = "SELECT id, time, text FROM logs WHERE job_id = ?1 AND id > ?2 ORDER BY id",
    [S_CKPT_ADD] = "INSERT OR REPLACE INTO checkpoints (job_id, epoch, created_at, bytes, data) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_CKPT_PRUNE] = "DELETE FROM checkpoints WHERE job_id = ?1 AND epoch NOT IN "
                     "(SELECT epoch FROM checkpoints WHERE job_id = ?1 "
                     "ORDER BY epoch DESC LIMIT ?2)",
    [S_CKPTS_EACH] = "SELECT epoch, created_at, bytes FROM checkpoints WHERE job_id = ?1 "
                     "ORDER BY epoch",
    [S_CKPT_FIND] = "SELECT rowid, epoch FROM checkpoints "
                    "WHERE job_id = ?1 AND (?2 = 0 OR epoch = ?2) "
                    "ORDER BY epoch DESC LIMIT 1",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_N];
    int was_empty;               /* store_open found a 0-byte file and initialised it */
    int64_t vacuumed_ms;         /* store_open's one VACUUM took this long; -1 = none */
};

/* ---- errors */

/* Extended result codes are on, so rc can be SQLITE_CONSTRAINT_FOREIGNKEY. */
static int code_of(int rc)
{
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return MT_E_NOTFOUND;      /* a row for a job that does not exist */
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return MT_E_NOMEM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_SCHEMA:
    case SQLITE_FORMAT: return MT_E_FORMAT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return MT_E_BUSY;
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_READONLY: return MT_E_PERM;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
    case SQLITE_CONSTRAINT: return MT_E_INVAL;
    case SQLITE_INTERRUPT: return MT_E_CANCELLED;
    default: return MT_E_IO;    /* IOERR, FULL, CANTOPEN, PROTOCOL, ... */
    }
}

/* "store: <op>: <SQLite's text>". Call before resetting the statement. */
static int fail(struct store *st, int rc, const char *op, struct mt_err *err)
{
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    return mt_err_set(err, code_of(rc), "store: %s: %s", op, msg);
}

static int nomem(const char *op, struct mt_err *err)
{
    return mt_err_set(err, MT_E_NOMEM, "store: %s: out of memory", op);
}

/* ---- statements */

static sqlite3_stmt *stmt(struct store *st, int which)
{
    return st->stmt[which];
}

static void finish(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Step a statement that returns no rows, then reset it. */
static int run(struct store *st, sqlite3_stmt *s, const char *op, struct mt_err *err)
{
    int rc = sqlite3_step(s);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = fail(st, rc, op, err);
    finish(s);
    return ret;
}

/* sqlite3_bind_blob with a NULL pointer binds NULL; an empty message is
 * kept apart from "none" only where it matters (checkpoints). */
static int bind_blob(sqlite3_stmt *s, int i, const void *p, size_t len)
{
    if (!p)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_blob64(s, i, p, (sqlite3_uint64)len, SQLITE_STATIC);
}

static int bind_text(sqlite3_stmt *s, int i, const char *t)
{
    return sqlite3_bind_text(s, i, t ? t : "", -1, SQLITE_STATIC);
}

/* A malloc'd copy of a TEXT column; "" for NULL. */
static char *col_strdup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, t, n);
    p[n] = '\0';
    return p;
}

/* A malloc'd copy of a BLOB column into *out (NULL for NULL or empty). */
static int col_blobdup(sqlite3_stmt *s, int i, uint8_t **out, size_t *len)
{
    const void *b = sqlite3_column_blob(s, i);
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    *out = NULL;
    *len = 0;
    if (!b || !n)
        return 0;
    *out = malloc(n);
    if (!*out)
        return MT_E_NOMEM;
    memcpy(*out, b, n);
    *len = n;
    return 0;
}

/* ---- transactions */

int store_flush(struct store *st, struct mt_err *err)
{
    if (sqlite3_get_autocommit(st->db))
        return 0;
    return run(st, stmt(st, S_COMMIT), "commit batch", err);
}

/* Rows that may be lost to a crash go into the open batch. */
static int batch_begin(struct store *st, struct mt_err *err)
{
    if (!sqlite3_get_autocommit(st->db))
        return 0;
    return run(st, stmt(st, S_BEGIN), "begin batch", err);
}

/* Commit the batch, then begin a transaction of our own for a durable write. */
static int durable_begin(struct store *st, struct mt_err *err)
{
    int rc = store_flush(st, err);
    if (rc)
        return rc;
    return run(st, stmt(st, S_BEGIN), "begin", err);
}

static int durable_end(struct store *st, int rc, struct mt_err *err)
{
    if (rc) {
        if (!sqlite3_get_autocommit(st->db)) {
            sqlite3_stmt *s = stmt(st, S_ROLLBACK);
            sqlite3_step(s);
            finish(s);
        }
        return rc;
    }
    return run(st, stmt(st, S_COMMIT), "commit", err);
}

/* ---- open, migrate, close */

static int exec(struct store *st, const char *sql, const char *op, struct mt_err *err)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(st, rc, op, err);
}

static int query_int(struct store *st, const char *sql, int *out, const char *op,
                     struct mt_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return fail(st, rc, op, err);
    rc = sqlite3_step(s);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(s, 0);
    else
        ret = fail(st, rc == SQLITE_DONE ? SQLITE_ERROR : rc, op, err);
    sqlite3_finalize(s);
    return ret;
}

static int check_version(int version, const char *path, struct mt_err *err)
{
    if (version > STORE_SCHEMA_VERSION)
        return mt_err_set(err, MT_E_FORMAT,
                          "store: %s: schema version %d is newer than this build's %d",
                          path, version, STORE_SCHEMA_VERSION);
    if (version < 0)
        return mt_err_set(err, MT_E_FORMAT, "store: %s: bad schema version %d", path,
                          version);
    return 0;
}

/* The tables every schema version from 1 on has: how a store made before
 * application_id was set is told from another program's database. */
#define STORE_BASE_TABLES_SQL                                                                 \
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('jobs', 'epochs', " \
    "'steps', 'memory_samples', 'checkpoints', 'logs')"
#define STORE_BASE_TABLES 6

/* Is the open file ours? A memtrain store carries STORE_APP_ID; a new file
 * (no tables, version 0) becomes one; a store from before application_id
 * (0, with our tables at a version we know) is adopted by the migration.
 * Anything else is another program's database, refused before its version
 * is compared with ours (its user_version means nothing to us). */
static int identify(struct store *st, const char *path, int *adopt, struct mt_err *err)
{
    int version = 0, app = 0, tables = 0, ours = 0, rc;
    *adopt = 0;
    if ((rc = query_int(st, "PRAGMA user_version", &version, "read schema version", err)) ||
        (rc = query_int(st, "PRAGMA application_id", &app, "read application id", err)) ||
        (rc = query_int(st, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                            "name NOT LIKE 'sqlite_%'", &tables, "read the tables", err)) ||
        (rc = query_int(st, STORE_BASE_TABLES_SQL, &ours, "read the tables", err)))
        return rc;
    if (app == STORE_APP_ID)
        return check_version(version, path, err);
    if (app != 0)
        return mt_err_set(err, MT_E_FORMAT, "store: %s: not a memtrain store (another "
                          "program's SQLite database: application_id %d, user_version %d)",
                          path, app, version);
    if (version == 0 && tables == 0)
        return 0;
    if (version >= 1 && version <= STORE_SCHEMA_VERSION && ours == STORE_BASE_TABLES) {
        *adopt = 1;
        return 0;
    }
    return mt_err_set(err, MT_E_FORMAT, "store: %s: not a memtrain store (a SQLite database "
                      "with %d tables of its own, no memtrain application_id, user_version %d)",
                      path, tables, version);
}

/* Bring the schema from the file's user_version to STORE_SCHEMA_VERSION in
 * one transaction: a failure leaves the file as it was. */
static int migrate(struct store *st, const char *path, struct mt_err *err)
{
    int version = 0, adopt, rc;
    if ((rc = identify(st, path, &adopt, err)) ||
        (rc = query_int(st, "PRAGMA user_version", &version, "read schema version", err)))
        return rc;
    if (version == STORE_SCHEMA_VERSION && !adopt)
        return 0;
    if ((rc = exec(st, "BEGIN IMMEDIATE", "begin migration", err)))
        return rc;
    /* Another process may have migrated while we waited for the lock. */
    if ((rc = query_int(st, "PRAGMA user_version", &version, "read schema version", err)) ||
        (rc = check_version(version, path, err)))
        goto rollback;
    for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
        char op[64];
        snprintf(op, sizeof op, "migrate schema %d to %d", v, v + 1);
        if ((rc = exec(st, migrations[v], op, err)))
            goto rollback;
    }
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d",
             STORE_SCHEMA_VERSION, STORE_APP_ID);
    if ((rc = exec(st, sql, "set schema version", err)) ||
        (rc = exec(st, "COMMIT", "commit migration", err)))
        goto rollback;
    return 0;
rollback:
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* A file made before schema 5 has auto_vacuum NONE: one VACUUM (outside
 * any transaction) rewrites it with INCREMENTAL, so that deleted rows can
 * give their pages back (storetidy.c). It runs once, at the first start of
 * a build with schema 5; a file created since has it from the start. */
static int use_incremental_vacuum(struct store *st, struct mt_err *err)
{
    int mode = 0, rc;
    st->vacuumed_ms = -1;
    if ((rc = query_int(st, "PRAGMA auto_vacuum", &mode, "read auto_vacuum", err)) || mode == 2)
        return rc;
    int64_t t0 = mt_now_ms();
    if ((rc = exec(st, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM", "vacuum (to set "
                   "auto_vacuum = INCREMENTAL)", err)))
        return rc;
    st->vacuumed_ms = mt_now_ms() - t0;
    return 0;
}

int64_t store_opened_vacuum_ms(const struct store *st)
{
    return st->vacuumed_ms;
}

sqlite3 *store_db(struct store *st)
{
    return st->db;
}

int store_db_fail(struct store *st, int rc, const char *op, struct mt_err *err)
{
    return fail(st, rc, op, err);
}

int store_open(struct store **out, const char *path, struct mt_err *err)
{
    *out = NULL;
    struct store *st = calloc(1, sizeof *st);
    if (!st)
        return nomem("open", err);
    char op[64];
    struct stat sb;
    st->was_empty = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0;
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        if (!st->db) {
            free(st);
            return nomem("open", err);
        }
        rc = mt_err_set(err, code_of(rc), "store: open %s: %s", path,
                        sqlite3_errmsg(st->db));
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, 5000);
    /* The first statement reads the header: a file that is not a database
     * fails here, before anything is written to it. */
    int version;
    snprintf(op, sizeof op, "open %s", path);
    int adopt;
    if ((rc = query_int(st, "PRAGMA user_version", &version, op, err)) ||
        (rc = identify(st, path, &adopt, err)))   /* nothing written to a foreign file */
        goto fail;
    /* journal_mode answers with the mode it got; a file system without
     * shared memory keeps "delete", which works, only with less
     * concurrency, so that is not an error. */
    /* auto_vacuum first: a new file is created with it (WAL mode writes
     * the file's first page, after which only a VACUUM changes it) */
    if ((rc = exec(st, "PRAGMA auto_vacuum = INCREMENTAL", "set auto_vacuum", err)) ||
        (rc = exec(st, "PRAGMA journal_mode = WAL", "set WAL mode", err)) ||
        (rc = exec(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
                       "PRAGMA journal_size_limit = 67108864",
                   "set pragmas", err)) ||
        (rc = migrate(st, path, err)) || (rc = use_incremental_vacuum(st, err)))
        goto fail;
    for (int i = 0; i < S_N; i++) {
        rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &st->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            rc = fail(st, rc, "prepare statement", err);
            goto fail;
        }
    }
    *out = st;
    return 0;
fail:
    for (int i = 0; i < S_N; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_close(st->db);
    free(st);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    store_flush(st, NULL);  /* on failure the batch is rolled back by the close */
    for (int i = 0; i < S_N; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_exec(st->db, "PRAGMA optimize", NULL, NULL, NULL);
    sqlite3_close(st->db);
    free(st);
}

int store_opened_empty(const struct store *st)
{
    return st->was_empty;
}

int store_schema_version(struct store *st)
{
    int v = 0;
    int rc = query_int(st, "PRAGMA user_version", &v, "read schema version", NULL);
    return rc ? rc : v;
}

/* ---- jobs */

void store_job_clear(struct store_job *j)
{
    if (!j)
        return;
    free(j->name);
    free(j->reason);
    free(j->rule);
    free(j->labels);
    free(j->spec);
    free(j->planned);
    free(j->measured);
    memset(j, 0, sizeof *j);
}

static const char *state_name(int state)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&memtrain__job_state__descriptor, state);
    return v ? v->name : "UNKNOWN";
}

/* Binds ?1..?18, ?20..?22; SQLite's code when a string or blob cannot be
 * bound. */
static int bind_job(sqlite3_stmt *s, const struct store_job *j)
{
    int rc;
    sqlite3_bind_int64(s, 20, j->worker_pid);
    sqlite3_bind_int64(s, 21, (sqlite3_int64)j->worker_start);
    sqlite3_bind_int64(s, 2, j->owner_uid);
    sqlite3_bind_int(s, 3, j->state);
    sqlite3_bind_int(s, 6, j->priority);
    sqlite3_bind_int64(s, 7, j->submitted_at);
    sqlite3_bind_int64(s, 8, j->started_at);
    sqlite3_bind_int64(s, 9, j->finished_at);
    sqlite3_bind_int64(s, 11, j->epochs);
    sqlite3_bind_int64(s, 12, j->epochs_done);
    sqlite3_bind_int64(s, 13, (sqlite3_int64)j->memory_limit);
    sqlite3_bind_int(s, 14, j->exit_code);
    sqlite3_bind_int64(s, 15, j->resumes);
    sqlite3_bind_int64(s, 23, (sqlite3_int64)j->group_id);
    if ((rc = bind_text(s, 1, j->name)) || (rc = bind_text(s, 4, state_name(j->state))) ||
        (rc = bind_text(s, 5, j->reason)) || (rc = bind_text(s, 10, j->rule)) ||
        (rc = bind_text(s, 22, j->labels ? j->labels : "")) ||
        (rc = bind_blob(s, 16, j->spec, j->spec_len)) ||
        (rc = bind_blob(s, 17, j->planned, j->planned_len)) ||
        (rc = bind_blob(s, 18, j->measured, j->measured_len)))
        return rc;
    return 0;
}

/* Columns: id, then JOB_COLS. Copies everything; clears j on failure. */
static int read_job(sqlite3_stmt *s, struct store_job *j)
{
    memset(j, 0, sizeof *j);
    j->id = (uint64_t)sqlite3_column_int64(s, 0);
    j->name = col_strdup(s, 1);
    j->owner_uid = (uint32_t)sqlite3_column_int64(s, 2);
    j->state = sqlite3_column_int(s, 3);
    /* 4 is state_name, derived from state */
    j->reason = col_strdup(s, 5);
    j->priority = sqlite3_column_int(s, 6);
    j->submitted_at = sqlite3_column_int64(s, 7);
    j->started_at = sqlite3_column_int64(s, 8);
    j->finished_at = sqlite3_column_int64(s, 9);
    j->rule = col_strdup(s, 10);
    j->epochs = (uint32_t)sqlite3_column_int64(s, 11);
    j->epochs_done = (uint32_t)sqlite3_column_int64(s, 12);
    j->memory_limit = (uint64_t)sqlite3_column_int64(s, 13);
    j->exit_code = sqlite3_column_int(s, 14);
    j->resumes = (uint32_t)sqlite3_column_int64(s, 15);
    j->worker_pid = (int32_t)sqlite3_column_int64(s, 19);
    j->worker_start = (uint64_t)sqlite3_column_int64(s, 20);
    j->labels = col_strdup(s, 21);
    j->group_id = (uint64_t)sqlite3_column_int64(s, 22);
    if (!j->name || !j->reason || !j->rule || !j->labels ||
        col_blobdup(s, 16, &j->spec, &j->spec_len) ||
        col_blobdup(s, 17, &j->planned, &j->planned_len) ||
        col_blobdup(s, 18, &j->measured, &j->measured_len)) {
        store_job_clear(j);
        return MT_E_NOMEM;
    }
    return 0;
}

int store_job_insert(struct store *st, struct store_job *j, struct mt_err *err)
{
    int rc = durable_begin(st, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, S_JOB_INSERT);
    int brc = bind_job(s, j);
    if (brc) {
        rc = fail(st, brc, "insert job", err);
        finish(s);
    } else {
        rc = run(st, s, "insert job", err);
    }
    uint64_t id = rc ? 0 : (uint64_t)sqlite3_last_insert_rowid(st->db);
    rc = durable_end(st, rc, err);
    if (!rc)
        j->id = id;
    return rc;
}

int store_job_update(struct store *st, const struct store_job *j, struct mt_err *err)
{
    int rc = durable_begin(st, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, S_JOB_UPDATE);
    int brc = bind_job(s, j);
    if (!brc)
        brc = sqlite3_bind_int64(s, 19, (sqlite3_int64)j->id);
    if (brc) {
        rc = fail(st, brc, "update job", err);
        finish(s);
    } else {
        rc = run(st, s, "update job", err);
    }
    if (!rc && sqlite3_changes(st->db) == 0)
        rc = mt_err_set(err, MT_E_NOTFOUND, "job %" PRIu64 ": not found", j->id);
    return durable_end(st, rc, err);
}

int store_job_get(struct store *st, uint64_t id, struct store_job *out, struct mt_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = stmt(st, S_JOB_GET);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(s);
    int ret;
    if (rc == SQLITE_ROW)
        ret = read_job(s, out) ? nomem("read job", err) : 0;
    else if (rc == SQLITE_DONE)
        ret = mt_err_set(err, MT_E_NOTFOUND, "job %" PRIu64 ": not found", id);
    else
        ret = fail(st, rc, "read job", err);
    finish(s);
    return ret;
}

int store_jobs_each(struct store *st, int64_t owner, uint32_t state_mask, uint32_t limit,
                    store_job_fn fn, void *ud, struct mt_err *err)
{
    return store_jobs_page(st, owner, state_mask, 0, limit, fn, ud, err);
}

int store_jobs_page(struct store *st, int64_t owner, uint32_t state_mask, uint64_t before_id,
                    uint32_t limit, store_job_fn fn, void *ud, struct mt_err *err)
{
    int ret = store_flush(st, err);
    if (ret)
        return ret;
    sqlite3_stmt *s = stmt(st, S_JOBS_EACH);
    sqlite3_bind_int64(s, 1, owner < 0 ? -1 : owner);
    sqlite3_bind_int64(s, 2, state_mask);
    sqlite3_bind_int64(s, 3, limit ? (sqlite3_int64)limit : -1);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)before_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_job j;
        if (read_job(s, &j)) {
            ret = nomem("list jobs", err);
            break;
        }
        ret = fn(ud, &j);
        store_job_clear(&j);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(st, rc, "list jobs", err);
    finish(s);
    return ret;
}

int store_jobs_count(struct store *st, uint64_t *counts, size_t n, struct mt_err *err)
{
    sqlite3_stmt *s = NULL;
    memset(counts, 0, n * sizeof *counts);
    int rc = sqlite3_prepare_v2(st->db, "SELECT state, COUNT(*) FROM jobs GROUP BY state", -1,
                                &s, NULL);
    if (rc != SQLITE_OK)
        return fail(st, rc, "count jobs", err);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        sqlite3_int64 state = sqlite3_column_int64(s, 0);
        if (state >= 0 && (uint64_t)state < n)
            counts[state] = (uint64_t)sqlite3_column_int64(s, 1);
    }
    int ret = rc == SQLITE_DONE ? 0 : fail(st, rc, "count jobs", err);
    sqlite3_finalize(s);
    return ret;
}

/* ---- epochs */

int store_epoch_add(struct store *st, uint64_t job_id, const Memtrain__EpochProgress *e,
                    struct mt_err *err)
{
    int rc = durable_begin(st, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, S_EPOCH_ADD);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, e->epoch);
    sqlite3_bind_double(s, 3, e->loss);
    sqlite3_bind_double(s, 4, e->train_accuracy);
    sqlite3_bind_double(s, 5, e->test_accuracy);
    sqlite3_bind_double(s, 6, e->seconds);
    sqlite3_bind_double(s, 7, e->samples_per_second);
    sqlite3_bind_double(s, 8, e->lr);
    const Memtrain__MemoryStats *m = e->memory;
    if (m) {    /* left unbound (NULL) without figures */
        const uint64_t v[] = {
            m->params, m->grads, m->optimizer, m->activations, m->workspace, m->data,
            m->peak_total, m->phase_peak_forward, m->phase_peak_gradient,
            m->phase_peak_update, m->rss_peak_bytes,
        };
        for (int i = 0; i < 11; i++)
            sqlite3_bind_int64(s, 9 + i, (sqlite3_int64)v[i]);
    }
    rc = run(st, s, "insert epoch", err);
    if (!rc) {   /* a re-sent epoch's metrics replace the old ones */
        s = stmt(st, S_EMETRIC_CLEAR);
        sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
        sqlite3_bind_int64(s, 2, e->epoch);
        rc = run(st, s, "clear epoch metrics", err);
    }
    for (size_t i = 0; !rc && i < e->n_rule_metrics; i++) {
        const Memtrain__RuleMetric *rm = e->rule_metrics[i];
        if (!rm)
            continue;
        s = stmt(st, S_EMETRIC_ADD);
        sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
        sqlite3_bind_int64(s, 2, e->epoch);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
        bind_text(s, 4, rm->name);
        sqlite3_bind_double(s, 5, rm->value);   /* SQLite stores NaN as NULL */
        rc = run(st, s, "insert epoch metric", err);
    }
    return durable_end(st, rc, err);
}

/* One epoch's rule metrics, read for the duration of a store_epoch_fn call. */
struct metrics_buf {
    Memtrain__RuleMetric *m;
    Memtrain__RuleMetric **p;
    size_t n, cap;
};

static void metrics_clear(struct metrics_buf *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->m[i].name);
    b->n = 0;
}

static void metrics_free(struct metrics_buf *b)
{
    metrics_clear(b);
    free(b->m);
    free(b->p);
}

/* Read the metrics of (job_id, e->epoch) into b and point e at them. */
static int metrics_read(struct store *st, uint64_t job_id, Memtrain__EpochProgress *e,
                        struct metrics_buf *b, struct mt_err *err)
{
    metrics_clear(b);
    sqlite3_stmt *s = stmt(st, S_EMETRICS_OF);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, e->epoch);
    int rc, ret = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? 2 * b->cap : 16;
            Memtrain__RuleMetric *m = realloc(b->m, cap * sizeof *m);
            if (m)
                b->m = m;
            Memtrain__RuleMetric **p = m ? realloc(b->p, cap * sizeof *p) : NULL;
            if (!p) {
                ret = nomem("read epoch metrics", err);
                break;
            }
            b->p = p;
            b->cap = cap;
        }
        Memtrain__RuleMetric *m = &b->m[b->n];
        memtrain__rule_metric__init(m);
        if (!(m->name = col_strdup(s, 0))) {
            ret = nomem("read epoch metrics", err);
            break;
        }
        m->value = sqlite3_column_type(s, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(s, 1);
        b->n++;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(st, rc, "read epoch metrics", err);
    finish(s);
    for (size_t i = 0; i < b->n; i++)   /* after the last realloc */
        b->p[i] = &b->m[i];
    e->n_rule_metrics = ret ? 0 : b->n;
    e->rule_metrics = ret || !b->n ? NULL : b->p;
    return ret;
}

int store_epochs_each(struct store *st, uint64_t job_id, store_epoch_fn fn, void *ud,
                      struct mt_err *err)
{
    int ret = store_flush(st, err);
    if (ret)
        return ret;
    sqlite3_stmt *s = stmt(st, S_EPOCHS_EACH);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    struct metrics_buf mb = {0};
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        Memtrain__EpochProgress e;
        Memtrain__MemoryStats m;
        memtrain__epoch_progress__init(&e);
        memtrain__memory_stats__init(&m);
        e.epoch = (uint32_t)sqlite3_column_int64(s, 0);
        e.loss = sqlite3_column_double(s, 1);
        e.train_accuracy = sqlite3_column_double(s, 2);
        e.test_accuracy = sqlite3_column_double(s, 3);
        e.seconds = sqlite3_column_double(s, 4);
        e.samples_per_second = sqlite3_column_double(s, 5);
        e.lr = (float)sqlite3_column_double(s, 6);
        if (sqlite3_column_type(s, 7) != SQLITE_NULL) {
            uint64_t *v[] = {
                &m.params, &m.grads, &m.optimizer, &m.activations, &m.workspace, &m.data,
                &m.peak_total, &m.phase_peak_forward, &m.phase_peak_gradient,
                &m.phase_peak_update, &m.rss_peak_bytes,
            };
            for (int i = 0; i < 11; i++)
                *v[i] = (uint64_t)sqlite3_column_int64(s, 7 + i);
            e.memory = &m;
        }
        if ((ret = metrics_read(st, job_id, &e, &mb, err)) || (ret = fn(ud, &e)))
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(st, rc, "read epochs", err);
    finish(s);
    metrics_free(&mb);
    return ret;
}

/* ---- batched rows: steps, memory samples, logs */

int store_step_add(struct store *st, uint64_t job_id, const Memtrain__StepProgress *p,
                   struct mt_err *err)
{
    int rc = batch_begin(st, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, S_STEP_ADD);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)p->step);
    sqlite3_bind_int64(s, 3, p->epoch);
    sqlite3_bind_double(s, 4, p->loss);
    return run(st, s, "insert step", err);
}

int store_steps_each(struct store *st, uint64_t job_id, store_step_fn fn, void *ud,
                     struct mt_err *err)
{
    int ret = store_flush(st, err);
    if (ret)
        return ret;
    sqlite3_stmt *s = stmt(st, S_STEPS_EACH);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        Memtrain__StepProgress p;
        memtrain__step_progress__init(&p);
        p.step = (uint64_t)sqlite3_column_int64(s, 0);
        p.epoch = (uint32_t)sqlite3_column_int64(s, 1);
        p.loss = sqlite3_column_double(s, 2);
        if ((ret = fn(ud, &p)))
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(st, rc, "read steps", err);
    finish(s);
    return ret;
}

/* A sample keeps the current bytes per category and their total, the peak
 * per category, total and phase, the kernel's figures, and the interval's
 * peaks with its steps (NULL columns without them). The current stats' phase
 * peaks mean nothing and are not kept; rss_peak_bytes of the peak stats
 * comes back as the sample's hwm_bytes (VmHWM is that peak). */
#define MEM_FIXED 20      /* columns after time, before the interval's */
#define MEM_INTERVAL 11   /* the interval's columns */
int store_memory_add(struct store *st, uint64_t job_id, const Memtrain__MemorySample *m,
                     struct mt_err *err)
{
    int rc = batch_begin(st, err);
    if (rc)
        return rc;
    static const Memtrain__MemoryStats zero = MEMTRAIN__MEMORY_STATS__INIT;
    const Memtrain__MemoryStats *c = m->current ? m->current : &zero;
    const Memtrain__MemoryStats *p = m->peak ? m->peak : &zero;
    const uint64_t v[] = {
        c->params, c->grads, c->optimizer, c->activations, c->workspace, c->data,
        c->peak_total,
        p->params, p->grads, p->optimizer, p->activations, p->workspace, p->data,
        p->peak_total, p->phase_peak_forward, p->phase_peak_gradient, p->phase_peak_update,
        m->rss_bytes, m->hwm_bytes, m->limit,
    };
    const Memtrain__MemoryStats *iv = m->interval_peak;
    const uint64_t w[MEM_INTERVAL] = {
        iv ? iv->params : 0, iv ? iv->grads : 0, iv ? iv->optimizer : 0,
        iv ? iv->activations : 0, iv ? iv->workspace : 0, iv ? iv->data : 0,
        iv ? iv->peak_total : 0, iv ? iv->phase_peak_forward : 0,
        iv ? iv->phase_peak_gradient : 0, iv ? iv->phase_peak_update : 0, m->interval_steps,
    };
    _Static_assert(sizeof v / sizeof v[0] == MEM_FIXED, "one value per fixed column");
    sqlite3_stmt *s = stmt(st, S_MEM_ADD);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, m->time);
    for (int i = 0; i < MEM_FIXED; i++)
        sqlite3_bind_int64(s, 3 + i, (sqlite3_int64)v[i]);
    for (int i = 0; i < MEM_INTERVAL; i++) {
        if (iv)
            sqlite3_bind_int64(s, 3 + MEM_FIXED + i, (sqlite3_int64)w[i]);
        else
            sqlite3_bind_null(s, 3 + MEM_FIXED + i);
    }
    return run(st, s, "insert memory sample", err);
}

int store_memory_each(struct store *st, uint64_t job_id, store_memory_fn fn, void *ud,
                      struct mt_err *err)
{
    int ret = store_flush(st, err);
    if (ret)
        return ret;
    sqlite3_stmt *s = stmt(st, S_MEM_EACH);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        Memtrain__MemorySample m;
        Memtrain__MemoryStats c, p, iv;
        memtrain__memory_sample__init(&m);
        memtrain__memory_stats__init(&c);
        memtrain__memory_stats__init(&p);
        memtrain__memory_stats__init(&iv);
        uint64_t *v[] = {
            &c.params, &c.grads, &c.optimizer, &c.activations, &c.workspace, &c.data,
            &c.peak_total,
            &p.params, &p.grads, &p.optimizer, &p.activations, &p.workspace, &p.data,
            &p.peak_total, &p.phase_peak_forward, &p.phase_peak_gradient,
            &p.phase_peak_update,
            &m.rss_bytes, &m.hwm_bytes, &m.limit,
        };
        uint64_t *w[MEM_INTERVAL] = {
            &iv.params, &iv.grads, &iv.optimizer, &iv.activations, &iv.workspace, &iv.data,
            &iv.peak_total, &iv.phase_peak_forward, &iv.phase_peak_gradient,
            &iv.phase_peak_update, &m.interval_steps,
        };
        m.time = sqlite3_column_int64(s, 0);
        for (int i = 0; i < MEM_FIXED; i++)
            *v[i] = (uint64_t)sqlite3_column_int64(s, 1 + i);
        for (int i = 0; i < MEM_INTERVAL; i++)
            *w[i] = (uint64_t)sqlite3_column_int64(s, 1 + MEM_FIXED + i);
        p.rss_peak_bytes = m.hwm_bytes;
        m.current = &c;
        m.peak = &p;
        if (sqlite3_column_type(s, 1 + MEM_FIXED) != SQLITE_NULL)
            m.interval_peak = &iv;
        if ((ret = fn(ud, &m)))
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(st, rc, "read memory samples", err);
    finish(s);
    return ret;
}

int store_log_add(struct store *st, uint64_t job_id, int64_t time_ms, const char *text,
                  struct mt_err *err)
{
    int rc = batch_begin(st, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, S_LOG_ADD);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, time_ms);
    if ((rc = bind_text(s, 3, text)) != SQLITE_OK) {
        rc = fail(st, rc, "insert log line", err);
        finish(s);
        return rc;
    }
    return run(st, s, "insert log line", err);
}

int store_logs_each(struct store *st, uint64_t job_id, int64_t after_id, store_log_fn fn,
                    void *ud, struct mt_err *err)
{
    int ret = store_flush(st, err);
    if (ret)
        return ret;
    sqlite3_stmt *s = stmt(st, S_LOGS_EACH);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, after_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 2);
        if ((ret = fn(ud, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                      t ? (const char *)t : "")))
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(st, rc, "read logs", err);
    finish(s);
    return ret;
}

/* ---- checkpoints */

int store_ckpt_add(struct store *st, uint64_t job_id, uint32_t epoch, int64_t time_ms,
                   const uint8_t *blob, size_t len, uint32_t keep_last, struct mt_err *err)
{
    int rc = durable_begin(st, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, S_CKPT_ADD);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, epoch);
    sqlite3_bind_int64(s, 3, time_ms);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)len);
    /* The caller's buffer outlives the step, so SQLite need not copy it;
     * an empty checkpoint is an empty blob, not NULL. */
    int brc = len ? sqlite3_bind_blob64(s, 5, blob, (sqlite3_uint64)len, SQLITE_STATIC)
                  : sqlite3_bind_zeroblob(s, 5, 0);
    if (brc != SQLITE_OK) {
        rc = fail(st, brc, "insert checkpoint", err);
        finish(s);
    } else {
        rc = run(st, s, "insert checkpoint", err);
    }
    if (!rc && keep_last) {
        s = stmt(st, S_CKPT_PRUNE);
        sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
        sqlite3_bind_int64(s, 2, keep_last);
        rc = run(st, s, "prune checkpoints", err);
    }
    return durable_end(st, rc, err);
}

int store_ckpts_each(struct store *st, uint64_t job_id, store_ckpt_fn fn, void *ud,
                     struct mt_err *err)
{
    /* A batch that cannot be committed now (a full disk) stays open for a
     * later flush; the list is read all the same, inside it. */
    int ret = 0;
    store_flush(st, NULL);
    sqlite3_stmt *s = stmt(st, S_CKPTS_EACH);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if ((ret = fn(ud, (uint32_t)sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                      (uint64_t)sqlite3_column_int64(s, 2))))
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(st, rc, "read checkpoints", err);
    finish(s);
    return ret;
}

/* The blob is read with sqlite3_blob_read straight into the caller's
 * buffer: sqlite3_column_blob would first make a copy of its own, and a
 * checkpoint can be hundreds of MB. */
int store_ckpt_open(struct store *st, uint64_t job_id, uint32_t epoch,
                    struct store_ckpt_ref *ref, struct mt_err *err)
{
    memset(ref, 0, sizeof *ref);
    int ret = store_flush(st, err);
    if (ret)
        return ret;
    sqlite3_stmt *s = stmt(st, S_CKPT_FIND);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)job_id);
    sqlite3_bind_int64(s, 2, epoch);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        ref->rowid = sqlite3_column_int64(s, 0);
        ref->epoch = (uint32_t)sqlite3_column_int64(s, 1);
    } else if (rc == SQLITE_DONE) {
        ret = epoch ? mt_err_set(err, MT_E_NOTFOUND,
                                 "job %" PRIu64 " has no checkpoint for epoch %" PRIu32,
                                 job_id, epoch)
                    : mt_err_set(err, MT_E_NOTFOUND, "job %" PRIu64 " has no checkpoint",
                                 job_id);
    } else {
        ret = fail(st, rc, "read checkpoint", err);
    }
    finish(s);
    if (ret)
        return ret;
    sqlite3_blob *b = NULL;
    rc = sqlite3_blob_open(st->db, "main", "checkpoints", "data", ref->rowid, 0, &b);
    if (rc == SQLITE_OK)
        ref->len = (size_t)(sqlite3_blob_bytes(b) > 0 ? sqlite3_blob_bytes(b) : 0);
    else
        ret = fail(st, rc, "read checkpoint", err);
    sqlite3_blob_close(b);
    return ret;
}

int store_ckpt_read(struct store *st, const struct store_ckpt_ref *ref, size_t off, uint8_t *buf,
                    size_t n, struct mt_err *err)
{
    if (n == 0)
        return 0;
    if (off > ref->len || n > ref->len - off || ref->len > INT_MAX)
        return mt_err_set(err, MT_E_INVAL, "checkpoint read past its end");
    sqlite3_blob *b = NULL;
    int rc = sqlite3_blob_open(st->db, "main", "checkpoints", "data", ref->rowid, 0, &b);
    if (rc == SQLITE_OK && sqlite3_blob_bytes(b) != (int)ref->len)
        rc = SQLITE_ABORT; /* replaced since it was opened */
    if (rc == SQLITE_OK)
        rc = sqlite3_blob_read(b, buf, (int)n, (int)off);
    sqlite3_blob_close(b);
    if (rc == SQLITE_ABORT || rc == SQLITE_ERROR)
        return mt_err_set(err, MT_E_NOTFOUND, "the checkpoint of epoch %" PRIu32
                          " was removed or replaced while it was being read", ref->epoch);
    return rc == SQLITE_OK ? 0 : fail(st, rc, "read checkpoint", err);
}

int store_ckpt_get(struct store *st, uint64_t job_id, uint32_t epoch, uint8_t **blob,
                   size_t *len, uint32_t *epoch_out, struct mt_err *err)
{
    *blob = NULL;
    *len = 0;
    struct store_ckpt_ref ref;
    int ret = store_ckpt_open(st, job_id, epoch, &ref, err);
    if (ret)
        return ret;
    uint8_t *buf = malloc(ref.len ? ref.len : 1);
    if (!buf)
        return nomem("read checkpoint", err);
    if ((ret = store_ckpt_read(st, &ref, 0, buf, ref.len, err))) {
        free(buf);
        return ret;
    }
    *blob = buf;
    *len = ref.len;
    if (epoch_out)
        *epoch_out = ref.epoch;
    return 0;
}
