/* jobspec.c: struct mt_spec <-> protobuf JobSpec (see jobspec.h).
 *
 * Going out, one allocation holds the message, its nested messages and
 * copies of every string, so jobspec_free is one free(). Coming in, every
 * field is checked against the bounds the YAML parser applies (spec.c), as
 * the bytes come from clients. */
#include "jobspec.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

#define ACT_NAMES "relu, leaky_relu, tanh, sigmoid, gelu, identity, silu"
#define NORM_NAMES "batchnorm, layernorm, none"
#define ENUM_LEN 32   /* longest enum-like name kept */

/* Names of the enums spec.h and model.h define without name functions. */
static const char *const feedback_names[] = {"uniform", "normal", "kaiming"};
static const char *const init_names[] = {"kaiming", "xavier"};

static int feedback_from_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(feedback_names[i], name) == 0)
            return i;
    return -1;
}

static int init_from_name(const char *name)
{
    for (int i = 0; i < 2; i++)
        if (strcmp(init_names[i], name) == 0)
            return i;
    return -1;
}

/* A oneof-wrapped optional field (proto3 `optional` without protoc-c 1.5):
 * PREFIX is the message's constant prefix, F and f the field's name. */
#define CASE_PASTE(PREFIX, F) PREFIX##__OPT_##F##_##F
#define CASE_OF(PREFIX, F) CASE_PASTE(PREFIX, F)
#define OPT_SET(m, PREFIX, F, f, v) \
    do { (m)->opt_##f##_case = CASE_OF(PREFIX, F); (m)->f = (v); } while (0)
#define OPT_HAS(m, PREFIX, F, f) ((m)->opt_##f##_case == CASE_OF(PREFIX, F))

#define DS MEMTRAIN__DATASET_SPEC
#define RS MEMTRAIN__RULE_SPEC
#define OS MEMTRAIN__OPTIMIZER_SPEC
#define SS MEMTRAIN__SCHEDULE_SPEC
#define JS MEMTRAIN__JOB_SPEC

static int fail(struct mt_err *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct mt_err *err, const char *path, const char *fmt, ...)
{
    char text[MT_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    mt_err_set(err, MT_E_INVAL, "JobSpec: %s: %.400s", path, text);
    return MT_E_INVAL;   /* a constant, so the compiler sees that callers return early */
}

/* ------------------------------------------------------------------------ */
/* mt_spec -> JobSpec                                                       */

struct bundle {
    Memtrain__JobSpec js;                 /* first: jobspec_free frees the bundle through it */
    Memtrain__DatasetSpec ds;
    Memtrain__ModelSpec ms;
    Memtrain__RuleSpec rs;
    Memtrain__OptimizerSpec os;
    Memtrain__ScheduleSpec ss;
    Memtrain__LayerSpec layer[MT_MAX_LAYERS];
    Memtrain__LayerSpec *layer_ptr[MT_MAX_LAYERS];
    char name[MT_NAME_LEN];
    char dir[MT_PATH_LEN], train_images[MT_PATH_LEN], train_labels[MT_PATH_LEN];
    char test_images[MT_PATH_LEN], test_labels[MT_PATH_LEN];
    char kind[ENUM_LEN], normalize[ENUM_LEN], init[ENUM_LEN], act[MT_MAX_LAYERS][ENUM_LEN];
    char norm[MT_MAX_LAYERS][ENUM_LEN];
    char rule[ENUM_LEN], feedback_init[ENUM_LEN], optim[ENUM_LEN], sched[ENUM_LEN];
};

/* Bounded copy; returns dst for assignment to a message's char *. */
static char *put(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return dst;
}

/* Enums and counts a JobSpec cannot express. */
static int check_out(const struct mt_spec *s, struct mt_err *err)
{
    const struct mt_model_desc *m = &s->model;
    if ((int)s->data.kind < 0 || s->data.kind > MT_DATA_SYNTHETIC)
        return fail(err, "dataset.name", "invalid kind %d", (int)s->data.kind);
    if ((int)s->data.normalize < 0 || s->data.normalize > MT_NORM_NONE)
        return fail(err, "dataset.normalize", "invalid value %d", (int)s->data.normalize);
    if (s->data.train_limit < 0 || s->data.test_limit < 0 || s->data.synthetic_train < 0
        || s->data.synthetic_test < 0)
        return fail(err, "dataset", "negative sample count");
    if (m->n_layers < 1 || m->n_layers > MT_MAX_LAYERS)
        return fail(err, "model.hidden", "invalid layer count %d", m->n_layers);
    for (int l = 0; l <= m->n_layers; l++)
        if (m->width[l] < 0 || (l > 0 && l < m->n_layers && (m->width[l] == 0
            || (int)m->act[l] < 0 || m->act[l] >= MT_ACT_N
            || (int)m->norm[l] < 0 || m->norm[l] >= MT_NK_N)))
            return fail(err, "model.hidden", "invalid layer %d", l);
    if ((int)m->init < 0 || m->init > MT_INIT_XAVIER)
        return fail(err, "model.init", "invalid value %d", (int)m->init);
    const struct mt_rule_spec *r = &s->rule;
    if ((int)r->feedback_init < MT_FB_DEFAULT || r->feedback_init > MT_FB_KAIMING)
        return fail(err, "rule.feedback_init", "invalid value %d", (int)r->feedback_init);
    if (r->binary < -1 || r->binary > 1)
        return fail(err, "rule.binary", "invalid value %d", r->binary);
    if (r->groups < -1 || r->segments < -1 || r->samples < -1)
        return fail(err, "rule", "negative count");
    if ((int)s->optim.kind < MT_OPT_DEFAULT || s->optim.kind > MT_OPT_ADAMW)
        return fail(err, "optimizer.name", "invalid kind %d", (int)s->optim.kind);
    if ((int)s->sched.kind < 0 || s->sched.kind > MT_SCHED_COSINE)
        return fail(err, "schedule.name", "invalid kind %d", (int)s->sched.kind);
    if (s->batch < 0 || s->epochs < 0 || s->threads < 0 || s->checkpoint_every < 0
        || s->keep_checkpoints < 0 || s->sched.step_epochs < 0)
        return fail(err, "JobSpec", "negative count");
    return 0;
}

static void out_dataset(struct bundle *b, const struct mt_data_spec *d)
{
    Memtrain__DatasetSpec *ds = &b->ds;
    memtrain__dataset_spec__init(ds);
    ds->name = put(b->kind, ENUM_LEN, data_kind_name(d->kind));
    ds->dir = put(b->dir, MT_PATH_LEN, d->dir);
    ds->train_images = put(b->train_images, MT_PATH_LEN, d->train_images);
    ds->train_labels = put(b->train_labels, MT_PATH_LEN, d->train_labels);
    ds->test_images = put(b->test_images, MT_PATH_LEN, d->test_images);
    ds->test_labels = put(b->test_labels, MT_PATH_LEN, d->test_labels);
    ds->normalize = put(b->normalize, ENUM_LEN, data_normalize_name(d->normalize));
    ds->train_limit = (uint64_t)d->train_limit;
    ds->test_limit = (uint64_t)d->test_limit;
    OPT_SET(ds, DS, SYNTHETIC_TRAIN, synthetic_train, (uint64_t)d->synthetic_train);
    OPT_SET(ds, DS, SYNTHETIC_TEST, synthetic_test, (uint64_t)d->synthetic_test);
    OPT_SET(ds, DS, SYNTHETIC_SEED, synthetic_seed, d->synthetic_seed);
}

static void out_model(struct bundle *b, const struct mt_model_desc *m)
{
    Memtrain__ModelSpec *ms = &b->ms;
    memtrain__model_spec__init(ms);
    int hidden = m->n_layers - 1;
    for (int i = 0; i < hidden; i++) {
        memtrain__layer_spec__init(&b->layer[i]);
        b->layer[i].width = (uint32_t)m->width[i + 1];
        b->layer[i].activation = put(b->act[i], ENUM_LEN, act_name(m->act[i + 1]));
        /* "" for none, so specs without norm layers look as they always did */
        b->layer[i].norm = put(b->norm[i], ENUM_LEN, m->norm[i + 1] == MT_NK_NONE ? ""
                               : norm_kind_name(m->norm[i + 1]));
        b->layer_ptr[i] = &b->layer[i];
    }
    ms->input = (uint32_t)m->width[0];
    ms->n_hidden = (size_t)hidden;
    ms->hidden = b->layer_ptr;
    ms->classes = (uint32_t)m->width[m->n_layers];
    ms->init = put(b->init, ENUM_LEN, init_names[m->init]);
}

static void out_rule_optim(struct bundle *b, const struct mt_spec *s)
{
    Memtrain__RuleSpec *rs = &b->rs;
    memtrain__rule_spec__init(rs);
    rs->name = put(b->rule, sizeof s->rule.name, s->rule.name);
    rs->feedback_init = put(b->feedback_init, ENUM_LEN, s->rule.feedback_init < 0 ? ""
                            : feedback_names[s->rule.feedback_init]);
    if (!isnan(s->rule.feedback_scale))
        OPT_SET(rs, RS, FEEDBACK_SCALE, feedback_scale, s->rule.feedback_scale);
    if (s->rule.binary >= 0)
        OPT_SET(rs, RS, BINARY, binary, s->rule.binary != 0);
    if (!isnan(s->rule.epsilon))
        OPT_SET(rs, RS, EPSILON, epsilon, s->rule.epsilon);
    if (!isnan(s->rule.kappa))
        OPT_SET(rs, RS, KAPPA, kappa, s->rule.kappa);
    if (s->rule.groups >= 0)
        OPT_SET(rs, RS, GROUPS, groups, (uint32_t)s->rule.groups);
    if (s->rule.segments >= 0)
        OPT_SET(rs, RS, SEGMENTS, segments, (uint32_t)s->rule.segments);
    if (s->rule.samples >= 0)
        OPT_SET(rs, RS, SAMPLES, samples, (uint32_t)s->rule.samples);

    const struct mt_optim_spec *o = &s->optim;
    Memtrain__OptimizerSpec *os = &b->os;
    memtrain__optimizer_spec__init(os);
    os->name = put(b->optim, ENUM_LEN, o->kind < 0 ? "" : optim_kind_name(o->kind));
    if (!isnan(o->lr))
        OPT_SET(os, OS, LR, lr, o->lr);
    if (!isnan(o->momentum))
        OPT_SET(os, OS, MOMENTUM, momentum, o->momentum);
    if (o->nesterov >= 0)
        OPT_SET(os, OS, NESTEROV, nesterov, o->nesterov != 0);
    if (!isnan(o->beta1))
        OPT_SET(os, OS, BETA1, beta1, o->beta1);
    if (!isnan(o->beta2))
        OPT_SET(os, OS, BETA2, beta2, o->beta2);
    if (!isnan(o->eps))
        OPT_SET(os, OS, EPS, eps, o->eps);
    if (!isnan(o->weight_decay))
        OPT_SET(os, OS, WEIGHT_DECAY, weight_decay, o->weight_decay);

    const struct mt_sched_spec *sc = &s->sched;
    Memtrain__ScheduleSpec *ss = &b->ss;
    memtrain__schedule_spec__init(ss);
    ss->name = put(b->sched, ENUM_LEN, sched_kind_name(sc->kind));
    OPT_SET(ss, SS, WARMUP_EPOCHS, warmup_epochs, sc->warmup_epochs);
    OPT_SET(ss, SS, STEP_EPOCHS, step_epochs, (uint32_t)sc->step_epochs);
    OPT_SET(ss, SS, GAMMA, gamma, sc->gamma);
    OPT_SET(ss, SS, MIN_LR, min_lr, sc->min_lr);
}

int jobspec_from_spec(const struct mt_spec *s, Memtrain__JobSpec **out, struct mt_err *err)
{
    int rc = check_out(s, err);
    if (rc)
        return rc;
    struct bundle *b = calloc(1, sizeof *b);
    if (!b)
        return mt_err_set(err, MT_E_NOMEM, "JobSpec: out of memory");
    Memtrain__JobSpec *js = &b->js;
    memtrain__job_spec__init(js);
    out_dataset(b, &s->data);
    out_model(b, &s->model);
    out_rule_optim(b, s);
    js->name = put(b->name, MT_NAME_LEN, s->name);
    js->dataset = &b->ds;
    js->model = &b->ms;
    js->rule = &b->rs;
    js->optimizer = &b->os;
    js->schedule = &b->ss;
    js->batch = (uint32_t)s->batch;
    js->epochs = (uint32_t)s->epochs;
    OPT_SET(js, JS, SEED, seed, s->seed);
    js->threads = (uint32_t)s->threads;
    js->memory_limit = s->memory_limit;
    js->checkpoint_every = (uint32_t)s->checkpoint_every;
    OPT_SET(js, JS, KEEP_CHECKPOINTS, keep_checkpoints, (uint32_t)s->keep_checkpoints);
    *out = js;
    return 0;
}

void jobspec_free(Memtrain__JobSpec *js)
{
    free(js);   /* the bundle starts with the message */
}

/* ------------------------------------------------------------------------ */
/* JobSpec -> mt_spec                                                       */

static int get_str(char *dst, size_t cap, const char *src, const char *path,
                   struct mt_err *err)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return fail(err, path, "too long (%zu bytes, at most %zu)", n, cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)src[i] < 0x20 || src[i] == 0x7f)
            return fail(err, path, "contains a control character");
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return 0;
}

