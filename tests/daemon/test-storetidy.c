/* test-storetidy.c: removing from the store in short steps, the
 * incremental vacuum and the store's sizes (daemon/memtraind/storetidy.c).
 *
 * Two jobs with rows in every table (epochs, rule metrics, steps, memory
 * samples, logs, three 1 MiB checkpoints each); one is removed a step at a
 * time: no step removes more than its rows, the other job keeps every row,
 * and after the vacuum the database and its file on disk are smaller by
 * about the removed job's size. A second connection (sqlite3_open) counts
 * rows and reads pragmas. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "storetidy.h"

#define CKPT_BYTES (1u << 20)
#define N_EPOCHS 20
#define N_STEPS 1500
#define N_SAMPLES 400
#define N_LOGS 100

struct fx {
    char dir[64];
    char path[96];
    struct store *st;
    uint64_t a, b;       /* the two jobs */
};

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
    if (store_open(&f->st, f->path, &err))
        fail_msg("store_open: %s", err.msg);
}

/* One integer from a second, independent connection (read-write: a WAL
 * file whose last connection closed has no -shm a reader could use). */
static int64_t peek(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Every row of job `id` in every table but jobs. */
static int64_t rows_of(const char *path, uint64_t id)
{
    char sql[600];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM epochs WHERE job_id = %1$llu) + "
             "(SELECT count(*) FROM epoch_metrics WHERE job_id = %1$llu) + "
             "(SELECT count(*) FROM steps WHERE job_id = %1$llu) + "
             "(SELECT count(*) FROM memory_samples WHERE job_id = %1$llu) + "
             "(SELECT count(*) FROM logs WHERE job_id = %1$llu) + "
             "(SELECT count(*) FROM checkpoints WHERE job_id = %1$llu) + "
             "(SELECT count(*) FROM jobs WHERE id = %1$llu)", (unsigned long long)id);
    return peek(path, sql);
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static void check(int rc, const struct mt_err *err)
{
    if (rc)
        fail_msg("%s", err->msg);
}

/* One removal step in a transaction of its own, as the daemon's slices
 * hold them. */
static void remove_step(struct store *st, uint64_t job, unsigned rows, int *done)
{
    struct mt_err err = {0};
    int secure = -1;
    check(store_tidy_begin(st, &secure, &err), &err);
    assert_true(secure == 0 || secure == 1);
    check(store_tidy_end(st, secure, store_job_remove_step(st, job, rows, done, &err), &err),
          &err);
}

static uint64_t fill_job(struct store *st, const char *name)
{
    struct mt_err err = {0};
    struct store_job j = {0};
    j.name = (char *)name;
    j.state = 3;   /* COMPLETED */
    check(store_job_insert(st, &j, &err), &err);
    Memtrain__RuleMetric m = MEMTRAIN__RULE_METRIC__INIT, *mp = &m;
    m.name = "li.2";
    for (uint32_t e = 1; e <= N_EPOCHS; e++) {
        Memtrain__EpochProgress ep = MEMTRAIN__EPOCH_PROGRESS__INIT;
        ep.epoch = e;
        ep.n_rule_metrics = 1;
        ep.rule_metrics = &mp;
        check(store_epoch_add(st, j.id, &ep, &err), &err);
    }
    for (uint64_t s = 0; s < N_STEPS; s++) {
        Memtrain__StepProgress p = MEMTRAIN__STEP_PROGRESS__INIT;
        p.step = s;
        p.loss = 0.5;
        check(store_step_add(st, j.id, &p, &err), &err);
    }
    for (int i = 0; i < N_SAMPLES; i++) {
        Memtrain__MemorySample ms = MEMTRAIN__MEMORY_SAMPLE__INIT;
        ms.time = 1000 + i;
        ms.rss_bytes = 123456789;
        check(store_memory_add(st, j.id, &ms, &err), &err);
    }
    for (int i = 0; i < N_LOGS; i++)
        check(store_log_add(st, j.id, i, "epoch 1/20: loss 0.5, a line of a job's log", &err),
              &err);
    uint8_t *blob = malloc(CKPT_BYTES);
    assert_non_null(blob);
    for (size_t i = 0; i < CKPT_BYTES; i++)
        blob[i] = (uint8_t)(i * 2654435761u >> 24);
    for (uint32_t e = 1; e <= 3; e++)
        check(store_ckpt_add(st, j.id, e, e, blob, CKPT_BYTES, 0, &err), &err);
    free(blob);
    check(store_flush(st, &err), &err);
    return j.id;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/test-storetidy-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/memtrain.db", f->dir);
    open_store(f);
    f->a = fill_job(f->st, "a");
    f->b = fill_job(f->st, "b");
    *state = f;
    return 0;
}

