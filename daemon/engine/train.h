/* train.h: a training job in one process: spec in, epochs out.
 *
 * The trainer owns the job's arena and everything in it: the network, the
 * optimizer, the rule's state, the dataset and the batch buffers. The
 * foreground trainer (memtrain-run), the daemon's workers, the tests and the
 * benchmarks all drive it the same way: trainer_init, trainer_run_epoch
 * until done, trainer_fini. */
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
};

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
    struct mt_rng shuffle_rng;
    long step;                       /* steps taken so far */
    int epoch;                       /* epochs completed */
    long steps_per_epoch;
    float lr;                        /* learning rate of the last step */
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
};

/* Called every few steps within an epoch; a nonzero return stops the
 * epoch with MT_E_CANCELLED. */
typedef int (*mt_progress_fn)(void *ud, long step_in_epoch, long steps, double running_loss);

/* Resolve the spec (spec_finish), build the arena with its limit, load the
 * data, initialise weights and the rule. On error everything is released. */
int trainer_init(struct mt_trainer *t, const struct mt_spec *spec, struct mt_err *err);
int trainer_run_epoch(struct mt_trainer *t, mt_progress_fn progress, void *ud,
                      struct mt_epoch_report *rep, struct mt_err *err);
/* Mean loss and accuracy over a dataset, in batches of spec.batch. */
int trainer_evaluate(struct mt_trainer *t, const struct mt_dataset *d, double *loss,
                     double *accuracy, struct mt_err *err);
void trainer_fini(struct mt_trainer *t);

/* The whole job's plan: the rule's part plus parameters, optimizer state and
 * data (dataset sizes read from the file headers). */
int trainer_plan(const struct mt_spec *spec, struct mt_mem_plan *plan, struct mt_err *err);
/* The same with the dataset shape given (no file access). */
void trainer_plan_shape(const struct mt_spec *spec, const struct mt_data_shape *shape,
                        struct mt_mem_plan *plan);

/* The kernel's view of this process: VmHWM and VmRSS in bytes (0 if unknown). */
void proc_memory(long *hwm, long *rss);

#endif
