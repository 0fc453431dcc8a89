/* watch.c: following jobs and their logs (watch.h). */
#include "watch.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"

struct watch *watch_add(struct daemon *d, struct conn *c, uint64_t req_id, uint64_t job_id,
                        enum watch_kind kind, int steps)
{
    if (c->n_watches >= CONN_MAX_WATCHES)
        return NULL;
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    c->n_watches++;
    w->c = c;
    w->req_id = req_id;
    w->job_id = job_id;
    w->kind = kind;
    w->steps = steps;
    w->next = d->watches;
    d->watches = w;
    return w;
}

static void unlink_watch(struct daemon *d, struct watch *w)
{
    for (struct watch **p = &d->watches; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            w->c->n_watches--;
            free(w);
            return;
        }
}

int watch_room(const struct conn *c)
{
    return c->n_watches < CONN_MAX_WATCHES;
}

void watch_drop_conn(struct daemon *d, struct conn *c)
{
    struct watch **p = &d->watches;
    while (*p) {
        if ((*p)->c == c) {
            struct watch *w = *p;
            *p = w->next;
            c->n_watches--;
            free(w);
        } else {
            p = &(*p)->next;
        }
    }
}

static int sees(const struct watch *w, uint64_t job_id, uid_t owner)
{
    if (w->job_id)
        return w->job_id == job_id;
    return w->c->uid == 0 || w->c->uid == owner;
}

void watch_event(struct daemon *d, uint64_t job_id, uid_t owner, Memtrain__WatchEvent *ev)
{
    ev->job_id = job_id;
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_WATCH;
    r.watch = ev;
    int is_step = ev->event_case == MEMTRAIN__WATCH_EVENT__EVENT_STEP;
    /* Step and memory events only show the latest state: skip them for a
     * watcher that is behind, which then gets the next one when it reads. */
    int lossy = is_step || ev->event_case == MEMTRAIN__WATCH_EVENT__EVENT_MEMORY;
    for (struct watch *w = d->watches, *next; w; w = next) {
        next = w->next; /* conn_send may drop the conn and its watches */
        if (w->kind == WATCH_EVENTS && sees(w, job_id, owner) && (!is_step || w->steps) &&
            !(lossy && w->c->queued > CONN_COALESCE_QUEUED))
            conn_send(w->c, w->req_id, &r, NULL, NULL);
    }
}

void watch_send_logs(struct daemon *d, struct watch *w, int end);

struct log_batch {
    Memtrain__LogLine *lines;
    Memtrain__LogLine **ptrs;
    char **texts;
    size_t n, cap;
    int64_t last_id;
};

static int collect_line(void *ud, int64_t id, int64_t time_ms, const char *text)
{
    struct log_batch *b = ud;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        Memtrain__LogLine *l = realloc(b->lines, cap * sizeof *l);
        if (!l)
            return MT_E_NOMEM;
        b->lines = l;
        char **t = realloc(b->texts, cap * sizeof *t);
        if (!t)
            return MT_E_NOMEM;
        b->texts = t;
        b->cap = cap;
    }
    if (!(b->texts[b->n] = strdup(text)))
        return MT_E_NOMEM;
    memtrain__log_line__init(&b->lines[b->n]);
    b->lines[b->n].time = time_ms;
    b->lines[b->n].text = b->texts[b->n];
    b->n++;
    b->last_id = id;
    return b->n >= 4096; /* send in pieces of at most 4096 lines */
}

void watch_send_logs(struct daemon *d, struct watch *w, int end)
{
    uint64_t job_id = w->job_id;
    struct conn *c = w->c;
    uint64_t req = w->req_id;
    for (;;) {
        struct log_batch b = {0};
        struct mt_err err = {0};
        int rc = store_logs_each(d->store, job_id, w->log_after, collect_line, &b, &err);
        if (rc < 0)
            log_err("job %llu: reading logs: %s", (unsigned long long)job_id, err.msg);
        int more = rc == 1;
        if (b.n > 0)
            w->log_after = b.last_id;
        if (b.n > 0 || (end && !more)) {
            Memtrain__LogsResponse lr = MEMTRAIN__LOGS_RESPONSE__INIT;
            lr.job_id = job_id;
            b.ptrs = malloc((b.n ? b.n : 1) * sizeof *b.ptrs);
            for (size_t i = 0; b.ptrs && i < b.n; i++)
                b.ptrs[i] = &b.lines[i];
            lr.n_lines = b.ptrs ? b.n : 0;
            lr.lines = b.ptrs;
            Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
            r.body_case = MEMTRAIN__RESPONSE__BODY_LOGS;
            r.logs = &lr;
            r.end = end && !more;
            conn_send(c, req, &r, NULL, NULL);
            free(b.ptrs);
        }
        for (size_t i = 0; i < b.n; i++)
            free(b.texts[i]);
        free(b.texts);
        free(b.lines);
        if (!more || c->closing)
            break;
    }
    if (end)
        unlink_watch(d, w);
}

void watch_logs_poke(struct daemon *d, uint64_t job_id)
{
    for (struct watch *w = d->watches, *next; w; w = next) {
        next = w->next;
        if (w->kind == WATCH_LOGS && w->job_id == job_id)
            watch_send_logs(d, w, 0);
    }
}

void watch_job_ended(struct daemon *d, uint64_t job_id, uid_t owner, Memtrain__Job *final)
{
    Memtrain__WatchEvent ev = MEMTRAIN__WATCH_EVENT__INIT;
    ev.job_id = job_id;
    ev.event_case = MEMTRAIN__WATCH_EVENT__EVENT_JOB;
    ev.job = final;
    Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
    r.body_case = MEMTRAIN__RESPONSE__BODY_WATCH;
    r.watch = &ev;
    for (struct watch *w = d->watches, *next; w; w = next) {
        next = w->next;
        if (w->kind == WATCH_LOGS && w->job_id == job_id) {
            watch_send_logs(d, w, 1);
        } else if (w->kind == WATCH_EVENTS && sees(w, job_id, owner)) {
            r.end = w->job_id == job_id;
            conn_send(w->c, w->req_id, &r, NULL, NULL);
            if (r.end)
                unlink_watch(d, w);
        }
    }
}

void watch_end_all(struct daemon *d)
{
    while (d->watches) {
        struct watch *w = d->watches;
        Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
        r.status = MEMTRAIN__STATUS__UNAVAILABLE;
        r.message = "memtraind is stopping";
        r.end = 1;
        d->watches = w->next;
        w->c->n_watches--;
        conn_send(w->c, w->req_id, &r, NULL, NULL);
        free(w);
    }
}
