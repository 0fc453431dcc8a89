/* watch.h: the streams clients follow: job events (watch) and log lines
 * (logs --follow).
 *
 * A watch belongs to its connection and ends when the job does (an `end`
 * Response), when the client goes away (watch_drop_conn, nothing is sent),
 * or when the daemon stops. Watching every job (job_id 0) shows the jobs the
 * caller may see: their own, or everyone's for root. */
#ifndef MT_WATCH_H
#define MT_WATCH_H

#include <stdint.h>
#include <sys/types.h>

#include "daemon.h"
#include "memtrain.pb-c.h"

enum watch_kind { WATCH_EVENTS, WATCH_LOGS };

struct watch {
    struct watch *next;
    struct conn *c;
    uint64_t req_id;
    uint64_t job_id;              /* 0 = every visible job (events only) */
    enum watch_kind kind;
    int steps;                    /* also StepProgress */
    int64_t log_after;            /* logs: id of the last line sent */
};

/* NULL when out of memory or when c already holds CONN_MAX_WATCHES. */
struct watch *watch_add(struct daemon *d, struct conn *c, uint64_t req_id, uint64_t job_id,
                        enum watch_kind kind, int steps);
/* 1 when c may add another watch (fewer than CONN_MAX_WATCHES). */
int watch_room(const struct conn *c);
void watch_drop_conn(struct daemon *d, struct conn *c);
/* Send ev to the watchers of job (owner `owner`); StepProgress only to
 * those who asked for steps. Step and memory events are skipped for a
 * watcher with more than CONN_COALESCE_QUEUED bytes unread. */
void watch_event(struct daemon *d, uint64_t job_id, uid_t owner, Memtrain__WatchEvent *ev);
/* The job reached a final state: its event watchers get `final` then end;
 * its log followers get the remaining lines then end. */
void watch_job_ended(struct daemon *d, uint64_t job_id, uid_t owner, Memtrain__Job *final);
/* New log lines for job: followers read them from the store. */
void watch_logs_poke(struct daemon *d, uint64_t job_id);
/* Send the log lines after w->log_after (and advance it); end = 1 ends it. */
void watch_send_logs(struct daemon *d, struct watch *w, int end);
/* The daemon is stopping: end every stream. */
void watch_end_all(struct daemon *d);

#endif