/* An enum-like name; "" leaves *out alone (the default). */
static int get_enum(int *out, const char *name, int (*from_name)(const char *), const char *names,
                    const char *path, struct mt_err *err)
{
    if (!name || !*name)
        return 0;
    int v = strnlen(name, ENUM_LEN) < ENUM_LEN ? from_name(name) : -1;
    if (v < 0)
        return fail(err, path, "unknown value '%.48s' (expected one of: %s)", name, names);
    *out = v;
    return 0;
}

enum range { POS, NONNEG, UNIT };

static int get_float(float *dst, float v, enum range r, const char *path, struct mt_err *err)
{
    static const char *const what[] = {"a positive number", "a non-negative number",
                                       "a number in [0, 1)"};
    int ok = isfinite(v) && (r == POS ? v > 0 : r == NONNEG ? v >= 0 : (v >= 0 && v < 1));
    if (!ok)
        return fail(err, path, "expected %s, got %g", what[r], (double)v);
    *dst = v;
    return 0;
}

/* An unsigned count into an int (or long) no larger than max, at least min. */
static int get_count(long long *dst, uint64_t v, long long min, long long max, const char *path,
                     struct mt_err *err)
{
    if (v > (uint64_t)max || (long long)v < min)
        return fail(err, path, "expected %s integer, got %llu",
                    min > 0 ? "a positive" : "a non-negative", (unsigned long long)v);
    *dst = (long long)v;
    return 0;
}

