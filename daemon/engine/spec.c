/* spec.c: a training job's specification, read from YAML (see spec.h and
 * docs/spec-reference.md).
 *
 * libyaml's event API drives a walk over fixed tables: one table of keys per
 * section, each key with its type, its bounds and its place in struct
 * mt_spec. The same tables check a spec built some other way (spec_finish),
 * so a JobSpec from a client meets the same bounds as a file.
 *
 * The text may come from an untrusted client: the walk never recurses on the
 * input, refuses aliases, caps the input size, copies every string into a
 * fixed buffer after a length check and quotes bad values only in a
 * shortened, sanitised form. Every error names the file, the line and the
 * dotted key path ("spec.yaml:12: model.hidden[1].width: ..."). */
#include "specfield.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "memtrain/yamlwalk.h"

#include "memtrain/bytesize.h"
#include "graph.h"
#include "rules/rules.h"

#define SPEC_MAX_BYTES (1u << 20)  /* spec text larger than this is refused */
#define NAMED_CLASSES 10           /* classes of every named dataset */

#define ACT_NAMES "relu, leaky_relu, tanh, sigmoid, gelu, identity, silu"
#define NORM_NAMES "batchnorm, layernorm, none"

/* Enum fields are stored through an int (memcpy), which needs this. */
_Static_assert(sizeof(enum mt_data_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mt_normalize) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mt_optim_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mt_sched_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mt_feedback_init) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mt_init) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mt_normkind) == sizeof(int), "enum size");

/* ------------------------------------------------------------------------ */
/* Names of the enums spec.h and model.h define without name functions      */

static int name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int feedback_init_from_name(const char *name)
{
    static const char *const names[] = {"uniform", "normal", "kaiming"};
    return name_index(names, 3, name);     /* MT_FB_UNIFORM .. MT_FB_KAIMING */
}

static int init_from_name(const char *name)
{
    static const char *const names[] = {"kaiming", "xavier"};
    return name_index(names, 2, name);     /* MT_INIT_KAIMING, MT_INIT_XAVIER */
}

/* Values per sample of a named dataset; 0 for idx and synthetic. */
static int named_input(int kind)
{
    switch (kind) {
    case MT_DATA_MNIST:
    case MT_DATA_FASHION: return 784;
    case MT_DATA_CIFAR10: return 3072;
    }
    return 0;
}

/* The image shape of a named dataset; {0} for idx and synthetic. */
static struct mt_shape named_shape(int kind)
{
    switch (kind) {
    case MT_DATA_MNIST:
    case MT_DATA_FASHION: return (struct mt_shape){1, 28, 28};
    case MT_DATA_CIFAR10: return (struct mt_shape){3, 32, 32};
    }
    return (struct mt_shape){0, 0, 0};
}

/* ------------------------------------------------------------------------ */
/* Scalars: numbers, booleans, byte counts                                  */

