/* jobspec.c: struct mt_spec <-> protobuf JobSpec (see jobspec.h).
 *
 * Both directions walk the spec's field registry (specfield.h) and find
 * each row's protobuf field by name through protobuf-c's reflection: the
 * descriptor gives the field's offset, its type and, for the `oneof opt_x`
 * wrappers that mark optional settings, where its presence is kept. So a
 * new setting needs no code here. Only the model's shape (hidden layers,
 * per-layer activation and norm, classes: arrays in struct mt_model_desc)
 * is mapped by hand.
 *
 * Coming in, every value is checked as the YAML reader checks it
 * (spec_key_check), as the bytes come from clients. Going out, one
 * allocation holds the message, its nested messages and copies of every
 * string (carved in order), so jobspec_free is one free(). */
#include "jobspec.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specfield.h"

#define ENUM_LEN 32   /* longest enum-like name read */
#define PATH_LEN 64

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

/* spec_key_check, its message prefixed as ours are. */
static int check(const struct spec_key *k, const char *path, const struct mt_spec *s,
                 struct mt_err *err)
{
    int rc = spec_key_check(k, path, s, err);
    if (rc)
        mt_err_prefix(err, "JobSpec: ");
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Rows and protobuf fields                                                 */

/* The protobuf field of a row, and whether its type can hold the row's. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d,
                                                const struct spec_key *k)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d,
                                                                                        k->name);
    if (!f || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    ProtobufCType t = f->type;
    switch (k->type) {
    case SK_STR:
    case SK_ENUM:
    case SK_RULE:
        return t == PROTOBUF_C_TYPE_STRING ? f : NULL;
    case SK_INT:
        return t == PROTOBUF_C_TYPE_UINT32 ? f : NULL;
    case SK_LONG:
    case SK_U64:
    case SK_BYTES:
        return t == PROTOBUF_C_TYPE_UINT64 ? f : NULL;
    case SK_FLOAT:
        return t == PROTOBUF_C_TYPE_FLOAT ? f : NULL;
    case SK_BOOL:
        return t == PROTOBUF_C_TYPE_BOOL ? f : NULL;
    case SK_FN:
        return (!k->sub || t == PROTOBUF_C_TYPE_MESSAGE) ? f : NULL;
    }
    return NULL;
}

static int is_oneof(const ProtobufCFieldDescriptor *f)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
}

/* A scalar field is present: a oneof-wrapped optional that is set, or a
 * plain proto3 field (always, zero when not sent). */
static int present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (!m)
        return 0;
    if (is_oneof(f))
        return *(const uint32_t *)(const void *)((const char *)m + f->quantifier_offset)
               == f->id;
    return 1;
}

static void set_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (is_oneof(f))
        *(uint32_t *)(void *)((char *)m + f->quantifier_offset) = f->id;
}

/* A string field's value, "" when absent. */
static const char *str_of(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *v = m ? *(char *const *)(const void *)((const char *)m + f->offset) : NULL;
    return v ? v : "";
}

static int missing_field(const char *path, struct mt_err *err)
{
    return mt_err_set(err, MT_E_INVAL, "JobSpec: %s: no such field of the right type in "
                      "proto/memtrain.proto", path);
}

static void join(char *out, const struct spec_section *sec, const char *name)
{
    snprintf(out, PATH_LEN, "%s%s%s", sec->path, *sec->path ? "." : "", name);
}

/* Row i of sec, its dotted path and its field in d: 1 for a row mapped by
 * hand (no field), 0 with *f set, or MT_E_INVAL when d has no such field. */
static int row_field(const ProtobufCMessageDescriptor *d, const struct spec_section *sec,
                     size_t i, char *path, const ProtobufCFieldDescriptor **f,
                     struct mt_err *err)
{
    const struct spec_key *k = &sec->keys[i];
    join(path, sec, k->name);
    if (k->type == SK_FN && !k->sub)
        return 1;
    *f = field_of(d, k);
    return *f ? 0 : missing_field(path, err);
}