static int get_int(int *dst, uint64_t v, long long min, const char *path, struct mt_err *err)
{
    long long x = 0;
    int rc = get_count(&x, v, min, INT_MAX, path, err);
    if (rc == 0)
        *dst = (int)x;
    return rc;
}

static int get_long(long *dst, uint64_t v, long long min, const char *path, struct mt_err *err)
{
    long long x = 0;
    int rc = get_count(&x, v, min, LONG_MAX, path, err);
    if (rc == 0)
        *dst = (long)x;
    return rc;
}

static int in_dataset(const Memtrain__DatasetSpec *ds, struct mt_data_spec *d, struct mt_err *err)
{
    int kind = -1, norm = (int)d->normalize, rc;
    if (!ds || !ds->name || !*ds->name)
        return fail(err, "dataset.name", "missing");
    if ((rc = get_enum(&kind, ds->name, data_kind_from_name,
                       "mnist, fashion-mnist, cifar10, idx, synthetic", "dataset.name", err))
        || (rc = get_enum(&norm, ds->normalize, data_normalize_from_name,
                          "standard, scale, none", "dataset.normalize", err))
        || (rc = get_str(d->dir, MT_PATH_LEN, ds->dir, "dataset.dir", err))
        || (rc = get_str(d->train_images, MT_PATH_LEN, ds->train_images, "dataset.train_images",
                         err))
        || (rc = get_str(d->train_labels, MT_PATH_LEN, ds->train_labels, "dataset.train_labels",
                         err))
        || (rc = get_str(d->test_images, MT_PATH_LEN, ds->test_images, "dataset.test_images",
                         err))
        || (rc = get_str(d->test_labels, MT_PATH_LEN, ds->test_labels, "dataset.test_labels",
                         err))
        || (rc = get_long(&d->train_limit, ds->train_limit, 0, "dataset.train_limit", err))
        || (rc = get_long(&d->test_limit, ds->test_limit, 0, "dataset.test_limit", err)))
        return rc;
    d->kind = (enum mt_data_kind)kind;
    d->normalize = (enum mt_normalize)norm;
    if (OPT_HAS(ds, DS, SYNTHETIC_TRAIN, synthetic_train)
        && (rc = get_long(&d->synthetic_train, ds->synthetic_train, 1, "dataset.synthetic_train",
                          err)))
        return rc;
    if (OPT_HAS(ds, DS, SYNTHETIC_TEST, synthetic_test)
        && (rc = get_long(&d->synthetic_test, ds->synthetic_test, 1, "dataset.synthetic_test",
                          err)))
        return rc;
    if (OPT_HAS(ds, DS, SYNTHETIC_SEED, synthetic_seed))
        d->synthetic_seed = ds->synthetic_seed;
    return 0;
}

