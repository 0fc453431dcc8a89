/* arena.c: the per-job accounting allocator (see arena.h).
 *
 * Long-lived blocks each carry a 64-byte header and sit on a doubly linked
 * list, so arena_free releases whatever a failed setup left behind. Stack
 * chunks are kept for the arena's lifetime; a push record remembers where
 * each transient was carved so arena_pop can undo the accounting exactly. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64
#define CHUNK_MIN ((size_t)1 << 20)

struct block {
    struct block *prev, *next;
    size_t bytes;
    enum mt_mem_cat cat;
    size_t mapped;
};
_Static_assert(sizeof(struct block) <= ALIGN, "block header must fit in one alignment unit");

struct chunk {
    char *base;
    size_t size;
    size_t used;
};

struct push {
    int chunk;
    size_t offset;     /* chunk->used before this push */
    size_t bytes;
    enum mt_mem_cat cat;
};

struct mt_arena {
    struct mt_mem_stats st;
    enum mt_phase phase;
    struct block *blocks;
    struct chunk *chunks;
    int nchunks, capchunks, curchunk;
    struct push *pushes;
    size_t npushes, cappushes;
    long fail_after;   /* < 0: off */
    int last_error;    /* the code of the last failed alloc or push */
};

static size_t global_reserved;
static long default_fail_after = -1;

size_t arena_global_reserved(void)
{
    return global_reserved;
}

void arena_default_fail_after(long n)
{
    default_fail_after = n;
}

static const char *phase_names[MT_PHASE_N] = {"idle", "forward", "gradient", "update"};

const char *mt_phase_name(enum mt_phase phase)
{
    return (unsigned)phase < MT_PHASE_N ? phase_names[phase] : "?";
}

void arena_plan_add(struct mt_mem_plan *a, const struct mt_mem_plan *b)
{
    for (int c = 0; c < MT_MEM_NCAT; c++)
        a->cat[c] += b->cat[c];
    for (int p = 0; p < MT_PHASE_N; p++)
        a->phase[p] += b->phase[p];
    a->total += b->total;
}

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

struct mt_arena *arena_new(size_t limit)
{
    struct mt_arena *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->st.limit = limit;
    a->fail_after = default_fail_after;
    return a;
}

void arena_free(struct mt_arena *a)
{
    if (!a)
        return;
    struct block *b = a->blocks;
    global_reserved -= a->st.reserved;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    for (int i = 0; i < a->nchunks; i++)
        free(a->chunks[i].base);
    free(a->chunks);
    free(a->pushes);
    free(a);
}

/* Decide whether `bytes` more of `cat` may be taken; fills err if not. */
static int charge_check(struct mt_arena *a, enum mt_mem_cat cat, size_t bytes,
                        struct mt_err *err)
{
    if (a->fail_after == 0)
        return mt_err_set(err, MT_E_INJECTED, "injected allocation failure (%s, %zu bytes)",
                          mt_mem_cat_name(cat), bytes);
    if (a->fail_after > 0)
        a->fail_after--;
    if (a->st.limit && a->st.total + bytes > a->st.limit) {
        char asked[32], used[32], lim[32];
        return mt_err_set(err, MT_E_LIMIT,
                          "memory limit exceeded: %s asked %s (%zu bytes) with %s (%zu bytes) "
                          "in use; limit %s (%zu bytes)",
                          mt_mem_cat_name(cat), mt_fmt_bytes(asked, sizeof asked, (double)bytes),
                          bytes, mt_fmt_bytes(used, sizeof used, (double)a->st.total),
                          a->st.total, mt_fmt_bytes(lim, sizeof lim, (double)a->st.limit),
                          a->st.limit);
    }
    return 0;
}

static void charge(struct mt_arena *a, enum mt_mem_cat cat, size_t bytes)
{
    struct mt_mem_stats *s = &a->st;
    s->cur[cat] += bytes;
    if (s->cur[cat] > s->peak[cat])
        s->peak[cat] = s->cur[cat];
    s->total += bytes;
    if (s->total > s->total_peak)
        s->total_peak = s->total;
    if (s->total > s->phase_peak[a->phase])
        s->phase_peak[a->phase] = s->total;
    struct mt_mem_plan *iv = &s->interval;
    if (s->cur[cat] > iv->cat[cat])
        iv->cat[cat] = s->cur[cat];
    if (s->total > iv->total)
        iv->total = s->total;
    if (s->total > iv->phase[a->phase])
        iv->phase[a->phase] = s->total;
}

static void uncharge(struct mt_arena *a, enum mt_mem_cat cat, size_t bytes)
{
    a->st.cur[cat] -= bytes;
    a->st.total -= bytes;
}

/* A failed alloc or push: remember its code for arena_error, return NULL. */
static void *failed(struct mt_arena *a, int code)
{
    a->last_error = code;
    return NULL;
}

void *arena_alloc(struct mt_arena *a, enum mt_mem_cat cat, size_t bytes, struct mt_err *err)
{
    int rc;
    if ((unsigned)cat >= MT_MEM_NCAT)
        return failed(a, mt_err_set(err, MT_E_INVAL, "arena_alloc: bad category %d", (int)cat));
    if ((rc = charge_check(a, cat, bytes, err)))
        return failed(a, rc);
    size_t mapped = ALIGN + round_up(bytes ? bytes : 1);
    struct block *b = aligned_alloc(ALIGN, mapped);
    if (!b) {
        char asked[32];
        return failed(a, mt_err_set(err, MT_E_NOMEM, "out of system memory: %s asked %s",
                                    mt_mem_cat_name(cat),
                                    mt_fmt_bytes(asked, sizeof asked, (double)bytes)));
    }
    memset(b, 0, mapped);
    b->bytes = bytes;
    b->cat = cat;
    b->mapped = mapped;
    b->next = a->blocks;
    if (a->blocks)
        a->blocks->prev = b;
    a->blocks = b;
    a->st.reserved += mapped;
    global_reserved += mapped;
    charge(a, cat, bytes);
    return (char *)b + ALIGN;
}

