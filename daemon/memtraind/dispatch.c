/* dispatch.c: the handlers behind each verb (dispatch.h). */
#include "dispatch.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "conn.h"
#include "frame.h"
#include "jobs.h"
#include "msgtext.h"
#include "planlayers.h"
#include "jobspec.h"
#include "log.h"
#include "memtrain/clock.h"
#include "rules/rules.h"
#include "memtrain/version.h"
#include "memtrain/wire.h"
#include "probe.h"
#include "tidy.h"
#include "tidyverbs.h"
#include "watch.h"

#define CHUNK_BYTES (1u << 20)

static Memtrain__Status status_of(int code)
{
    switch (code) {
    case MT_E_NOTFOUND: return MEMTRAIN__STATUS__NOT_FOUND;
    case MT_E_PERM: return MEMTRAIN__STATUS__PERMISSION_DENIED;
    case MT_E_INVAL:
    case MT_E_FORMAT:
    case MT_E_IO: return MEMTRAIN__STATUS__INVALID;
    case MT_E_LIMIT: return MEMTRAIN__STATUS__OVER_LIMIT;
    case MT_E_BUSY: return MEMTRAIN__STATUS__UNAVAILABLE;
    }
    return MEMTRAIN__STATUS__ERROR;
}

/* The spec of a submit or plan request, parsed but not resolved. */
static int get_row(struct conn *c, uint64_t id, uint64_t job_id, struct store_job *row);

static int request_spec(Memtrain__JobSpec *job, const char *yaml, const char *yaml_name,
                        const char *rule, struct mt_spec *s, struct mt_err *err)
{
    int rc;
    spec_init(s);
    if (yaml)
        rc = spec_parse_string(yaml, strlen(yaml), yaml_name && yaml_name[0] ? yaml_name : "spec",
                               s, err);
    else if (job)
        rc = jobspec_to_spec(job, s, err);
    else
        rc = mt_err_set(err, MT_E_INVAL, "the request carries no spec (neither YAML nor JobSpec)");
    if (rc || !rule || !rule[0])
        return rc;
    /* the request's rule instead of the spec's (mtctl --rule) */
    if (!rule_find(rule))
        return mt_err_set(err, MT_E_INVAL, "--rule: unknown rule '%s'", rule);
    spec_set_rule(s, rule);
    return 0;
}

static void reply_job(struct conn *c, uint64_t id, int body, const struct store_job *row,
                      const struct job *live, const char *message)
{
    struct jobmsg m;
    jobmsg_init(&m, c->d, row, live);
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    Memtrain__SubmitResponse sub = MEMTRAIN__SUBMIT_RESPONSE__INIT;
    Memtrain__CancelResponse can = MEMTRAIN__CANCEL_RESPONSE__INIT;
    r.message = (char *)(message ? message : "");
    r.body_case = body;
    if (body == MEMTRAIN__RESPONSE__BODY_SUBMIT) {
        sub.job = &m.job;
        r.submit = &sub;
    } else {
        can.job = &m.job;
        r.cancel = &can;
    }
    conn_send(c, id, &r, NULL, NULL);
    jobmsg_free(&m);
}

/* A submit waiting for its dataset probe (probe.c). */
struct submit_wait {
    struct mt_spec s;             /* parsed, not resolved */
    int32_t priority;
    uint64_t group;               /* jobs_submit's group: 0, a leader's id or JOBS_GROUP_NEW */
    char labels[LABELS_MAX * (2 * LABEL_LEN_MAX + 2) + 1];  /* encoded (labels.h) */
};

static void submit_probed(struct conn *c, uint64_t id, void *ud, int rc,
                          const struct mt_data_shape *shape, const struct mt_err *perr)
{
    struct submit_wait *sw = ud;
    struct mt_err err = {0};
    Memtrain__Status st = MEMTRAIN__STATUS__INVALID;
    struct job *j = NULL;
    if (rc) {
        conn_send_error(c, id, status_of(rc), "%s", perr->msg);
        return;
    }
    sw->s.data.has_shape = 1;
    sw->s.data.shape = *shape;
    jobs_submit(c->d, c->uid, &sw->s, sw->priority, sw->labels, sw->group, &j, &st, &err);
    if (!j) {
        conn_send_error(c, id, st, "%s", err.msg);
        return;
    }
    reply_job(c, id, MEMTRAIN__RESPONSE__BODY_SUBMIT, &j->row, j, NULL);
    jobs_schedule(c->d);
}

/* The dataset of a parsed spec is probed off the loop; the spec is resolved
 * here first (a copy) so a bad spec is refused without touching files. */