static int in_model(const Memtrain__ModelSpec *ms, struct mt_model_desc *m, struct mt_err *err)
{
    int act_default = MT_ACT_RELU, norm_default = MT_NK_NONE, init = (int)m->init, rc;
    char path[48];
    if (!ms)
        return fail(err, "model", "missing");
    if (ms->n_hidden > MT_MAX_LAYERS - 1)
        return fail(err, "model.hidden", "more than %d hidden layers", MT_MAX_LAYERS - 1);
    if ((rc = get_enum(&act_default, ms->activation, act_from_name, ACT_NAMES,
                       "model.activation", err))
        || (rc = get_enum(&norm_default, ms->norm, norm_kind_from_name, NORM_NAMES,
                          "model.norm", err))
        || (rc = get_enum(&init, ms->init, init_from_name, "kaiming, xavier", "model.init", err))
        || (rc = get_int(&m->width[0], ms->input, 0, "model.input", err)))
        return rc;
    int hidden = (int)ms->n_hidden;
    for (int i = 0; i < hidden; i++) {
        const Memtrain__LayerSpec *ls = ms->hidden[i];
        int act = act_default, norm = norm_default;
        snprintf(path, sizeof path, "model.hidden[%d]", i);
        if (!ls)
            return fail(err, path, "missing");
        snprintf(path, sizeof path, "model.hidden[%d].width", i);
        if ((rc = get_int(&m->width[i + 1], ls->width, 1, path, err)))
            return rc;
        snprintf(path, sizeof path, "model.hidden[%d].activation", i);
        if ((rc = get_enum(&act, ls->activation, act_from_name, ACT_NAMES, path, err)))
            return rc;
        snprintf(path, sizeof path, "model.hidden[%d].norm", i);
        if ((rc = get_enum(&norm, ls->norm, norm_kind_from_name, NORM_NAMES, path, err)))
            return rc;
        m->act[i + 1] = (enum mt_act)act;
        m->norm[i + 1] = (enum mt_normkind)norm;
    }
    m->n_layers = hidden + 1;
    m->act[m->n_layers] = MT_ACT_IDENTITY;
    m->init = (enum mt_init)init;
    return get_int(&m->width[m->n_layers], ms->classes, 0, "model.classes", err);
}

