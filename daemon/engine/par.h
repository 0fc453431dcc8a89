/* par.h: the engine's own worker threads for the kernels of layer-list
 * models (layers/).
 *
 * OpenBLAS splits one product over its threads; a conv layer's step is a
 * product plus as much again of im2col, col2im and layout copies, and its
 * products are thin (16 output channels), which OpenBLAS runs best on one
 * thread. So a layer-list model runs OpenBLAS on one thread and splits each
 * kernel itself over `par_threads()` workers: contiguous ranges of images,
 * channels or columns, each worker calling single-threaded sgemm.
 *
 * Every split is a fixed function of the work's size and the thread count,
 * so a run is the same run after run; with one thread every kernel runs
 * exactly as it did before the pool (same calls, same order, same bits).
 * No OpenMP: plain pthreads, spinning briefly then sleeping between jobs. */
#ifndef MT_PAR_H
#define MT_PAR_H

#include <stddef.h>

/* Workers for the kernels, the caller included (n >= 1; 0 = all cores).
 * Starts or stops threads; 0 or -1 when threads could not start (the pool
 * then runs on fewer). Not to be called while par_run runs. */
int par_set_threads(int n);
int par_threads(void);

/* The threads a job trains on: the engine's workers for a layer-list model
 * (OpenBLAS then runs on one thread each), OpenBLAS's for an MLP. */
int par_job_threads(void);

/* fn(ctx, w, nw) on each worker w of nw = par_threads(), the caller
 * being worker 0; returns when all have returned. Not reentrant: a kernel
 * running under par_run must not call par_run. */
void par_run(void (*fn)(void *ctx, int w, int nw), void *ctx);

/* Worker w's share [lo, hi) of n items cut into nw contiguous ranges, the
 * first n % nw one longer. */
static inline void par_range(size_t n, int w, int nw, size_t *lo, size_t *hi)
{
    size_t q = n / (size_t)nw, r = n % (size_t)nw, uw = (size_t)w;
    *lo = uw * q + (uw < r ? uw : r);
    *hi = *lo + q + (uw < r ? 1 : 0);
}

#endif