/* Remove job a with steps of at most 100 rows: no step takes more, the
 * checkpoints go one a step, job b keeps every row. */
static void test_remove_in_bounded_steps(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    int64_t left = rows_of(f->path, f->a), b_rows = rows_of(f->path, f->b);
    assert_int_equal(left, 1 + N_EPOCHS * 2 + N_STEPS + N_SAMPLES + N_LOGS + 3);
    int done = 0, steps = 0;
    while (!done) {
        remove_step(f->st, f->a, 100, &done);
        int64_t now = rows_of(f->path, f->a);
        assert_true(left - now <= 100);
        assert_true(done || now < left);   /* every step but the last removes something */
        left = now;
        assert_true(++steps < 1000);
    }
    assert_int_equal(left, 0);
    /* 100 rows a step: at least total/100 steps, plus one per checkpoint */
    assert_true(steps >= (1 + N_EPOCHS * 2 + N_STEPS + N_SAMPLES + N_LOGS) / 100 + 3);
    assert_int_equal(rows_of(f->path, f->b), b_rows);
    struct store_job row;
    assert_int_equal(store_job_get(f->st, f->a, &row, &err), MT_E_NOTFOUND);
    /* a job that is not there: done at once */
    remove_step(f->st, f->a, 100, &done);
    assert_int_equal(done, 1);
}

/* The removed rows' pages go to the free list; the vacuum gives them back
 * and the WAL checkpoint makes the file on disk shrink. */
static void test_vacuum_gives_space_back(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    assert_int_equal(peek(f->path, "PRAGMA auto_vacuum"), 2);   /* incremental */
    assert_int_equal(store_opened_vacuum_ms(f->st), -1);        /* from the start */
    uint64_t before = store_db_bytes(f->st);
    int done = 0;
    while (!done)
        remove_step(f->st, f->a, 1000, &done);
    /* removed but not yet given back */
    assert_int_equal(store_db_bytes(f->st), before);
    assert_true(peek(f->path, "PRAGMA freelist_count") > 700);
    uint64_t left = 1;
    int steps = 0;
    while (left) {
        check(store_vacuum_step(f->st, 64, &left, &err), &err);
        assert_true(++steps < 10000);
    }
    assert_true(steps > 10);   /* 64 pages a step */
    uint64_t after = store_db_bytes(f->st);
    printf("database %llu -> %llu bytes in %d vacuum steps\n", (unsigned long long)before,
           (unsigned long long)after, steps);
    assert_true(before - after >= 3 * CKPT_BYTES);
    check(store_wal_shrink(f->st, &err), &err);
    uint64_t db = 0, wal = 0;
    store_file_bytes(f->st, &db, &wal);
    assert_int_equal(db, file_size(f->path));
    assert_int_equal(db, after);
    assert_int_equal(wal, 0);
    assert_true(db < before);
}

/* Checkpoints one by one: the size comes back; a missing one is NOTFOUND. */
static void test_ckpt_remove(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    uint64_t bytes = 0;
    int secure;
    check(store_tidy_begin(f->st, &secure, &err), &err);
    check(store_ckpt_remove(f->st, f->a, 2, &bytes, &err), &err);
    check(store_tidy_end(f->st, secure, 0, &err), &err);
    assert_int_equal(bytes, CKPT_BYTES);
    check(store_tidy_begin(f->st, &secure, &err), &err);
    int rc = store_ckpt_remove(f->st, f->a, 2, &bytes, &err);
    struct mt_err err2 = {0};
    assert_int_equal(store_tidy_end(f->st, secure, rc, &err2), MT_E_NOTFOUND);
    assert_int_equal(rc, MT_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "no checkpoint for epoch 2"));
    assert_int_equal(peek(f->path, "SELECT count(*) FROM checkpoints"), 5);
    assert_int_equal(peek(f->path, "SELECT count(*) FROM checkpoints WHERE epoch = 2"), 1);
}

