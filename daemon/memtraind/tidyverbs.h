/* tidyverbs.h: the verbs that keep the store tidy (proto/memtrain.proto,
 * "A tidy store"): rm, prune and ckpt rm remove (through tidy.h, which
 * answers when done), df measures.
 *
 * Access: removing needs the job's owner or root (dispatch_may_control), a
 * job the caller may not read is NOT_FOUND; prune takes the caller's own
 * jobs (root's --all: everyone's); df lists the jobs the caller may read
 * (ls's rule) and sums the rest as "others". */
#ifndef MT_TIDYVERBS_H
#define MT_TIDYVERBS_H

#include <stdint.h>

#include "memtrain.pb-c.h"

struct conn;

void tidy_handle_rm(struct conn *c, uint64_t id, const Memtrain__RemoveRequest *q);
void tidy_handle_prune(struct conn *c, uint64_t id, const Memtrain__PruneRequest *q);
void tidy_handle_ckpt_rm(struct conn *c, uint64_t id, const Memtrain__CheckpointRemoveRequest *q);
void tidy_handle_df(struct conn *c, uint64_t id, const Memtrain__DiskUsageRequest *q);

#endif