static int probe_spec(struct conn *c, uint64_t id, const struct mt_spec *parsed,
                      probe_done_fn done, void *ud)
{
    struct mt_err err = {0};
    struct mt_spec *r = malloc(sizeof *r);
    int rc = r ? 0 : mt_err_set(&err, MT_E_NOMEM, "out of memory");
    if (!rc) {
        *r = *parsed;
        if (r->memory_limit == 0)
            r->memory_limit = config_job_default_limit(&c->d->cfg);
        rc = spec_finish(r, &err);
    }
    if (rc) {
        conn_send_error(c, id, status_of(rc), "%s", err.msg);
        free(r);
        free(ud);
        return rc;
    }
    rc = probe_start(c, id, &r->data, done, ud, free);
    free(r);
    return rc;
}

/* The request's --set keys, in order, on a parsed spec. */
static int apply_sets(struct mt_spec *s, char *const *set, size_t n, struct mt_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(set[i], '=');
        if (!eq || eq == set[i])
            return mt_err_set(err, MT_E_INVAL, "--set '%.100s': expected KEY=VALUE "
                              "(optimizer.lr=0.01)", set[i]);
        char key[128];
        size_t len = (size_t)(eq - set[i]);
        if (len >= sizeof key)
            return mt_err_set(err, MT_E_INVAL, "--set '%.100s...': the key is too long", set[i]);
        memcpy(key, set[i], len);
        key[len] = '\0';
        int rc = spec_set_key(s, key, eq + 1, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The group a submit joins or starts: 0 with an error sent when the
 * request names a group the caller may not join. */
static int submit_group(struct conn *c, uint64_t id, const Memtrain__SubmitRequest *q,
                        uint64_t *group)
{
    *group = 0;
    if (q->start_group && q->group_id) {
        conn_send_error(c, id, MEMTRAIN__STATUS__INVALID,
                        "a job cannot both start a group and join group %llu",
                        (unsigned long long)q->group_id);
        return -1;
    }
    if (q->start_group) {
        *group = JOBS_GROUP_NEW;
        return 0;
    }
    if (!q->group_id)
        return 0;
    struct store_job row;
    struct mt_err err = {0};
    int rc = store_job_get(c->d->store, q->group_id, &row, &err);
    int ok = !rc && row.owner_uid == c->uid && row.group_id == row.id;
    store_job_clear(&row);
    if (!ok) {
        conn_send_error(c, id, MEMTRAIN__STATUS__INVALID,
                        "group %llu: no such group of yours (a group is led by the first job "
                        "of a `submit --rules`)", (unsigned long long)q->group_id);
        return -1;
    }
    *group = q->group_id;
    return 0;
}

/* The stored spec of the job a resubmit names (read access checked, the
 * error sent); NULL after an error. */
static Memtrain__JobSpec *resubmit_spec(struct conn *c, uint64_t id, uint64_t job_id)
{
    struct store_job row;
    if (get_row(c, id, job_id, &row))
        return NULL;
    Memtrain__JobSpec *js = memtrain__job_spec__unpack(NULL, row.spec_len, row.spec);
    store_job_clear(&row);
    if (!js)
        conn_send_error(c, id, MEMTRAIN__STATUS__ERROR, "job %llu: its stored spec cannot be "
                        "read", (unsigned long long)job_id);
    return js;
}

static void handle_submit(struct conn *c, uint64_t id, const Memtrain__SubmitRequest *q)
{
    struct mt_err err = {0};
    const char *yaml = q->spec_case == MEMTRAIN__SUBMIT_REQUEST__SPEC_YAML ? q->yaml : NULL;
    Memtrain__JobSpec *js = q->spec_case == MEMTRAIN__SUBMIT_REQUEST__SPEC_JOB ? q->job : NULL;
    Memtrain__JobSpec *stored = NULL;
    uint64_t group;
    if (submit_group(c, id, q, &group))
        return;
    if (q->resubmit_of) {
        if (yaml || js) {
            conn_send_error(c, id, MEMTRAIN__STATUS__INVALID,
                            "a resubmit carries no spec of its own");
            return;
        }
        if (!(stored = js = resubmit_spec(c, id, q->resubmit_of)))
            return;
    }
    struct submit_wait *sw = malloc(sizeof *sw);
    if (!sw) {
        conn_send_error(c, id, MEMTRAIN__STATUS__ERROR, "out of memory");
        if (stored)
            memtrain__job_spec__free_unpacked(stored, NULL);
        return;
    }
    int rc = request_spec(js, yaml, q->yaml_name, q->rule, &sw->s, &err);
    if (stored)
        memtrain__job_spec__free_unpacked(stored, NULL);
    if (rc || apply_sets(&sw->s, q->set, q->n_set, &err)) {
        conn_send_error(c, id, MEMTRAIN__STATUS__INVALID, "%s", err.msg);
        free(sw);
        return;
    }
    sw->group = group;
    if (q->name && q->name[0])
        snprintf(sw->s.name, sizeof sw->s.name, "%s", q->name);
    if (q->memory_limit)
        sw->s.memory_limit = q->memory_limit;
    sw->priority = q->priority;
    char *labels;
    if (labels_encode(q->labels, q->n_labels, &labels, &err)) {
        conn_send_error(c, id, status_of(err.code), "%s", err.msg);
        free(sw);
        return;
    }
    snprintf(sw->labels, sizeof sw->labels, "%s", labels);  /* fits: labels.h's limits */
    free(labels);
    probe_spec(c, id, &sw->s, submit_probed, sw);
}

/* Rows copied out of the walk (each row is valid only during its call). */
struct list_ctx {
    struct store_job *rows;
    size_t n, cap;
    Memtrain__Label *const *sel;  /* only rows with these labels */
    size_t n_sel;
    size_t stop_at;               /* rows wanted: collect_job ends the walk there */
    uint64_t group;               /* only this group's rows; 0 = any */
};
#define LIST_FULL 1               /* collect_job: enough rows (not an error) */

static int dup_blob(uint8_t **dst, const uint8_t *src, size_t len)
{
    *dst = NULL;
    if (!src)
        return 0;
    if (!(*dst = malloc(len ? len : 1)))
        return MT_E_NOMEM;
    memcpy(*dst, src, len);
    return 0;
}

static int collect_job(void *ud, const struct store_job *row)
{
    struct list_ctx *l = ud;
    if (!labels_match(row->labels, l->sel, l->n_sel) || (l->group && row->group_id != l->group))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        struct store_job *r = realloc(l->rows, cap * sizeof *r);
        if (!r)
            return MT_E_NOMEM;
        l->rows = r;
        l->cap = cap;
    }
    struct store_job *copy = &l->rows[l->n++];
    *copy = *row;
    copy->spec = NULL;
    copy->spec_len = 0;
    copy->name = strdup(row->name ? row->name : "");
    copy->reason = strdup(row->reason ? row->reason : "");
    copy->rule = strdup(row->rule ? row->rule : "");
    copy->labels = strdup(row->labels ? row->labels : "");
    int rc = dup_blob(&copy->planned, row->planned, row->planned_len);
    if (!rc)
        rc = dup_blob(&copy->measured, row->measured, row->measured_len);
    if (rc || !copy->name || !copy->reason || !copy->rule || !copy->labels)
        return MT_E_NOMEM;
    return l->n >= l->stop_at ? LIST_FULL : 0;
}

/* One list reply holds at most LIST_PAGE_JOBS jobs and LIST_PAGE_BYTES of
 * them packed (a Job carries a name, a reason and memory figures: a few
 * hundred bytes), far under the client frame cap; next_before_id says where
 * the next page starts. */
#define LIST_PAGE_JOBS 1000
#define LIST_PAGE_BYTES (MT_FRAME_MAX_DEFAULT / 4)

static void handle_list(struct conn *c, uint64_t id, const Memtrain__ListRequest *q)
{
    struct mt_err err = {0};
    uint32_t mask = 0;
    for (size_t i = 0; i < q->n_states; i++)
        if (q->states[i] > 0 && q->states[i] < 32)
            mask |= 1u << q->states[i];
    struct list_ctx l = {.sel = q->labels, .n_sel = q->n_labels, .group = q->group_id};
    /* --all: every job when the peer may read them all, else its own (access.h) */
    int64_t owner = q->all_users && access_may_read_all(c) ? -1 : (int64_t)c->uid;
    uint32_t want = q->limit && q->limit < LIST_PAGE_JOBS ? q->limit : LIST_PAGE_JOBS;
    /* One row more than the page: whether another page follows. */
    /* With labels to match, the walk filters: it reads every row it must and
     * stops after one more match than the page (collect_job says so). */
    l.stop_at = want + 1;
    int rc = store_jobs_page(c->d->store, owner, mask, q->before_id,
                             q->n_labels ? 0 : want + 1, collect_job, &l, &err);
    if (rc == LIST_FULL)
        rc = 0;
    struct jobmsg *m = calloc(l.n ? l.n : 1, sizeof *m);
    Memtrain__Job **ptrs = calloc(l.n ? l.n : 1, sizeof *ptrs);
    size_t n = 0;
    if (rc || !m || !ptrs) {
        conn_send_error(c, id, status_of(rc), "%s", err.msg[0] ? err.msg : "out of memory");
    } else {
        size_t bytes = 0;
        for (; n < l.n && n < want; n++) {
            jobmsg_init(&m[n], c->d, &l.rows[n], jobs_find(c->d, l.rows[n].id));
            ptrs[n] = &m[n].job;
            bytes += memtrain__job__get_packed_size(&m[n].job) + 8;
            if (bytes > LIST_PAGE_BYTES && n > 0) {
                jobmsg_free(&m[n]);
                break;
            }
        }
        Memtrain__ListResponse lr = MEMTRAIN__LIST_RESPONSE__INIT;
        lr.n_jobs = n;
        lr.jobs = ptrs;
        lr.next_before_id = n < l.n ? l.rows[n - 1].id : 0;
        Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
        r.body_case = MEMTRAIN__RESPONSE__BODY_LIST;
        r.list = &lr;
        conn_send(c, id, &r, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            jobmsg_free(&m[i]);
    }
    for (size_t i = 0; i < l.n; i++)
        store_job_clear(&l.rows[i]);
    free(l.rows);
    free(m);
    free(ptrs);
}

/* The stored row of a job the peer may read (access.h), or an error reply.
 * A job the peer may not read gets the same NOT_FOUND reply as a missing
 * one, so ids of others' jobs reveal nothing. */
static int get_row(struct conn *c, uint64_t id, uint64_t job_id, struct store_job *row)
{
    struct mt_err err = {0};
    memset(row, 0, sizeof *row);
    int rc = store_job_get(c->d->store, job_id, row, &err);
    if (!rc && !access_may_read(c, row->owner_uid))
        rc = MT_E_NOTFOUND;
    if (rc == MT_E_NOTFOUND && c->uid != 0)
        conn_send_error(c, id, MEMTRAIN__STATUS__NOT_FOUND,
                        "job %llu: no such job, or not yours to read (share_results: %s)",
                        (unsigned long long)job_id, config_share_name(c->d->cfg.share_results));
    else if (rc)
        conn_send_error(c, id, status_of(rc), "%s", err.msg);
    if (rc)
        store_job_clear(row);
    return rc;
}

int dispatch_get_row(struct conn *c, uint64_t id, uint64_t job_id, struct store_job *row)
{
    return get_row(c, id, job_id, row);
}

Memtrain__Status dispatch_status(int code)
{
    return status_of(code);
}

int dispatch_may_control(struct conn *c, uint64_t id, const struct store_job *row,
                         const char *verb)
{
    if (access_may_control(c, row->owner_uid))
        return 1;
    struct passwd pw, *who = NULL;
    char buf[1024];
    getpwuid_r(row->owner_uid, &pw, buf, sizeof buf, &who);
    conn_send_error(c, id, MEMTRAIN__STATUS__PERMISSION_DENIED,
                    "job %llu belongs to %s (uid %u); only its owner or root may %s it",
                    (unsigned long long)row->id, who ? who->pw_name : "another user",
                    (unsigned)row->owner_uid, verb);
    return 0;
}

static void handle_show(struct conn *c, uint64_t id, const Memtrain__ShowRequest *q)
{
    struct store_job row;
    if (get_row(c, id, q->job_id, &row))
        return;
    struct jobmsg m;
    jobmsg_init(&m, c->d, &row, jobs_find(c->d, q->job_id));
    Memtrain__ShowResponse sr = MEMTRAIN__SHOW_RESPONSE__INIT;
    sr.job = &m.job;
    sr.spec = memtrain__job_spec__unpack(NULL, row.spec_len, row.spec);
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_SHOW;
    r.show = &sr;
    conn_send(c, id, &r, NULL, NULL);
    if (sr.spec)
        memtrain__job_spec__free_unpacked(sr.spec, NULL);
    jobmsg_free(&m);
    store_job_clear(&row);
}

static void handle_cancel(struct conn *c, uint64_t id, const Memtrain__CancelRequest *q)
{
    struct store_job row;
    if (get_row(c, id, q->job_id, &row))
        return;
    if (!dispatch_may_control(c, id, &row, "cancel")) {
        store_job_clear(&row);
        return;
    }
    struct job *j = jobs_find(c->d, q->job_id);
    char msg[160];
    if (!j) {
        snprintf(msg, sizeof msg, "job %llu already ended %s", (unsigned long long)row.id,
                 job_state_name(row.state));
        reply_job(c, id, MEMTRAIN__RESPONSE__BODY_CANCEL, &row, NULL, msg);
        store_job_clear(&row);
        return;
    }
    store_job_clear(&row);
    log_info("job %llu: cancel requested by uid %u", (unsigned long long)q->job_id,
             (unsigned)c->uid);
    int was_queued = j->row.state == MEMTRAIN__JOB_STATE__QUEUED;
    uint64_t grace = c->d->cfg.cancel_grace_ms;
    jobs_cancel(c->d, j); /* a queued job is freed here */
    if (was_queued) {
        if (get_row(c, id, q->job_id, &row) == 0) {
            reply_job(c, id, MEMTRAIN__RESPONSE__BODY_CANCEL, &row, NULL, "cancelled");
            store_job_clear(&row);
        }
        return;
    }
    snprintf(msg, sizeof msg, "cancel requested: the worker has %.0f s to stop",
             (double)grace / 1000.0);
    reply_job(c, id, MEMTRAIN__RESPONSE__BODY_CANCEL, &j->row, j, msg);
}

/* Refuse a watch or log follow past CONN_MAX_WATCHES on one connection. */
static int watch_refused(struct conn *c, uint64_t id)
{
    if (watch_room(c))
        return 0;
    conn_send_error(c, id, MEMTRAIN__STATUS__UNAVAILABLE,
                    "at most %d watches and log follows at once on one connection",
                    CONN_MAX_WATCHES);
    return 1;
}

static void handle_watch(struct conn *c, uint64_t id, const Memtrain__WatchRequest *q)
{
    if (watch_refused(c, id))
        return;
    if (q->job_id == 0) {
        if (!watch_add(c->d, c, id, 0, WATCH_EVENTS, q->steps))
            conn_send_error(c, id, MEMTRAIN__STATUS__ERROR, "out of memory");
        return;
    }
    struct store_job row;
    if (get_row(c, id, q->job_id, &row))
        return;
    struct job *j = jobs_find(c->d, q->job_id);
    struct jobmsg m;
    jobmsg_init(&m, c->d, &row, j);
    Memtrain__WatchEvent ev = MEMTRAIN__WATCH_EVENT__INIT;
    ev.job_id = row.id;
    ev.event_case = MEMTRAIN__WATCH_EVENT__EVENT_JOB;
    ev.job = &m.job;
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_WATCH;
    r.watch = &ev;
    r.end = j == NULL; /* an ended job: its final state is the whole stream */
    conn_send(c, id, &r, NULL, NULL);
    jobmsg_free(&m);
    store_job_clear(&row);
    if (j && !watch_add(c->d, c, id, q->job_id, WATCH_EVENTS, q->steps))
        conn_send_error(c, id, MEMTRAIN__STATUS__ERROR, "out of memory");
}

/* Collect copies of stored messages (valid only during the callback). */
struct msgs {
    void **v;
    size_t n, cap;
};

static int push_copy(struct msgs *m, const ProtobufCMessage *msg)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        void **v = realloc(m->v, cap * sizeof *v);
        if (!v)
            return MT_E_NOMEM;
        m->v = v;
        m->cap = cap;
    }
    if (!(m->v[m->n] = msg_copy(msg)))
        return MT_E_NOMEM;
    m->n++;
    return 0;
}

