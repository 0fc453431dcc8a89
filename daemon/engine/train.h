/* train.h: a training job in one process: spec in, epochs out.
 *
 * The trainer owns the job's arena and everything in it: the network, the
 * optimizer, the rule's state, the dataset and the batch buffers. The
 * foreground trainer (memtrain-run), the daemon's workers, the tests and the
 * benchmarks all drive it the same way: trainer_init, trainer_run_epoch
 * until done, trainer_fini.
 *
 * A job can stop between any two steps and go on from there: in the same
 * process (trainer_run_epoch after MT_E_CANCELLED continues the epoch), or
 * in another from a checkpoint (trainer_position records where it is,
 * trainer_seek puts a fresh trainer there; the caller copies weights and
 * optimizer state). With one thread the resumed run is bit-identical. */
#ifndef MT_TRAIN_H
#define MT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "data.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "spec.h"
#include "rules/rules.h"
#include "memtrain/err.h"

/* What a rule keeps across steps. Every pointer is owned by the arena. */
struct mt_rule_state {
    float *grads;                    /* gradient buffer: all P floats, or one layer's */
    size_t grads_n;
    float *fb[MT_MAX_LAYERS + 1];    /* FA: R_l (n_l, n_{l-1}); DFA: D_l (C, n_l) */
    /* A rule's own bookkeeping (a small struct of its file): malloc'd by its
     * init, freed by its fini. Buffers that count go in the arena. */
    void *priv;
    /* BP and FA with heavy-ball SGD momentum: each layer's gradient goes
     * straight into the momentum buffer and `grads` is NULL
     * (backprop_accumulates, optim.h). */
    int accumulate;
};

struct mt_step_result;
struct mt_trainer;
struct graph_mem;

/* Called after every training step, with the step's result; t->step, t->epoch
 * and t->epoch_step already count it. Keep it cheap. A nonzero return stops
 * the epoch after this step with MT_E_CANCELLED, at a position a checkpoint
 * can record (trainer_position). */
typedef int (*mt_step_fn)(void *ud, const struct mt_trainer *t, const struct mt_step_result *r);

struct mt_trainer {
    struct mt_spec spec;             /* resolved: spec_finish has run */
    struct mt_arena *arena;
    struct mt_net net;
    struct mt_optim opt;
    const struct mt_rule *rule;
    struct mt_rule_state rs;
    struct mt_dataset train, test;
    struct mt_norm norm;
    float *x;                        /* (batch, n_0) current batch, data category */
    uint8_t *y;                      /* (batch) */
    uint32_t *perm;                  /* (train.n) shuffle order, data category */
    uint32_t *eval_idx;              /* (batch) indices of an evaluation batch */
    struct mt_rng shuffle_rng;       /* draws the next epoch's shuffle */
    long step;                       /* steps taken so far */
    int epoch;                       /* epochs completed */
    long steps_per_epoch;
    float lr;                        /* learning rate of the last step */
    /* The epoch in progress (epoch + 1): steps taken in it (0 = not begun;
     * perm is shuffled once it has begun), its running sums, and the shuffle
     * generator as it was before this epoch's shuffle. */
    long epoch_step;
    double epoch_loss_sum;           /* sum of batch loss * batch size */
    long epoch_hits;
    double epoch_seconds;            /* training time spent in it so far */
    struct mt_rng epoch_rng;
    mt_step_fn step_fn;              /* trainer_set_step_fn; NULL = none */
    void *step_ud;
    size_t plan_total;               /* trainer_init_planned's; 0 = planned in trainer_init */
    struct graph_mem *gm;            /* layer-list models: the step's layout (rule_graph_init),
                                        malloc'd, NULL otherwise */
};

/* Where a job stands, as a checkpoint records it. */
struct mt_train_pos {
    int epoch;                       /* epochs completed */
    long step;                       /* steps taken over the whole job */
    long step_in_epoch;              /* steps of epoch `epoch + 1` taken; 0 at a boundary */
    struct mt_rng shuffle_rng;       /* the shuffle generator before epoch `epoch + 1`'s shuffle */
    double loss_sum;                 /* that epoch's running sums over the steps taken: */
    long hits;                       /* sum of batch loss * batch size, and right answers */
};