static int in_rule(const Memtrain__RuleSpec *rs, struct mt_rule_spec *r, struct mt_err *err)
{
    int fb = MT_FB_DEFAULT, rc;
    if (!rs)
        return 0;
    if (rs->name && *rs->name) {
        if (strnlen(rs->name, sizeof r->name) == sizeof r->name || !rule_find(rs->name))
            return fail(err, "rule.name", "unknown rule '%.48s'", rs->name);
        snprintf(r->name, sizeof r->name, "%s", rs->name);
    }
    if ((rc = get_enum(&fb, rs->feedback_init, feedback_from_name, "uniform, normal, kaiming",
                       "rule.feedback_init", err)))
        return rc;
    r->feedback_init = (enum mt_feedback_init)fb;
    if (OPT_HAS(rs, RS, BINARY, binary))
        r->binary = rs->binary != 0;
    if ((OPT_HAS(rs, RS, FEEDBACK_SCALE, feedback_scale)
         && (rc = get_float(&r->feedback_scale, rs->feedback_scale, POS, "rule.feedback_scale",
                            err)))
        || (OPT_HAS(rs, RS, EPSILON, epsilon)
            && (rc = get_float(&r->epsilon, rs->epsilon, POS, "rule.epsilon", err)))
        || (OPT_HAS(rs, RS, KAPPA, kappa)
            && (rc = get_float(&r->kappa, rs->kappa, POS, "rule.kappa", err)))
        || (OPT_HAS(rs, RS, GROUPS, groups)
            && (rc = get_int(&r->groups, rs->groups, 1, "rule.groups", err)))
        || (OPT_HAS(rs, RS, SEGMENTS, segments)
            && (rc = get_int(&r->segments, rs->segments, 1, "rule.segments", err)))
        || (OPT_HAS(rs, RS, SAMPLES, samples)
            && (rc = get_int(&r->samples, rs->samples, 1, "rule.samples", err))))
        return rc;
    return 0;
}

