/* checkpoint.h: a trainer's exact position as protobuf CheckpointData
 * (proto/memtrain.proto, "checkpoints"), and back.
 *
 * A checkpoint holds what a fresh trainer of the same job cannot rebuild
 * from its spec: the weights (W1, b1, W2, b2, ...: W_l (n_l, n_{l-1}), b_l
 * (n_l), float32 little-endian), the optimizer state over the flat
 * parameter vector ("momentum" for SGD with momentum; "adam.m" and "adam.v"
 * for Adam and AdamW; none for plain SGD) with its step counter, and where
 * the job stands (struct mt_train_pos: epochs and steps done, the shuffle
 * generator before the current epoch's shuffle as 4 little-endian uint64,
 * the running sums of an unfinished epoch), plus the epoch history.
 *
 * Not stored, because trainer_init rebuilds them bit for bit from the spec:
 * the data (files, or the synthetic set's seed) and its normalisation, and
 * the rules' feedback matrices (FA's R_l, DFA's and MEM-DFA's D_l), which
 * each rule's init draws from rng_derive(seed, 1000 + l). rule_state stays
 * empty in format 1 and is ignored when restoring. The learning rate is
 * recomputed from the schedule at every step.
 *
 * This file is the only place that knows both struct mt_trainer and the
 * protobuf messages; the engine stays free of protobuf. */
#ifndef MT_WORKER_CHECKPOINT_H
#define MT_WORKER_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "memtrain.pb-c.h"
#include "memtrain/err.h"
#include "train.h"

#define CHECKPOINT_FORMAT 1

/* Build the CheckpointData of t's current position (trainer_position) for
 * job `job_id`, with `history` (n_history EpochProgress, oldest first).
 * The message BORROWS t's weights and optimizer state and the history
 * entries: pack or send it before the trainer takes another step, and
 * before those entries change. Free it with checkpoint_free (only).
 * MT_E_NOMEM, or MT_E_INVAL from jobspec_from_spec. */
int checkpoint_build(const struct mt_trainer *t, uint64_t job_id,
                     Memtrain__EpochProgress **history, size_t n_history,
                     Memtrain__CheckpointData **out, struct mt_err *err);
/* Frees what checkpoint_build allocated (not the borrowed data). Accepts NULL. */
void checkpoint_free(Memtrain__CheckpointData *cd);

/* Put t, fresh from trainer_init with the job's spec, where `cd` left off:
 * weights, optimizer state and step counter, and the position
 * (trainer_seek). Everything is checked before anything is copied; on error
 * t is unchanged. MT_E_INVAL with a message naming what does not fit: an
 * unknown format, a checkpoint spec whose model (layer count, widths,
 * activations) differs from the job's, a missing or misshapen tensor,
 * optimizer state of another optimizer, a position outside the job or a
 * shuffle generator the job's seed does not give. The history is not
 * touched: it is cd->history for the caller to take. */
int checkpoint_restore(struct mt_trainer *t, const Memtrain__CheckpointData *cd,
                       struct mt_err *err);

/* An EpochProgress together with what it points to (its memory figures and
 * the rule's metrics), in one block: `ep` comes first, so a pointer to it
 * is a pointer to the whole. */
struct epoch_msg {
    Memtrain__EpochProgress ep;
    Memtrain__MemoryStats mem;
    Memtrain__RuleMetric metric[MT_MAX_RULE_METRICS];
    Memtrain__RuleMetric *metric_ptr[MT_MAX_RULE_METRICS];
    char name[MT_MAX_RULE_METRICS][sizeof ((struct mt_rule_metric *)0)->name + 1];
};
/* Fill *out from an epoch report: figures, memory peaks, the rule's metrics. */
void checkpoint_epoch_progress(struct epoch_msg *out, const struct mt_epoch_report *rep);
/* Fill *out with a copy of src, field by field (an unpacked message may
 * carry unknown fields, which are left behind). Rule metrics past
 * MT_MAX_RULE_METRICS are dropped and longer names cut, as a report holds
 * no more. */
void checkpoint_epoch_copy(struct epoch_msg *out, const Memtrain__EpochProgress *src);

#endif
