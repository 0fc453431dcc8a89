/* tidy.c: the runner of removal tasks on the loop (tidy.h). */
#include "tidy.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "jobs.h"
#include "log.h"
#include "memtrain/bytesize.h"
#include "memtrain/clock.h"
#include "storetidy.h"

/* One job of a task. */
struct tidy_item {
    Memtrain__TidyJob out;        /* what the reply says of it; name owned */
    uint32_t *epochs;             /* checkpoints to remove (out.checkpoint_epochs); NULL with
                                   * remove_job */
    size_t next_epoch;            /* progress through epochs */
};

enum phase { PH_REMOVE, PH_VACUUM, PH_DONE };

struct tidy_task {
    struct tidy_task *next;
    struct conn *c;               /* NULL: nobody to answer */
    uint64_t req_id;
    char who[64];
    struct tidy_item *items;
    size_t n, cap, cur;
    enum phase phase;
    uint64_t db_before, files_before;     /* store_db_bytes; database + WAL on disk */
    int measured;                 /* db_before and files_before are set */
    int failed;                   /* a step failed: err holds why */
    struct mt_err err;
};

struct tidy {
    struct daemon *d;
    uv_idle_t idle;               /* work to do: a slice each turn of the loop */
    uv_timer_t wait;              /* the head task waits for a cancelled job's worker */
    struct tidy_task *head, *tail;
    int working;                  /* idle or wait is started */
    int closed;                   /* close callbacks run (tidy_close) */
};

static struct tidy *tidy_of(struct daemon *d)
{
    return d->tidy;
}

/* ---- tasks */

struct tidy_task *tidy_task_new(struct conn *c, uint64_t req_id, const char *who)
{
    struct tidy_task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->c = c;
    t->req_id = req_id;
    snprintf(t->who, sizeof t->who, "%s", who);
    return t;
}

void tidy_task_free(struct tidy_task *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].out.name);
        free(t->items[i].epochs);
    }
    free(t->items);
    free(t);
}

size_t tidy_task_jobs(const struct tidy_task *t)
{
    return t->n;
}

static int task_has(const struct tidy_task *t, uint64_t job_id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->items[i].out.job_id == job_id)
            return 1;
    return 0;
}

int tidy_task_add(struct daemon *d, struct tidy_task *t, const struct store_job *row,
                  const uint32_t *epochs, size_t n_epochs, struct mt_err *err)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        struct tidy_item *it = realloc(t->items, cap * sizeof *it);
        if (!it)
            return mt_err_set(err, MT_E_NOMEM, "out of memory");
        t->items = it;
        t->cap = cap;
    }
    struct tidy_item *it = &t->items[t->n];
    memset(it, 0, sizeof *it);
    memtrain__tidy_job__init(&it->out);
    it->out.job_id = row->id;
    it->out.owner_uid = row->owner_uid;
    it->out.state = row->state;
    it->out.job_removed = epochs == NULL;
    if (!(it->out.name = strdup(row->name ? row->name : "")))
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    if (epochs) {
        it->epochs = malloc((n_epochs ? n_epochs : 1) * sizeof *epochs);
        if (!it->epochs) {
            free(it->out.name);
            return mt_err_set(err, MT_E_NOMEM, "out of memory");
        }
        memcpy(it->epochs, epochs, n_epochs * sizeof *epochs);
        it->out.checkpoint_epochs = it->epochs;
        it->out.n_checkpoint_epochs = n_epochs;
    }
    t->n++;
    if (!epochs) {   /* the whole job: its payload now */
        struct store_job_usage u;
        int rc = store_job_usage(d->store, row->id, &u, err);
        if (rc)
            return rc;
        it->out.bytes = store_usage_total(u.bytes);
    }
    return 0;
}

/* ---- selecting ended jobs */

struct ckpt_walk {
    uint32_t *epoch;
    uint64_t *bytes;
    size_t n, cap;
};

static int ckpt_collect(void *ud, uint32_t epoch, int64_t time_ms, uint64_t bytes)
{
    (void)time_ms;
    struct ckpt_walk *w = ud;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        uint32_t *e = realloc(w->epoch, cap * sizeof *e);
        if (e)
            w->epoch = e;
        uint64_t *b = e ? realloc(w->bytes, cap * sizeof *b) : NULL;
        if (!b)
            return MT_E_NOMEM;
        w->bytes = b;
        w->cap = cap;
    }
    w->epoch[w->n] = epoch;
    w->bytes[w->n++] = bytes;
    return 0;
}

