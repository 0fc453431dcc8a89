/* rules.h: the learning-rule interface and the table of rules.
 *
 * A rule decides what is kept between the forward pass and the update, how
 * the error reaches each layer, and in which order layers are updated. Each
 * rule is one file exporting one `const struct mt_rule`; rules.c lists them.
 * Adding a rule means one file and one table line. */
#ifndef MT_RULES_H
#define MT_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "model.h"
#include "memtrain/err.h"

struct mt_spec;
struct mt_trainer;
struct graph_keep;

/* A figure a rule reports once per epoch beside loss and accuracy (ASA's
 * learning indicator of layer 2 is "li.2"). */
#define MT_MAX_RULE_METRICS 16
struct mt_rule_metric {
    char name[24];
    double value;
};

/* mt_rule.flags: what the rule supports and which rule settings it reads
 * (spec_finish refuses a setting or a norm layer the rule does not take). */
#define MT_RULE_NORMS     (1u << 0)  /* models with batch-norm / layer-norm layers */
#define MT_RULE_FEEDBACK  (1u << 1)  /* rule.feedback_init, rule.feedback_scale */
#define MT_RULE_BINARY    (1u << 2)  /* rule.binary */
#define MT_RULE_EPSILON   (1u << 3)  /* rule.epsilon */
#define MT_RULE_KAPPA     (1u << 4)  /* rule.kappa */
#define MT_RULE_GROUPS    (1u << 5)  /* rule.groups */
#define MT_RULE_SEGMENTS  (1u << 6)  /* rule.segments */
#define MT_RULE_SAMPLES   (1u << 7)  /* rule.samples */
#define MT_RULE_LAYERS    (1u << 8)  /* layer-list models (model.layers) */
#define MT_RULE_RECOMPUTE (1u << 9)  /* rule.recompute_inputs */

struct mt_step_result {
    double loss;       /* mean cross-entropy of the batch (before the update) */
    int correct;       /* samples of the batch classified right */
};

struct mt_rule {
    const char *name;      /* as in job specs: "bp", "fa", "dfa", "memdfa", ... */
    const char *summary;   /* one line for --help and plan tables */
    /* Fill the spec's unset optimizer, schedule and feedback settings with
     * this rule's documented defaults. */
    void (*defaults)(struct mt_spec *s);
    /* Bytes this rule allocates, per category and per phase (gradients,
     * kept activations, workspace, feedback matrices), for a model and batch,
     * before anything is allocated. The trainer adds parameters, optimizer
     * state and data. */
    void (*plan)(const struct mt_spec *s, struct mt_mem_plan *out);
    /* Optional: what the rule needs of a finished spec (activations, norm
     * layers, optimizer, its settings), as an error naming the problem.
     * spec_finish runs it, so the daemon refuses such a job at submit and
     * init can take the spec as checked. */
    int (*check)(const struct mt_spec *s, struct mt_err *err);
    /* Allocate the rule's persistent state from the trainer's arena. */
    int (*init)(struct mt_trainer *t, struct mt_err *err);
    /* One training step on x (B, n_0), labels y (B), updating the weights. */
    int (*step)(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                struct mt_step_result *r, struct mt_err *err);

    /* The rest is optional (NULL / 0 when the rule has no use for it). */

    /* Logits (B, C) of the model as this rule trains it, for evaluation
     * (binary forward, embedded labels, ...). NULL = the plain forward,
     * rule_forward_rolling. buf0 and buf1 hold B * model_max_width floats each;
     * x (B, n_0) is the trainer's batch buffer and may be overwritten.
     * Returns a pointer into buf0, buf1 or the rule's own state, or NULL
     * for the plain forward after all. */
    const float *(*infer)(struct mt_trainer *t, float *x, int B, float *buf0, float *buf1);
    /* Release what init allocated outside the arena (t->rs.priv). */
    void (*fini)(struct mt_trainer *t);
    /* Per-epoch figures, called once at each epoch's end (after the
     * evaluation): fill up to `max` and return how many; reset whatever the
     * rule accumulated over the epoch. */
    int (*epoch_metrics)(struct mt_trainer *t, struct mt_rule_metric *out, int max);
    unsigned flags;        /* MT_RULE_* */
    /* Layer-list models: how the rule keeps what the backward reads (codes
     * in place of FP32 tensors, graph.h); NULL = FP32, as BP. */
    const struct graph_keep *keep;
    /* A rule its paper defines for fully connected layers only (no
     * MT_RULE_LAYERS): why, as the refusal of a layer-list model says it,
     * following "rule 'ff' " ("(Forward-Forward) is defined for ..."). */
    const char *fc_only;
    /* Optional, layer-list models: the bytes the rule keeps for each node
     * (kept[d->n_nodes]) as it schedules its step; NULL = graph_mem's
     * layout with `keep` (graph_node_kept_bytes). rule_node_kept calls it. */
    void (*node_kept)(const struct mt_spec *s, size_t *kept);
};

/* Node i of the spec's layer list: the bytes `r` keeps for it during a
 * step (its output or code and aux, as the rule's plan counts them);
 * kept has s->model.n_nodes entries. The spec is finished under r. */
void rule_node_kept(const struct mt_rule *r, const struct mt_spec *s, size_t *kept);
/* The same for the layer list of spec s (finished or not) under the rule
 * named `rule`: the spec is copied, given that rule and finished; an error
 * (the rule refuses the spec) says why. */
int rule_node_kept_as(const struct mt_spec *s, const char *rule, size_t *kept,
                      struct mt_err *err);

/* The rule named `name`, or NULL. */
const struct mt_rule *rule_find(const char *name);
/* The table, NULL-terminated, for listings. */
const struct mt_rule *const *rule_list(void);

#endif
