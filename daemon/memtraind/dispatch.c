/* dispatch.c: the handlers behind each verb (dispatch.h). */
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "frame.h"
#include "jobs.h"
#include "jobspec.h"
#include "log.h"
#include "memtrain/clock.h"
#include "rules/rules.h"
#include "memtrain/version.h"
#include "memtrain/wire.h"
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
static int request_spec(Memtrain__JobSpec *job, const char *yaml, const char *yaml_name,
                        struct mt_spec *s, struct mt_err *err)
{
    spec_init(s);
    if (yaml)
        return spec_parse_string(yaml, strlen(yaml), yaml_name && yaml_name[0] ? yaml_name : "spec",
                                 s, err);
    if (job)
        return jobspec_to_spec(job, s, err);
    return mt_err_set(err, MT_E_INVAL, "the request carries no spec (neither YAML nor JobSpec)");
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

static void handle_submit(struct conn *c, uint64_t id, const Memtrain__SubmitRequest *q)
{
    struct mt_err err = {0};
    struct mt_spec s;
    Memtrain__Status st = MEMTRAIN__STATUS__INVALID;
    struct job *j = NULL;
    const char *yaml = q->spec_case == MEMTRAIN__SUBMIT_REQUEST__SPEC_YAML ? q->yaml : NULL;
    Memtrain__JobSpec *js = q->spec_case == MEMTRAIN__SUBMIT_REQUEST__SPEC_JOB ? q->job : NULL;
    if (!request_spec(js, yaml, q->yaml_name, &s, &err)) {
        if (q->name && q->name[0])
            snprintf(s.name, sizeof s.name, "%s", q->name);
        if (q->memory_limit)
            s.memory_limit = q->memory_limit;
        jobs_submit(c->d, c->uid, &s, q->priority, &j, &st, &err);
    }
    if (!j) {
        conn_send_error(c, id, st, "%s", err.msg);
        return;
    }
    reply_job(c, id, MEMTRAIN__RESPONSE__BODY_SUBMIT, &j->row, j, NULL);
    jobs_schedule(c->d);
}

/* Rows copied out of the walk (each row is valid only during its call). */
struct list_ctx {
    struct store_job *rows;
    size_t n, cap;
};

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
    int rc = dup_blob(&copy->planned, row->planned, row->planned_len);
    if (!rc)
        rc = dup_blob(&copy->measured, row->measured, row->measured_len);
    return rc || !copy->name || !copy->reason || !copy->rule ? MT_E_NOMEM : 0;
}

static void handle_list(struct conn *c, uint64_t id, const Memtrain__ListRequest *q)
{
    struct mt_err err = {0};
    uint32_t mask = 0;
    for (size_t i = 0; i < q->n_states; i++)
        if (q->states[i] > 0 && q->states[i] < 32)
            mask |= 1u << q->states[i];
    struct list_ctx l = {0};
    int64_t owner = q->all_users ? -1 : (int64_t)c->uid;
    int rc = store_jobs_each(c->d->store, owner, mask, q->limit, collect_job, &l, &err);
    struct jobmsg *m = calloc(l.n ? l.n : 1, sizeof *m);
    Memtrain__Job **ptrs = calloc(l.n ? l.n : 1, sizeof *ptrs);
    if (rc || !m || !ptrs) {
        conn_send_error(c, id, status_of(rc), "%s", err.msg[0] ? err.msg : "out of memory");
    } else {
        for (size_t i = 0; i < l.n; i++) {
            jobmsg_init(&m[i], c->d, &l.rows[i], jobs_find(c->d, l.rows[i].id));
            ptrs[i] = &m[i].job;
        }
        Memtrain__ListResponse lr = MEMTRAIN__LIST_RESPONSE__INIT;
        lr.n_jobs = l.n;
        lr.jobs = ptrs;
        Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
        r.body_case = MEMTRAIN__RESPONSE__BODY_LIST;
        r.list = &lr;
        conn_send(c, id, &r, NULL, NULL);
        for (size_t i = 0; i < l.n; i++)
            jobmsg_free(&m[i]);
    }
    for (size_t i = 0; i < l.n; i++)
        store_job_clear(&l.rows[i]);
    free(l.rows);
    free(m);
    free(ptrs);
}

/* The stored row of a job, or a NOT_FOUND reply. */
static int get_row(struct conn *c, uint64_t id, uint64_t job_id, struct store_job *row)
{
    struct mt_err err = {0};
    memset(row, 0, sizeof *row);
    int rc = store_job_get(c->d->store, job_id, row, &err);
    if (rc) {
        conn_send_error(c, id, status_of(rc), "%s", err.msg);
        store_job_clear(row);
    }
    return rc;
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
    if (c->uid != 0 && c->uid != row.owner_uid) {
        conn_send_error(c, id, MEMTRAIN__STATUS__PERMISSION_DENIED,
                        "job %llu belongs to uid %u; only its owner or root may cancel it",
                        (unsigned long long)row.id, (unsigned)row.owner_uid);
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

static void handle_plan(struct conn *c, uint64_t id, const Memtrain__PlanRequest *q)
{
    struct mt_err err = {0};
    struct mt_spec parsed, s;
    const char *yaml = q->spec_case == MEMTRAIN__PLAN_REQUEST__SPEC_YAML ? q->yaml : NULL;
    Memtrain__JobSpec *js = q->spec_case == MEMTRAIN__PLAN_REQUEST__SPEC_JOB ? q->job : NULL;
    Memtrain__MemoryStats plan;
    int rc = request_spec(js, yaml, q->yaml_name, &parsed, &err);
    if (!rc) {
        s = parsed;
        if (s.memory_limit == 0)
            s.memory_limit = c->d->cfg.default_job_memory_limit;
        rc = spec_finish(&s, &err);
    }
    if (!rc)
        rc = jobs_plan(&s, &plan, &err);
    if (rc) {
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
    size_t k = 0;
    for (size_t i = 0; rp && ptrs && stats && i < n; i++) {
        struct mt_spec o = parsed;
        struct mt_err e2 = {0};
        spec_set_rule(&o, rules[i]->name);
        if (spec_finish(&o, &e2) || jobs_plan(&o, &stats[k], &e2))
            continue;
        memtrain__rule_plan__init(&rp[k]);
        rp[k].rule = (char *)rules[i]->name;
        rp[k].planned = &stats[k];
        ptrs[k] = &rp[k];
        k++;
    }
    Memtrain__JobSpec *resolved = NULL;
    jobspec_from_spec(&s, &resolved, &err);
    Memtrain__PlanResponse pr = MEMTRAIN__PLAN_RESPONSE__INIT;
    pr.planned = &plan;
    pr.limit = s.memory_limit;
    pr.budget = c->d->cfg.memory_budget;
    pr.fits = jobs_admit(&c->d->cfg, s.memory_limit, plan.peak_total, NULL) == 0;
    pr.n_rules = k;
    pr.rules = ptrs;
    pr.spec = resolved;
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_PLAN;
    r.plan = &pr;
    conn_send(c, id, &r, NULL, NULL);
    jobspec_free(resolved);
    free(rp);
    free(ptrs);
    free(stats);
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
    default:
        conn_send_error(c, id, MEMTRAIN__STATUS__INVALID,
                        "unknown request: no verb this memtraind knows (a newer mtctl?)");
    }
}