static int push_epoch(void *ud, const Memtrain__EpochProgress *e)
{
    return push_copy(ud, &e->base);
}

static int push_step(void *ud, const Memtrain__StepProgress *s)
{
    return push_copy(ud, &s->base);
}

static int push_memory(void *ud, const Memtrain__MemorySample *m)
{
    return push_copy(ud, &m->base);
}

static void msgs_free(struct msgs *m)
{
    for (size_t i = 0; i < m->n; i++)
        protobuf_c_message_free_unpacked(m->v[i], NULL);
    free(m->v);
}

static void handle_metrics(struct conn *c, uint64_t id, const Memtrain__MetricsRequest *q)
{
    struct store_job row;
    if (get_row(c, id, q->job_id, &row))
        return;
    store_job_clear(&row);
    struct mt_err err = {0};
    struct msgs e = {0}, s = {0}, m = {0};
    int rc = store_epochs_each(c->d->store, q->job_id, push_epoch, &e, &err);
    if (!rc && q->steps)
        rc = store_steps_each(c->d->store, q->job_id, push_step, &s, &err);
    if (!rc && q->memory)
        rc = store_memory_each(c->d->store, q->job_id, push_memory, &m, &err);
    if (rc) {
        conn_send_error(c, id, status_of(rc), "%s", err.msg[0] ? err.msg : "out of memory");
    } else {
        Memtrain__MetricsResponse mr = MEMTRAIN__METRICS_RESPONSE__INIT;
        mr.job_id = q->job_id;
        mr.n_epochs = e.n;
        mr.epochs = (Memtrain__EpochProgress **)e.v;
        mr.n_steps = s.n;
        mr.steps = (Memtrain__StepProgress **)s.v;
        mr.n_memory = m.n;
        mr.memory = (Memtrain__MemorySample **)m.v;
        Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
        r.body_case = MEMTRAIN__RESPONSE__BODY_METRICS;
        r.metrics = &mr;
        if (protobuf_c_message_get_packed_size(&r.base) > c->d->cfg.frame_max)
            conn_send_error(c, id, MEMTRAIN__STATUS__INVALID,
                            "job %llu: the history is larger than a frame; ask without --steps "
                            "or --memory", (unsigned long long)q->job_id);
        else
            conn_send(c, id, &r, NULL, NULL);
    }
    msgs_free(&e);
    msgs_free(&s);
    msgs_free(&m);
}