static int check_section(const ProtobufCMessageDescriptor *d, const struct spec_section *sec,
                         struct mt_err *err)
{
    for (size_t i = 0; i < sec->n; i++) {
        char path[PATH_LEN];
        const ProtobufCFieldDescriptor *f = NULL;
        int rc = row_field(d, sec, i, path, &f, err);
        if (rc == 0 && sec->keys[i].sub)
            rc = check_section(f->descriptor, sec->keys[i].sub, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int jobspec_check_registry(struct mt_err *err)
{
    return check_section(&memtrain__job_spec__descriptor, &spec_fields, err);
}

/* ------------------------------------------------------------------------ */
/* JobSpec -> mt_spec                                                       */

/* One row from message m (NULL: an absent section, every field absent)
 * into s. */
static int in_key(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                  const struct spec_key *k, const char *path, struct mt_spec *s,
                  struct mt_err *err)
{
    char *dst = (char *)s + k->off;
    const char *src = m ? (const char *)m + f->offset : NULL;
    if (k->type == SK_STR || k->type == SK_RULE || k->type == SK_ENUM) {
        const char *v = str_of(m, f);
        size_t n = strlen(v);
        if (n == 0)   /* "" = the default */
            return k->required ? fail(err, path, "missing") : 0;
        if (k->type == SK_ENUM) {
            int e = n < ENUM_LEN ? k->from_name(v) : -1;
            if (e < 0)
                return fail(err, path, "unknown value '%.48s' (expected one of: %s)", v,
                            k->names);
            memcpy(dst, &e, sizeof e);
            return 0;
        }
        if (n >= k->size)
            return fail(err, path, "too long (%zu bytes, at most %zu)", n, k->size - 1);
        memcpy(dst, v, n + 1);
        return check(k, path, s, err);
    }
    if (!present(m, f))
        return 0;
    uint64_t u = 0;
    float x;
    switch (k->type) {
    case SK_INT:
    case SK_LONG:
        u = k->type == SK_INT ? *(const uint32_t *)(const void *)src
                              : *(const uint64_t *)(const void *)src;
        if (u > (uint64_t)(k->type == SK_INT ? INT_MAX : LONG_MAX))
            return fail(err, path, "expected %s, got %llu", spec_key_expected(k),
                        (unsigned long long)u);
        if (k->type == SK_INT)
            *(int *)(void *)dst = (int)u;
        else
            *(long *)(void *)dst = (long)u;
        return check(k, path, s, err);
    case SK_U64:
        memcpy(dst, src, sizeof(uint64_t));
        return 0;
    case SK_BYTES:
        u = *(const uint64_t *)(const void *)src;
        if (u > (uint64_t)LLONG_MAX || (uint64_t)(size_t)u != u)
            return fail(err, path, "too large");
        *(size_t *)(void *)dst = (size_t)u;
        return 0;
    case SK_FLOAT:
        x = *(const float *)(const void *)src;
        if (!isfinite(x))   /* a NAN would read as "not given" */
            return fail(err, path, "expected %s, got %g", spec_key_expected(k), (double)x);
        *(float *)(void *)dst = x;
        return check(k, path, s, err);
    case SK_BOOL:
        *(int *)(void *)dst = *(const protobuf_c_boolean *)(const void *)src != 0;
        return 0;
    default:
        return 0;
    }
}

static int in_section(const ProtobufCMessage *m, const ProtobufCMessageDescriptor *d,
                      const struct spec_section *sec, struct mt_spec *s, struct mt_err *err)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct spec_key *k = &sec->keys[i];
        char path[PATH_LEN];
        const ProtobufCFieldDescriptor *f = NULL;
        int rc = row_field(d, sec, i, path, &f, err);
        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;   /* by hand */
        if (!k->sub)
            rc = in_key(m, f, k, path, s, err);
        else   /* an absent section reads as all fields absent */
            rc = in_section(m ? *(ProtobufCMessage *const *)(const void *)((const char *)m
                                                                           + f->offset) : NULL,
                            f->descriptor, k->sub, s, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* An enum name for a by-hand row (its from_name and names); "" leaves *out
 * alone (the default). */
static int get_enum(int *out, const char *name, const struct spec_key *k, const char *path,
                    struct mt_err *err)
{
    if (!name || !*name)
        return 0;
    int v = strnlen(name, ENUM_LEN) < ENUM_LEN ? k->from_name(name) : -1;
    if (v < 0)
        return fail(err, path, "unknown value '%.48s' (expected one of: %s)", name, k->names);
    *out = v;
    return 0;
}

/* A count into an int, at least min. */
static int get_int(int *dst, uint64_t v, long long min, const char *path, struct mt_err *err)
{
    if (v > (uint64_t)INT_MAX || (long long)v < min)
        return fail(err, path, "expected %s integer, got %llu",
                    min > 0 ? "a positive" : "a non-negative", (unsigned long long)v);
    *dst = (int)v;
    return 0;
}

/* A layer list's entries (model.layers) and input shape. */
static int in_layers(const Memtrain__ModelSpec *ms, struct mt_model_desc *m, struct mt_err *err)
{
    char path[48];
    if (ms->n_input_shape != 0 && ms->n_input_shape != 3)
        return fail(err, "model.input", "expected [channels, height, width], got %zu numbers",
                    ms->n_input_shape);
    if (ms->n_input_shape == 3) {
        for (int i = 0; i < 3; i++)
            if (ms->input_shape[i] == 0 || ms->input_shape[i] > MT_MAX_DIM)
                return fail(err, "model.input", "each of [channels, height, width] must be 1 "
                            "to %d", MT_MAX_DIM);
        m->input = (struct mt_shape){(int)ms->input_shape[0], (int)ms->input_shape[1],
                                     (int)ms->input_shape[2]};
    }
    if (ms->n_layers > MT_MAX_SPEC_LAYERS)
        return fail(err, "model.layers", "more than %d layers", MT_MAX_SPEC_LAYERS);
    if (ms->n_layers && ms->n_hidden)
        return fail(err, "model", "give either hidden (an MLP) or layers (a layer list), not both");
    for (size_t i = 0; i < ms->n_layers; i++) {
        const Memtrain__LayerNode *n = ms->layers[i];
        snprintf(path, sizeof path, "model.layers[%zu]", i);
        if (!n)
            return fail(err, path, "missing");
        int kind = n->kind && strnlen(n->kind, ENUM_LEN) < ENUM_LEN
                   ? layer_kind_from_name(n->kind) : -1;
        if (kind < 0)
            return fail(err, path, "unknown layer kind '%.48s'", n->kind ? n->kind : "");
        uint32_t dims[] = {n->units, n->kernel_h, n->kernel_w, n->stride, n->padding};
        for (size_t k = 0; k < sizeof dims / sizeof *dims; k++)
            if (dims[k] > MT_MAX_DIM)
                return fail(err, path, "%u is larger than %d", dims[k], MT_MAX_DIM);
        int act = MT_ACT_RELU;
        if (n->activation && *n->activation &&
            (strnlen(n->activation, ENUM_LEN) >= ENUM_LEN || (act = act_from_name(n->activation)) < 0))
            return fail(err, path, "unknown activation '%.48s'", n->activation);
        m->spec_layer[i] = (struct mt_layer_spec){
            .kind = (enum mt_layer_kind)kind, .units = (int)n->units, .kh = (int)n->kernel_h,
            .kw = (int)n->kernel_w, .stride = (int)n->stride, .pad = (int)n->padding,
            .bias = !n->no_bias, .act = (enum mt_act)act,
        };
        if (m->spec_layer[i].stride == 0)
            m->spec_layer[i].stride = kind == MT_LK_MAXPOOL || kind == MT_LK_AVGPOOL
                                      ? (int)n->kernel_h : 1;
    }
    m->n_spec = (int)ms->n_layers;
    return 0;
}

/* The model's shape: the rows read by hand (input, hidden, layers,
 * activation, classes, norm); init came through the table. */
static int in_model_shape(const Memtrain__ModelSpec *ms, struct mt_model_desc *m,
                          struct mt_err *err)
{
    const struct spec_section *model = spec_key_find(&spec_fields, "model")->sub;
    const struct spec_key *act_key = spec_key_find(model, "activation");
    const struct spec_key *norm_key = spec_key_find(model, "norm");
    int act_default = MT_ACT_RELU, norm_default = MT_NK_NONE, rc;
    char path[48];
    if (!ms)
        return fail(err, "model", "missing");
    if (ms->n_hidden > MT_MAX_LAYERS - 1)
        return fail(err, "model.hidden", "more than %d hidden layers", MT_MAX_LAYERS - 1);
    if ((rc = get_enum(&act_default, ms->activation, act_key, "model.activation", err))
        || (rc = get_enum(&norm_default, ms->norm, norm_key, "model.norm", err)))
        return rc;
    if (ms->input > (1u << 24))
        return fail(err, "model.input", "%u values per sample: at most %d", ms->input, 1 << 24);
    m->width[0] = (int)ms->input;
    if ((rc = in_layers(ms, m, err)))
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
        if ((rc = get_enum(&act, ls->activation, spec_key_find(&spec_layer_fields, "activation"),
                           path, err)))
            return rc;
        snprintf(path, sizeof path, "model.hidden[%d].norm", i);
        if ((rc = get_enum(&norm, ls->norm, spec_key_find(&spec_layer_fields, "norm"), path,
                           err)))
            return rc;
        m->act[i + 1] = (enum mt_act)act;
        m->norm[i + 1] = (enum mt_normkind)norm;
    }
    m->n_layers = hidden + 1;
    m->act[m->n_layers] = MT_ACT_IDENTITY;
    return get_int(&m->width[m->n_layers], ms->classes, 0, "model.classes", err);
}

int jobspec_to_spec(const Memtrain__JobSpec *js, struct mt_spec *s, struct mt_err *err)
{
    if (!js || !s)
        return mt_err_set(err, MT_E_INVAL, "JobSpec: missing");
    struct mt_spec *tmp = malloc(sizeof *tmp);
    if (!tmp)
        return mt_err_set(err, MT_E_NOMEM, "JobSpec: out of memory");
    spec_init(tmp);
    int rc = in_section(&js->base, &memtrain__job_spec__descriptor, &spec_fields, tmp, err);
    if (rc == 0)
        rc = in_model_shape(js->model, &tmp->model, err);
    if (rc == 0)
        *s = *tmp;
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* mt_spec -> JobSpec                                                       */

/* The model's counts and per-layer enums, which the table does not see. */
static int check_model_out(const struct mt_model_desc *m, struct mt_err *err)
{
    if (model_is_graph(m))
        return m->n_spec <= MT_MAX_SPEC_LAYERS ? 0 : fail(err, "model.layers", "too many layers");
    if (m->n_layers < 1 || m->n_layers > MT_MAX_LAYERS)
        return fail(err, "model.hidden", "invalid layer count %d", m->n_layers);
    for (int l = 0; l <= m->n_layers; l++)
        if (m->width[l] < 0 || (l > 0 && l < m->n_layers && (m->width[l] == 0
            || (int)m->act[l] < 0 || m->act[l] >= MT_ACT_N
            || (int)m->norm[l] < 0 || m->norm[l] >= MT_NK_N)))
            return fail(err, "model.hidden", "invalid layer %d", l);
    return 0;
}

/* One block that the outgoing message, its parts and strings are carved
 * from; the message comes first, so free() of it frees them all. */
struct carve {
    char *base;
    size_t used, cap;
};

#define CARVE_CAP (sizeof(struct mt_spec) + 65536)

static void *carve(struct carve *c, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > c->cap - c->used)
        return NULL;
    void *p = c->base + c->used;
    c->used += n;
    return p;
}

static char *carve_str(struct carve *c, const char *text, size_t cap)
{
    size_t n = strnlen(text, cap);
    char *v = carve(c, n + 1);
    if (v) {
        memcpy(v, text, n);
        v[n] = '\0';
    }
    return v;
}

/* Store a copy of text in a string field. */
static int put_str(struct carve *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                   const char *text, size_t cap)
{
    char *v = carve_str(c, text, cap);
    if (!v)
        return MT_E_NOMEM;
    *(char **)(void *)((char *)m + f->offset) = v;
    return 0;
}

/* One row from s into message m; a "not given" value stays absent. */
static int out_key(struct carve *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                   const struct spec_key *k, const char *path, const struct mt_spec *s,
                   struct mt_err *err)
{
    const char *src = (const char *)s + k->off;
    char *dst = (char *)m + f->offset;
    char name[ENUM_LEN];
    int iv = 0;
    long long ll;
    float x;
    switch (k->type) {
    case SK_STR:
    case SK_RULE:
        return put_str(c, m, f, src, k->size - 1);
    case SK_ENUM:
        memcpy(&iv, src, sizeof iv);
        if (k->unset_ok && iv == -1)
            return put_str(c, m, f, "", 0);
        if (!spec_key_enum_name(k, iv, name, sizeof name))
            return check(k, path, s, err);
        return put_str(c, m, f, name, sizeof name);
    case SK_INT:
    case SK_LONG:
        ll = k->type == SK_INT ? *(const int *)(const void *)src
                               : *(const long *)(const void *)src;
        if (k->unset_ok && ll == (k->rule_flag ? -1 : 0))
            return 0;
        if (ll < 0)
            return check(k, path, s, err);
        if (k->type == SK_INT)
            *(uint32_t *)(void *)dst = (uint32_t)ll;
        else
            *(uint64_t *)(void *)dst = (uint64_t)ll;
        break;
    case SK_U64:
        memcpy(dst, src, sizeof(uint64_t));
        break;
    case SK_BYTES:
        *(uint64_t *)(void *)dst = *(const size_t *)(const void *)src;
        break;
    case SK_FLOAT:
        x = *(const float *)(const void *)src;
        if (k->unset_ok && isnan(x))
            return 0;
        *(float *)(void *)dst = x;
        break;
    case SK_BOOL:
        memcpy(&iv, src, sizeof iv);
        if (k->unset_ok && iv == -1)
            return 0;
        if (iv != 0 && iv != 1)
            return check(k, path, s, err);
        *(protobuf_c_boolean *)(void *)dst = iv;
        break;
    case SK_FN:
        return 0;
    }
    set_present(m, f);
    return 0;
}

static ProtobufCMessage *new_message(struct carve *c, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = carve(c, d->sizeof_message);
    if (m)
        protobuf_c_message_init(d, m);
    return m;
}

static int out_section(struct carve *c, ProtobufCMessage *m, const struct spec_section *sec,
                       const struct mt_spec *s, struct mt_err *err)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct spec_key *k = &sec->keys[i];
        char path[PATH_LEN];
        const ProtobufCFieldDescriptor *f = NULL;
        int rc = row_field(m->descriptor, sec, i, path, &f, err);
        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;   /* by hand */
        if (k->sub) {
            ProtobufCMessage *sub = new_message(c, f->descriptor);
            if (!sub)
                return MT_E_NOMEM;
            *(ProtobufCMessage **)(void *)((char *)m + f->offset) = sub;
            rc = out_section(c, sub, k->sub, s, err);
        } else {
            rc = out_key(c, m, f, k, path, s, err);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int out_layers(struct carve *c, Memtrain__ModelSpec *ms, const struct mt_model_desc *m)
{
    if (m->input.c > 0) {
        if (!(ms->input_shape = carve(c, 3 * sizeof *ms->input_shape)))
            return MT_E_NOMEM;
        ms->input_shape[0] = (uint32_t)m->input.c;
        ms->input_shape[1] = (uint32_t)m->input.h;
        ms->input_shape[2] = (uint32_t)m->input.w;
        ms->n_input_shape = 3;
    }
    if (!m->n_spec)
        return 0;
    if (!(ms->layers = carve(c, (size_t)m->n_spec * sizeof *ms->layers)))
        return MT_E_NOMEM;
    for (int i = 0; i < m->n_spec; i++) {
        const struct mt_layer_spec *L = &m->spec_layer[i];
        Memtrain__LayerNode *n = carve(c, sizeof *n);
        if (!n)
            return MT_E_NOMEM;
        memtrain__layer_node__init(n);
        ms->layers[i] = n;
        ms->n_layers = (size_t)i + 1;
        n->units = (uint32_t)L->units;
        n->kernel_h = (uint32_t)L->kh;
        n->kernel_w = (uint32_t)L->kw;
        n->stride = (uint32_t)L->stride;
        n->padding = (uint32_t)L->pad;
        n->no_bias = !L->bias;
        int has_act = L->kind == MT_LK_ACT || L->kind == MT_LK_RESIDUAL;
        if (!(n->kind = carve_str(c, layer_kind_name(L->kind), ENUM_LEN)) ||
            !(n->activation = carve_str(c, has_act ? act_name(L->act) : "", ENUM_LEN)))
            return MT_E_NOMEM;
    }
    return 0;
}

static int out_model_shape(struct carve *c, Memtrain__ModelSpec *ms,
                           const struct mt_model_desc *m)
{
    int hidden = model_is_graph(m) ? 0 : m->n_layers - 1;
    ms->classes = (uint32_t)m->width[m->n_layers];
    ms->input = (uint32_t)m->width[0];
    int rc = out_layers(c, ms, m);
    if (rc)
        return rc;
    if (hidden == 0)
        return 0;
    ms->hidden = carve(c, (size_t)hidden * sizeof *ms->hidden);
    if (!ms->hidden)
        return MT_E_NOMEM;
    for (int i = 0; i < hidden; i++) {
        Memtrain__LayerSpec *ls = carve(c, sizeof *ls);
        if (!ls)
            return MT_E_NOMEM;
        memtrain__layer_spec__init(ls);
        ms->hidden[i] = ls;
        ms->n_hidden = (size_t)i + 1;
        ls->width = (uint32_t)m->width[i + 1];
        /* "" for none, so specs without norm layers look as they always did */
        if (!(ls->activation = carve_str(c, act_name(m->act[i + 1]), ENUM_LEN))
            || !(ls->norm = carve_str(c, m->norm[i + 1] == MT_NK_NONE ? ""
                                      : norm_kind_name(m->norm[i + 1]), ENUM_LEN)))
            return MT_E_NOMEM;
    }
    return 0;
}

int jobspec_from_spec(const struct mt_spec *s, Memtrain__JobSpec **out, struct mt_err *err)
{
    int rc = check_model_out(&s->model, err);
    if (rc)
        return rc;
    struct carve c = {calloc(1, CARVE_CAP), 0, CARVE_CAP};
    if (!c.base)
        return mt_err_set(err, MT_E_NOMEM, "JobSpec: out of memory");
    Memtrain__JobSpec *js = (Memtrain__JobSpec *)new_message(&c, &memtrain__job_spec__descriptor);
    rc = out_section(&c, &js->base, &spec_fields, s, err);
    if (rc == 0)
        rc = out_model_shape(&c, js->model, &s->model);
    if (rc) {
        jobspec_free(js);
        return rc == MT_E_NOMEM ? mt_err_set(err, MT_E_NOMEM, "JobSpec: out of memory") : rc;
    }
    *out = js;
    return 0;
}

void jobspec_free(Memtrain__JobSpec *js)
{
    free(js);   /* the block starts with the message */
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
