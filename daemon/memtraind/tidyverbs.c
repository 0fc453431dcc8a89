/* tidyverbs.c: the verbs of a tidy store: rm, prune, ckpt rm and df
 * (tidyverbs.h). Removals are checked and selected here, then run by the
 * tidy runner (tidy.c), which answers. */
#include "tidyverbs.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "conn.h"
#include "dispatch.h"
#include "jobs.h"
#include "log.h"
#include "memtrain/clock.h"
#include "storetidy.h"
#include "tidy.h"

/* Refuse (INVALID) a live job unless forced. 1 when refused. */
static int refuse_live(struct conn *c, uint64_t id, const struct store_job *row, const char *how)
{
    struct job *j = jobs_find(c->d, row->id);
    if (!j)
        return 0;
    conn_send_error(c, id, MEMTRAIN__STATUS__INVALID, "job %" PRIu64 " is %s: %s", row->id,
                    job_state_name(j->row.state), how);
    return 1;
}

/* A task for c's request, logged as "<verb> by uid N"; NULL after an
 * error reply. */
static struct tidy_task *task_for(struct conn *c, uint64_t id, const char *verb)
{
    char who[64];
    snprintf(who, sizeof who, "%s by uid %u", verb, (unsigned)c->uid);
    struct tidy_task *t = tidy_task_new(c, id, who);
    if (!t)
        conn_send_error(c, id, MEMTRAIN__STATUS__ERROR, "out of memory");
    return t;
}

/* Hand t on once filled: rc (an error while filling it) is answered and t
 * freed; a dry run is answered with what would go; else the runner removes
 * it and answers. */
static void task_go(struct conn *c, uint64_t id, struct tidy_task *t, int rc,
                    const struct mt_err *err, int dry_run)
{
    if (rc) {
        conn_send_error(c, id, dispatch_status(rc), "%s", err->msg);
        tidy_task_free(t);
    } else if (dry_run) {
        tidy_task_reply_dry(c->d, t);
    } else {
        tidy_task_run(c->d, t);
    }
}

static int seen_before(const uint64_t *ids, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (ids[k] == ids[i])
            return 1;
    return 0;
}

/* Add job `job_id` to t after the access and state checks (an error reply
 * otherwise: nonzero). */
static int rm_add(struct conn *c, uint64_t id, const Memtrain__RemoveRequest *q, uint64_t job_id,
                  struct tidy_task *t)
{
    struct store_job row;
    struct mt_err err = {0};
    if (dispatch_get_row(c, id, job_id, &row))
        return 1;
    int rc = !dispatch_may_control(c, id, &row, "remove") ||
             (!q->force && refuse_live(c, id, &row, "cancel it first (mtctl cancel), or use "
                                                     "rm --force, which cancels it"));
    if (!rc && (rc = tidy_task_add(c->d, t, &row, NULL, 0, &err)))
        conn_send_error(c, id, dispatch_status(rc), "%s", err.msg);
    store_job_clear(&row);
    return rc;
}

void tidy_handle_rm(struct conn *c, uint64_t id, const Memtrain__RemoveRequest *q)
{
    if (q->n_job_ids == 0) {
        conn_send_error(c, id, MEMTRAIN__STATUS__INVALID, "rm: no job ids");
        return;
    }
    struct tidy_task *t = task_for(c, id, "rm");
    if (!t)
        return;
    /* all or nothing: every id is checked before anything is cancelled */
    for (size_t i = 0; i < q->n_job_ids; i++)
        if (!seen_before(q->job_ids, i) && rm_add(c, id, q, q->job_ids[i], t)) {
            tidy_task_free(t);
            return;
        }
    for (size_t i = 0; i < q->n_job_ids && !q->dry_run; i++) {
        struct job *j = jobs_find(c->d, q->job_ids[i]);
        if (j) {
            log_info("job %" PRIu64 ": cancelled by uid %u to be removed (rm --force)",
                     q->job_ids[i], (unsigned)c->uid);
            jobs_cancel(c->d, j);
        }
    }
    task_go(c, id, t, 0, NULL, q->dry_run);
}

void tidy_handle_prune(struct conn *c, uint64_t id, const Memtrain__PruneRequest *q)
{
    struct tidy_filter f = {.owner = (int64_t)c->uid, .keep_checkpoints = -1};
    for (size_t i = 0; i < q->n_states; i++) {
        int s = q->states[i];
        if (s <= 0 || s >= 32 || !(TIDY_ENDED_STATES & 1u << s)) {
            conn_send_error(c, id, MEMTRAIN__STATUS__INVALID, "prune: %s is not an ended state "
                            "(prune takes completed, failed, cancelled, out-of-memory)",
                            job_state_name(s));
            return;
        }
        f.state_mask |= 1u << s;
    }
    if (!f.state_mask)
        f.state_mask = TIDY_ENDED_STATES;
    if (q->all_users) {
        if (c->uid != 0) {
            conn_send_error(c, id, MEMTRAIN__STATUS__PERMISSION_DENIED,
                            "prune --all: only root may prune every user's jobs");
            return;
        }
        f.owner = -1;
    }
    if (q->older_than_ms)
        f.finished_before_ms = mt_now_ms() - (int64_t)(q->older_than_ms > INT64_MAX / 2
                                                           ? INT64_MAX / 2 : q->older_than_ms);
    if (q->opt_keep_checkpoints_case ==
        MEMTRAIN__PRUNE_REQUEST__OPT_KEEP_CHECKPOINTS_KEEP_CHECKPOINTS)
        f.keep_checkpoints = (int)(q->keep_checkpoints > 1000000 ? 1000000 : q->keep_checkpoints);
    struct tidy_task *t = task_for(c, id, "prune");
    struct mt_err err = {0};
    if (t)
        task_go(c, id, t, tidy_task_select(c->d, t, &f, &err), &err, q->dry_run);
}