/* Add checkpoints of `row`: the epochs in want[] (each must exist), or
 * with want NULL all but the newest `keep` (oldest first). */
static int add_ckpts(struct daemon *d, struct tidy_task *t, const struct store_job *row,
                     const uint32_t *want, size_t n_want, uint32_t keep, struct mt_err *err)
{
    struct ckpt_walk w = {0};
    int rc = store_ckpts_each(d->store, row->id, ckpt_collect, &w, err);
    if (rc == MT_E_NOMEM && !err->msg[0])
        mt_err_set(err, MT_E_NOMEM, "out of memory");
    size_t n = 0;   /* the chosen ones are moved to the front of w */
    uint64_t bytes = 0;
    for (size_t i = 0; !rc && i < w.n; i++) {
        int take = !want && i + keep < w.n;   /* epochs ascending: the oldest first */
        for (size_t k = 0; want && k < n_want; k++)
            take |= want[k] == w.epoch[i];
        if (take) {
            bytes += w.bytes[i];
            w.epoch[n++] = w.epoch[i];
        }
    }
    for (size_t k = 0; !rc && want && k < n_want; k++) {
        size_t i = 0;
        while (i < n && w.epoch[i] != want[k])
            i++;
        if (i == n)
            rc = mt_err_set(err, MT_E_NOTFOUND, "job %" PRIu64 " has no checkpoint for epoch %"
                            PRIu32 " (mtctl ckpt ls %" PRIu64 ")", row->id, want[k], row->id);
    }
    if (!rc && n > 0 && !(rc = tidy_task_add(d, t, row, w.epoch, n, err)))
        t->items[t->n - 1].out.bytes = bytes;
    free(w.epoch);
    free(w.bytes);
    return rc;
}

int tidy_task_add_ckpts(struct daemon *d, struct tidy_task *t, const struct store_job *row,
                        const uint32_t *epochs, size_t n_epochs, struct mt_err *err)
{
    return add_ckpts(d, t, row, n_epochs ? epochs : NULL, n_epochs, 0, err);
}

struct select_walk {
    struct daemon *d;
    struct tidy_task *t;
    const struct tidy_filter *f;
    struct store_job *rows;
    size_t n, cap;
};

/* Rows are copied (only the fields selection needs) and acted on after the
 * walk: the walk's statement must be done before the store is read again. */
static int select_collect(void *ud, const struct store_job *row)
{
    struct select_walk *w = ud;
    if (!job_state_final(row->state) || task_has(w->t, row->id))
        return 0;
    if (w->f->finished_before_ms && (row->finished_at <= 0 ||
                                     row->finished_at >= w->f->finished_before_ms))
        return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 32;
        struct store_job *r = realloc(w->rows, cap * sizeof *r);
        if (!r)
            return MT_E_NOMEM;
        w->rows = r;
        w->cap = cap;
    }
    struct store_job *r = &w->rows[w->n];
    memset(r, 0, sizeof *r);
    r->id = row->id;
    r->owner_uid = row->owner_uid;
    r->state = row->state;
    r->finished_at = row->finished_at;
    if (!(r->name = strdup(row->name ? row->name : "")))
        return MT_E_NOMEM;
    w->n++;
    return 0;
}

int tidy_task_select(struct daemon *d, struct tidy_task *t, const struct tidy_filter *f,
                     struct mt_err *err)
{
    struct select_walk w = {d, t, f, NULL, 0, 0};
    int rc = store_jobs_each(d->store, f->owner, f->state_mask, 0, select_collect, &w, err);
    if (rc == MT_E_NOMEM && !err->msg[0])
        mt_err_set(err, MT_E_NOMEM, "out of memory");
    /* oldest first: the walk is newest first */
    for (size_t i = w.n; !rc && i-- > 0;) {
        if (f->keep_checkpoints < 0)
            rc = tidy_task_add(d, t, &w.rows[i], NULL, 0, err);
        else
            rc = add_ckpts(d, t, &w.rows[i], NULL, 0, (uint32_t)f->keep_checkpoints, err);
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.rows[i].name);
    free(w.rows);
    return rc;
}

/* ---- replies */

/* Measure the store before a task. */
static void measure_before(struct daemon *d, struct tidy_task *t)
{
    uint64_t db, wal;
    store_file_bytes(d->store, &db, &wal);
    t->files_before = db + wal;
    t->db_before = store_db_bytes(d->store);
}