struct ckpt_list {
    Memtrain__Checkpoint *c;
    size_t n, cap;
};

static int push_ckpt(void *ud, uint32_t epoch, int64_t time_ms, uint64_t bytes)
{
    struct ckpt_list *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        Memtrain__Checkpoint *c = realloc(l->c, cap * sizeof *c);
        if (!c)
            return MT_E_NOMEM;
        l->c = c;
        l->cap = cap;
    }
    Memtrain__Checkpoint *c = &l->c[l->n++];
    memtrain__checkpoint__init(c);
    c->epoch = epoch;
    c->created_at = time_ms;
    c->bytes = bytes;
    c->path = "";
    return 0;
}

/* A checkpoint being streamed from the store: one chunk is read, packed and
 * queued at a time, the next when the last is written; one per conn. */
struct fetch {
    uint64_t req_id;
    struct store_ckpt_ref ref;
    size_t off;
};

static void send_chunk(struct conn *c, struct fetch *f);

static void fetch_end(struct conn *c, struct fetch *f)
{
    c->fetching = 0;
    free(f);
}

static void on_chunk_sent(struct conn *c, void *ud, int status)
{
    struct fetch *f = ud;
    if (status < 0 || f->off >= f->ref.len)
        fetch_end(c, f);
    else
        send_chunk(c, f);
}

