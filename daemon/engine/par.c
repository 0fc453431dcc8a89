/* par.c: the engine's worker threads (par.h). One job at a time: the
 * caller publishes fn and ctx and bumps a generation counter; each worker
 * spins a little on the counter, then sleeps on a condition variable, runs
 * its share and counts itself done; the caller runs share 0 and spins (then
 * yields) until the others are done. */
#include "par.h"

#include "blas.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#define PAR_MAX 64
#define SPIN 20000      /* polls before a worker sleeps: some tens of microseconds */

static struct {
    int nw;                         /* workers, the caller included */
    pthread_t tid[PAR_MAX];
    void (*fn)(void *, int, int);
    void *ctx;
    atomic_uint gen;                /* bumped once per job (and to stop) */
    atomic_int pending;             /* workers still running the job */
    atomic_int quit;
    unsigned start_gen;             /* gen when the workers were created */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool = {.nw = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static unsigned wait_job(unsigned seen)
{
    unsigned g;
    for (int i = 0; i < SPIN; i++) {
        if ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) != seen)
            return g;
        relax();
    }
    pthread_mutex_lock(&pool.mu);
    while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen)
        pthread_cond_wait(&pool.cv, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    return g;
}

/* A worker starts from the generation current when it was created (read
 * by the creating thread: a job published before the new thread first runs
 * is still its job). */
static void *worker_main(void *arg)
{
    int w = (int)(size_t)arg;
    unsigned seen = pool.start_gen;
    for (;;) {
        seen = wait_job(seen);
        if (atomic_load(&pool.quit))
            return NULL;
        pool.fn(pool.ctx, w, pool.nw);
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
    }
}

static void publish(void)
{
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
}

static void stop_workers(void)
{
    if (pool.nw <= 1)
        return;
    atomic_store(&pool.quit, 1);
    publish();
    for (int w = 1; w < pool.nw; w++)
        pthread_join(pool.tid[w], NULL);
    atomic_store(&pool.quit, 0);
    pool.nw = 1;
}

int par_set_threads(int n)
{
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > PAR_MAX)
        n = PAR_MAX;
    if (n == pool.nw)
        return 0;
    stop_workers();
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, (size_t)256 << 10); /* the kernels use little stack */
    int started = 1, rc = 0;
    pool.start_gen = atomic_load(&pool.gen);
    for (int w = 1; w < n; w++) {
        pool.nw = w + 1; /* a worker reads nw only while a job runs */
        if (pthread_create(&pool.tid[w], &at, worker_main, (void *)(size_t)w)) {
            rc = -1;
            break;
        }
        started = w + 1;
    }
    pthread_attr_destroy(&at);
    pool.nw = started;
    return rc;
}

int par_threads(void)
{
    return pool.nw;
}

int par_job_threads(void)
{
    int b = blas_threads();
    return pool.nw > b ? pool.nw : b;
}

void par_run(void (*fn)(void *ctx, int w, int nw), void *ctx)
{
    if (pool.nw <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    atomic_store_explicit(&pool.pending, pool.nw - 1, memory_order_relaxed);
    publish();
    fn(ctx, 0, pool.nw);
    for (int i = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; i++)
        if (i < SPIN)
            relax();
        else
            sched_yield();
}
