/* spec.h: a training job's specification, parsed from YAML (libyaml).
 *
 * The same fields travel as protobuf JobSpec (proto/memtrain.proto); the
 * YAML keys are the proto field names. One table (specfield.h, rows in
 * spec.c) drives the YAML reader, the checks and the JobSpec bridge: a new
 * setting is a field here, a row there and a proto field. Unset optional numbers are NAN or -1
 * until spec_finish fills them from the rule's defaults, so "the user said
 * 0" and "the user said nothing" stay distinct. */
#ifndef MT_SPEC_H
#define MT_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "model.h"
#include "optim.h"
#include "memtrain/err.h"

#define MT_NAME_LEN 128

enum mt_feedback_init {
    MT_FB_DEFAULT = -1,
    MT_FB_UNIFORM,      /* U(-1, 1) * scale */
    MT_FB_NORMAL,       /* N(0, 1) * scale */
    MT_FB_KAIMING,      /* the forward init of the same shape, * scale */
};

/* A rule's settings. Each rule reads the ones it knows and its `defaults`
 * fills those left unset (NAN or -1); spec_finish refuses a setting the
 * rule does not use. */
struct mt_rule_spec {
    char name[32];                  /* "bp", "fa", "dfa", "memdfa", ... */
    enum mt_feedback_init feedback_init;
    float feedback_scale;           /* NAN = rule default */
    int binary;                     /* bp: binary weights and activations (BW+BA); -1 = default */
    float epsilon;                  /* asa: sign-term size; mezo: perturbation size; NAN = default */
    float kappa;                    /* asa: weight-gradient gain (default 1/epsilon); NAN = default */
    int recompute_inputs;           /* asa, layer lists: read a ReLU of batch-norm exactly; -1 = default (1) */
    int groups;                     /* tinyfoa: M, blocks per side of a layer; -1 = default (2) */
    int segments;                   /* ckpt: segments; -1 = default ceil(sqrt(L)) */
    int samples;                    /* mezo: seeds averaged per step (n-SPSA); -1 = default (1) */
};

struct mt_spec {
    char name[MT_NAME_LEN];
    struct mt_data_spec data;
    struct mt_model_desc model;
    struct mt_rule_spec rule;
    struct mt_optim_spec optim;
    struct mt_sched_spec sched;
    int batch;
    int epochs;
    uint64_t seed;
    int threads;                    /* OpenBLAS threads; 0 = all cores */
    size_t memory_limit;            /* bytes; 0 = none */
    int checkpoint_every;           /* epochs; 0 = only at the end (daemon) */
    int keep_checkpoints;           /* keep-last-N (daemon) */
    int resolved;                   /* spec_finish has run and passed; not carried in a JobSpec */
};

/* Defaults for every field; rule "bp", unset optimizer. */
void spec_init(struct mt_spec *s);
/* Switch the spec to rule `name` (which must exist), dropping the rule
 * settings the new rule does not read (its MT_RULE_* flags), so one model
 * can be planned or trained under every rule. */
void spec_set_rule(struct mt_spec *s, const char *name);
/* Parse a YAML document. Errors name the key and its line:
 * "spec.yaml:12: model.hidden[1].width: expected a positive integer, got 'abc'". */
int spec_parse_file(const char *path, struct mt_spec *s, struct mt_err *err);
int spec_parse_string(const char *yaml, size_t len, const char *name, struct mt_spec *s,
                      struct mt_err *err);
/* Set one key of a parsed spec, as `mtctl submit --set key=value` does:
 * `key` is a dotted name of docs/spec-reference.md ("optimizer.lr",
 * "epochs", "rule.feedback_scale", "dataset.augment.crop"; a section's
 * name alone takes what the section's key takes in a file, "optimizer=adam"),
 * `value` is read as a YAML scalar (or flow collection) with the checks of
 * a file. The model's structure (model.input, hidden, layers, ...) is not
 * set this way. A new rule.name drops the settings that rule does not read,
 * as spec_set_rule. On error (MT_E_INVAL, naming the key) *s is unchanged;
 * spec_finish checks the result across fields as for a file. */
int spec_set_key(struct mt_spec *s, const char *key, const char *value, struct mt_err *err);
/* Resolve a spec: the one function that checks every field and the rules
 * across fields and fills in what the rule and the dataset decide (after
 * parsing, or after building a spec from protobuf). On success it sets
 * s->resolved, and trainer_plan and trainer_init take such a spec as it is
 * rather than resolving it again; a caller that changes a resolved spec's
 * model, dataset or rule calls spec_finish again (spec_set_rule clears the
 * flag). */
int spec_finish(struct mt_spec *s, struct mt_err *err);

#endif