static void send_chunk(struct conn *c, struct fetch *f)
{
    size_t n = f->ref.len - f->off < CHUNK_BYTES ? f->ref.len - f->off : CHUNK_BYTES;
    struct mt_err err = {0};
    uint8_t *buf = malloc(n ? n : 1);
    int rc = buf ? store_ckpt_read(c->d->store, &f->ref, f->off, buf, n, &err)
                 : mt_err_set(&err, MT_E_NOMEM, "out of memory");
    if (rc) {
        free(buf);
        conn_send_error(c, f->req_id, status_of(rc), "%s", err.msg);
        fetch_end(c, f);
        return;
    }
    Memtrain__CheckpointChunk ch = MEMTRAIN__CHECKPOINT_CHUNK__INIT;
    ch.epoch = f->ref.epoch;
    ch.offset = f->off;
    ch.total = f->ref.len;
    ch.data.data = buf;
    ch.data.len = n;
    f->off += n;
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_CHUNK;
    r.chunk = &ch;
    r.end = f->off >= f->ref.len;
    conn_send(c, f->req_id, &r, on_chunk_sent, f);
    free(buf);
}

static void handle_checkpoints(struct conn *c, uint64_t id, const Memtrain__CheckpointsRequest *q)
{
    struct store_job row;
    if (get_row(c, id, q->job_id, &row))
        return;
    store_job_clear(&row);
    struct mt_err err = {0};
    if (q->fetch) {
        if (c->fetching) {
            conn_send_error(c, id, MEMTRAIN__STATUS__UNAVAILABLE,
                            "a checkpoint is already being fetched on this connection");
            return;
        }
        struct fetch *f = calloc(1, sizeof *f);
        if (!f) {
            conn_send_error(c, id, MEMTRAIN__STATUS__ERROR, "out of memory");
            return;
        }
        int rc = store_ckpt_open(c->d->store, q->job_id, q->epoch, &f->ref, &err);
        if (rc) {
            free(f);
            conn_send_error(c, id, status_of(rc), "%s", err.msg);
            return;
        }
        f->req_id = id;
        c->fetching = 1;
        send_chunk(c, f);
        return;
    }
    struct ckpt_list l = {0};
    int rc = store_ckpts_each(c->d->store, q->job_id, push_ckpt, &l, &err);
    if (rc) {
        conn_send_error(c, id, status_of(rc), "%s", err.msg[0] ? err.msg : "out of memory");
    } else {
        Memtrain__Checkpoint **ptrs = malloc((l.n ? l.n : 1) * sizeof *ptrs);
        for (size_t i = 0; ptrs && i < l.n; i++)
            ptrs[i] = &l.c[i];
        Memtrain__CheckpointsResponse cr = MEMTRAIN__CHECKPOINTS_RESPONSE__INIT;
        cr.job_id = q->job_id;
        cr.n_checkpoints = ptrs ? l.n : 0;
        cr.checkpoints = ptrs;
        Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
        r.body_case = MEMTRAIN__RESPONSE__BODY_CHECKPOINTS;
        r.checkpoints = &cr;
        conn_send(c, id, &r, NULL, NULL);
        free(ptrs);
    }
    free(l.c);
}