/* The whole text is a decimal integer with an optional sign. */
static int parse_ll(const char *t, long long *out)
{
    const char *d = (*t == '-' || *t == '+') ? t + 1 : t;
    if (!isdigit((unsigned char)*d))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(t, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *t, uint64_t *out)
{
    const char *d = (*t == '+') ? t + 1 : t;
    if (!isdigit((unsigned char)*d))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(t, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* A finite decimal number ("1e-4", "0.9", "3"); no hex, inf or nan. */
static int parse_double(const char *t, double *out)
{
    if (!*t || strspn(t, "0123456789+-.eE") != strlen(t))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(t, &end);
    if (end == t || *end || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *t)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(t, yes[i]) == 0)
            return 1;
        if (strcasecmp(t, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Key tables                                                               */

#define NKEYS(t) (sizeof t / sizeof t[0])
#define FIELD(f) .off = offsetof(struct mt_spec, f), .size = sizeof(((struct mt_spec *)0)->f)
#define KSTR(n, r, f) {.name = n, .type = SK_STR, .range = r, FIELD(f)}
#define KNUM(n, t, r, f) {.name = n, .type = t, .range = r, FIELD(f)}
#define KOPT(n, t, r, f) {.name = n, .type = t, .range = r, FIELD(f), .unset_ok = 1}
#define KREQ(n, t, r, f) {.name = n, .type = t, .range = r, FIELD(f), .required = 1}
#define KENUM(n, f, fn, list, count, unset) \
    {.name = n, .type = SK_ENUM, FIELD(f), .from_name = fn, .names = list, \
     .n_values = count, .unset_ok = unset}
#define KFN(n, func, req) {.name = n, .type = SK_FN, .fn = func, .required = req}
/* A by-hand key whose value is an enum name (its names for the bridge). */
#define KFNE(n, func, fn_from, list) \
    {.name = n, .type = SK_FN, .fn = func, .from_name = fn_from, .names = list}
/* A rule setting: optional, and refused for rules whose flags lack `flag`. */
#define KRULE(n, t, r, f, flag) \
    {.name = n, .type = t, .range = r, FIELD(f), .unset_ok = 1, .rule_flag = flag}

static int parse_dataset(struct spec_parse *ps);
static int parse_augment(struct spec_parse *ps);
static int parse_model(struct spec_parse *ps);
static int parse_rule(struct spec_parse *ps);
static int parse_optimizer(struct spec_parse *ps);
static int parse_schedule(struct spec_parse *ps);
static int parse_hidden(struct spec_parse *ps);
static int set_rule_name(struct spec_parse *ps);
static int set_default_act(struct spec_parse *ps);
static int set_classes(struct spec_parse *ps);
static int set_layer_width(struct spec_parse *ps);
static int set_layer_act(struct spec_parse *ps);
static int set_default_norm(struct spec_parse *ps);
static int set_layer_norm(struct spec_parse *ps);
static int set_input(struct spec_parse *ps);
static int parse_layers(struct spec_parse *ps);

/* A section: its YAML reader and its rows. */
#define KSUB(n, func, req, section) \
    {.name = n, .type = SK_FN, .fn = func, .required = req, .sub = &section}

static const struct spec_section dataset_section, augment_section, model_section, rule_section, optim_section,
    sched_section;

static const struct spec_key top_keys[] = {
    KSTR("name", SR_POS, name),
    KSUB("dataset", parse_dataset, 1, dataset_section),
    KSUB("model", parse_model, 1, model_section),
    KSUB("rule", parse_rule, 0, rule_section),
    KSUB("optimizer", parse_optimizer, 0, optim_section),
    KSUB("schedule", parse_schedule, 0, sched_section),
    KREQ("batch", SK_INT, SR_POS, batch),
    KREQ("epochs", SK_INT, SR_POS, epochs),
    KNUM("seed", SK_U64, SR_ANY, seed),
    KNUM("threads", SK_INT, SR_NONNEG, threads),
    KNUM("memory_limit", SK_BYTES, SR_ANY, memory_limit),
    KNUM("checkpoint_every", SK_INT, SR_NONNEG, checkpoint_every),
    KNUM("keep_checkpoints", SK_INT, SR_POS, keep_checkpoints),
};

static const struct spec_key dataset_keys[] = {
    {.name = "name", .type = SK_ENUM, FIELD(data.kind), .required = 1,
     .from_name = data_kind_from_name, .names = "mnist, fashion-mnist, cifar10, idx, synthetic",
     .n_values = MT_DATA_SYNTHETIC + 1},
    KSTR("dir", SR_ANY, data.dir),
    KSTR("train_images", SR_ANY, data.train_images),
    KSTR("train_labels", SR_ANY, data.train_labels),
    KSTR("test_images", SR_ANY, data.test_images),
    KSTR("test_labels", SR_ANY, data.test_labels),
    KENUM("normalize", data.normalize, data_normalize_from_name, "standard, scale, none",
          MT_NORM_NONE + 1, 0),
    KNUM("train_limit", SK_LONG, SR_NONNEG, data.train_limit),
    KNUM("test_limit", SK_LONG, SR_NONNEG, data.test_limit),
    KNUM("synthetic_train", SK_LONG, SR_POS, data.synthetic_train),
    KNUM("synthetic_test", SK_LONG, SR_POS, data.synthetic_test),
    KNUM("synthetic_seed", SK_U64, SR_ANY, data.synthetic_seed),
    KSUB("augment", parse_augment, 0, augment_section),
};

static const struct spec_key augment_keys[] = {
    KNUM("crop", SK_INT, SR_NONNEG, data.augment.crop),
    KNUM("flip", SK_BOOL, SR_ANY, data.augment.flip),
};

static const struct spec_key model_keys[] = {
    KFN("input", set_input, 0),
    KFN("hidden", parse_hidden, 0),
    KFN("layers", parse_layers, 0),
    KFNE("activation", set_default_act, act_from_name, ACT_NAMES),
    KFN("classes", set_classes, 0),
    KENUM("init", model.init, init_from_name, "kaiming, xavier", MT_INIT_XAVIER + 1, 0),
    KFNE("norm", set_default_norm, norm_kind_from_name, NORM_NAMES),
};

static const struct spec_key layer_keys[] = {
    KFN("width", set_layer_width, 1),
    KFNE("activation", set_layer_act, act_from_name, ACT_NAMES),
    KFNE("norm", set_layer_norm, norm_kind_from_name, NORM_NAMES),
};

/* Every key but `name` is a rule setting (struct mt_rule_spec). */
static const struct spec_key rule_keys[] = {
    {.name = "name", .type = SK_RULE, .range = SR_POS, FIELD(rule.name)},
    {.name = "feedback_init", .type = SK_ENUM, FIELD(rule.feedback_init),
     .from_name = feedback_init_from_name, .names = "uniform, normal, kaiming",
     .n_values = MT_FB_KAIMING + 1, .unset_ok = 1, .rule_flag = MT_RULE_FEEDBACK},
    KRULE("feedback_scale", SK_FLOAT, SR_POS, rule.feedback_scale, MT_RULE_FEEDBACK),
    KRULE("binary", SK_BOOL, SR_ANY, rule.binary, MT_RULE_BINARY),
    KRULE("epsilon", SK_FLOAT, SR_POS, rule.epsilon, MT_RULE_EPSILON),
    KRULE("kappa", SK_FLOAT, SR_POS, rule.kappa, MT_RULE_KAPPA),
    KRULE("recompute_inputs", SK_BOOL, SR_ANY, rule.recompute_inputs, MT_RULE_RECOMPUTE),
    KRULE("groups", SK_INT, SR_POS, rule.groups, MT_RULE_GROUPS),
    KRULE("segments", SK_INT, SR_POS, rule.segments, MT_RULE_SEGMENTS),
    KRULE("samples", SK_INT, SR_POS, rule.samples, MT_RULE_SAMPLES),
};

static const struct spec_key optim_keys[] = {
    KENUM("name", optim.kind, optim_kind_from_name, "sgd, adam, adamw", MT_OPT_ADAMW + 1, 1),
    KOPT("lr", SK_FLOAT, SR_POS, optim.lr),
    KOPT("momentum", SK_FLOAT, SR_UNIT, optim.momentum),
    KOPT("nesterov", SK_BOOL, SR_ANY, optim.nesterov),
    KOPT("beta1", SK_FLOAT, SR_UNIT, optim.beta1),
    KOPT("beta2", SK_FLOAT, SR_UNIT, optim.beta2),
    KOPT("eps", SK_FLOAT, SR_POS, optim.eps),
    KOPT("weight_decay", SK_FLOAT, SR_NONNEG, optim.weight_decay),
};

static const struct spec_key sched_keys[] = {
    KENUM("name", sched.kind, optim_sched_kind_from_name, "constant, step, cosine",
          MT_SCHED_COSINE + 1, 0),
    KNUM("warmup_epochs", SK_FLOAT, SR_NONNEG, sched.warmup_epochs),
    KNUM("step_epochs", SK_INT, SR_POS, sched.step_epochs),
    KNUM("gamma", SK_FLOAT, SR_POS, sched.gamma),
    KNUM("min_lr", SK_FLOAT, SR_NONNEG, sched.min_lr),
};

static const struct spec_section dataset_section = {"dataset", dataset_keys, NKEYS(dataset_keys)};
static const struct spec_section augment_section = {"dataset.augment", augment_keys,
                                                    NKEYS(augment_keys)};
const struct spec_section spec_layer_fields = {"model.hidden[]", layer_keys, NKEYS(layer_keys)};
static const struct spec_section model_section = {"model", model_keys, NKEYS(model_keys)};
static const struct spec_section rule_section = {"rule", rule_keys, NKEYS(rule_keys)};
static const struct spec_section optim_section = {"optimizer", optim_keys, NKEYS(optim_keys)};
static const struct spec_section sched_section = {"schedule", sched_keys, NKEYS(sched_keys)};
const struct spec_section spec_fields = {"", top_keys, NKEYS(top_keys)};

const char *spec_key_expected(const struct spec_key *k)
{
    switch (k->type) {
    case SK_STR:
        return k->range == SR_POS ? "a non-empty string" : "a string";
    case SK_INT:
    case SK_LONG:
        return k->range == SR_POS ? "a positive integer"
             : k->range == SR_NONNEG ? "a non-negative integer" : "an integer";
    case SK_U64:
        return "a non-negative integer";
    case SK_FLOAT:
        return k->range == SR_POS ? "a positive number"
             : k->range == SR_NONNEG ? "a non-negative number"
             : k->range == SR_UNIT ? "a number in [0, 1)" : "a number";
    case SK_BOOL:
        return "true or false";
    case SK_BYTES:
        return MT_BYTESIZE_FORMS;
    case SK_RULE:
        return "a rule name";
    case SK_ENUM:
    case SK_FN:
        break;
    }
    return "a value";
}

static int in_range(double v, enum spec_range r)
{
    switch (r) {
    case SR_NONNEG: return v >= 0;
    case SR_POS: return v > 0;
    case SR_UNIT: return v >= 0 && v < 1;
    case SR_ANY: break;
    }
    return 1;
}

/* Longest value a key of this integer type may hold. */
static long long int_max(enum spec_ktype t)
{
    return t == SK_INT ? INT_MAX : LONG_MAX;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

/* Where a cross-field error points: the file and the lines of the sections
 * (0 = unknown), or nothing when the spec did not come from a file. */
struct where {
    const char *file;
    size_t line_dataset, line_model;
};

static int where_fail(struct mt_err *err, const struct where *w, size_t line, const char *path,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int where_fail(struct mt_err *err, const struct where *w, size_t line, const char *path,
                      const char *fmt, ...)
{
    char text[MT_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (w && line)
        mt_err_set(err, MT_E_INVAL, "%s:%zu: %s: %.400s", w->file, line, path, text);
    else if (w)
        mt_err_set(err, MT_E_INVAL, "%s: %s: %.400s", w->file, path, text);
    else
        mt_err_set(err, MT_E_INVAL, "%s: %.400s", path, text);
    return MT_E_INVAL;   /* a constant, so the compiler sees that callers return early */
}

/* ------------------------------------------------------------------------ */
/* The event walk                                                           */

struct spec_parse {
    struct mt_yaml y;                      /* the walk: event, file, path, err */
    struct mt_spec *s;
    int n_hidden;
    int layer;                             /* hidden layer being read, 1-based */
    int act_default;                       /* model.activation */
    unsigned char act_given[MT_MAX_LAYERS + 1];
    int norm_default;                      /* model.norm */
    size_t line_norm;                      /* its line; 0 = not given */
    size_t line_act;                       /* model.activation's line; 0 = not given */
    size_t norm_line[MT_MAX_LAYERS + 1];   /* line of model.hidden[l-1].norm; 0 = not given */
    int classes;                           /* model.classes; 0 = not given */
    int have_hidden;                       /* model.hidden given */
    size_t key_line;                       /* line of the key whose value is being read */
    size_t line_dataset, line_model;       /* lines of the section keys */
    size_t rule_line[NKEYS(rule_keys)];    /* line of each rule key; 0 = not given */
};

static int want_ll(struct spec_parse *ps, enum spec_ktype type, enum spec_range r, const char *what,
                   long long *out)
{
    const char *t;
    size_t n;
    int rc = mt_yaml_scalar(&ps->y, what, &t, &n);
    if (rc)
        return rc;
    long long v;
    if (parse_ll(t, &v) || v > int_max(type) || v < -int_max(type) - 1 || !in_range((double)v, r))
        return mt_yaml_bad_value(&ps->y, what, t, n);
    *out = v;
    return 0;
}

static int want_enum(struct spec_parse *ps, int (*from_name)(const char *), const char *names,
                     int *out)
{
    const char *t;
    size_t n;
    char what[160];
    snprintf(what, sizeof what, "one of: %s", names);
    int rc = mt_yaml_scalar(&ps->y, what, &t, &n);
    if (rc)
        return rc;
    int v = from_name(t);
    if (v < 0) {
        char shown[MT_SHOW_LEN + 4];
        mt_err_show(shown, sizeof shown, t, n);
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "unknown value '%s' (expected one of: %s)", shown, names);
    }
    *out = v;
    return 0;
}

static int set_string(struct spec_parse *ps, const struct spec_key *k, char *dst)
{
    const char *t;
    size_t n;
    int rc = mt_yaml_scalar(&ps->y, spec_key_expected(k), &t, &n);
    if (rc)
        return rc;
    if (mt_yaml_is_null(&ps->y))
        n = 0;
    if (n >= k->size)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "too long (%zu bytes, at most %zu)", n, k->size - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
            return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "contains a control character");
    if (k->range == SR_POS && n == 0)
        return mt_yaml_bad_value(&ps->y, spec_key_expected(k), t, 0);
    memcpy(dst, t, n);
    dst[n] = '\0';
    return 0;
}

/* Store the current value into the key's field. */
static int set_value(struct spec_parse *ps, const struct spec_key *k)
{
    char *dst = (char *)ps->s + k->off;
    const char *what = spec_key_expected(k), *t;
    size_t n;
    long long ll = 0;
    int rc, iv = 0;
    switch (k->type) {
    case SK_FN:
        return k->fn(ps);
    case SK_RULE:
        return set_rule_name(ps);
    case SK_STR:
        return set_string(ps, k, dst);
    case SK_INT:
    case SK_LONG:
        if ((rc = want_ll(ps, k->type, k->range, what, &ll)))
            return rc;
        if (k->type == SK_INT)
            *(int *)(void *)dst = (int)ll;
        else
            *(long *)(void *)dst = (long)ll;
        return 0;
    case SK_ENUM:
        if ((rc = want_enum(ps, k->from_name, k->names, &iv)))
            return rc;
        memcpy(dst, &iv, sizeof iv);
        return 0;
    default:
        break;
    }
    if ((rc = mt_yaml_scalar(&ps->y, what, &t, &n)))
        return rc;
    if (k->type == SK_U64) {
        uint64_t u;
        if (parse_u64(t, &u))
            return mt_yaml_bad_value(&ps->y, what, t, n);
        memcpy(dst, &u, sizeof u);
    } else if (k->type == SK_FLOAT) {
        double d;
        if (parse_double(t, &d) || fabs(d) > FLT_MAX || !in_range((float)d, k->range))
            return mt_yaml_bad_value(&ps->y, what, t, n);
        *(float *)(void *)dst = (float)d;
    } else if (k->type == SK_BOOL) {
        if ((iv = parse_bool(t)) < 0)
            return mt_yaml_bad_value(&ps->y, what, t, n);
        *(int *)(void *)dst = iv;
    } else { /* SK_BYTES */
        struct mt_err berr;
        uint64_t b;
        if (mt_bytesize_parse(t, &b, &berr))
            return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "%s", berr.msg);
        *(size_t *)(void *)dst = (size_t)b;
    }
    return 0;
}

/* Walk a mapping (the current event is its start) through a key table.
 * map_line (the line of the key that holds the mapping, 0 at the top level)
 * goes into missing-key messages. */
static int parse_map(struct spec_parse *ps, const struct spec_key *keys, size_t nkeys, size_t map_line)
{
    struct mt_yaml_map m;
    int rc;
    mt_yaml_map_begin(&m, keys, nkeys, sizeof keys[0]);
    while ((rc = mt_yaml_map_next(&ps->y, &m)) == 1) {
        ps->key_line = m.line;
        if (keys == rule_keys)
            ps->rule_line[m.index] = m.line;
        if ((rc = set_value(ps, &keys[m.index])))
            return rc;
    }
    if (rc)
        return rc;
    for (size_t i = 0; i < nkeys; i++) {
        if (!keys[i].required || m.seen[i])
            continue;
        const char *path = ps->y.path, *dot = ps->y.plen ? "." : "";
        if (map_line)
            return mt_err_set(ps->y.err, MT_E_INVAL, "%s:%zu: missing required key '%s%s%s'",
                              ps->y.file, map_line, path, dot, keys[i].name);
        return mt_err_set(ps->y.err, MT_E_INVAL, "%s: missing required key '%s%s%s'",
                          ps->y.file, path, dot, keys[i].name);
    }
    return 0;
}

/* A section that is either a mapping or, as a shorthand, just its name. */
static int parse_section(struct spec_parse *ps, const struct spec_key *keys, size_t nkeys)
{
    if (ps->y.ev.type == YAML_SCALAR_EVENT)
        return set_value(ps, &keys[0]);
    if (ps->y.ev.type != YAML_MAPPING_START_EVENT)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "expected a name or a mapping, got %s", mt_yaml_kind(&ps->y));
    return parse_map(ps, keys, nkeys, ps->key_line);
}

static int parse_dataset(struct spec_parse *ps)
{
    ps->line_dataset = ps->key_line;
    return parse_section(ps, dataset_keys, NKEYS(dataset_keys));
}

/* dataset.augment: a mapping {crop, flip}, or `none` (or nothing) for off. */
static int parse_augment(struct spec_parse *ps)
{
    static const char what[] = "none or a mapping {crop, flip}";
    if (ps->y.ev.type == YAML_MAPPING_START_EVENT)
        return parse_map(ps, augment_keys, NKEYS(augment_keys), ps->key_line);
    const char *t;
    size_t n;
    int rc = mt_yaml_scalar(&ps->y, what, &t, &n);
    if (rc)
        return rc;
    if (!mt_yaml_is_null(&ps->y) && strcmp(t, "none") != 0)
        return mt_yaml_bad_value(&ps->y, what, t, n);
    ps->s->data.augment = (struct mt_augment){0};
    return 0;
}

static int parse_rule(struct spec_parse *ps)
{
    return parse_section(ps, rule_keys, NKEYS(rule_keys));
}

static int parse_optimizer(struct spec_parse *ps)
{
    return parse_section(ps, optim_keys, NKEYS(optim_keys));
}

static int parse_schedule(struct spec_parse *ps)
{
    return parse_section(ps, sched_keys, NKEYS(sched_keys));
}

/* Rule names come from the rule table, so the message lists what exists. */
static int set_rule_name(struct spec_parse *ps)
{
    const char *t;
    size_t n;
    int rc = mt_yaml_scalar(&ps->y, "a rule name", &t, &n);
    if (rc)
        return rc;
    if (n < sizeof ps->s->rule.name && rule_find(t)) {
        memcpy(ps->s->rule.name, t, n + 1);
        return 0;
    }
    char names[160], shown[MT_SHOW_LEN + 4];
    size_t used = 0;
    names[0] = '\0';
    const struct mt_rule *const *list = rule_list();
    for (int i = 0; list && list[i] && used < sizeof names; i++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                                 list[i]->name);
    mt_err_show(shown, sizeof shown, t, n);
    return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "unknown rule '%s' (expected one of: %s)", shown, names);
}

static int parse_model(struct spec_parse *ps)
{
    if (ps->y.ev.type != YAML_MAPPING_START_EVENT)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "expected a mapping, got %s", mt_yaml_kind(&ps->y));
    ps->line_model = ps->key_line;
    int rc = parse_map(ps, model_keys, NKEYS(model_keys), ps->line_model);
    if (rc)
        return rc;
    struct mt_model_desc *m = &ps->s->model;
    if (m->n_spec > 0 && ps->have_hidden)
        return mt_err_set(ps->y.err, MT_E_INVAL, "%s:%zu: model: give either hidden (an MLP) "
                          "or layers (a layer list), not both", ps->y.file, ps->line_model);
    if (m->n_spec > 0 && (ps->line_act || ps->line_norm))
        return mt_err_set(ps->y.err, MT_E_INVAL, "%s:%zu: model.%s: applies to model.hidden "
                          "only; in a layer list each %s is an entry of model.layers",
                          ps->y.file, ps->line_act ? ps->line_act : ps->line_norm,
                          ps->line_act ? "activation" : "norm",
                          ps->line_act ? "activation" : "norm layer (batchnorm, layernorm)");
    if (m->n_spec == 0 && !ps->have_hidden)
        return mt_err_set(ps->y.err, MT_E_INVAL, "%s:%zu: missing required key "
                          "'model.hidden' (an MLP) or 'model.layers' (a layer list)",
                          ps->y.file, ps->line_model);
    for (int l = 1; l <= ps->n_hidden; l++) {
        if (!ps->act_given[l])
            m->act[l] = (enum mt_act)ps->act_default;
        if (!ps->norm_line[l])
            m->norm[l] = (enum mt_normkind)ps->norm_default;
    }
    m->n_layers = ps->n_hidden + 1;
    m->act[m->n_layers] = MT_ACT_IDENTITY;
    m->width[m->n_layers] = ps->classes;
    return 0;
}

static int parse_layer(struct spec_parse *ps)
{
    if (ps->y.ev.type == YAML_SCALAR_EVENT)
        return set_layer_width(ps);
    if (ps->y.ev.type != YAML_MAPPING_START_EVENT)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y),
                    "expected a width or a mapping {width, activation, norm}, got %s",
                    mt_yaml_kind(&ps->y));
    return parse_map(ps, layer_keys, NKEYS(layer_keys), mt_yaml_line(&ps->y));
}