/* Answer t's client: what it removed (or, dry, would remove), and the
 * store's sizes after (d NULL: a dry run, nothing changed). */
static void reply(struct daemon *d, struct tidy_task *t)
{
    if (!t->c)
        return;
    if (t->failed) {
        conn_send_error(t->c, t->req_id, MEMTRAIN__STATUS__ERROR, "%s", t->err.msg);
        return;
    }
    Memtrain__TidyJob **jobs = calloc(t->n ? t->n : 1, sizeof *jobs);
    if (!jobs) {
        conn_send_error(t->c, t->req_id, MEMTRAIN__STATUS__ERROR, "out of memory");
        return;
    }
    Memtrain__TidyResponse tr = MEMTRAIN__TIDY_RESPONSE__INIT;
    for (size_t i = 0; i < t->n; i++) {
        jobs[i] = &t->items[i].out;
        tr.bytes_removed += t->items[i].out.bytes;
    }
    tr.n_jobs = t->n;
    tr.jobs = jobs;
    tr.dry_run = d == NULL;
    tr.store_bytes_before = tr.store_bytes_after = t->db_before;
    tr.file_bytes_before = tr.file_bytes_after = t->files_before;
    if (d) {
        uint64_t db, wal;
        store_file_bytes(d->store, &db, &wal);
        tr.file_bytes_after = db + wal;
        tr.store_bytes_after = store_db_bytes(d->store);
    }
    tr.bytes_freed = tr.store_bytes_before > tr.store_bytes_after
                         ? tr.store_bytes_before - tr.store_bytes_after : 0;
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_TIDY;
    r.tidy = &tr;
    conn_send(t->c, t->req_id, &r, NULL, NULL);
    free(jobs);
}

void tidy_task_reply_dry(struct daemon *d, struct tidy_task *t)
{
    measure_before(d, t);
    reply(NULL, t);
    tidy_task_free(t);
}

/* ---- the runner */

static void on_idle(uv_idle_t *h);
static void on_wait(uv_timer_t *h);

static void work_start(struct tidy *td)
{
    if (td->working || !td->head)
        return;
    td->working = 1;
    uv_idle_start(&td->idle, on_idle);
}

/* The head task is done: log, answer, free it; start the next. */
static void task_finish(struct tidy *td)
{
    struct tidy_task *t = td->head;
    uint64_t removed = 0, after = store_db_bytes(td->d->store);
    size_t jobs = 0, ckpts = 0;
    for (size_t i = 0; i < t->n; i++) {
        removed += t->items[i].out.bytes;
        if (t->items[i].out.job_removed)
            jobs++;
        else
            ckpts += t->items[i].out.n_checkpoint_epochs;
    }
    char a[32], b[32], c[32];
    if (t->failed)
        log_err("%s: %s", t->who, t->err.msg);
    else
        log_info("%s: removed %zu job%s and %zu checkpoint%s (%s stored); the database went "
                 "from %s to %s", t->who, jobs, jobs == 1 ? "" : "s", ckpts, ckpts == 1 ? "" : "s",
                 mt_fmt_bytes(a, sizeof a, (double)removed),
                 mt_fmt_bytes(b, sizeof b, (double)t->db_before),
                 mt_fmt_bytes(c, sizeof c, (double)after));
    reply(td->d, t);
    td->head = t->next;
    if (!td->head)
        td->tail = NULL;
    tidy_task_free(t);
}

/* One short step of the head task. 1: it made progress; 0: it waits for a
 * job's worker to stop. */
static int task_step(struct tidy *td, struct tidy_task *t)
{
    struct daemon *d = td->d;
    if (!t->measured) {   /* when it starts: a task before it may have freed space */
        measure_before(d, t);
        t->measured = 1;
        return 1;
    }
    if (t->phase == PH_REMOVE) {
        if (t->cur >= t->n || t->failed) {
            t->phase = PH_VACUUM;
            return 1;
        }
        struct tidy_item *it = &t->items[t->cur];
        if (jobs_find(d, it->out.job_id))
            return 0;   /* cancelled with --force: its worker is stopping */
        int rc = 0, done = 0;
        if (it->out.job_removed) {
            rc = store_job_remove_step(d->store, it->out.job_id, TIDY_ROWS, &done, &t->err);
        } else if (it->next_epoch < it->out.n_checkpoint_epochs) {
            rc = store_ckpt_remove(d->store, it->out.job_id, it->epochs[it->next_epoch++], NULL,
                                   &t->err);
            if (rc == MT_E_NOTFOUND)
                rc = 0;   /* gone already */
            done = it->next_epoch >= it->out.n_checkpoint_epochs;
        } else {
            done = 1;
        }
        if (rc)
            t->failed = 1;
        else if (done)
            t->cur++;
        return 1;
    }
    if (t->phase == PH_VACUUM) {
        uint64_t left = 0;
        if (store_vacuum_step(d->store, TIDY_PAGES, &left, &t->err)) {
            log_warn("%s: %s", t->who, t->err.msg);   /* the rows are gone all the same */
            left = 0;
            memset(&t->err, 0, sizeof t->err);
        }
        if (left == 0) {
            struct mt_err err = {0};
            if (store_wal_shrink(d->store, &err))
                log_warn("%s: %s", t->who, err.msg);
            t->phase = PH_DONE;
        }
        return 1;
    }
    task_finish(td);
    return 1;
}