/* The rules that refuse a planned spec, with their reasons (owned). */
struct rule_refusals {
    Memtrain__RuleRefusal *r;
    Memtrain__RuleRefusal **ptrs;
    size_t n;
};

/* Add `rule` (a static name) refusing for `why`; room for `cap` in all. */
static int refusal_add(struct rule_refusals *rf, size_t cap, const char *rule, const char *why)
{
    if (!rf->ptrs) {
        free(rf->r);
        rf->r = calloc(cap, sizeof *rf->r);
        rf->ptrs = rf->r ? calloc(cap, sizeof *rf->ptrs) : NULL;
        if (!rf->ptrs)
            return MT_E_NOMEM;
    }
    Memtrain__RuleRefusal *x = &rf->r[rf->n];
    memtrain__rule_refusal__init(x);
    x->rule = (char *)rule;
    if (!(x->reason = strdup(why[0] ? why : "refused without a reason")))
        return MT_E_NOMEM;
    rf->ptrs[rf->n++] = x;
    return 0;
}

static void refusals_free(struct rule_refusals *rf)
{
    for (size_t i = 0; i < rf->n; i++)
        free(rf->r[i].reason);
    free(rf->r);
    free(rf->ptrs);
}

/* A plan waiting for its dataset probe: the spec as parsed and resolved. */
struct plan_wait {
    struct mt_spec parsed, s;
};