static int parse_hidden(struct spec_parse *ps)
{
    ps->have_hidden = 1;
    if (ps->y.ev.type != YAML_SEQUENCE_START_EVENT)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "expected a list of layers, got %s", mt_yaml_kind(&ps->y));
    for (;;) {
        int rc = mt_yaml_next(&ps->y);
        if (rc)
            return rc;
        if (ps->y.ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (ps->n_hidden >= MT_MAX_LAYERS - 1)
            return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "more than %d hidden layers", MT_MAX_LAYERS - 1);
        ps->layer = ++ps->n_hidden;
        size_t old = mt_yaml_path_index(&ps->y, ps->n_hidden - 1);
        if ((rc = parse_layer(ps)))
            return rc;
        mt_yaml_path_pop(&ps->y, old);
    }
}

/* One size, 1..MT_MAX_DIM (range SR_POS) or 0..MT_MAX_DIM (SR_NONNEG). */
static int want_size(struct spec_parse *ps, enum spec_range r, int *out)
{
    long long v = 0;
    int rc = want_ll(ps, SK_INT, r, r == SR_POS ? "a positive integer" : "a non-negative integer",
                     &v);
    if (rc)
        return rc;
    if (v > MT_MAX_DIM)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "%lld is larger than %d", v,
                            MT_MAX_DIM);
    *out = (int)v;
    return 0;
}

