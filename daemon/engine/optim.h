/* optim.h: optimizers over flat parameter arrays, and learning-rate schedules.
 *
 * An optimizer knows nothing of the model: it updates n floats of w from n
 * floats of g, with its state (momentum, Adam moments) at the same offsets in
 * its own flat arrays, so a whole model is one call and one layer is a slice
 * (MEM-DFA updates layer by layer). */
#ifndef MT_OPTIM_H
#define MT_OPTIM_H

#include <stddef.h>

#include "arena.h"
#include "memtrain/err.h"

enum mt_optim_kind {
    MT_OPT_DEFAULT = -1, /* the rule's default */
    MT_OPT_SGD,          /* plain, or with momentum / Nesterov */
    MT_OPT_ADAM,         /* L2 weight decay added to the gradient */
    MT_OPT_ADAMW,        /* decoupled weight decay */
};

enum mt_sched_kind {
    MT_SCHED_CONSTANT,
    MT_SCHED_STEP,       /* lr * gamma^floor(epoch / step_epochs) */
    MT_SCHED_COSINE,     /* linear warm-up, then cosine to min_lr at the last step */
};

struct mt_optim_spec {
    enum mt_optim_kind kind;
    float lr;            /* NAN = rule default */
    float momentum;      /* SGD; NAN = default */
    int nesterov;        /* -1 = default (off) */
    float beta1, beta2, eps;
    float weight_decay;  /* NAN = default */
};

struct mt_sched_spec {
    enum mt_sched_kind kind;
    float warmup_epochs; /* linear warm-up length, in epochs (may be fractional) */
    int step_epochs;     /* MT_SCHED_STEP period */
    float gamma;         /* MT_SCHED_STEP factor */
    float min_lr;        /* MT_SCHED_COSINE floor */
};

struct mt_optim {
    struct mt_optim_spec s;   /* resolved: no NAN left */
    size_t n;                 /* parameters covered */
    float *m;                 /* (n) momentum or Adam first moment, optimizer category */
    float *v;                 /* (n) Adam second moment, or NULL */
    long t;                   /* steps taken (Adam bias correction) */
};

const char *optim_kind_name(enum mt_optim_kind k);
int optim_kind_from_name(const char *name);      /* -1 when unknown */
const char *optim_sched_kind_name(enum mt_sched_kind k);
int optim_sched_kind_from_name(const char *name);      /* -1 when unknown */

/* Bytes of optimizer state for n parameters. */
size_t optim_state_bytes(const struct mt_optim_spec *s, size_t n);
int optim_init(struct mt_optim *o, const struct mt_optim_spec *s, size_t n, struct mt_arena *a,
               struct mt_err *err);
/* Start a step (advances t for Adam's bias correction). */
void optim_begin_step(struct mt_optim *o);
/* Update w[0..n) from g[0..n); state at offset off. One fused pass. */
void optim_update(struct mt_optim *o, float lr, float *w, const float *g, size_t off, size_t n);
/* Heavy-ball SGD momentum (not Nesterov) can take the gradient straight
 * into its momentum buffer, since m = mu m + g is what a GEMM with beta = mu
 * computes: no gradient buffer, and no pass reading one. When
 * optim_accumulates says so, the rule adds layer gradients into
 * optim_accum_target(o, off) with beta optim_accum_beta(o) (the GEMM's beta,
 * dense_accumulate_params), then optim_update_accumulated finishes the step:
 * m += wd w, then w -= lr m, the same update as optim_update. */
int optim_accumulates(const struct mt_optim_spec *s);
float *optim_accum_target(const struct mt_optim *o, size_t off);
float optim_accum_beta(const struct mt_optim *o);
void optim_update_accumulated(struct mt_optim *o, float lr, float *w, size_t off, size_t n);
/* Learning rate at a step: step counts from 0, steps_per_epoch > 0. */
float optim_sched_lr(const struct mt_sched_spec *s, float base_lr, long step, long steps_per_epoch,
               int epochs);

#endif