static void plan_probed(struct conn *c, uint64_t id, void *ud, int rc,
                        const struct mt_data_shape *shape, const struct mt_err *perr)
{
    struct plan_wait *pw = ud;
    struct mt_spec *parsed = &pw->parsed, *sp = &pw->s;
    struct mt_err err = {0};
    Memtrain__MemoryStats plan;
    if (rc) {
        conn_send_error(c, id, status_of(rc), "%s", perr->msg);
        return;
    }
    parsed->data.has_shape = sp->data.has_shape = 1;
    parsed->data.shape = sp->data.shape = *shape;
    if ((rc = jobs_plan(sp, &plan, &err))) {
        conn_send_error(c, id, status_of(rc), "%s", err.msg);
        return;
    }
    const struct mt_rule *const *rules = rule_list();
    size_t n = 0;
    while (rules[n])
        n++;
    Memtrain__RulePlan *rp = calloc(n ? n : 1, sizeof *rp);
    Memtrain__RulePlan **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    Memtrain__MemoryStats *stats = calloc(n ? n : 1, sizeof *stats);
    struct rule_refusals rf = {0};
    size_t k = 0;
    for (size_t i = 0; rp && ptrs && stats && i < n; i++) {
        struct mt_spec o = *parsed;
        struct mt_err e2 = {0};
        spec_set_rule(&o, rules[i]->name);
        if (spec_finish(&o, &e2) || jobs_plan(&o, &stats[k], &e2)) {
            if (refusal_add(&rf, n, rules[i]->name, e2.msg))
                rc = MT_E_NOMEM;
            continue;
        }
        memtrain__rule_plan__init(&rp[k]);
        rp[k].rule = (char *)rules[i]->name;
        rp[k].planned = &stats[k];
        ptrs[k] = &rp[k];
        k++;
    }
    Memtrain__JobSpec *resolved = NULL;
    jobspec_from_spec(sp, &resolved, &err);
    Memtrain__PlanResponse pr = MEMTRAIN__PLAN_RESPONSE__INIT;
    pr.planned = &plan;
    pr.limit = sp->memory_limit;
    pr.budget = c->d->cfg.memory_budget;
    pr.fits = jobs_admit(&c->d->cfg, sp->memory_limit, plan.peak_total, NULL) == 0;
    pr.n_rules = k;
    pr.rules = ptrs;
    pr.n_rules_refused = rf.n;
    pr.rules_refused = rf.ptrs;
    pr.spec = resolved;
    if (rc || !rp || !ptrs || !stats)
        rc = mt_err_set(&err, MT_E_NOMEM, "out of memory for the plan");
    else
        rc = plan_layers_add(&pr, sp, parsed, &err);
    if (rc)
        conn_send_error(c, id, status_of(rc), "%s", err.msg);
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_PLAN;
    r.plan = &pr;
    if (!rc)
        conn_send(c, id, &r, NULL, NULL);
    plan_layers_free(&pr);
    jobspec_free(resolved);
    free(rp);
    free(ptrs);
    free(stats);
    refusals_free(&rf);
}