/* A list of exactly n positive sizes ("[channels, height, width]"). */
static int want_sizes(struct spec_parse *ps, int n, int *out, const char *form)
{
    size_t line = mt_yaml_line(&ps->y);
    for (int k = 0;; k++) {
        int rc = mt_yaml_next(&ps->y);
        if (rc)
            return rc;
        if (ps->y.ev.type == YAML_SEQUENCE_END_EVENT) {
            if (k == n)
                return 0;
            break;
        }
        if (k == n || (rc = want_size(ps, SR_POS, &out[k])))
            return k == n ? mt_yaml_fail(&ps->y, line, "expected %s", form) : rc;
    }
    return mt_yaml_fail(&ps->y, line, "expected %s", form);
}

/* model.input: a count of values (an MLP) or a shape [channels, height,
 * width] (a layer list; the count is their product). */
static int set_input(struct spec_parse *ps)
{
    struct mt_model_desc *m = &ps->s->model;
    long long v = 0;
    int dims[3], rc;
    if (ps->y.ev.type != YAML_SEQUENCE_START_EVENT) {
        rc = want_ll(ps, SK_INT, SR_POS, "a positive integer or [channels, height, width]", &v);
        if (rc == 0)
            m->width[0] = (int)v;
        return rc;
    }
    size_t line = mt_yaml_line(&ps->y);
    if ((rc = want_sizes(ps, 3, dims, "[channels, height, width]")))
        return rc;
    m->input = (struct mt_shape){dims[0], dims[1], dims[2]};
    size_t count = shape_count(m->input);
    if (count > (1u << 24))
        return mt_yaml_fail(&ps->y, line, "%zu values per sample: at most %d", count, 1 << 24);
    m->width[0] = (int)count;
    return 0;
}

/* The keys each layer kind takes (the first is what a scalar value sets:
 * "dense: 500", "maxpool: 2", "act: relu", "residual: 32"). */
struct layer_key {
    const char *name;
};
static const struct layer_key dense_lkeys[] = {{"units"}, {"bias"}};
static const struct layer_key conv_lkeys[] = {{"channels"}, {"kernel"}, {"stride"},
                                              {"padding"}, {"bias"}};
static const struct layer_key pool_lkeys[] = {{"kernel"}, {"stride"}};
static const struct layer_key act_lkeys[] = {{"activation"}};
static const struct layer_key res_lkeys[] = {{"channels"}, {"stride"}, {"activation"}};

static const struct layer_key *layer_keys_of(enum mt_layer_kind k, size_t *n)
{
    switch (k) {
    case MT_LK_DENSE: *n = NKEYS(dense_lkeys); return dense_lkeys;
    case MT_LK_CONV: *n = NKEYS(conv_lkeys); return conv_lkeys;
    case MT_LK_MAXPOOL:
    case MT_LK_AVGPOOL: *n = NKEYS(pool_lkeys); return pool_lkeys;
    case MT_LK_ACT: *n = NKEYS(act_lkeys); return act_lkeys;
    case MT_LK_RESIDUAL: *n = NKEYS(res_lkeys); return res_lkeys;
    default: *n = 0; return NULL;
    }
}

#define LAYER_KINDS "dense, conv, maxpool, avgpool, globalavgpool, flatten, batchnorm, " \
                    "layernorm, act, residual, or an activation (" ACT_NAMES ")"

