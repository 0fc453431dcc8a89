/* jobfig.h: the figures of stored jobs, fetched for the commands that set
 * jobs side by side (report, compare, plot; jobfig.c).
 *
 * A job's figures are its record and stored spec (Show) and its epoch
 * history (Metrics), turned into a report row (daemon/report/reporttable.h):
 * test accuracy per epoch, the arena's peaks per category, seconds per
 * epoch. The commands name jobs by id or by group: `gN` or `group:N` is
 * every job the caller can see whose group_id is N (the jobs one `submit
 * --rules` made). */
#ifndef MTCTL_JOBFIG_H
#define MTCTL_JOBFIG_H

#include <stddef.h>
#include <stdint.h>

#include "mtctl.h"
#include "reporttable.h"

/* One job: the daemon's answers and the report row drawn from them. A job
 * that could not be fetched has show == NULL and is left out. */
struct job_fig {
    uint64_t id;
    Memtrain__Response *show;       /* owned */
    Memtrain__Response *metrics;    /* owned */
    const Memtrain__MemoryStats *mem;   /* the last epoch's peaks, or the job's measured */
    int cifar;                      /* the paper's CIFAR-10 error applies */
    struct report_row row;          /* owns its epochs */
};

/* The job record of a fetched job. */
static inline const Memtrain__Job *jobfig_job(const struct job_fig *f)
{
    return f->show->show->job;
}

/* Show and Metrics for f->id, then f->row. */
int jobfig_fetch(struct mtctl *c, struct job_fig *f, struct mt_err *err);

/* The jobs argv[0..argc) names (IDs, gN, group:N; a job named twice is
 * fetched once), fetched in the order named, a group's jobs by id. A job
 * that cannot be fetched is reported on stderr and left out. *out (n_out
 * entries; jobfig_free_all) holds them; *got counts the fetched ones.
 * Returns 0, the status of the first error (4 when not found), or
 * MTCTL_EXIT_USAGE without arguments or for one that is neither an ID nor
 * a group (then *out is NULL). */
int jobfig_fetch_args(struct mtctl *c, int argc, char **argv, struct job_fig **out,
                      size_t *n_out, size_t *got);

/* jobrank.c: group N's members among jobs[0..n): group_id N, and job N
 * itself when it carries N or has members (whether the daemon gives the
 * first job its own id or 0).
 * Writes their ids, ascending, to ids (room for n) and returns how many. */
size_t jobfig_group_members(Memtrain__Job *const *jobs, size_t n, uint64_t group,
                            uint64_t *ids);

void jobfig_free(struct job_fig *f);
void jobfig_free_all(struct job_fig *f, size_t n);

/* ---- jobrank.c: figures of a fetched job (NAN when it has no epoch yet) */
double jobfig_best_accuracy(const struct job_fig *f);   /* 0..1 */
double jobfig_last_accuracy(const struct job_fig *f);
/* The arena's peak total (bytes): the last epoch's, or the record's
 * measured peaks; 0 when none is known. */
uint64_t jobfig_peak(const struct job_fig *f);

/* The Pareto front of accuracy (higher is better) against peak memory
 * (lower is better): front[i] = 1 when no other job with figures reaches
 * at least f[i]'s best accuracy with at most its peak, better in one.
 * Jobs without an epoch or a peak are never on it. */
void jobfig_pareto(const struct job_fig *f, size_t n, unsigned char *front);

/* Indices of the fetched jobs by ascending peak total (unknown last, then
 * by id) into order (room for n); returns how many. */
size_t jobfig_order_by_peak(const struct job_fig *f, size_t n, size_t *order);

#endif
