/* memstats.h: the bridge between the engine's memory figures (arena.h:
 * struct mt_mem_plan, struct mt_mem_stats) and protobuf MemoryStats
 * (proto/memtrain.proto).
 *
 * The one place a MemoryStats is filled from the engine: the daemon's plan
 * at submit and `mtctl plan`, the worker's planned event, its memory samples
 * (now and peaks), its epochs and its final measurement. Each function
 * initialises *out first; the message points at nothing, so it needs no
 * freeing. */
#ifndef MT_MEMSTATS_H
#define MT_MEMSTATS_H

#include "arena.h"
#include "memtrain.pb-c.h"

/* A plan: bytes per category, the peak total and the phase peaks;
 * rss_peak_bytes 0 (nothing has run). */
void memstats_from_plan(Memtrain__MemoryStats *out, const struct mt_mem_plan *p);
/* An arena's peaks so far: per category, the peak total and the phase
 * peaks, with the process's peak RSS in bytes (0 or less: unknown, sent as
 * 0). */
void memstats_from_peaks(Memtrain__MemoryStats *out, const struct mt_mem_stats *st,
                         long rss_peak);
/* An arena's bytes in use now: per category, with the sum in peak_total;
 * no phase figures, no RSS. */
void memstats_from_current(Memtrain__MemoryStats *out, const struct mt_mem_stats *st);
/* An arena's peaks since its last arena_interval_reset: per category, the
 * peak total and the phase peaks; no RSS. */
void memstats_from_interval(Memtrain__MemoryStats *out, const struct mt_mem_stats *st);
/* A field-by-field copy of src (an unpacked message's unknown fields are
 * not shared); src NULL gives an all-zero message. */
void memstats_copy(Memtrain__MemoryStats *out, const Memtrain__MemoryStats *src);

#endif
