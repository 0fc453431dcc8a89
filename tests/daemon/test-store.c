/* test-store.c: memtraind's SQLite store (daemon/memtraind/store.c).
 *
 * Rows survive a close and reopen; the schema is versioned and a newer or
 * foreign file is refused with a message, never a crash; every column of a
 * job, an epoch and a memory sample comes back as it went in; batched rows
 * stay invisible to another connection until store_flush while durable
 * writes are visible at once; checkpoints keep only the newest N. A second
 * connection (sqlite3_open) plays the part of a person with the sqlite3
 * CLI, or of the daemon after a kill -9. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

struct fx {
    char dir[64];
    char path[96];
    struct store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/test-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/memtrain.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[400];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void open_store(struct fx *f)
{
    struct mt_err err = {0};
    int rc = store_open(&f->st, f->path, &err);
    if (rc)
        fail_msg("store_open: %s", err.msg);
    assert_non_null(f->st);
}

/* One integer from a second, independent connection. */
static int64_t peek(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void exec_other(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static uint64_t add_job(struct store *st, const char *name, uint32_t owner, int state)
{
    struct store_job j = {0};
    j.name = (char *)name;
    j.owner_uid = owner;
    j.state = state;
    struct mt_err err = {0};
    if (store_job_insert(st, &j, &err))
        fail_msg("insert: %s", err.msg);
    assert_true(j.id > 0);
    return j.id;
}

/* ---- open, schema */

static void test_reopen_keeps_rows(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t id = add_job(f->st, "kept", 1000, MEMTRAIN__JOB_STATE__QUEUED);
    Memtrain__StepProgress sp = MEMTRAIN__STEP_PROGRESS__INIT;
    sp.step = 5;
    sp.epoch = 1;
    sp.loss = 0.5;
    assert_int_equal(store_step_add(f->st, id, &sp, &err), 0);
    store_close(f->st);   /* flushes the pending step */
    f->st = NULL;

    open_store(f);
    struct store_job j;
    assert_int_equal(store_job_get(f->st, id, &j, &err), 0);
    assert_string_equal(j.name, "kept");
    store_job_clear(&j);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM steps"), 1);
    /* a new id is never an old one */
    assert_true(add_job(f->st, "next", 1000, MEMTRAIN__JOB_STATE__QUEUED) > id);
}

static void test_schema_version_and_pragmas(void **state)
{
    struct fx *f = *state;
    open_store(f);
    assert_int_equal(store_schema_version(f->st), STORE_SCHEMA_VERSION);
    assert_int_equal(peek(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM pragma_journal_mode "
                                   "WHERE journal_mode = 'wal'"), 1);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                   "AND name IN ('jobs', 'epochs', 'epoch_metrics', 'steps', "
                                   "'memory_samples', 'checkpoints', 'logs')"), 7);
    /* foreign keys are on: an epoch for a job that does not exist is refused */
    struct mt_err err = {0};
    Memtrain__EpochProgress e = MEMTRAIN__EPOCH_PROGRESS__INIT;
    e.epoch = 1;
    assert_int_equal(store_epoch_add(f->st, 999, &e, &err), MT_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "store: insert epoch: "));
    assert_non_null(strstr(err.msg, "FOREIGN KEY"));
}

static void test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    open_store(f);
    store_close(f->st);
    f->st = NULL;
    int newer = STORE_SCHEMA_VERSION + 1;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", newer);
    exec_other(f->path, sql);

    struct mt_err err = {0};
    struct store *st = (struct store *)1;
    assert_int_equal(store_open(&st, f->path, &err), MT_E_FORMAT);
    assert_null(st);
    assert_non_null(strstr(err.msg, f->path));
    char want[96];
    snprintf(want, sizeof want, "schema version %d is newer than this build's %d", newer,
             STORE_SCHEMA_VERSION);
    assert_non_null(strstr(err.msg, want));
    /* and the file is left alone */
    assert_int_equal(peek(f->path, "PRAGMA user_version"), newer);
}

static void test_not_a_database_refused(void **state)
{
    struct fx *f = *state;
    unsigned char junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (unsigned char)(x >> 16);
    }
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(junk, 1, sizeof junk, fp), sizeof junk);
    fclose(fp);

    struct mt_err err = {0};
    struct store *st = NULL;
    assert_int_equal(store_open(&st, f->path, &err), MT_E_FORMAT);
    assert_null(st);
    assert_non_null(strstr(err.msg, "store: open "));
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "not a database"));

    /* not one byte written */
    unsigned char back[sizeof junk + 1];
    fp = fopen(f->path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(back, 1, sizeof back, fp), sizeof junk);
    fclose(fp);
    assert_memory_equal(back, junk, sizeof junk);

    /* a directory that does not exist */
    char bad[200];
    snprintf(bad, sizeof bad, "%s/no/such/dir.db", f->dir);
    assert_int_equal(store_open(&st, bad, &err), MT_E_IO);
    assert_null(st);
    assert_non_null(strstr(err.msg, bad));
}

static void test_foreign_database_refused(void **state)
{
    struct fx *f = *state;
    exec_other(f->path, "PRAGMA application_id = 42; PRAGMA user_version = 1; "
                        "CREATE TABLE t(x)");
    struct mt_err err = {0};
    struct store *st = NULL;
    assert_int_equal(store_open(&st, f->path, &err), MT_E_FORMAT);
    assert_non_null(strstr(err.msg, "not a memtrain store"));
}