/* Sizes: each kind holds what was put in it, the two jobs (alike) share it
 * half and half, and one job's estimate alone agrees in what it counts. */
static void test_usage(void **state)
{
    struct fx *f = *state;
    struct mt_err err = {0};
    struct store_usage u;
    check(store_usage_read(f->st, &u, &err), &err);
    assert_int_equal(u.n_jobs, 2);
    uint64_t ck = u.kind_bytes[STORE_KIND_CHECKPOINTS];
    assert_true(ck >= 6ull * CKPT_BYTES && ck < 6ull * CKPT_BYTES + 64 * 1024);
    /* 400 samples of a job: a few pages each */
    assert_true(u.kind_bytes[STORE_KIND_MEMORY] >= 2 * N_SAMPLES * 20);
    assert_true(u.kind_bytes[STORE_KIND_MEMORY] < 2 * N_SAMPLES * 400);
    assert_true(u.kind_bytes[STORE_KIND_LOGS] >= 2 * N_LOGS * 40);
    assert_true(u.kind_bytes[STORE_KIND_METRICS] >= 2 * N_STEPS * 8);
    for (int k = 0; k < STORE_KIND_N; k++) {
        uint64_t a = u.jobs[0].bytes[k], b = u.jobs[1].bytes[k];
        assert_true(a + b <= u.kind_bytes[k] + 1 && a + b + 1 >= u.kind_bytes[k]);
        assert_true(a <= b + b / 50 + 1 && b <= a + a / 50 + 1);   /* within 2 % */
    }
    assert_int_equal(u.jobs[0].checkpoints, 3);
    assert_int_equal(u.jobs[0].memory_samples, N_SAMPLES);
    struct store_job_usage one;
    check(store_job_usage(f->st, f->a, &one, &err), &err);
    assert_int_equal(one.checkpoints, 3);
    assert_int_equal(one.memory_samples, N_SAMPLES);
    assert_true(one.bytes[STORE_KIND_CHECKPOINTS] >= 3ull * CKPT_BYTES);
    assert_true(store_usage_total(one.bytes) < 3ull * CKPT_BYTES + 512 * 1024);
    printf("kinds: jobs %llu metrics %llu memory %llu checkpoints %llu logs %llu, free %llu\n",
           (unsigned long long)u.kind_bytes[0], (unsigned long long)u.kind_bytes[1],
           (unsigned long long)u.kind_bytes[2], (unsigned long long)u.kind_bytes[3],
           (unsigned long long)u.kind_bytes[4], (unsigned long long)u.free_bytes);
    store_usage_free(&u);
}

/* A file from before schema 5 (auto_vacuum NONE) is rewritten once at open
 * and keeps its rows. */
static void test_old_file_gets_incremental_vacuum(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    f->st = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *msg = NULL;
    /* as a file made before schema 5 was (its version does not matter: the
     * open looks at auto_vacuum itself) */
    if (sqlite3_exec(db, "PRAGMA auto_vacuum = NONE; VACUUM", NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s", msg);
    sqlite3_close(db);
    assert_int_equal(peek(f->path, "PRAGMA auto_vacuum"), 0);
    int64_t rows = rows_of(f->path, f->b);
    open_store(f);
    assert_true(store_opened_vacuum_ms(f->st) >= 0);
    assert_int_equal(peek(f->path, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(peek(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(rows_of(f->path, f->b), rows);
    store_close(f->st);
    open_store(f);   /* once only */
    assert_int_equal(store_opened_vacuum_ms(f->st), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_remove_in_bounded_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vacuum_gives_space_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ckpt_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_file_gets_incremental_vacuum, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