/* One size, or with `pair` also [height, width] (kernels). */
static int want_dim(struct spec_parse *ps, int pair, int *a, int *b)
{
    if (pair && ps->y.ev.type == YAML_SEQUENCE_START_EVENT) {
        int dims[2], rc = want_sizes(ps, 2, dims, "[height, width]");
        if (rc == 0) {
            *a = dims[0];
            *b = dims[1];
        }
        return rc;
    }
    int rc = want_size(ps, SR_POS, a);
    if (rc == 0 && b)
        *b = *a;
    return rc;
}

static int set_layer_key(struct spec_parse *ps, struct mt_layer_spec *L, const char *key)
{
    int rc;
    if (strcmp(key, "units") == 0 || strcmp(key, "channels") == 0)
        return want_dim(ps, 0, &L->units, NULL);
    if (strcmp(key, "kernel") == 0)
        return want_dim(ps, 1, &L->kh, &L->kw);
    if (strcmp(key, "stride") == 0)
        return want_dim(ps, 0, &L->stride, NULL);
    if (strcmp(key, "padding") == 0)
        return want_size(ps, SR_NONNEG, &L->pad);
    if (strcmp(key, "bias") == 0) {
        const char *t;
        size_t n;
        if ((rc = mt_yaml_scalar(&ps->y, "true or false", &t, &n)))
            return rc;
        if ((L->bias = parse_bool(t)) < 0)
            return mt_yaml_bad_value(&ps->y, "true or false", t, n);
        return 0;
    }
    int a = 0; /* activation */
    if ((rc = want_enum(ps, act_from_name, ACT_NAMES, &a)) == 0)
        L->act = (enum mt_act)a;
    return rc;
}

/* The required key of each kind that has one. */
static const char *layer_required(enum mt_layer_kind k, const struct mt_layer_spec *L)
{
    if ((k == MT_LK_DENSE || k == MT_LK_CONV || k == MT_LK_RESIDUAL) && L->units <= 0)
        return k == MT_LK_DENSE ? "units" : "channels";
    if ((k == MT_LK_CONV || k == MT_LK_MAXPOOL || k == MT_LK_AVGPOOL) && L->kh <= 0)
        return "kernel";
    return NULL;
}

/* One entry of model.layers: a kind name ("flatten", "relu"), or a mapping
 * of one kind to its value (a scalar for the kind's first key, or a mapping
 * of its keys). */
static int parse_layer_entry(struct spec_parse *ps, struct mt_layer_spec *L)
{
    const char *t;
    size_t n, line = mt_yaml_line(&ps->y);
    char name[32];
    int rc, mapping = ps->y.ev.type == YAML_MAPPING_START_EVENT;
    if (mapping && (rc = mt_yaml_next(&ps->y)))
        return rc;
    if ((rc = mt_yaml_scalar(&ps->y, "a layer kind (" LAYER_KINDS ")", &t, &n)))
        return rc;
    snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), t);
    int kind = layer_kind_from_name(name), act = act_from_name(name);
    if (kind == MT_LK_ADD)
        kind = -1; /* a residual join: only inside a residual block */
    if (kind < 0 && act >= 0)
        kind = MT_LK_ACT;
    if (kind < 0) {
        char shown[MT_SHOW_LEN + 4];
        mt_err_show(shown, sizeof shown, t, n);
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y),
                            "unknown layer kind '%s' (expected %s)", shown, LAYER_KINDS);
    }
    *L = (struct mt_layer_spec){.kind = (enum mt_layer_kind)kind, .stride = 0, .bias = 1,
                                .act = act >= 0 ? (enum mt_act)act : MT_ACT_RELU};
    size_t nkeys;
    const struct layer_key *keys = layer_keys_of(L->kind, &nkeys);
    size_t old = ps->y.plen;
    if (mapping) {
        size_t nl = strlen(name);
        if (ps->y.plen + nl + 2 < sizeof ps->y.path) {
            snprintf(ps->y.path + ps->y.plen, sizeof ps->y.path - ps->y.plen, ".%s", name);
            ps->y.plen += nl + 1;
        }
        if ((rc = mt_yaml_next(&ps->y)))
            return rc;
        if (ps->y.ev.type == YAML_MAPPING_START_EVENT) {
            if (!keys)
                return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "takes no settings");
            struct mt_yaml_map m;
            mt_yaml_map_begin(&m, keys, nkeys, sizeof keys[0]);
            while ((rc = mt_yaml_map_next(&ps->y, &m)) == 1)
                if ((rc = set_layer_key(ps, L, keys[m.index].name)))
                    return rc;
            if (rc)
                return rc;
        } else if (keys) {
            if ((rc = set_layer_key(ps, L, keys[0].name)))
                return rc;
        } else if (!mt_yaml_is_null(&ps->y)) {
            return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "takes no settings");
        }
        if ((rc = mt_yaml_next(&ps->y)))
            return rc;
        if (ps->y.ev.type != YAML_MAPPING_END_EVENT)
            return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y),
                                "one layer per list entry (start another with '- ')");
    }
    const char *miss = layer_required(L->kind, L);
    ps->y.plen = old;
    ps->y.path[old] = '\0';
    if (miss)
        return mt_yaml_fail(&ps->y, line, "%s: missing required key '%s'", name, miss);
    if (L->stride == 0)
        L->stride = L->kind == MT_LK_MAXPOOL || L->kind == MT_LK_AVGPOOL ? L->kh : 1;
    return 0;
}

static int parse_layers(struct spec_parse *ps)
{
    struct mt_model_desc *m = &ps->s->model;
    if (ps->y.ev.type != YAML_SEQUENCE_START_EVENT)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "expected a list of layers, got %s",
                            mt_yaml_kind(&ps->y));
    for (;;) {
        int rc = mt_yaml_next(&ps->y);
        if (rc)
            return rc;
        if (ps->y.ev.type == YAML_SEQUENCE_END_EVENT)
            break;
        if (m->n_spec >= MT_MAX_SPEC_LAYERS)
            return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "more than %d layers",
                                MT_MAX_SPEC_LAYERS);
        size_t old = mt_yaml_path_index(&ps->y, m->n_spec);
        if ((rc = parse_layer_entry(ps, &m->spec_layer[m->n_spec])))
            return rc;
        mt_yaml_path_pop(&ps->y, old);
        m->n_spec++;
    }
    if (m->n_spec == 0)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y), "expected at least one layer");
    return 0;
}

static int set_layer_width(struct spec_parse *ps)
{
    long long v = 0;
    int rc = want_ll(ps, SK_INT, SR_POS, "a positive integer", &v);
    if (rc == 0)
        ps->s->model.width[ps->layer] = (int)v;
    return rc;
}

static int set_layer_act(struct spec_parse *ps)
{
    int a = 0, rc = want_enum(ps, act_from_name, ACT_NAMES, &a);
    if (rc == 0) {
        ps->s->model.act[ps->layer] = (enum mt_act)a;
        ps->act_given[ps->layer] = 1;
    }
    return rc;
}

static int set_default_act(struct spec_parse *ps)
{
    ps->line_act = ps->key_line;
    return want_enum(ps, act_from_name, ACT_NAMES, &ps->act_default);
}

static int set_layer_norm(struct spec_parse *ps)
{
    int k = 0, rc = want_enum(ps, norm_kind_from_name, NORM_NAMES, &k);
    if (rc == 0) {
        ps->s->model.norm[ps->layer] = (enum mt_normkind)k;
        ps->norm_line[ps->layer] = ps->key_line;
    }
    return rc;
}

static int set_default_norm(struct spec_parse *ps)
{
    ps->line_norm = ps->key_line;
    return want_enum(ps, norm_kind_from_name, NORM_NAMES, &ps->norm_default);
}