/* The whole file, for "not one byte written". */
static size_t slurp(const char *path, unsigned char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

/* Another program's database with a user_version above ours is "not a
 * memtrain store", not "schema version 3 is newer" (it used to be), with or
 * without an application_id of its own; and nothing is written to it. */
static void test_foreign_database_with_newer_version_refused(void **state)
{
    struct fx *f = *state;
    static const char *const others[] = {
        "PRAGMA user_version = 3; CREATE TABLE notes(x); INSERT INTO notes VALUES (1)",
        "PRAGMA application_id = 7; PRAGMA user_version = 3; CREATE TABLE notes(x)",
    };
    for (size_t i = 0; i < 2; i++) {
        unlink(f->path);
        exec_other(f->path, others[i]);
        static unsigned char before[1 << 16], after[1 << 16];
        size_t n = slurp(f->path, before, sizeof before);
        struct mt_err err = {0};
        struct store *st = NULL;
        assert_int_equal(store_open(&st, f->path, &err), MT_E_FORMAT);
        assert_null(st);
        printf("%s -> %s\n", others[i], err.msg);
        assert_non_null(strstr(err.msg, "not a memtrain store"));
        assert_null(strstr(err.msg, "newer"));
        assert_int_equal(slurp(f->path, after, sizeof after), n);
        assert_memory_equal(before, after, n);
    }
}

/* A database with tables but neither our id nor our tables (the file that
 * used to be migrated into, half-way) is refused and left as it was. */
static void test_unmarked_database_with_tables_refused(void **state)
{
    struct fx *f = *state;
    exec_other(f->path, "CREATE TABLE checkpoints(x)");
    struct mt_err err = {0};
    struct store *st = NULL;
    assert_int_equal(store_open(&st, f->path, &err), MT_E_FORMAT);
    assert_null(st);
    assert_non_null(strstr(err.msg, "not a memtrain store"));
    assert_int_equal(peek(f->path, "PRAGMA user_version"), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs'"),
                     0);
}

/* A store from before application_id was set is told by its tables and
 * adopted: it opens, keeps its rows and gets the id. */
static void test_store_without_application_id_adopted(void **state)
{
    struct fx *f = *state;
    open_store(f);
    uint64_t id = add_job(f->st, "kept", 1000, MEMTRAIN__JOB_STATE__COMPLETED);
    store_close(f->st);
    f->st = NULL;
    exec_other(f->path, "PRAGMA application_id = 0");
    assert_int_equal(peek(f->path, "PRAGMA application_id"), 0);
    open_store(f);
    assert_int_equal(peek(f->path, "PRAGMA application_id"), 0x4d54524e);
    struct store_job j;
    struct mt_err err = {0};
    assert_int_equal(store_job_get(f->st, id, &j, &err), 0);
    assert_string_equal(j.name, "kept");
    store_job_clear(&j);
}

/* A 0-byte file is a store whose creation never finished (SQLite writes
 * nothing before the schema): it is initialised, and store_opened_empty
 * tells the daemon to log that. A new path is not "empty". */
static void test_empty_file_initialised_and_reported(void **state)
{
    struct fx *f = *state;
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    fclose(fp);
    open_store(f);
    assert_int_equal(store_opened_empty(f->st), 1);
    assert_int_equal(store_schema_version(f->st), STORE_SCHEMA_VERSION);
    assert_int_equal(peek(f->path, "PRAGMA application_id"), 0x4d54524e);
    store_close(f->st);
    f->st = NULL;
    open_store(f);
    assert_int_equal(store_opened_empty(f->st), 0);
}

/* ---- jobs */

static void test_job_round_trip(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint8_t spec[] = {0x0a, 0x03, 'a', 0x00, 'c', 0xff};
    uint8_t planned[300];
    for (size_t i = 0; i < sizeof planned; i++)
        planned[i] = (uint8_t)(i * 7);
    struct store_job in = {
        .name = "mnist-mlp",
        .owner_uid = 4000000000u,
        .state = MEMTRAIN__JOB_STATE__QUEUED,
        .reason = "",
        .priority = -3,
        .submitted_at = 1700000000123,
        .rule = "memdfa",
        .epochs = 20,
        .memory_limit = (uint64_t)3 << 40,
        .spec = spec,
        .spec_len = sizeof spec,
        .planned = planned,
        .planned_len = sizeof planned,
    };
    assert_int_equal(store_job_insert(f->st, &in, &err), 0);
    assert_true(in.id > 0);

    struct store_job out;
    assert_int_equal(store_job_get(f->st, in.id, &out, &err), 0);
    assert_int_equal(out.id, in.id);
    assert_string_equal(out.name, "mnist-mlp");
    assert_int_equal(out.owner_uid, 4000000000u);
    assert_int_equal(out.state, MEMTRAIN__JOB_STATE__QUEUED);
    assert_string_equal(out.reason, "");
    assert_int_equal(out.priority, -3);
    assert_int_equal(out.submitted_at, 1700000000123);
    assert_int_equal(out.started_at, 0);
    assert_string_equal(out.rule, "memdfa");
    assert_int_equal(out.epochs, 20);
    assert_int_equal(out.memory_limit, (uint64_t)3 << 40);
    assert_int_equal(out.spec_len, sizeof spec);
    assert_memory_equal(out.spec, spec, sizeof spec);
    assert_int_equal(out.planned_len, sizeof planned);
    assert_memory_equal(out.planned, planned, sizeof planned);
    assert_null(out.measured);
    assert_int_equal(out.measured_len, 0);
    store_job_clear(&out);

    uint8_t measured[] = {1, 2, 3, 4};
    in.state = MEMTRAIN__JOB_STATE__OUT_OF_MEMORY;
    in.reason = "arena: activations: limit 3 GiB";
    in.started_at = 1700000001000;
    in.finished_at = 1700000002000;
    in.epochs_done = 7;
    in.exit_code = -9;
    in.resumes = 2;
    in.planned = NULL;
    in.planned_len = 0;
    in.measured = measured;
    in.measured_len = sizeof measured;
    assert_int_equal(store_job_update(f->st, &in, &err), 0);
    assert_int_equal(store_job_get(f->st, in.id, &out, &err), 0);
    assert_int_equal(out.state, MEMTRAIN__JOB_STATE__OUT_OF_MEMORY);
    assert_string_equal(out.reason, "arena: activations: limit 3 GiB");
    assert_int_equal(out.started_at, 1700000001000);
    assert_int_equal(out.finished_at, 1700000002000);
    assert_int_equal(out.epochs_done, 7);
    assert_int_equal(out.exit_code, -9);
    assert_int_equal(out.resumes, 2);
    assert_null(out.planned);
    assert_int_equal(out.measured_len, sizeof measured);
    assert_memory_equal(out.measured, measured, sizeof measured);
    assert_memory_equal(out.spec, spec, sizeof spec);
    store_job_clear(&out);
    assert_null(out.name);

    /* the state's name follows the state, for people querying the file */
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM jobs WHERE id = %llu AND state_name = 'OUT_OF_MEMORY'",
             (unsigned long long)in.id);
    assert_int_equal(peek(f->path, sql), 1);

    assert_int_equal(store_job_get(f->st, 42, &out, &err), MT_E_NOTFOUND);
    assert_string_equal(err.msg, "job 42: not found");
    in.id = 43;
    assert_int_equal(store_job_update(f->st, &in, &err), MT_E_NOTFOUND);
    assert_string_equal(err.msg, "job 43: not found");
}