/* One slice: steps of the head tasks for at most TIDY_SLICE_MS; the
 * removal steps of a slice share one transaction (one commit). */
static void on_idle(uv_idle_t *h)
{
    struct tidy *td = h->data;
    uint64_t until = uv_hrtime() + (uint64_t)TIDY_SLICE_MS * 1000000u;
    int in_txn = 0, secure = 1, waiting = 0;
    struct mt_err err = {0};
    while (td->head && uv_hrtime() < until) {
        struct tidy_task *t = td->head;
        int removing = t->measured && t->phase == PH_REMOVE && !t->failed && t->cur < t->n;
        if (removing && !in_txn) {
            if (store_tidy_begin(td->d->store, &secure, &err)) {
                t->failed = 1;
                t->err = err;
                continue;
            }
            in_txn = 1;
        } else if (!removing && in_txn) {
            break;   /* commit before the vacuum, or before the answer */
        }
        if (!task_step(td, t)) {
            waiting = 1;
            break;
        }
    }
    if (in_txn && store_tidy_end(td->d->store, secure, 0, &err) && td->head) {
        td->head->failed = 1;
        td->head->err = err;
    }
    if (waiting) {   /* wait for the worker without spinning */
        uv_idle_stop(&td->idle);
        uv_timer_start(&td->wait, on_wait, 100, 0);
    } else if (!td->head) {
        uv_idle_stop(&td->idle);
        td->working = 0;
    }
}

static void on_wait(uv_timer_t *h)
{
    struct tidy *td = h->data;
    uv_idle_start(&td->idle, on_idle);
}

void tidy_task_run(struct daemon *d, struct tidy_task *t)
{
    struct tidy *td = tidy_of(d);
    if (!td) {   /* no runner (stopping) */
        t->failed = 1;
        mt_err_set(&t->err, MT_E_BUSY, "memtraind is stopping");
        reply(d, t);
        tidy_task_free(t);
        return;
    }
    t->next = NULL;
    if (td->tail)
        td->tail->next = t;
    else
        td->head = t;
    td->tail = t;
    work_start(td);
}

void tidy_drop_conn(struct daemon *d, struct conn *c)
{
    struct tidy *td = tidy_of(d);
    for (struct tidy_task *t = td ? td->head : NULL; t; t = t->next)
        if (t->c == c)
            t->c = NULL;
}

void tidy_init(struct daemon *d)
{
    struct tidy *td = calloc(1, sizeof *td);
    if (!td) {
        log_err("tidy: out of memory; rm, prune and retention are off");
        return;
    }
    td->d = d;
    uv_idle_init(d->loop, &td->idle);
    uv_timer_init(d->loop, &td->wait);
    td->idle.data = td->wait.data = td;
    d->tidy = td;
}

/* Both handles live in td: free it after the second close callback (libuv
 * runs them in no order a caller should rely on). */
static void free_tidy(uv_handle_t *h)
{
    struct tidy *td = h->data;
    if (++td->closed == 2)
        free(td);
}

void tidy_close(struct daemon *d)
{
    struct tidy *td = tidy_of(d);
    if (!td)
        return;
    d->tidy = NULL;
    while (td->head) {
        struct tidy_task *t = td->head;
        td->head = t->next;
        if (t->cur < t->n)
            log_warn("%s: stopped with %zu of %zu jobs done (run it again)", t->who, t->cur,
                     t->n);
        tidy_task_free(t);
    }
    uv_close((uv_handle_t *)&td->idle, free_tidy);
    uv_close((uv_handle_t *)&td->wait, free_tidy);
}