static int set_classes(struct spec_parse *ps)
{
    long long v = 0;
    int rc = want_ll(ps, SK_INT, SR_POS, "a positive integer", &v);
    if (rc == 0)
        ps->classes = (int)v;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Checks shared by the parser and spec_finish                              */

/* Rules that span sections: the dataset decides which paths and which
 * model sizes must be given. */
static int check_cross(const struct mt_spec *s, const struct where *w, struct mt_err *err)
{
    static const char *const idx_keys[] = {"train_images", "train_labels", "test_images",
                                           "test_labels"};
    const struct mt_data_spec *d = &s->data;
    const char *paths[] = {d->train_images, d->train_labels, d->test_images, d->test_labels};
    size_t ld = w ? w->line_dataset : 0, lm = w ? w->line_model : 0;
    const char *kind = data_kind_name(d->kind);
    char path[64];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "dataset.%s", idx_keys[i]);
        if (d->kind == MT_DATA_IDX && !paths[i][0])
            return where_fail(err, w, ld, path, "required for dataset 'idx'");
        if (d->kind != MT_DATA_IDX && paths[i][0])
            return where_fail(err, w, ld, path, "only used with dataset 'idx', not '%s'", kind);
    }
    int input = named_input(d->kind), classes = s->model.width[s->model.n_layers];
    if (!input && s->model.width[0] <= 0)
        return where_fail(err, w, lm, "model.input", "required for dataset '%s'", kind);
    if (input && s->model.width[0] && s->model.width[0] != input)
        return where_fail(err, w, lm, "model.input",
                          "%d does not match dataset '%s' (%d values per sample)",
                          s->model.width[0], kind, input);
    if (!input && classes <= 0)
        return where_fail(err, w, lm, "model.classes", "required for dataset '%s'", kind);
    return 0;
}