struct seen {
    uint64_t ids[16];
    int n;
    int stop_after;     /* return 99 from the callback after this many; 0 = never */
};

static int collect_job(void *ud, const struct store_job *j)
{
    struct seen *s = ud;
    assert_true(s->n < 16);
    assert_non_null(j->name);
    s->ids[s->n++] = j->id;
    return s->stop_after && s->n == s->stop_after ? 99 : 0;
}

static void test_jobs_each_filters(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t a = add_job(f->st, "a", 1, MEMTRAIN__JOB_STATE__QUEUED);
    uint64_t b = add_job(f->st, "b", 2, MEMTRAIN__JOB_STATE__RUNNING);
    uint64_t c = add_job(f->st, "c", 1, MEMTRAIN__JOB_STATE__COMPLETED);
    uint64_t d = add_job(f->st, "d", 1, MEMTRAIN__JOB_STATE__RUNNING);
    uint64_t e = add_job(f->st, "e", 2, MEMTRAIN__JOB_STATE__FAILED);

    struct seen s = {0};
    assert_int_equal(store_jobs_each(f->st, -1, 0, 0, collect_job, &s, &err), 0);
    assert_int_equal(s.n, 5);
    uint64_t all[] = {e, d, c, b, a};
    assert_memory_equal(s.ids, all, sizeof all);

    memset(&s, 0, sizeof s);
    assert_int_equal(store_jobs_each(f->st, 1, 0, 0, collect_job, &s, &err), 0);
    uint64_t mine[] = {d, c, a};
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.ids, mine, sizeof mine);

    memset(&s, 0, sizeof s);
    uint32_t mask = 1u << MEMTRAIN__JOB_STATE__RUNNING | 1u << MEMTRAIN__JOB_STATE__QUEUED;
    assert_int_equal(store_jobs_each(f->st, -1, mask, 0, collect_job, &s, &err), 0);
    uint64_t live[] = {d, b, a};
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.ids, live, sizeof live);

    memset(&s, 0, sizeof s);
    assert_int_equal(store_jobs_each(f->st, 2, mask, 0, collect_job, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ids[0], b);

    memset(&s, 0, sizeof s);
    assert_int_equal(store_jobs_each(f->st, -1, 0, 2, collect_job, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ids[0], e);
    assert_int_equal(s.ids[1], d);

    memset(&s, 0, sizeof s);
    assert_int_equal(store_jobs_each(f->st, 3, 0, 0, collect_job, &s, &err), 0);
    assert_int_equal(s.n, 0);

    /* the callback's nonzero stops the walk and comes back */
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    assert_int_equal(store_jobs_each(f->st, -1, 0, 0, collect_job, &s, &err), 99);
    assert_int_equal(s.n, 2);
}

/* ---- epochs */

static Memtrain__MemoryStats epoch_mem(uint64_t k)
{
    Memtrain__MemoryStats m = MEMTRAIN__MEMORY_STATS__INIT;
    m.params = k + 1;
    m.grads = k + 2;
    m.optimizer = k + 3;
    m.activations = k + 4;
    m.workspace = k + 5;
    m.data = k + 6;
    m.peak_total = k + 7;
    m.phase_peak_forward = k + 8;
    m.phase_peak_gradient = k + 9;
    m.phase_peak_update = k + 10;
    m.rss_peak_bytes = k + 11;
    return m;
}

struct epochs_seen {
    Memtrain__EpochProgress e[4];
    Memtrain__MemoryStats m[4];
    int has_mem[4];
    size_t n_metrics[4];
    char metric_name[4][4][32];
    double metric_value[4][4];
    int n;
};

static int collect_epoch(void *ud, const Memtrain__EpochProgress *e)
{
    struct epochs_seen *s = ud;
    assert_true(s->n < 4);
    s->e[s->n] = *e;
    s->has_mem[s->n] = e->memory != NULL;
    if (e->memory)
        s->m[s->n] = *e->memory;
    s->e[s->n].memory = NULL;   /* points into the store's stack frame */
    assert_true(e->n_rule_metrics <= 4);
    assert_true(e->n_rule_metrics == 0 || e->rule_metrics != NULL);
    s->n_metrics[s->n] = e->n_rule_metrics;
    for (size_t k = 0; k < e->n_rule_metrics; k++) {
        snprintf(s->metric_name[s->n][k], sizeof s->metric_name[s->n][k], "%s",
                 e->rule_metrics[k]->name);
        s->metric_value[s->n][k] = e->rule_metrics[k]->value;
    }
    s->e[s->n].rule_metrics = NULL;   /* so do these */
    s->e[s->n].n_rule_metrics = 0;
    s->n++;
    return 0;
}

static void assert_stats_equal(const Memtrain__MemoryStats *a, const Memtrain__MemoryStats *b)
{
    assert_int_equal(a->params, b->params);
    assert_int_equal(a->grads, b->grads);
    assert_int_equal(a->optimizer, b->optimizer);
    assert_int_equal(a->activations, b->activations);
    assert_int_equal(a->workspace, b->workspace);
    assert_int_equal(a->data, b->data);
    assert_int_equal(a->peak_total, b->peak_total);
    assert_int_equal(a->phase_peak_forward, b->phase_peak_forward);
    assert_int_equal(a->phase_peak_gradient, b->phase_peak_gradient);
    assert_int_equal(a->phase_peak_update, b->phase_peak_update);
    assert_int_equal(a->rss_peak_bytes, b->rss_peak_bytes);
}

static void test_epochs_round_trip_and_replace(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t id = add_job(f->st, "e", 1, MEMTRAIN__JOB_STATE__RUNNING);
    uint64_t other = add_job(f->st, "other", 1, MEMTRAIN__JOB_STATE__RUNNING);

    Memtrain__MemoryStats m1 = epoch_mem(1000), m2 = epoch_mem((uint64_t)1 << 40);
    Memtrain__EpochProgress e2 = MEMTRAIN__EPOCH_PROGRESS__INIT;
    e2.epoch = 2;
    e2.loss = 0.1234567890123;
    e2.train_accuracy = 0.97;
    e2.test_accuracy = 0.961;
    e2.seconds = 12.5;
    e2.samples_per_second = 4800.25;
    e2.lr = 0.00031f;
    e2.memory = &m2;
    Memtrain__EpochProgress e1 = e2;
    e1.epoch = 1;
    e1.loss = 9.0;      /* replaced below */
    e1.memory = &m1;
    Memtrain__EpochProgress e3 = MEMTRAIN__EPOCH_PROGRESS__INIT;
    e3.epoch = 3;
    e3.loss = 0.05;     /* no memory figures */

    assert_int_equal(store_epoch_add(f->st, id, &e2, &err), 0);
    assert_int_equal(store_epoch_add(f->st, id, &e1, &err), 0);
    assert_int_equal(store_epoch_add(f->st, id, &e3, &err), 0);
    assert_int_equal(store_epoch_add(f->st, other, &e1, &err), 0);
    e1.loss = 0.5;      /* re-sent after a resume */
    assert_int_equal(store_epoch_add(f->st, id, &e1, &err), 0);

    struct epochs_seen s = {0};
    assert_int_equal(store_epochs_each(f->st, id, collect_epoch, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.e[0].epoch, 1);
    assert_true(s.e[0].loss == 0.5);
    assert_true(s.has_mem[0]);
    assert_stats_equal(&s.m[0], &m1);

    assert_int_equal(s.e[1].epoch, 2);
    assert_true(s.e[1].loss == e2.loss);
    assert_true(s.e[1].train_accuracy == e2.train_accuracy);
    assert_true(s.e[1].test_accuracy == e2.test_accuracy);
    assert_true(s.e[1].seconds == e2.seconds);
    assert_true(s.e[1].samples_per_second == e2.samples_per_second);
    assert_true(s.e[1].lr == e2.lr);
    assert_true(s.has_mem[1]);
    assert_stats_equal(&s.m[1], &m2);

    assert_int_equal(s.e[2].epoch, 3);
    assert_false(s.has_mem[2]);

    /* a packable message: the reader hands out a well-formed EpochProgress */
    Memtrain__EpochProgress back = s.e[1];
    back.memory = &s.m[1];
    size_t n1 = memtrain__epoch_progress__get_packed_size(&back);
    size_t n2 = memtrain__epoch_progress__get_packed_size(&e2);
    assert_int_equal(n1, n2);
}

/* Rule metrics: stored in the order given (not sorted), NaN comes back as
 * NaN, a re-sent epoch's set replaces the old one, jobs stay apart. */
static void test_epoch_metrics_round_trip_and_replace(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t id = add_job(f->st, "m", 1, MEMTRAIN__JOB_STATE__RUNNING);
    uint64_t other = add_job(f->st, "other", 1, MEMTRAIN__JOB_STATE__RUNNING);

    Memtrain__RuleMetric rm[3], *rp[3];
    static const char *const names[] = {"li.2", "li.10", "li.3"};
    const double values[] = {0.031, NAN, -2.5e-7};
    for (int i = 0; i < 3; i++) {
        memtrain__rule_metric__init(&rm[i]);
        rm[i].name = (char *)names[i];
        rm[i].value = values[i];
        rp[i] = &rm[i];
    }
    Memtrain__EpochProgress e1 = MEMTRAIN__EPOCH_PROGRESS__INIT;
    e1.epoch = 1;
    e1.n_rule_metrics = 3;
    e1.rule_metrics = rp;
    Memtrain__EpochProgress e2 = MEMTRAIN__EPOCH_PROGRESS__INIT;   /* none */
    e2.epoch = 2;
    assert_int_equal(store_epoch_add(f->st, id, &e1, &err), 0);
    assert_int_equal(store_epoch_add(f->st, id, &e2, &err), 0);
    assert_int_equal(store_epoch_add(f->st, other, &e1, &err), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM epoch_metrics"), 6);

    struct epochs_seen s = {0};
    assert_int_equal(store_epochs_each(f->st, id, collect_epoch, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.n_metrics[0], 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(s.metric_name[0][i], names[i]);
    assert_true(s.metric_value[0][0] == 0.031);
    assert_true(isnan(s.metric_value[0][1]));
    assert_true(s.metric_value[0][2] == -2.5e-7);
    assert_int_equal(s.n_metrics[1], 0);

    /* re-sent after a resume with one figure: it replaces all three */
    e1.n_rule_metrics = 1;
    e1.rule_metrics = &rp[2];
    assert_int_equal(store_epoch_add(f->st, id, &e1, &err), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_epochs_each(f->st, id, collect_epoch, &s, &err), 0);
    assert_int_equal(s.n_metrics[0], 1);
    assert_string_equal(s.metric_name[0][0], "li.3");
    assert_int_equal(peek(f->path, "SELECT count(*) FROM epoch_metrics"), 4);

    /* the other job keeps its own */
    memset(&s, 0, sizeof s);
    assert_int_equal(store_epochs_each(f->st, other, collect_epoch, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.n_metrics[0], 3);

    /* readable with the sqlite3 CLI */
    assert_int_equal(peek(f->path, "SELECT seq FROM epoch_metrics WHERE name = 'li.10' "
                                   "AND job_id = 2"), 1);
}

/* The schema of version 1, as a store of that build wrote it (store.c's
 * first migration then): a file to migrate. */
static const char schema_v1[] =
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
    "CREATE INDEX logs_job ON logs(job_id, id);";

struct mem_seen {
    Memtrain__MemorySample m[3];
    Memtrain__MemoryStats c[3], p[3], iv[3];
    int has_iv[3];
    int n;
};

static int collect_memory(void *ud, const Memtrain__MemorySample *m)
{
    struct mem_seen *s = ud;
    assert_true(s->n < 3);
    assert_non_null(m->current);
    assert_non_null(m->peak);
    s->m[s->n] = *m;
    s->c[s->n] = *m->current;
    s->p[s->n] = *m->peak;
    s->has_iv[s->n] = m->interval_peak != NULL;
    if (m->interval_peak)
        s->iv[s->n] = *m->interval_peak;
    s->n++;
    return 0;
}

/* A version-1 store with one row in every table. */
static void make_v1_store(const char *path)
{
    exec_other(path, schema_v1);
    exec_other(path,
               "INSERT INTO jobs (id, name, owner_uid, state, state_name, rule, epochs, "
               "epochs_done, spec) VALUES (41, 'old', 1000, 3, 'COMPLETED', 'dfa', 2, 2, x'0a01');"
               "INSERT INTO epochs (job_id, epoch, loss, train_accuracy, test_accuracy, seconds, "
               "samples_per_second, lr, mem_params, mem_grads, mem_optimizer, mem_activations, "
               "mem_workspace, mem_data, mem_peak_total, phase_forward, phase_gradient, "
               "phase_update, rss_peak) VALUES (41, 1, 0.25, 0.9, 0.89, 3.5, 1000, 0.001, "
               "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);"
               "INSERT INTO epochs (job_id, epoch, loss) VALUES (41, 2, 0.125);"
               "INSERT INTO steps (job_id, step, epoch, loss) VALUES (41, 0, 1, 2.3);"
               "INSERT INTO memory_samples (job_id, time, cur_total, rss) VALUES (41, 5, 6, 7);"
               "INSERT INTO checkpoints (job_id, epoch, created_at, bytes, data) "
               "VALUES (41, 2, 9, 1, x'07');"
               "INSERT INTO logs (job_id, time, text) VALUES (41, 8, 'started');"
               "PRAGMA application_id = 1297371726; PRAGMA user_version = 1;");
}

/* Version 1 -> 2 adds epoch_metrics and keeps every row: the old epochs
 * come back without rule metrics, new ones carry theirs. */
static void test_migration_from_v1_keeps_rows(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    make_v1_store(f->path);
    open_store(f);
    assert_int_equal(store_schema_version(f->st), STORE_SCHEMA_VERSION);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM epoch_metrics"), 0);

    struct store_job j;
    assert_int_equal(store_job_get(f->st, 41, &j, &err), 0);
    assert_string_equal(j.name, "old");
    assert_string_equal(j.rule, "dfa");
    assert_int_equal(j.state, MEMTRAIN__JOB_STATE__COMPLETED);
    assert_int_equal(j.spec_len, 2);
    store_job_clear(&j);
    for (int i = 0; i < 5; i++) {
        static const char *const sql[] = {
            "SELECT count(*) FROM epochs", "SELECT count(*) FROM steps",
            "SELECT count(*) FROM memory_samples", "SELECT count(*) FROM checkpoints",
            "SELECT count(*) FROM logs",
        };
        assert_int_equal(peek(f->path, sql[i]), i == 0 ? 2 : 1);
    }

    struct epochs_seen s = {0};
    assert_int_equal(store_epochs_each(f->st, 41, collect_epoch, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_true(s.e[0].loss == 0.25 && s.e[1].loss == 0.125);
    assert_true(s.has_mem[0] && !s.has_mem[1]);
    Memtrain__MemoryStats want = epoch_mem(0);
    assert_stats_equal(&s.m[0], &want);
    assert_int_equal(s.n_metrics[0], 0);
    assert_int_equal(s.n_metrics[1], 0);
    /* a sample stored before interval peaks existed comes back without them */
    struct mem_seen ms = {0};
    assert_int_equal(store_memory_each(f->st, 41, collect_memory, &ms, &err), 0);
    assert_int_equal(ms.n, 1);
    assert_int_equal(ms.c[0].peak_total, 6);
    assert_false(ms.has_iv[0]);

    /* the migrated store takes new rows, metrics included */
    Memtrain__RuleMetric li = MEMTRAIN__RULE_METRIC__INIT, *lip = &li;
    li.name = (char *)"li.1";
    li.value = 0.5;
    Memtrain__EpochProgress e3 = MEMTRAIN__EPOCH_PROGRESS__INIT;
    e3.epoch = 3;
    e3.n_rule_metrics = 1;
    e3.rule_metrics = &lip;
    assert_int_equal(store_epoch_add(f->st, 41, &e3, &err), 0);
    assert_true(add_job(f->st, "new", 1, MEMTRAIN__JOB_STATE__QUEUED) > 41);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_epochs_each(f->st, 41, collect_epoch, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.n_metrics[2], 1);
    assert_string_equal(s.metric_name[2][0], "li.1");
    assert_true(s.metric_value[2][0] == 0.5);
}

/* A 1 -> 2 migration that fails leaves the version-1 file as it was. */
static void test_failed_migration_from_v1_rolls_back(void **state)
{
    struct fx *f = *state;
    make_v1_store(f->path);
    exec_other(f->path, "CREATE TABLE epoch_metrics(x)");
    struct mt_err err = {0};
    struct store *st = NULL;
    assert_int_not_equal(store_open(&st, f->path, &err), 0);
    assert_null(st);
    assert_non_null(strstr(err.msg, "store: migrate schema 1 to 2: "));
    assert_int_equal(peek(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM epochs"), 2);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM jobs"), 1);
}

/* ---- batched rows */

static int count_step(void *ud, const Memtrain__StepProgress *p)
{
    (*(int *)ud)++;
    return 0;
}

static void test_batched_rows_visible_after_flush(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t id = add_job(f->st, "b", 1, MEMTRAIN__JOB_STATE__RUNNING);
    for (int i = 0; i < 50; i++) {
        Memtrain__StepProgress sp = MEMTRAIN__STEP_PROGRESS__INIT;
        sp.step = (uint64_t)i * 10;
        sp.epoch = 1;
        sp.loss = 1.0 / (i + 1);
        assert_int_equal(store_step_add(f->st, id, &sp, &err), 0);
    }
    Memtrain__MemorySample ms = MEMTRAIN__MEMORY_SAMPLE__INIT;
    ms.time = 1000;
    assert_int_equal(store_memory_add(f->st, id, &ms, &err), 0);
    assert_int_equal(store_log_add(f->st, id, 1000, "epoch 1 starts", &err), 0);

    assert_int_equal(peek(f->path, "SELECT count(*) FROM steps"), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM memory_samples"), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM logs"), 0);
    assert_int_equal(store_flush(f->st, &err), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM steps"), 50);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM memory_samples"), 1);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM logs"), 1);
    assert_int_equal(store_flush(f->st, &err), 0);  /* nothing pending: no-op */

    /* a reader flushes first */
    Memtrain__StepProgress sp = MEMTRAIN__STEP_PROGRESS__INIT;
    sp.step = 1000;
    sp.epoch = 2;
    assert_int_equal(store_step_add(f->st, id, &sp, &err), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM steps"), 50);
    int n = 0;
    assert_int_equal(store_steps_each(f->st, id, count_step, &n, &err), 0);
    assert_int_equal(n, 51);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM steps"), 51);
}

struct steps_seen {
    uint64_t last_step;
    int n;
    double loss_of_20;
};

static int collect_step(void *ud, const Memtrain__StepProgress *p)
{
    struct steps_seen *s = ud;
    assert_true(s->n == 0 || p->step > s->last_step);
    if (p->step == 20)
        s->loss_of_20 = p->loss;
    s->last_step = p->step;
    s->n++;
    return 0;
}

static void test_steps_round_trip(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t id = add_job(f->st, "s", 1, MEMTRAIN__JOB_STATE__RUNNING);
    uint64_t order[] = {30, 10, 20, 0};
    for (int i = 0; i < 4; i++) {
        Memtrain__StepProgress sp = MEMTRAIN__STEP_PROGRESS__INIT;
        sp.step = order[i];
        sp.epoch = 1;
        sp.loss = 2.0;
        assert_int_equal(store_step_add(f->st, id, &sp, &err), 0);
    }
    Memtrain__StepProgress again = MEMTRAIN__STEP_PROGRESS__INIT;
    again.step = 20;
    again.epoch = 1;
    again.loss = 0.25;   /* a resumed job sends step 20 again */
    assert_int_equal(store_step_add(f->st, id, &again, &err), 0);

    struct steps_seen s = {0};
    assert_int_equal(store_steps_each(f->st, id, collect_step, &s, &err), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.last_step, 30);
    assert_true(s.loss_of_20 == 0.25);
    /* batched rows for a job that does not exist are refused one by one */
    assert_int_equal(store_step_add(f->st, 777, &again, &err), MT_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "store: insert step: "));
}

static void test_memory_round_trip(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t id = add_job(f->st, "m", 1, MEMTRAIN__JOB_STATE__RUNNING);
    Memtrain__MemoryStats cur = epoch_mem(100), peak = epoch_mem((uint64_t)5 << 33);
    cur.phase_peak_forward = cur.phase_peak_gradient = cur.phase_peak_update = 0;
    cur.rss_peak_bytes = 0;
    Memtrain__MemorySample ms = MEMTRAIN__MEMORY_SAMPLE__INIT;
    ms.time = 1700000005000;
    ms.current = &cur;
    ms.peak = &peak;
    ms.rss_bytes = 123456789;
    ms.hwm_bytes = peak.rss_peak_bytes;
    ms.limit = (uint64_t)8 << 30;
    Memtrain__MemoryStats interval = epoch_mem(7000);
    interval.rss_peak_bytes = 0;   /* an interval has no RSS figure */
    ms.interval_peak = &interval;
    ms.interval_steps = 37;
    Memtrain__MemorySample early = MEMTRAIN__MEMORY_SAMPLE__INIT;
    early.time = 1700000004000;   /* no stats at all */
    assert_int_equal(store_memory_add(f->st, id, &ms, &err), 0);
    assert_int_equal(store_memory_add(f->st, id, &early, &err), 0);

    struct mem_seen s = {0};
    assert_int_equal(store_memory_each(f->st, id, collect_memory, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.m[0].time, 1700000004000);
    assert_int_equal(s.c[0].params, 0);
    assert_int_equal(s.m[1].time, 1700000005000);
    assert_stats_equal(&s.c[1], &cur);
    assert_stats_equal(&s.p[1], &peak);
    assert_int_equal(s.m[1].rss_bytes, 123456789);
    assert_int_equal(s.m[1].hwm_bytes, peak.rss_peak_bytes);
    assert_int_equal(s.m[1].limit, (uint64_t)8 << 30);
    /* the interval's peaks and steps; none in a sample sent without them */
    assert_false(s.has_iv[0]);
    assert_true(s.has_iv[1]);
    assert_stats_equal(&s.iv[1], &interval);
    assert_int_equal(s.m[1].interval_steps, 37);
    /* the current total is its own column, for the sqlite3 CLI */
    assert_int_equal(peek(f->path, "SELECT cur_total FROM memory_samples WHERE time = "
                                   "1700000005000"), (int64_t)cur.peak_total);
}

/* ---- logs */

struct logs_seen {
    int64_t ids[8];
    char text[8][32];
    int n;
};

static int collect_log(void *ud, int64_t id, int64_t time_ms, const char *text)
{
    struct logs_seen *s = ud;
    assert_true(s->n < 8);
    assert_true(time_ms > 0);
    s->ids[s->n] = id;
    snprintf(s->text[s->n], sizeof s->text[0], "%s", text);
    s->n++;
    return 0;
}

static void test_logs_after_id(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t a = add_job(f->st, "a", 1, MEMTRAIN__JOB_STATE__RUNNING);
    uint64_t b = add_job(f->st, "b", 1, MEMTRAIN__JOB_STATE__RUNNING);
    assert_int_equal(store_log_add(f->st, a, 1, "a one", &err), 0);
    assert_int_equal(store_log_add(f->st, b, 2, "b one", &err), 0);
    assert_int_equal(store_log_add(f->st, a, 3, "a two", &err), 0);
    assert_int_equal(store_log_add(f->st, a, 4, "a three: \xc3\xa9 'quoted'", &err), 0);

    struct logs_seen s = {0};
    assert_int_equal(store_logs_each(f->st, a, 0, collect_log, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.text[0], "a one");
    assert_string_equal(s.text[1], "a two");
    assert_string_equal(s.text[2], "a three: \xc3\xa9 'quoted'");
    assert_true(s.ids[0] < s.ids[1] && s.ids[1] < s.ids[2]);

    int64_t after = s.ids[1];
    memset(&s, 0, sizeof s);
    assert_int_equal(store_logs_each(f->st, a, after, collect_log, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.text[0], "a three: \xc3\xa9 'quoted'");

    after = s.ids[0];
    memset(&s, 0, sizeof s);
    assert_int_equal(store_logs_each(f->st, a, after, collect_log, &s, &err), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(store_log_add(f->st, a, 5, "a four", &err), 0);
    assert_int_equal(store_logs_each(f->st, a, after, collect_log, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.text[0], "a four");
}

/* ---- checkpoints */

struct ckpts_seen {
    uint32_t epochs[8];
    uint64_t bytes[8];
    int n;
};

static int collect_ckpt(void *ud, uint32_t epoch, int64_t time_ms, uint64_t bytes)
{
    struct ckpts_seen *s = ud;
    assert_true(s->n < 8);
    assert_int_equal(time_ms, 1000 + epoch);
    s->epochs[s->n] = epoch;
    s->bytes[s->n] = bytes;
    s->n++;
    return 0;
}

static uint8_t *make_blob(size_t len, uint32_t seed)
{
    uint8_t *b = malloc(len);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (uint8_t)(seed >> 24);
    }
    return b;
}

static void test_ckpt_keep_last(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t id = add_job(f->st, "c", 1, MEMTRAIN__JOB_STATE__RUNNING);
    uint64_t other = add_job(f->st, "o", 1, MEMTRAIN__JOB_STATE__RUNNING);

    uint8_t *blob;
    size_t len;
    uint32_t ep = 0;
    assert_int_equal(store_ckpt_get(f->st, id, 0, &blob, &len, &ep, &err), MT_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "has no checkpoint"));

    const size_t big = (size_t)6 << 20;   /* past SQLite's overflow pages, several MB */
    uint8_t *b[6];
    for (uint32_t e = 1; e <= 5; e++) {
        b[e] = make_blob(big + e, e);
        assert_int_equal(store_ckpt_add(f->st, id, e, 1000 + e, b[e], big + e, 3, &err), 0);
    }
    assert_int_equal(store_ckpt_add(f->st, other, 1, 1001, b[1], 10, 1, &err), 0);

    struct ckpts_seen s = {0};
    assert_int_equal(store_ckpts_each(f->st, id, collect_ckpt, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.epochs[0], 3);
    assert_int_equal(s.epochs[1], 4);
    assert_int_equal(s.epochs[2], 5);
    assert_int_equal(s.bytes[2], big + 5);

    assert_int_equal(store_ckpt_get(f->st, id, 0, &blob, &len, &ep, &err), 0);
    assert_int_equal(ep, 5);
    assert_int_equal(len, big + 5);
    assert_memory_equal(blob, b[5], len);
    free(blob);

    assert_int_equal(store_ckpt_get(f->st, id, 4, &blob, &len, &ep, &err), 0);
    assert_int_equal(ep, 4);
    assert_int_equal(len, big + 4);
    assert_memory_equal(blob, b[4], len);
    free(blob);

    assert_int_equal(store_ckpt_get(f->st, id, 2, &blob, &len, &ep, &err), MT_E_NOTFOUND);
    char want[64];
    snprintf(want, sizeof want, "job %llu has no checkpoint for epoch 2",
             (unsigned long long)id);
    assert_string_equal(err.msg, want);
    assert_null(blob);

    /* the same epoch again replaces it; keep_last 0 keeps everything */
    assert_int_equal(store_ckpt_add(f->st, id, 4, 1004, b[1], 100, 0, &err), 0);
    assert_int_equal(store_ckpt_get(f->st, id, 4, &blob, &len, &ep, &err), 0);
    assert_int_equal(len, 100);
    assert_memory_equal(blob, b[1], 100);
    free(blob);
    assert_int_equal(store_ckpt_add(f->st, id, 1, 1001, b[1], 0, 0, &err), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_ckpts_each(f->st, id, collect_ckpt, &s, &err), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.epochs[0], 1);
    assert_int_equal(store_ckpt_get(f->st, id, 1, &blob, &len, &ep, &err), 0);
    assert_int_equal(len, 0);
    free(blob);

    /* the other job's checkpoint was never pruned by this one's */
    assert_int_equal(store_ckpt_get(f->st, other, 0, &blob, &len, &ep, &err), 0);
    assert_int_equal(ep, 1);
    assert_int_equal(len, 10);
    free(blob);

    /* keep_last 1 prunes down to the newest */
    assert_int_equal(store_ckpt_add(f->st, id, 6, 1006, b[2], 7, 1, &err), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_ckpts_each(f->st, id, collect_ckpt, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.epochs[0], 6);

    for (uint32_t e = 1; e <= 5; e++)
        free(b[e]);
}

/* ---- durability */

static void test_durable_writes_commit_at_once(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    open_store(f);
    uint64_t id = add_job(f->st, "d", 1, MEMTRAIN__JOB_STATE__QUEUED);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %llu",
             (unsigned long long)id);
    assert_int_equal(peek(f->path, sql), 1);

    /* a batch is open when the epoch comes: both are committed */
    Memtrain__StepProgress sp = MEMTRAIN__STEP_PROGRESS__INIT;
    sp.step = 1;
    sp.epoch = 1;
    assert_int_equal(store_step_add(f->st, id, &sp, &err), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM steps"), 0);
    Memtrain__EpochProgress e = MEMTRAIN__EPOCH_PROGRESS__INIT;
    e.epoch = 1;
    e.loss = 0.75;
    assert_int_equal(store_epoch_add(f->st, id, &e, &err), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM epochs WHERE loss = 0.75"), 1);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM steps"), 1);

    /* job updates and checkpoints too, with a batch open */
    assert_int_equal(store_log_add(f->st, id, 5, "line", &err), 0);
    struct store_job j;
    assert_int_equal(store_job_get(f->st, id, &j, &err), 0);
    j.state = MEMTRAIN__JOB_STATE__RUNNING;
    assert_int_equal(store_job_update(f->st, &j, &err), 0);
    store_job_clear(&j);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM jobs WHERE state_name = 'RUNNING'"),
                     1);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM logs"), 1);
    uint8_t data[16] = {7};
    assert_int_equal(store_step_add(f->st, id, &sp, &err), 0);
    assert_int_equal(store_ckpt_add(f->st, id, 1, 1001, data, sizeof data, 3, &err), 0);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM checkpoints"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_keeps_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version_and_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_with_newer_version_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unmarked_database_with_tables_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_without_application_id_adopted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_initialised_and_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_each_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs_round_trip_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_metrics_round_trip_and_replace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v1_keeps_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_from_v1_rolls_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batched_rows_visible_after_flush, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_steps_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_after_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ckpt_keep_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_writes_commit_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
