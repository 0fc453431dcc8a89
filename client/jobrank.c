/* jobrank.c: what the comparisons of stored jobs rank by (jobfig.h): a
 * job's best and last test accuracy and peak memory, the Pareto front of
 * the two, the order by memory, and which listed jobs form a group. No
 * daemon here: tests/daemon/test-jobrank.c calls these on made-up jobs. */
#include <math.h>
#include <stdlib.h>

#include "jobfig.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t jobfig_group_members(Memtrain__Job *const *jobs, size_t n, uint64_t group,
                            uint64_t *ids)
{
    size_t k = 0;
    int leader = -1;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->group_id == group && jobs[i]->id != group)
            ids[k++] = jobs[i]->id;
        else if (jobs[i]->id == group)
            leader = (int)i;
    }
    if (leader >= 0 && (k || jobs[leader]->group_id == group))
        ids[k++] = group;
    qsort(ids, k, sizeof *ids, cmp_u64);
    return k;
}

/* ---------------------------------------------------------------- figures */

double jobfig_best_accuracy(const struct job_fig *f)
{
    int b = report_best_epoch(&f->row);
    return b >= 0 ? f->row.ep[b].test_accuracy : NAN;
}

double jobfig_last_accuracy(const struct job_fig *f)
{
    return f->row.n_epochs ? f->row.ep[f->row.n_epochs - 1].test_accuracy : NAN;
}

uint64_t jobfig_peak(const struct job_fig *f)
{
    return f->row.mem.known ? f->row.mem.peak_total : 0;
}

/* a's figures are at least b's on both counts and better on one */
static int dominates(const struct job_fig *a, const struct job_fig *b)
{
    double aa = jobfig_best_accuracy(a), ba = jobfig_best_accuracy(b);
    uint64_t am = jobfig_peak(a), bm = jobfig_peak(b);
    return aa >= ba && am <= bm && (aa > ba || am < bm);
}

static int has_figures(const struct job_fig *f)
{
    return f->show && !isnan(jobfig_best_accuracy(f)) && jobfig_peak(f) > 0;
}

void jobfig_pareto(const struct job_fig *f, size_t n, unsigned char *front)
{
    for (size_t i = 0; i < n; i++) {
        front[i] = (unsigned char)has_figures(&f[i]);
        for (size_t k = 0; k < n && front[i]; k++)
            if (k != i && has_figures(&f[k]) && dominates(&f[k], &f[i]))
                front[i] = 0;
    }
}

static const struct job_fig *order_base;

static int cmp_peak(const void *a, const void *b)
{
    const struct job_fig *x = &order_base[*(const size_t *)a], *y = &order_base[*(const size_t *)b];
    uint64_t px = jobfig_peak(x), py = jobfig_peak(y);
    if ((px == 0) != (py == 0))
        return px == 0 ? 1 : -1;
    if (px != py)
        return px < py ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

size_t jobfig_order_by_peak(const struct job_fig *f, size_t n, size_t *order)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].show)
            order[k++] = i;
    order_base = f;
    qsort(order, k, sizeof *order, cmp_peak);
    order_base = NULL;
    return k;
}