int spec_key_check(const struct spec_key *k, const char *path, const struct mt_spec *s,
                   struct mt_err *err)
{
    const char *src = (const char *)s + k->off;
    long long ll = 0;
    int iv;
    float f;
    switch (k->type) {
    case SK_STR:
        if (strnlen(src, k->size) == k->size)
            return where_fail(err, NULL, 0, path, "not terminated");
        for (const char *p = src; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return where_fail(err, NULL, 0, path, "contains a control character");
        if (k->range == SR_POS && !*src)
            return where_fail(err, NULL, 0, path, "expected %s", spec_key_expected(k));
        return 0;
    case SK_RULE:
        if (strnlen(src, k->size) == k->size || !rule_find(src))
            return where_fail(err, NULL, 0, path, "unknown rule '%.31s'", src);
        return 0;
    case SK_INT:
    case SK_LONG:
        ll = k->type == SK_INT ? *(const int *)(const void *)src : *(const long *)(const void *)src;
        if ((k->unset_ok && ll == (k->rule_flag ? -1 : 0)) || in_range((double)ll, k->range))
            return 0;
        return where_fail(err, NULL, 0, path, "expected %s, got %lld", spec_key_expected(k), ll);
    case SK_FLOAT:
        f = *(const float *)(const void *)src;
        if ((k->unset_ok && isnan(f)) || (isfinite(f) && in_range(f, k->range)))
            return 0;
        return where_fail(err, NULL, 0, path, "expected %s, got %g", spec_key_expected(k), (double)f);
    case SK_BOOL:
    case SK_ENUM:
        memcpy(&iv, src, sizeof iv);
        if ((k->unset_ok && iv == -1) || (iv >= 0 && iv < (k->type == SK_BOOL ? 2 : k->n_values)))
            return 0;
        return where_fail(err, NULL, 0, path, "invalid value %d", iv);
    case SK_U64:
    case SK_BYTES:
    case SK_FN:
        break;
    }
    return 0;
}

static int check_model(const struct mt_model_desc *m, struct mt_err *err)
{
    if (model_is_graph(m))
        return m->n_spec <= MT_MAX_SPEC_LAYERS ? 0
             : where_fail(err, NULL, 0, "model.layers", "more than %d layers",
                          MT_MAX_SPEC_LAYERS);
    if (m->n_layers < 1 || m->n_layers > MT_MAX_LAYERS)
        return where_fail(err, NULL, 0, "model.hidden", "expected 0 to %d hidden layers, got %d",
                          MT_MAX_LAYERS - 1, m->n_layers - 1);
    for (int l = 1; l < m->n_layers; l++) {
        char path[48];
        snprintf(path, sizeof path, "model.hidden[%d]", l - 1);
        if (m->width[l] <= 0)
            return where_fail(err, NULL, 0, path, "expected a positive width, got %d",
                              m->width[l]);
        if ((int)m->act[l] < 0 || m->act[l] >= MT_ACT_N)
            return where_fail(err, NULL, 0, path, "invalid activation %d", (int)m->act[l]);
        if ((int)m->norm[l] < 0 || m->norm[l] >= MT_NK_N)
            return where_fail(err, NULL, 0, path, "invalid norm %d", (int)m->norm[l]);
    }
    if (m->width[m->n_layers] < 0)
        return where_fail(err, NULL, 0, "model.classes", "expected a positive integer, got %d",
                          m->width[m->n_layers]);
    return 0;
}

/* A rule setting left at its "not given" value (spec.h). */
static int rule_setting_unset(const struct mt_spec *s, const struct spec_key *k)
{
    const char *src = (const char *)s + k->off;
    float f;
    int iv;
    if (k->type == SK_FLOAT) {
        memcpy(&f, src, sizeof f);
        return isnan(f);
    }
    memcpy(&iv, src, sizeof iv);   /* SK_INT, SK_BOOL, SK_ENUM: -1 */
    return iv == -1;
}

/* "rules that do: asa, mezo" (the rules whose flags include `flag`), or
 * "no rule does". */
static void rules_with(char *out, size_t cap, unsigned flag)
{
    const struct mt_rule *const *list = rule_list();
    size_t used = (size_t)snprintf(out, cap, "rules that do:");
    int n = 0;
    for (int i = 0; list[i] && used < cap; i++)
        if (list[i]->flags & flag)
            used += (size_t)snprintf(out + used, cap - used, "%s %s", n++ ? "," : "",
                                     list[i]->name);
    if (n == 0)
        snprintf(out, cap, "no rule does");
}

/* The rule takes every setting given and the model's norm layers: a setting
 * the rule does not read, or a norm layer it cannot train, is refused
 * rather than ignored. `ps` (NULL for a spec from elsewhere) gives lines. */
static int check_rule_fit(const struct mt_spec *s, const struct spec_parse *ps, struct mt_err *err)
{
    const struct mt_rule *r = rule_find(s->rule.name);
    if (!r)
        return 0;   /* check_fields reports it */
    struct where w = {ps ? ps->y.file : NULL, 0, 0};
    const struct where *wp = ps ? &w : NULL;
    char path[64], rules[256];
    for (size_t i = 0; i < NKEYS(rule_keys); i++) {
        const struct spec_key *k = &rule_keys[i];
        if (!k->rule_flag || (r->flags & k->rule_flag) || rule_setting_unset(s, k))
            continue;
        rules_with(rules, sizeof rules, k->rule_flag);
        snprintf(path, sizeof path, "rule.%s", k->name);
        return where_fail(err, wp, ps ? ps->rule_line[i] : 0, path,
                          "rule '%s' does not take this setting (%s)", r->name, rules);
    }
    if (r->flags & MT_RULE_NORMS)
        return 0;
    for (int l = 1; l < s->model.n_layers && l <= MT_MAX_LAYERS; l++) {
        if (s->model.norm[l] == MT_NK_NONE)
            continue;
        size_t line = 0;
        if (ps && !ps->norm_line[l]) {   /* from model.norm */
            line = ps->line_norm;
            snprintf(path, sizeof path, "model.norm");
        } else {
            line = ps ? ps->norm_line[l] : 0;
            snprintf(path, sizeof path, "model.hidden[%d].norm", l - 1);
        }
        rules_with(rules, sizeof rules, MT_RULE_NORMS);
        return where_fail(err, wp, line, path, "rule '%s' does not support norm layers (%s)",
                          r->name, rules);
    }
    return 0;
}

static int check_section(const struct mt_spec *s, const struct spec_section *sec,
                         struct mt_err *err)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct spec_key *k = &sec->keys[i];
        char path[64];
        snprintf(path, sizeof path, "%s%s%s", sec->path, *sec->path ? "." : "", k->name);
        int rc = k->sub ? check_section(s, k->sub, err) : spec_key_check(k, path, s, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_fields(const struct mt_spec *s, struct mt_err *err)
{
    int rc = check_section(s, &spec_fields, err);
    return rc ? rc : check_model(&s->model, err);
}

const struct spec_key *spec_key_find(const struct spec_section *sec, const char *name)
{
    for (size_t i = 0; i < sec->n; i++)
        if (strcmp(sec->keys[i].name, name) == 0)
            return &sec->keys[i];
    return NULL;
}

const char *spec_key_enum_name(const struct spec_key *k, int v, char *buf, size_t cap)
{
    if (k->type != SK_ENUM || v < 0 || v >= k->n_values)
        return NULL;
    const char *p = k->names;
    for (int i = 0; i < v && p; i++)
        if ((p = strchr(p, ',')))
            p += 2;   /* ", " */
    if (!p)
        return NULL;
    size_t n = strcspn(p, ",");
    snprintf(buf, cap, "%.*s", (int)n, p);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                             */

void spec_init(struct mt_spec *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "spec");
    s->data.kind = MT_DATA_MNIST;
    s->data.normalize = MT_NORM_STANDARD;
    s->data.synthetic_train = 2000;
    s->data.synthetic_test = 500;
    s->data.synthetic_seed = 1;
    for (int l = 0; l <= MT_MAX_LAYERS; l++)
        s->model.act[l] = MT_ACT_RELU;
    s->model.init = MT_INIT_KAIMING;
    snprintf(s->rule.name, sizeof s->rule.name, "bp");
    s->rule.feedback_init = MT_FB_DEFAULT;
    s->rule.feedback_scale = NAN;
    s->rule.binary = -1;
    s->rule.epsilon = NAN;
    s->rule.kappa = NAN;
    s->rule.recompute_inputs = -1;
    s->rule.groups = -1;
    s->rule.segments = -1;
    s->rule.samples = -1;
    s->optim.kind = MT_OPT_DEFAULT;
    s->optim.lr = NAN;
    s->optim.momentum = NAN;
    s->optim.nesterov = -1;
    s->optim.beta1 = NAN;
    s->optim.beta2 = NAN;
    s->optim.eps = NAN;
    s->optim.weight_decay = NAN;
    s->sched.kind = MT_SCHED_CONSTANT;
    s->sched.warmup_epochs = 0;
    s->sched.step_epochs = 10;
    s->sched.gamma = 0.1f;
    s->sched.min_lr = 0;
    s->seed = 1;
    s->threads = 0;
    s->keep_checkpoints = 3;
}

/* The default job name: the file name without directory and extension. */
static void name_from_file(char *out, size_t cap, const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    const char *dot = strrchr(base, '.');
    size_t n = (dot && dot != base) ? (size_t)(dot - base) : strlen(base);
    if (n == 0) {
        snprintf(out, cap, "spec");
        return;
    }
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = ((unsigned char)base[i] < 0x20 || base[i] == 0x7f) ? '_' : base[i];
    out[n] = '\0';
}

static int parse_document(struct spec_parse *ps)
{
    int rc, empty;
    if ((rc = mt_yaml_doc_begin(&ps->y, &empty)))
        return rc;
    if (empty)
        return mt_err_set(ps->y.err, MT_E_INVAL, "%s: empty spec", ps->y.file);
    if (ps->y.ev.type != YAML_MAPPING_START_EVENT)
        return mt_yaml_fail(&ps->y, mt_yaml_line(&ps->y),
                            "expected a mapping of keys at the top level, got %s",
                            mt_yaml_kind(&ps->y));
    if ((rc = parse_map(ps, top_keys, NKEYS(top_keys), 0)) || (rc = mt_yaml_doc_end(&ps->y)))
        return rc;
    struct where w = {ps->y.file, ps->line_dataset, ps->line_model};
    if ((rc = check_cross(ps->s, &w, ps->y.err)))
        return rc;
    return check_rule_fit(ps->s, ps, ps->y.err);
}

int spec_parse_string(const char *yaml, size_t len, const char *name, struct mt_spec *s,
                      struct mt_err *err)
{
    if (!name)
        name = "spec";
    if (!s || (!yaml && len))
        return mt_err_set(err, MT_E_INVAL, "%s: no spec text", name);
    struct spec_parse *ps = calloc(1, sizeof *ps);
    struct mt_spec *tmp = malloc(sizeof *tmp);
    if (!ps || !tmp) {
        free(ps);
        free(tmp);
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", name);
    }
    ps->s = tmp;
    ps->act_default = MT_ACT_RELU;
    ps->norm_default = MT_NK_NONE;
    spec_init(tmp);
    name_from_file(tmp->name, sizeof tmp->name, name);
    int rc;
    if (len > SPEC_MAX_BYTES) {
        char file[MT_YAML_FILE_LEN];
        rc = mt_err_set(err, MT_E_INVAL, "%s: spec is %zu bytes, at most %u allowed",
                        mt_err_show(file, sizeof file, name, strlen(name)), len, SPEC_MAX_BYTES);
    } else if ((rc = mt_yaml_init_string(&ps->y, name, yaml, len, err)) == 0) {
        rc = parse_document(ps);
        mt_yaml_deinit(&ps->y);
    }
    if (rc == 0)
        *s = *tmp;
    free(tmp);
    free(ps);
    return rc;
}

/* The row of a dotted key ("optimizer.lr") and the section holding it;
 * NULL with a message naming the part that is wrong. */
static const struct spec_key *set_key_find(const char *key, const struct spec_section **in,
                                           struct mt_err *err)
{
    const struct spec_section *sec = &spec_fields;
    const struct spec_key *k = NULL;
    char part[64];
    for (const char *p = key;;) {
        size_t n = strcspn(p, ".");
        if (n == 0 || n >= sizeof part) {
            mt_err_set(err, MT_E_INVAL, "--set %s: not a spec key (dotted names as in "
                       "docs/spec-reference.md: optimizer.lr, epochs, rule.feedback_scale)", key);
            return NULL;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        if (!(k = spec_key_find(sec, part))) {
            char names[400];
            size_t used = 0;
            names[0] = '\0';
            for (size_t i = 0; i < sec->n && used < sizeof names; i++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
                                         i ? ", " : "", sec->keys[i].name);
            mt_err_set(err, MT_E_INVAL, "--set %s: unknown key '%s' in %s (expected one of: "
                       "%s)", key, part, sec->path[0] ? sec->path : "the spec", names);
            return NULL;
        }
        *in = sec;
        if (!p[n])
            return k;
        if (!k->sub) {
            mt_err_set(err, MT_E_INVAL, "--set %s: '%.*s' is not a section", key,
                       (int)(p + n - key), key);
            return NULL;
        }
        sec = k->sub;
        p += n + 1;
    }
}

int spec_set_key(struct mt_spec *s, const char *key, const char *value, struct mt_err *err)
{
    const struct spec_section *sec = NULL;
    const struct spec_key *k = set_key_find(key, &sec, err);
    if (!k)
        return MT_E_INVAL;
    if (sec == &model_section ? k->type == SK_FN : k->sub == &model_section)
        return mt_err_set(err, MT_E_INVAL, "--set %s: the model's structure is not set this "
                          "way; edit the spec (`mtctl show --spec ID` prints it)", key);
    struct spec_parse *ps = calloc(1, sizeof *ps);
    struct mt_spec *tmp = malloc(sizeof *tmp);
    int rc = ps && tmp ? 0 : mt_err_set(err, MT_E_NOMEM, "--set %s: out of memory", key);
    if (!rc) {
        *tmp = *s;
        ps->s = tmp;
        /* an empty value is YAML's null, as `key:` with nothing after it */
        const char *text = value[0] ? value : "~";
        rc = mt_yaml_init_string(&ps->y, "--set", text, strlen(text), err);
    }
    if (!rc) {
        int empty = 0;
        snprintf(ps->y.path, sizeof ps->y.path, "%s", key);
        ps->y.plen = strlen(ps->y.path);
        if (!(rc = mt_yaml_doc_begin(&ps->y, &empty)) && !(rc = set_value(ps, k)))
            rc = mt_yaml_doc_end(&ps->y);
        mt_yaml_deinit(&ps->y);
    }
    if (!rc && strcmp(tmp->rule.name, s->rule.name) != 0) {
        /* as --rule: drop what the new rule does not read (from a copy of
         * the name: spec_set_rule writes the one it is given) */
        char name[sizeof tmp->rule.name];
        memcpy(name, tmp->rule.name, sizeof name);
        spec_set_rule(tmp, name);
    }
    if (!rc) {   /* across fields: spec_finish, once every key is set */
        *s = *tmp;
        s->resolved = 0;
    }
    free(tmp);
    free(ps);
    return rc;
}

int spec_parse_file(const char *path, struct mt_spec *s, struct mt_err *err)
{
    if (!path)
        return mt_err_set(err, MT_E_INVAL, "spec: no file name");
    FILE *f = fopen(path, "rb");
    if (!f)
        return mt_err_set(err, MT_E_IO, "%s: %s", path, strerror(errno));
    char *buf = malloc(SPEC_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, SPEC_MAX_BYTES + 1, f);
    int read_errno = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    int rc;
    if (read_errno)
        rc = mt_err_set(err, MT_E_IO, "%s: %s", path, strerror(read_errno));
    else if (n > SPEC_MAX_BYTES)
        rc = mt_err_set(err, MT_E_INVAL, "%s: larger than %u bytes", path, SPEC_MAX_BYTES);
    else
        rc = spec_parse_string(buf, n, path, s, err);
    free(buf);
    return rc;
}

/* Settings the rule left unset get these, the same for every rule. */
static void optim_fallbacks(struct mt_optim_spec *o)
{
    if (isnan(o->momentum))
        o->momentum = 0.0f;
    if (o->nesterov < 0)
        o->nesterov = 0;
    if (isnan(o->beta1))
        o->beta1 = 0.9f;
    if (isnan(o->beta2))
        o->beta2 = 0.999f;
    if (isnan(o->eps))
        o->eps = 1e-8f;
    if (isnan(o->weight_decay))
        o->weight_decay = 0.0f;
}

void spec_set_rule(struct mt_spec *s, const char *name)
{
    const struct mt_rule *r = rule_find(name);
    unsigned f = r ? r->flags : 0;
    snprintf(s->rule.name, sizeof s->rule.name, "%s", name);
    s->resolved = 0;
    if (!(f & MT_RULE_FEEDBACK)) {
        s->rule.feedback_init = MT_FB_DEFAULT;
        s->rule.feedback_scale = NAN;
    }
    if (!(f & MT_RULE_BINARY))
        s->rule.binary = -1;
    if (!(f & MT_RULE_EPSILON))
        s->rule.epsilon = NAN;
    if (!(f & MT_RULE_KAPPA))
        s->rule.kappa = NAN;
    if (!(f & MT_RULE_RECOMPUTE))
        s->rule.recompute_inputs = -1;
    if (!(f & MT_RULE_GROUPS))
        s->rule.groups = -1;
    if (!(f & MT_RULE_SEGMENTS))
        s->rule.segments = -1;
    if (!(f & MT_RULE_SAMPLES))
        s->rule.samples = -1;
}

/* A layer list: its input shape (the dataset's images, or the values as
 * c x 1 x 1), its nodes and shapes, and a rule that trains layer lists. */
static int finish_layers(struct mt_spec *s, struct mt_err *err)
{
    struct mt_model_desc *m = &s->model;
    if (m->input.c == 0) {
        m->input = named_shape(s->data.kind);
        if (m->input.c == 0)
            m->input = (struct mt_shape){m->width[0], 1, 1};
    }
    if (shape_count(m->input) != (size_t)m->width[0]) {
        char sh[48];
        shape_format(m->input, sh, sizeof sh);
        return where_fail(err, NULL, 0, "model.input", "%s does not match dataset '%s' (%d "
                          "values per sample)", sh, data_kind_name(s->data.kind), m->width[0]);
    }
    int rc = graph_resolve(m, m->width[m->n_layers], err);
    if (rc)
        return rc;
    const struct mt_rule *r = rule_find(s->rule.name);
    if (r && !(r->flags & MT_RULE_LAYERS)) {
        char rules[256];
        rules_with(rules, sizeof rules, MT_RULE_LAYERS);
        if (r->fc_only)
            return where_fail(err, NULL, 0, "rule.name", "rule '%s' %s; it does not train "
                              "conv or layer-list models (model.layers): use an MLP "
                              "(model.hidden), or another rule (%s)", r->name, r->fc_only,
                              rules);
        return where_fail(err, NULL, 0, "rule.name", "rule '%s' does not train layer-list "
                          "models (model.layers) yet (%s)", r->name, rules);
    }
    return 0;
}

int spec_finish(struct mt_spec *s, struct mt_err *err)
{
    int rc;
    if (!s)
        return mt_err_set(err, MT_E_INVAL, "spec: missing");
    s->resolved = 0;
    if ((rc = check_fields(s, err)) || (rc = check_cross(s, NULL, err))
        || (rc = check_rule_fit(s, NULL, err)))
        return rc;
    struct mt_model_desc *m = &s->model;
    int input = named_input(s->data.kind);
    if (input && m->width[0] == 0)
        m->width[0] = input;
    if (input && m->width[m->n_layers] == 0)
        m->width[m->n_layers] = NAMED_CLASSES;
    if (s->data.kind == MT_DATA_SYNTHETIC) {
        s->data.synthetic_dim = m->width[0];
        s->data.synthetic_classes = m->width[m->n_layers];
    }
    if (model_is_graph(m) && (rc = finish_layers(s, err)))
        return rc;
    if (s->data.kind == MT_DATA_SYNTHETIC) {   /* images for a layer list, else rows */
        int g = model_is_graph(m);
        s->data.synthetic_c = g ? m->input.c : 0;
        s->data.synthetic_h = g ? m->input.h : 0;
        s->data.synthetic_w = g ? m->input.w : 0;
    }
    size_t samples = s->data.kind == MT_DATA_SYNTHETIC
        ? (size_t)s->data.synthetic_train + (size_t)s->data.synthetic_test : 0;
    if ((rc = model_check_size(m, s->batch, samples, err)))
        return rc;
    const struct mt_rule *r = rule_find(s->rule.name);
    if (r->defaults)
        r->defaults(s);
    if (s->optim.kind < 0)
        return mt_err_set(err, MT_E_INVAL,
                          "optimizer.name: not given, and rule '%s' has no default", s->rule.name);
    if (isnan(s->optim.lr))
        return mt_err_set(err, MT_E_INVAL,
                          "optimizer.lr: not given, and rule '%s' has no default", s->rule.name);
    optim_fallbacks(&s->optim);
    if (r->check && (rc = r->check(s, err)))
        return rc;
    s->resolved = 1;
    return 0;
}