static void handle_plan(struct conn *c, uint64_t id, const Memtrain__PlanRequest *q)
{
    struct mt_err err = {0};
    const char *yaml = q->spec_case == MEMTRAIN__PLAN_REQUEST__SPEC_YAML ? q->yaml : NULL;
    Memtrain__JobSpec *js = q->spec_case == MEMTRAIN__PLAN_REQUEST__SPEC_JOB ? q->job : NULL;
    struct plan_wait *pw = malloc(sizeof *pw);
    int rc = pw ? request_spec(js, yaml, q->yaml_name, q->rule, &pw->parsed, &err)
                : mt_err_set(&err, MT_E_NOMEM, "out of memory");
    if (!rc) {
        pw->s = pw->parsed;
        if (pw->s.memory_limit == 0)
            pw->s.memory_limit = config_job_default_limit(&c->d->cfg);
        rc = spec_finish(&pw->s, &err);
    }
    if (rc) {
        conn_send_error(c, id, status_of(rc), "%s", err.msg);
        free(pw);
        return;
    }
    probe_start(c, id, &pw->s.data, plan_probed, pw, free);
}

static void handle_ping(struct conn *c, uint64_t id)
{
    Memtrain__PingResponse p = MEMTRAIN__PING_RESPONSE__INIT;
    p.version = MT_VERSION;
    p.uptime_seconds = (uint64_t)((mt_now_ms() - c->d->started_ms) / 1000);
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_PING;
    r.ping = &p;
    conn_send(c, id, &r, NULL, NULL);
}

static void handle_logs(struct conn *c, uint64_t id, const Memtrain__LogsRequest *q)
{
    if (watch_refused(c, id))
        return;
    struct store_job row;
    if (get_row(c, id, q->job_id, &row))
        return;
    store_job_clear(&row);
    struct watch *w = watch_add(c->d, c, id, q->job_id, WATCH_LOGS, 0);
    if (!w) {
        conn_send_error(c, id, MEMTRAIN__STATUS__ERROR, "out of memory");
        return;
    }
    /* Not following, or nothing more will come: send all and end. */
    watch_send_logs(c->d, w, !q->follow || !jobs_find(c->d, q->job_id));
}

void dispatch_request(struct conn *c, const Memtrain__Request *req)
{
    uint64_t id = req->id;
    if (req->version != MT_PROTOCOL_VERSION) {
        conn_send_error(c, id, MEMTRAIN__STATUS__UNSUPPORTED_VERSION,
                        "protocol version %u is not supported (this memtraind speaks %d)",
                        req->version, MT_PROTOCOL_VERSION);
        return;
    }
    char field[160];
    if (msgtext_check(&req->base, field, sizeof field)) {
        conn_send_error(c, id, MEMTRAIN__STATUS__INVALID,
                        "the request's %s is not valid UTF-8", field);
        return;
    }
    switch (req->body_case) {
    case MEMTRAIN__REQUEST__BODY_SUBMIT: handle_submit(c, id, req->submit); break;
    case MEMTRAIN__REQUEST__BODY_LIST: handle_list(c, id, req->list); break;
    case MEMTRAIN__REQUEST__BODY_SHOW: handle_show(c, id, req->show); break;
    case MEMTRAIN__REQUEST__BODY_CANCEL: handle_cancel(c, id, req->cancel); break;
    case MEMTRAIN__REQUEST__BODY_WATCH: handle_watch(c, id, req->watch); break;
    case MEMTRAIN__REQUEST__BODY_METRICS: handle_metrics(c, id, req->metrics); break;
    case MEMTRAIN__REQUEST__BODY_CHECKPOINTS: handle_checkpoints(c, id, req->checkpoints); break;
    case MEMTRAIN__REQUEST__BODY_PLAN: handle_plan(c, id, req->plan); break;
    case MEMTRAIN__REQUEST__BODY_PING: handle_ping(c, id); break;
    case MEMTRAIN__REQUEST__BODY_LOGS: handle_logs(c, id, req->logs); break;
    case MEMTRAIN__REQUEST__BODY_RM: tidy_handle_rm(c, id, req->rm); break;
    case MEMTRAIN__REQUEST__BODY_PRUNE: tidy_handle_prune(c, id, req->prune); break;
    case MEMTRAIN__REQUEST__BODY_CKPT_RM: tidy_handle_ckpt_rm(c, id, req->ckpt_rm); break;
    case MEMTRAIN__REQUEST__BODY_DF: tidy_handle_df(c, id, req->df); break;
    default:
        conn_send_error(c, id, MEMTRAIN__STATUS__INVALID,
                        "unknown request: no verb this memtraind knows (a newer mtctl?)");
    }
}

/* A client's connection is gone: so are the streams it followed, and its
 * dataset probes no longer answer it. */
static void dispatch_conn_closed(struct conn *c)
{
    watch_drop_conn(c->d, c);
    probe_drop_conn(c->d, c);
    tidy_drop_conn(c->d, c);
}

const struct conn_handler dispatch_conn_handler = {dispatch_request, dispatch_conn_closed};
