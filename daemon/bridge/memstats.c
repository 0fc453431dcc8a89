/* memstats.c: engine memory figures -> protobuf MemoryStats (memstats.h). */
#include "memstats.h"

/* The six categories, in the order of the message's fields. */
static void set_categories(Memtrain__MemoryStats *out, const size_t cat[MT_MEM_NCAT])
{
    out->params = cat[MT_MEM_PARAMS];
    out->grads = cat[MT_MEM_GRADS];
    out->optimizer = cat[MT_MEM_OPTIM];
    out->activations = cat[MT_MEM_ACTS];
    out->workspace = cat[MT_MEM_WORKSPACE];
    out->data = cat[MT_MEM_DATA];
}

static void set_phases(Memtrain__MemoryStats *out, const size_t phase[MT_PHASE_N])
{
    out->phase_peak_forward = phase[MT_PHASE_FORWARD];
    out->phase_peak_gradient = phase[MT_PHASE_GRADIENT];
    out->phase_peak_update = phase[MT_PHASE_UPDATE];
}

void memstats_from_plan(Memtrain__MemoryStats *out, const struct mt_mem_plan *p)
{
    memtrain__memory_stats__init(out);
    set_categories(out, p->cat);
    out->peak_total = p->total;
    set_phases(out, p->phase);
}

void memstats_from_peaks(Memtrain__MemoryStats *out, const struct mt_mem_stats *st,
                         long rss_peak)
{
    memtrain__memory_stats__init(out);
    set_categories(out, st->peak);
    out->peak_total = st->total_peak;
    set_phases(out, st->phase_peak);
    out->rss_peak_bytes = rss_peak > 0 ? (uint64_t)rss_peak : 0;
}

void memstats_from_current(Memtrain__MemoryStats *out, const struct mt_mem_stats *st)
{
    memtrain__memory_stats__init(out);
    set_categories(out, st->cur);
    out->peak_total = st->total;
}

void memstats_from_interval(Memtrain__MemoryStats *out, const struct mt_mem_stats *st)
{
    memstats_from_plan(out, &st->interval);
}

void memstats_copy(Memtrain__MemoryStats *out, const Memtrain__MemoryStats *src)
{
    memtrain__memory_stats__init(out);
    if (!src)
        return;
    out->params = src->params;
    out->grads = src->grads;
    out->optimizer = src->optimizer;
    out->activations = src->activations;
    out->workspace = src->workspace;
    out->data = src->data;
    out->peak_total = src->peak_total;
    out->phase_peak_forward = src->phase_peak_forward;
    out->phase_peak_gradient = src->phase_peak_gradient;
    out->phase_peak_update = src->phase_peak_update;
    out->rss_peak_bytes = src->rss_peak_bytes;
}