void arena_release(struct mt_arena *a, void *p)
{
    if (!p)
        return;
    struct block *b = (struct block *)((char *)p - ALIGN);
    if (b->prev)
        b->prev->next = b->next;
    else
        a->blocks = b->next;
    if (b->next)
        b->next->prev = b->prev;
    uncharge(a, b->cat, b->bytes);
    a->st.reserved -= b->mapped;
    global_reserved -= b->mapped;
    free(b);
}

static int add_chunk(struct mt_arena *a, size_t size, struct mt_err *err)
{
    if (a->nchunks == a->capchunks) {
        int cap = a->capchunks ? 2 * a->capchunks : 8;
        struct chunk *c = realloc(a->chunks, (size_t)cap * sizeof *c);
        if (!c)
            return mt_err_set(err, MT_E_NOMEM, "out of system memory: arena chunk table");
        a->chunks = c;
        a->capchunks = cap;
    }
    char *base = aligned_alloc(ALIGN, round_up(size));
    if (!base) {
        char sz[32];
        return mt_err_set(err, MT_E_NOMEM, "out of system memory: stack chunk of %s",
                          mt_fmt_bytes(sz, sizeof sz, (double)size));
    }
    a->chunks[a->nchunks++] = (struct chunk){.base = base, .size = round_up(size), .used = 0};
    a->st.reserved += round_up(size);
    global_reserved += round_up(size);
    return 0;
}

int arena_reserve_stack(struct mt_arena *a, size_t bytes, struct mt_err *err)
{
    size_t have = 0;
    for (int i = 0; i < a->nchunks; i++)
        have += a->chunks[i].size;
    if (have >= bytes)
        return 0;
    if (a->fail_after == 0)
        return mt_err_set(err, MT_E_INJECTED, "injected allocation failure (stack reserve)");
    if (a->fail_after > 0)
        a->fail_after--;
    return add_chunk(a, bytes - have, err);
}

int arena_error(const struct mt_arena *a)
{
    return a->last_error;
}

size_t arena_mark(const struct mt_arena *a)
{
    return a->npushes;
}

void *arena_push(struct mt_arena *a, enum mt_mem_cat cat, size_t bytes, struct mt_err *err)
{
    int rc;
    if ((unsigned)cat >= MT_MEM_NCAT)
        return failed(a, mt_err_set(err, MT_E_INVAL, "arena_push: bad category %d", (int)cat));
    if ((rc = charge_check(a, cat, bytes, err)))
        return failed(a, rc);
    if (a->npushes == a->cappushes) {
        size_t cap = a->cappushes ? 2 * a->cappushes : 64;
        struct push *p = realloc(a->pushes, cap * sizeof *p);
        if (!p)
            return failed(a, mt_err_set(err, MT_E_NOMEM, "out of system memory: arena push table"));
        a->pushes = p;
        a->cappushes = cap;
    }
    size_t need = round_up(bytes ? bytes : 1);
    /* First chunk from the current one on with room; chunks past the
     * current one are empty, since pops rewind in order. */
    int c = a->nchunks ? a->curchunk : -1;
    while (c >= 0 && c < a->nchunks && a->chunks[c].size - a->chunks[c].used < need)
        c++;
    if (c < 0 || c >= a->nchunks) {
        if ((rc = add_chunk(a, need > CHUNK_MIN ? need : CHUNK_MIN, err)))
            return failed(a, rc);
        c = a->nchunks - 1;
    }
    struct chunk *ch = &a->chunks[c];
    a->pushes[a->npushes++] = (struct push){.chunk = c, .offset = ch->used, .bytes = bytes, .cat = cat};
    void *p = ch->base + ch->used;
    ch->used += need;
    a->curchunk = c;
    charge(a, cat, bytes);
    return p;
}

void arena_pop(struct mt_arena *a, size_t mark)
{
    while (a->npushes > mark) {
        struct push *p = &a->pushes[--a->npushes];
        for (int c = p->chunk + 1; c < a->nchunks; c++)
            a->chunks[c].used = 0;
        a->chunks[p->chunk].used = p->offset;
        a->curchunk = p->chunk;
        uncharge(a, p->cat, p->bytes);
    }
}

void arena_set_phase(struct mt_arena *a, enum mt_phase phase)
{
    a->phase = phase;
    if (a->st.total > a->st.phase_peak[phase])
        a->st.phase_peak[phase] = a->st.total;
    if (a->st.total > a->st.interval.phase[phase])
        a->st.interval.phase[phase] = a->st.total;
}

void arena_interval_reset(struct mt_arena *a)
{
    struct mt_mem_plan *iv = &a->st.interval;
    memcpy(iv->cat, a->st.cur, sizeof iv->cat);
    iv->total = a->st.total;
    memset(iv->phase, 0, sizeof iv->phase);
    iv->phase[a->phase] = a->st.total;
}

enum mt_phase arena_phase(const struct mt_arena *a)
{
    return a->phase;
}

void arena_stats(const struct mt_arena *a, struct mt_mem_stats *out)
{
    *out = a->st;
}

size_t arena_limit(const struct mt_arena *a)
{
    return a->st.limit;
}

void arena_fail_after(struct mt_arena *a, long n)
{
    a->fail_after = n;
}
