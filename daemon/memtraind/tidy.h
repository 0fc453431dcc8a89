/* tidy.h: removing jobs and checkpoints on the daemon's loop (mtctl rm,
 * prune, ckpt rm, and the retention policy), a little at a time.
 *
 * A task is a list of jobs, each to remove whole or to lose some
 * checkpoints. The daemon works through the tasks in order between its other
 * work: each turn of the loop spends at most TIDY_SLICE_MS on short store
 * steps (storetidy.h: at most TIDY_ROWS rows of one table, or one
 * checkpoint; the steps of one turn share a transaction), then the freed
 * pages go back to the file system
 * (incremental vacuum, TIDY_PAGES pages a step) and the WAL is emptied so
 * the file shrinks. A task for a client ends with a TidyResponse that says
 * what went and how far the file shrank. A job removed with --force is
 * cancelled first; its removal waits until its worker has stopped.
 *
 * A stop of the daemon drops the tasks not finished: a job may then be
 * partly removed (its row and some of its rows are left); `mtctl rm` it
 * again. */
#ifndef MT_TIDY_H
#define MT_TIDY_H

#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "memtrain.pb-c.h"

#define TIDY_SLICE_MS 20
#define TIDY_ROWS 1000
#define TIDY_PAGES 1024

struct conn;
struct tidy_task;

/* The ended states, as a state mask: what prune and retention touch. */
#define TIDY_ENDED_STATES                                                             \
    (1u << MEMTRAIN__JOB_STATE__COMPLETED | 1u << MEMTRAIN__JOB_STATE__FAILED |       \
     1u << MEMTRAIN__JOB_STATE__CANCELLED | 1u << MEMTRAIN__JOB_STATE__OUT_OF_MEMORY)

/* Which ended jobs a prune or the retention policy takes. */
struct tidy_filter {
    int64_t owner;               /* a uid, or -1 for every user's */
    uint32_t state_mask;         /* 1 << state for each state; only ended states count */
    int64_t finished_before_ms;  /* ended before this Unix time; 0 = any */
    int keep_checkpoints;        /* >= 0: keep the job and its newest N checkpoints;
                                  * -1: remove the job */
};

/* Start and stop the runner (main.c); tidy_close drops unfinished tasks and
 * closes the handles, so the loop can end. */
void tidy_init(struct daemon *d);
void tidy_close(struct daemon *d);

/* A new, empty task; its reply goes to (c, req_id) when c is not NULL.
 * `who` names it in the log ("rm by uid 1000", "retention"). NULL when out
 * of memory. */
struct tidy_task *tidy_task_new(struct conn *c, uint64_t req_id, const char *who);
void tidy_task_free(struct tidy_task *t);

/* Add job `row` to t: removed whole, or (epochs != NULL) only the listed
 * checkpoints. The job's stored bytes are measured now. */
int tidy_task_add(struct daemon *d, struct tidy_task *t, const struct store_job *row,
                  const uint32_t *epochs, size_t n_epochs, struct mt_err *err);
/* Add checkpoints of job `row` to t: the epochs given (MT_E_NOTFOUND
 * naming one it does not have), or with n_epochs 0 all of them; nothing
 * when it has none. */
int tidy_task_add_ckpts(struct daemon *d, struct tidy_task *t, const struct store_job *row,
                        const uint32_t *epochs, size_t n_epochs, struct mt_err *err);
/* Add the ended jobs that f selects and t does not hold yet. */
int tidy_task_select(struct daemon *d, struct tidy_task *t, const struct tidy_filter *f,
                     struct mt_err *err);
/* Jobs in the task. */
size_t tidy_task_jobs(const struct tidy_task *t);

/* Reply with what t would remove (nothing is removed) and free it. */
void tidy_task_reply_dry(struct daemon *d, struct tidy_task *t);
/* Queue t (the runner owns it from now on). A task with no jobs still
 * vacuums (free pages an earlier removal left) before it is answered. */
void tidy_task_run(struct daemon *d, struct tidy_task *t);

/* c is closing: its tasks go on without replying. */
void tidy_drop_conn(struct daemon *d, struct conn *c);

#endif