static int in_optim(const Memtrain__OptimizerSpec *os, struct mt_optim_spec *o,
                    struct mt_err *err)
{
    int kind = MT_OPT_DEFAULT, rc = 0;
    if (!os)
        return 0;
    if ((rc = get_enum(&kind, os->name, optim_kind_from_name, "sgd, adam, adamw",
                       "optimizer.name", err)))
        return rc;
    o->kind = (enum mt_optim_kind)kind;
    if (OPT_HAS(os, OS, NESTEROV, nesterov))
        o->nesterov = os->nesterov != 0;
    if ((OPT_HAS(os, OS, LR, lr) && (rc = get_float(&o->lr, os->lr, POS, "optimizer.lr", err)))
        || (OPT_HAS(os, OS, MOMENTUM, momentum)
            && (rc = get_float(&o->momentum, os->momentum, UNIT, "optimizer.momentum", err)))
        || (OPT_HAS(os, OS, BETA1, beta1)
            && (rc = get_float(&o->beta1, os->beta1, UNIT, "optimizer.beta1", err)))
        || (OPT_HAS(os, OS, BETA2, beta2)
            && (rc = get_float(&o->beta2, os->beta2, UNIT, "optimizer.beta2", err)))
        || (OPT_HAS(os, OS, EPS, eps)
            && (rc = get_float(&o->eps, os->eps, POS, "optimizer.eps", err)))
        || (OPT_HAS(os, OS, WEIGHT_DECAY, weight_decay)
            && (rc = get_float(&o->weight_decay, os->weight_decay, NONNEG,
                               "optimizer.weight_decay", err))))
        return rc;
    return 0;
}

