/* specfield.h: the job spec's field registry (tables in spec.c).
 *
 * One row per setting: its key (the YAML key and the JobSpec field name of
 * proto/memtrain.proto), its type, its place in struct mt_spec, its bounds
 * and, for enums, its names. The YAML reader, the checks of spec_finish and
 * the JobSpec bridge (daemon/bridge/jobspec.c, through protobuf-c
 * reflection) all walk these rows, so a new setting is one struct field,
 * one row and one proto field. Nested sections (dataset, rule, optimizer,
 * schedule, model) are SK_FN rows with a `sub` table; the SK_FN rows
 * without one (the model's hidden layers, default activation and norm, and
 * classes: arrays in struct mt_model_desc) are read and mapped by hand. */
#ifndef MT_SPECFIELD_H
#define MT_SPECFIELD_H

#include <stddef.h>

#include "memtrain/err.h"
#include "spec.h"

enum spec_ktype {
    SK_STR,    /* char[size]; proto string */
    SK_INT,    /* int; proto uint32 */
    SK_LONG,   /* long; proto uint64 */
    SK_U64,    /* uint64_t; proto uint64 */
    SK_FLOAT,  /* float; proto float */
    SK_BOOL,   /* int 0/1 (-1 = not given); proto bool */
    SK_BYTES,  /* size_t from mt_bytesize_parse; proto uint64 */
    SK_ENUM,   /* an enum stored as int, read with from_name; proto string ("" = default) */
    SK_RULE,   /* char[size] naming a rule of rules.c; proto string ("" = default) */
    SK_FN,     /* the key's own YAML reader: a section (`sub`) or a by-hand field */
};

enum spec_range {
    SR_ANY,
    SR_NONNEG,  /* >= 0 */
    SR_POS,     /* > 0; for strings: non-empty */
    SR_UNIT,    /* 0 <= x < 1 */
};

struct spec_parse;
struct spec_section;

struct spec_key {
    const char *name;                  /* first: yamlwalk's key tables read it there */
    enum spec_ktype type;
    enum spec_range range;
    size_t off, size;                  /* the field inside struct mt_spec */
    int unset_ok;                      /* the field may be "not given": NAN (floats), -1 (enums,
                                          bools), 0 (ints) or -1 (ints of rule settings); a
                                          JobSpec carries "not given" as an absent field */
    unsigned rule_flag;                /* rule settings: the MT_RULE_* flag of the rules that
                                          read it (rules.h); 0 elsewhere */
    int required;
    int (*from_name)(const char *);    /* SK_ENUM (and by-hand enum names): -1 when unknown */
    const char *names;                 /* SK_ENUM (and by-hand enum names): the names of values
                                          0 .. n_values-1, in order, ", "-separated (messages
                                          print it as is) */
    int n_values;                      /* SK_ENUM */
    int (*fn)(struct spec_parse *ps);  /* SK_FN */
    const struct spec_section *sub;    /* SK_FN: the nested section's rows; NULL = by hand */
};

struct spec_section {
    const char *path;                  /* "" at the top, else "dataset", "rule", ... */
    const struct spec_key *keys;
    size_t n;
};

/* The top-level section; every other section hangs from it through `sub`. */
extern const struct spec_section spec_fields;
/* The rows of one hidden layer (model.hidden[i]: width, activation, norm). */
extern const struct spec_section spec_layer_fields;

/* The row called `name` in sec, or NULL. */
const struct spec_key *spec_key_find(const struct spec_section *sec, const char *name);

/* What a value of the row must be, for messages: "a positive integer". */
const char *spec_key_expected(const struct spec_key *k);
/* The name of enum value v of an SK_ENUM row (copied into buf), or NULL
 * when v is outside 0 .. n_values-1. */
const char *spec_key_enum_name(const struct spec_key *k, int v, char *buf, size_t cap);
/* Check the row's field in `s` against its bounds, enum range, string
 * length and control characters. MT_E_INVAL with "PATH: expected a positive
 * integer, got 0" (PATH as given). */
int spec_key_check(const struct spec_key *k, const char *path, const struct mt_spec *s,
                   struct mt_err *err);

#endif