struct mt_epoch_report {
    int epoch;                       /* 1-based */
    double loss;                     /* mean training loss over the epoch */
    double train_accuracy;           /* on the training batches, before each update */
    double test_loss;
    double test_accuracy;
    double seconds;                  /* training time of the epoch, evaluation excluded */
    double eval_seconds;
    double samples_per_second;
    float lr;                        /* at the epoch's last step */
    struct mt_mem_stats mem;         /* arena peaks since the trainer started */
    long rss_peak;                   /* VmHWM, bytes */
    long rss_now;                    /* VmRSS, bytes */
    int n_metrics;                   /* the rule's per-epoch figures (rules.h) */
    struct mt_rule_metric metrics[MT_MAX_RULE_METRICS];
};

/* Called every few steps within an epoch (about 100 times); a nonzero return
 * stops the epoch with MT_E_CANCELLED. */
typedef int (*mt_progress_fn)(void *ud, long step_in_epoch, long steps, double running_loss);

/* Resolve the spec (spec_finish, unless spec->resolved), build the arena
 * with its limit, load the data, initialise weights and the rule. On error
 * everything is released. */
int trainer_init(struct mt_trainer *t, const struct mt_spec *spec, struct mt_err *err);
/* The same for a job already planned (the daemon's plan at submit): the
 * stack is reserved from plan_total (trainer_plan's total) instead of
 * planning again; 0 = plan here. */
int trainer_init_planned(struct mt_trainer *t, const struct mt_spec *spec, size_t plan_total,
                         struct mt_err *err);
/* Train the epoch in progress to its end, then evaluate on the test split
 * and fill *rep. An epoch not yet begun is shuffled first; one stopped
 * earlier (MT_E_CANCELLED, or placed by trainer_seek) goes on from its next
 * step with its running sums, so *rep covers the whole epoch (its seconds
 * only the time spent in this process). MT_E_CANCELLED when `progress` or
 * the step callback asked to stop: the stopping step is counted and the
 * trainer stays consistent. Other errors leave the weights unusable. */
int trainer_run_epoch(struct mt_trainer *t, mt_progress_fn progress, void *ud,
                      struct mt_epoch_report *rep, struct mt_err *err);
/* Call fn(ud, ...) after every step of trainer_run_epoch; fn NULL = none. */
void trainer_set_step_fn(struct mt_trainer *t, mt_step_fn fn, void *ud);

/* Where the trainer stands now: between epochs (step_in_epoch 0) or inside
 * one after a stop. */
void trainer_position(const struct mt_trainer *t, struct mt_train_pos *pos);
/* Put the trainer at `pos` of the same job (same spec and data): rebuild
 * the shuffle order by replaying every earlier epoch's shuffle from the
 * seed (the order carries over from epoch to epoch), check that the
 * generator then equals pos->shuffle_rng, redo the current epoch's shuffle
 * when pos is inside one, and take over its running sums; the next
 * trainer_run_epoch then skips the steps already taken. Weights, optimizer
 * state (optim.m, optim.v, optim.t) and the rule's state are not touched:
 * the caller restores them. MT_E_INVAL with a message when pos does not fit
 * this job (epoch past spec.epochs, step counts that disagree with
 * steps_per_epoch, another seed); the trainer is then unchanged. */
int trainer_seek(struct mt_trainer *t, const struct mt_train_pos *pos, struct mt_err *err);
/* Mean loss and accuracy over a dataset, in batches of spec.batch. */
int trainer_evaluate(struct mt_trainer *t, const struct mt_dataset *d, double *loss,
                     double *accuracy, struct mt_err *err);
void trainer_fini(struct mt_trainer *t);

/* The whole job's plan: the rule's part plus parameters, optimizer state and
 * data (dataset sizes read from the file headers). The spec is resolved
 * first unless spec->resolved. */
int trainer_plan(const struct mt_spec *spec, struct mt_mem_plan *plan, struct mt_err *err);
/* The same with the dataset shape given (no file access). */
void trainer_plan_shape(const struct mt_spec *spec, const struct mt_data_shape *shape,
                        struct mt_mem_plan *plan);

#endif
