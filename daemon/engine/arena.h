/* arena.h: the per-job accounting allocator.
 *
 * Every buffer a job owns comes from its arena and carries one of six
 * categories. The arena counts the bytes in use per category and in total,
 * keeps their peaks, keeps the peak total within each phase of a training
 * step (forward / gradient calculation / parameter update, spec section 0.3),
 * and refuses an allocation that would take the total past the job's limit
 * with a message naming the category and the figures.
 *
 * Two kinds of allocation:
 *  - arena_alloc/arena_release: long-lived blocks (parameters, optimizer
 *    state, the dataset). Zeroed, 64-byte aligned.
 *  - arena_push/arena_pop: per-step transients (activations kept for the
 *    update, workspace). Carved from reserved stack chunks that stay mapped
 *    between steps, so a training step never calls malloc; only the carved
 *    bytes count as in use.
 * Counts are the bytes asked for, so a plan computed from shapes equals
 * the measured peak exactly. Not thread-safe: one job, one thread. */
#ifndef MT_ARENA_H
#define MT_ARENA_H

#include <stddef.h>

#include "memtrain/category.h"  /* enum mt_mem_cat, mt_mem_cat_name */
#include "memtrain/err.h"

enum mt_phase {
    MT_PHASE_IDLE,     /* outside a training step (setup, evaluation) */
    MT_PHASE_FORWARD,
    MT_PHASE_GRADIENT,
    MT_PHASE_UPDATE,
    MT_PHASE_N
};

/* A job's planned memory: bytes per category and per phase, computed from
 * shapes before anything is allocated. Same meaning as mt_mem_stats' peaks
 * (and the same shape as its interval peaks). */
struct mt_mem_plan {
    size_t cat[MT_MEM_NCAT];
    size_t total;
    size_t phase[MT_PHASE_N];
};

struct mt_mem_stats {
    size_t cur[MT_MEM_NCAT];
    size_t peak[MT_MEM_NCAT];
    size_t total;                     /* bytes in use now, all categories */
    size_t total_peak;
    size_t phase_peak[MT_PHASE_N];    /* peak total while in each phase */
    size_t reserved;                  /* bytes held from the system (blocks + stack chunks) */
    size_t limit;                     /* 0 = none */
    /* The peaks since the last arena_interval_reset (since arena_new before
     * any): per category, total and phase. A sample taken between steps sees
     * cur[] without the step's transients; these say what the steps since
     * the previous sample held at most. */
    struct mt_mem_plan interval;
};

struct mt_arena;

/* New arena with a limit in bytes (0 = none). NULL when malloc fails. */
struct mt_arena *arena_new(size_t limit);
/* Frees every block and chunk the arena still holds. Accepts NULL. */
void arena_free(struct mt_arena *a);

/* A zeroed, 64-byte-aligned block of `bytes` charged to `cat`. NULL with
 * `err` set (MT_E_LIMIT, MT_E_NOMEM, MT_E_INJECTED) on failure. */
void *arena_alloc(struct mt_arena *a, enum mt_mem_cat cat, size_t bytes,
                  struct mt_err *err);
/* Gives a block from arena_alloc back. Accepts NULL. */
void arena_release(struct mt_arena *a, void *p);

/* Stack: arena_mark returns a position; arena_push carves a 64-byte-aligned
 * transient; arena_pop(a, mark) releases everything pushed since mark. */
size_t arena_mark(const struct mt_arena *a);
void *arena_push(struct mt_arena *a, enum mt_mem_cat cat, size_t bytes,
                 struct mt_err *err);
void arena_pop(struct mt_arena *a, size_t mark);
/* The code of the last arena_alloc or arena_push that returned NULL
 * (MT_E_LIMIT, MT_E_NOMEM, MT_E_INJECTED, MT_E_INVAL), 0 before any: what a
 * caller returns after such a NULL, whether or not it passed an `err`. */
int arena_error(const struct mt_arena *a);
/* Reserve stack space up front (one chunk), so the first step does not grow it. */
int arena_reserve_stack(struct mt_arena *a, size_t bytes, struct mt_err *err);

void arena_set_phase(struct mt_arena *a, enum mt_phase phase);
enum mt_phase arena_phase(const struct mt_arena *a);
void arena_stats(const struct mt_arena *a, struct mt_mem_stats *out);
/* Start a new interval: its peaks become the bytes in use now (the current
 * phase's peak the total now, the other phases' 0). */
void arena_interval_reset(struct mt_arena *a);
size_t arena_limit(const struct mt_arena *a);

/* Fault injection for tests: the next n allocations (alloc, push or reserve)
 * succeed, every later one fails with MT_E_INJECTED. n < 0 turns it off. */
void arena_fail_after(struct mt_arena *a, long n);

/* Bytes held from the system by all arenas of this process together: 0 once
 * every arena is freed, which is how the fault tests check for leaks. */
size_t arena_global_reserved(void);
/* Fault injection for arenas not yet created (arena_new applies it), so a
 * test can fail setup code that makes its own arena. n < 0 turns it off. */
void arena_default_fail_after(long n);

const char *mt_phase_name(enum mt_phase phase);     /* "forward", ... */
/* Add b to a, category by category and phase by phase. */
void arena_plan_add(struct mt_mem_plan *a, const struct mt_mem_plan *b);

#endif