static int in_sched(const Memtrain__ScheduleSpec *ss, struct mt_sched_spec *sc,
                    struct mt_err *err)
{
    int kind = (int)sc->kind, rc = 0;
    if (!ss)
        return 0;
    if ((rc = get_enum(&kind, ss->name, sched_kind_from_name, "constant, step, cosine",
                       "schedule.name", err)))
        return rc;
    sc->kind = (enum mt_sched_kind)kind;
    if ((OPT_HAS(ss, SS, WARMUP_EPOCHS, warmup_epochs)
         && (rc = get_float(&sc->warmup_epochs, ss->warmup_epochs, NONNEG,
                            "schedule.warmup_epochs", err)))
        || (OPT_HAS(ss, SS, STEP_EPOCHS, step_epochs)
            && (rc = get_int(&sc->step_epochs, ss->step_epochs, 1, "schedule.step_epochs", err)))
        || (OPT_HAS(ss, SS, GAMMA, gamma)
            && (rc = get_float(&sc->gamma, ss->gamma, POS, "schedule.gamma", err)))
        || (OPT_HAS(ss, SS, MIN_LR, min_lr)
            && (rc = get_float(&sc->min_lr, ss->min_lr, NONNEG, "schedule.min_lr", err))))
        return rc;
    return 0;
}

static int in_job(const Memtrain__JobSpec *js, struct mt_spec *s, struct mt_err *err)
{
    int rc;
    if (js->name && *js->name && (rc = get_str(s->name, MT_NAME_LEN, js->name, "name", err)))
        return rc;
    if ((rc = in_dataset(js->dataset, &s->data, err)) || (rc = in_model(js->model, &s->model, err))
        || (rc = in_rule(js->rule, &s->rule, err)) || (rc = in_optim(js->optimizer, &s->optim, err))
        || (rc = in_sched(js->schedule, &s->sched, err))
        || (rc = get_int(&s->batch, js->batch, 1, "batch", err))
        || (rc = get_int(&s->epochs, js->epochs, 1, "epochs", err))
        || (rc = get_int(&s->threads, js->threads, 0, "threads", err))
        || (rc = get_int(&s->checkpoint_every, js->checkpoint_every, 0, "checkpoint_every", err)))
        return rc;
    if (OPT_HAS(js, JS, KEEP_CHECKPOINTS, keep_checkpoints)
        && (rc = get_int(&s->keep_checkpoints, js->keep_checkpoints, 1, "keep_checkpoints", err)))
        return rc;
    if (OPT_HAS(js, JS, SEED, seed))
        s->seed = js->seed;
    if (js->memory_limit > (uint64_t)LLONG_MAX
        || (uint64_t)(size_t)js->memory_limit != js->memory_limit)
        return fail(err, "memory_limit", "too large");
    s->memory_limit = (size_t)js->memory_limit;
    return 0;
}

int jobspec_to_spec(const Memtrain__JobSpec *js, struct mt_spec *s, struct mt_err *err)
{
    if (!js || !s)
        return mt_err_set(err, MT_E_INVAL, "JobSpec: missing");
    struct mt_spec *tmp = malloc(sizeof *tmp);
    if (!tmp)
        return mt_err_set(err, MT_E_NOMEM, "JobSpec: out of memory");
    spec_init(tmp);
    int rc = in_job(js, tmp, err);
    if (rc == 0)
        *s = *tmp;
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Bytes                                                                    */

int jobspec_pack(const struct mt_spec *s, uint8_t **buf, size_t *len, struct mt_err *err)
{
    Memtrain__JobSpec *js;
    int rc = jobspec_from_spec(s, &js, err);
    if (rc)
        return rc;
    size_t n = memtrain__job_spec__get_packed_size(js);
    uint8_t *out = malloc(n ? n : 1);
    if (!out) {
        jobspec_free(js);
        return mt_err_set(err, MT_E_NOMEM, "JobSpec: out of memory");
    }
    memtrain__job_spec__pack(js, out);
    jobspec_free(js);
    *buf = out;
    *len = n;
    return 0;
}

int jobspec_unpack(const uint8_t *buf, size_t len, struct mt_spec *s, struct mt_err *err)
{
    if (!buf && len)
        return mt_err_set(err, MT_E_INVAL, "JobSpec: no data");
    Memtrain__JobSpec *js = memtrain__job_spec__unpack(NULL, len, buf);
    if (!js)
        return mt_err_set(err, MT_E_INVAL, "JobSpec: malformed protobuf (%zu bytes)", len);
    int rc = jobspec_to_spec(js, s, err);
    memtrain__job_spec__free_unpacked(js, NULL);
    return rc;
}