void tidy_handle_ckpt_rm(struct conn *c, uint64_t id, const Memtrain__CheckpointRemoveRequest *q)
{
    struct store_job row;
    if (dispatch_get_row(c, id, q->job_id, &row))
        return;
    if (!dispatch_may_control(c, id, &row, "remove checkpoints of") ||
        refuse_live(c, id, &row, "it resumes from its checkpoints; cancel it first")) {
        store_job_clear(&row);
        return;
    }
    struct tidy_task *t = task_for(c, id, "ckpt rm");
    struct mt_err err = {0};
    if (t)
        task_go(c, id, t, tidy_task_add_ckpts(c->d, t, &row, q->epochs, q->n_epochs, &err), &err,
                q->dry_run);
    store_job_clear(&row);
}

/* ---- df */

struct df_walk {
    Memtrain__JobUsage *ju;
    size_t n, cap;
};

static void kinds_set(Memtrain__UsageKinds *k, const uint64_t b[STORE_KIND_N])
{
    memtrain__usage_kinds__init(k);
    k->jobs = b[STORE_KIND_JOBS];
    k->metrics = b[STORE_KIND_METRICS];
    k->memory_samples = b[STORE_KIND_MEMORY];
    k->checkpoints = b[STORE_KIND_CHECKPOINTS];
    k->logs = b[STORE_KIND_LOGS];
    k->total = store_usage_total(b);
}

/* The jobs to list, newest first (their bytes are filled in afterwards). */
static int df_collect(void *ud, const struct store_job *row)
{
    struct df_walk *w = ud;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        Memtrain__JobUsage *ju = realloc(w->ju, cap * sizeof *ju);
        if (!ju)
            return MT_E_NOMEM;
        w->ju = ju;
        w->cap = cap;
    }
    Memtrain__JobUsage *j = &w->ju[w->n];
    memtrain__job_usage__init(j);
    j->job_id = row->id;
    j->owner_uid = row->owner_uid;
    j->state = row->state;
    if (!(j->name = strdup(row->name ? row->name : "")))
        return MT_E_NOMEM;
    w->n++;
    return 0;
}

void tidy_handle_df(struct conn *c, uint64_t id, const Memtrain__DiskUsageRequest *q)
{
    struct store_usage u;
    struct df_walk w = {0};
    struct mt_err err = {0};
    int64_t owner = q->all_users && access_may_read_all(c) ? -1 : (int64_t)c->uid;
    int rc = store_usage_read(c->d->store, &u, &err);
    if (rc) {
        conn_send_error(c, id, dispatch_status(rc), "%s", err.msg);
        return;
    }
    rc = store_jobs_each(c->d->store, owner, 0, 0, df_collect, &w, &err);
    Memtrain__UsageKinds *kinds = calloc(w.n + 2, sizeof *kinds);
    Memtrain__JobUsage **ptrs = calloc(w.n ? w.n : 1, sizeof *ptrs);
    if (rc || !kinds || !ptrs) {
        conn_send_error(c, id, MEMTRAIN__STATUS__ERROR, "%s",
                        err.msg[0] ? err.msg : "out of memory");
    } else {
        uint64_t listed[STORE_KIND_N] = {0}, others[STORE_KIND_N];
        static const uint64_t none[STORE_KIND_N];
        for (size_t i = 0; i < w.n; i++) {
            const struct store_job_usage *ju = store_usage_find(&u, w.ju[i].job_id);
            kinds_set(&kinds[i], ju ? ju->bytes : none);
            for (int k = 0; ju && k < STORE_KIND_N; k++)
                listed[k] += ju->bytes[k];
            w.ju[i].bytes = &kinds[i];
            w.ju[i].checkpoints = ju ? ju->checkpoints : 0;
            w.ju[i].memory_samples = ju ? ju->memory_samples : 0;
            ptrs[i] = &w.ju[i];
        }
        /* others: every job's share less the listed ones' (the kinds'
         * totals also hold the b-trees' own pages, which are nobody's) */
        memset(others, 0, sizeof others);
        for (size_t i = 0; i < u.n_jobs; i++)
            for (int k = 0; k < STORE_KIND_N; k++)
                others[k] += u.jobs[i].bytes[k];
        for (int k = 0; k < STORE_KIND_N; k++)
            others[k] = others[k] > listed[k] ? others[k] - listed[k] : 0;
        Memtrain__DiskUsageResponse dr = MEMTRAIN__DISK_USAGE_RESPONSE__INIT;
        kinds_set(&kinds[w.n], u.kind_bytes);
        kinds_set(&kinds[w.n + 1], others);
        dr.n_jobs = w.n;
        dr.jobs = ptrs;
        dr.by_kind = &kinds[w.n];
        dr.others = &kinds[w.n + 1];
        dr.free_bytes = u.free_bytes;
        store_file_bytes(c->d->store, &dr.file_bytes, &dr.wal_bytes);
        dr.path = c->uid == 0 ? c->d->cfg.db_path : "";
        Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
        r.body_case = MEMTRAIN__RESPONSE__BODY_DF;
        r.df = &dr;
        conn_send(c, id, &r, NULL, NULL);
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.ju[i].name);
    free(w.ju);
    free(kinds);
    free(ptrs);
    store_usage_free(&u);
}
