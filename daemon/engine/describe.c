/* describe.c: the model as JSON for inference elsewhere (describe.h).
 *
 * Floats are printed with 9 significant digits, so that a reader parsing
 * them as float32 gets memtrain's values bit for bit. The schema is in
 * docs/export.md; share/memtrain/memtrain_load.py is its reader. */
#include "describe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "graphnames.h"
#include "layer.h"
#include "norm.h"
#include "train.h"
#include "rules/asa.h"
#include "rules/binary.h"

/* A growing string; `failed` once an allocation failed. */
struct jbuf {
    char *p;
    size_t n, cap;
    int failed;
};

static void jb_printf(struct jbuf *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !b->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->n + (size_t)k)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* ---- the parts ----------------------------------------------------------- */

static int is_ff(const struct mt_trainer *t)
{
    return strcmp(t->rule->name, "ff") == 0;
}

static int is_asa(const struct mt_trainer *t)
{
    return strcmp(t->rule->name, "asa") == 0;
}

static void rule_json(struct jbuf *b, const struct mt_trainer *t)
{
    const struct mt_rule_spec *r = &t->spec.rule;
    unsigned f = t->rule->flags;
    jb_printf(b, "  \"rule\": {\"name\": \"%s\"", t->rule->name);
    if (f & MT_RULE_BINARY)
        jb_printf(b, ", \"binary\": %s", r->binary == 1 ? "true" : "false");
    if (f & MT_RULE_EPSILON)
        jb_printf(b, ", \"epsilon\": %.9g", (double)r->epsilon);
    if (f & MT_RULE_KAPPA)
        jb_printf(b, ", \"kappa\": %.9g", (double)r->kappa);
    if (f & MT_RULE_GROUPS)
        jb_printf(b, ", \"groups\": %d", r->groups);
    jb_printf(b, "},\n");
}

/* x = pixel * scale + shift in float32, pixel the raw byte (0..255). */
static void input_json(struct jbuf *b, const struct mt_trainer *t)
{
    const struct mt_model_desc *d = &t->net.d;
    if (model_is_graph(d))
        jb_printf(b, "  \"input\": {\"shape\": [%d, %d, %d]", d->input.c, d->input.h,
                  d->input.w);
    else
        jb_printf(b, "  \"input\": {\"shape\": [%d]", d->width[0]);
    jb_printf(b, ", \"normalize\": \"%s\", \"scale\": %.9g, \"shift\": %.9g},\n",
              data_normalize_name(t->spec.data.normalize), (double)t->norm.scale,
              (double)t->norm.shift);
    jb_printf(b, "  \"classes\": %d,\n", d->width[d->n_layers]);
}

static void mlp_json(struct jbuf *b, const struct mt_trainer *t)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers;
    jb_printf(b, "  \"model\": {\"form\": \"mlp\", \"layers\": [\n");
    for (int l = 1; l <= L; l++) {
        enum mt_normkind nk = l < L ? d->norm[l] : MT_NK_NONE;
        jb_printf(b, "    {\"weight\": \"W%d\", \"bias\": \"b%d\", \"in\": %d, \"out\": %d, "
                  "\"activation\": \"%s\", \"norm\": \"%s\"", l, l, d->width[l - 1],
                  d->width[l], act_name(l < L ? d->act[l] : MT_ACT_IDENTITY),
                  norm_kind_name(nk));
        if (nk == MT_NK_BATCH)
            jb_printf(b, ", \"gamma\": \"gamma%d\", \"beta\": \"beta%d\", \"running_mean\": "
                      "\"bn_mean%d\", \"running_var\": \"bn_var%d\"", l, l, l, l);
        if (is_asa(t))
            jb_printf(b, ", \"sign_term\": \"%s\"", l >= 2 ? "relu" : "none");
        if (is_ff(t) && l == L)
            jb_printf(b, ", \"unused\": true");
        jb_printf(b, "}%s\n", l < L ? "," : "");
    }
    jb_printf(b, "  ]},\n");
}

static void shape_json(struct jbuf *b, const char *key, struct mt_shape s)
{
    jb_printf(b, ", \"%s\": [%d, %d, %d]", key, s.c, s.h, s.w);
}

/* Node i's tensors by role, from the checkpoint's names. */
static void node_tensors_json(struct jbuf *b, const struct graph_tensor *gt, int n, int i)
{
    for (int k = 0; k < n; k++) {
        if (gt[k].node != i)
            continue;
        const char *role = strrchr(gt[k].name, '.') + 1;   /* weight, bias, running_mean, ... */
        jb_printf(b, ", \"%s\": \"%s\"", role, gt[k].name);
    }
}

static const char *const asa_forms[] = {"none", "relu", "sign"};

static void graph_json(struct jbuf *b, const struct mt_trainer *t)
{
    const struct mt_model_desc *d = &t->net.d;
    static struct graph_tensor gt[4 * MT_MAX_NODES];   /* a worker describes from one thread */
    int nt = graph_param_tensors(d, gt);
    jb_printf(b, "  \"model\": {\"form\": \"layers\", \"nodes\": [\n");
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        const struct mt_layer_spec *s = &L->s;
        jb_printf(b, "    {\"kind\": \"%s\", \"name\": \"layers.%d.%s\", \"input\": %d",
                  layer_kind_name(s->kind), L->origin, graph_node_part(d, i), L->src);
        if (s->kind == MT_LK_ADD)
            jb_printf(b, ", \"input2\": %d", L->src2);
        shape_json(b, "in_shape", L->in);
        shape_json(b, "out_shape", L->out);
        switch (s->kind) {
        case MT_LK_CONV:
            jb_printf(b, ", \"kernel\": [%d, %d], \"stride\": %d, \"padding\": %d", s->kh, s->kw,
                      s->stride, s->pad);
            break;
        case MT_LK_MAXPOOL:
        case MT_LK_AVGPOOL:
            jb_printf(b, ", \"kernel\": [%d, %d], \"stride\": %d", s->kh, s->kw, s->stride);
            break;
        case MT_LK_ACT:
            jb_printf(b, ", \"activation\": \"%s\"", act_name(s->act));
            break;
        default:
            break;
        }
        node_tensors_json(b, gt, nt, i);
        if (is_asa(t) && (layer_flags(L) & MT_LAYER_WEIGHTS))
            jb_printf(b, ", \"sign_term\": \"%s\"", asa_forms[asa_input_form(d, i)]);
        jb_printf(b, "}%s\n", i + 1 < d->n_nodes ? "," : "");
    }
    jb_printf(b, "  ]},\n");
}

/* The rule's inference path: how the logits the test accuracy counts are
 * formed from the layers above (docs/export.md). */
static void inference_json(struct jbuf *b, const struct mt_trainer *t)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers;
    const char *rule = t->rule->name;
    if (is_asa(t)) {
        jb_printf(b, "  \"inference\": {\"kind\": \"asa\", \"epsilon\": %.9g},\n",
                  (double)t->spec.rule.epsilon);
    } else if (strcmp(rule, "bp") == 0 && t->spec.rule.binary == 1) {
        jb_printf(b, "  \"inference\": {\"kind\": \"binary\"},\n");
    } else if (strcmp(rule, "tinyfoa") == 0) {
        jb_printf(b, "  \"inference\": {\"kind\": \"tinyfoa\", \"stage\": %d, \"stages\": %d},\n",
                  tinyfoa_eval_stage(t), L - 1);
    } else if (is_ff(t)) {
        float lo = t->norm.shift, hi = 255.0f * t->norm.scale + t->norm.shift;
        jb_printf(b, "  \"inference\": {\"kind\": \"ff\", \"label_off\": %.9g, \"label_on\": "
                  "%.9g, \"rms_eps\": %.9g, \"goodness_layers\": [", (double)lo, (double)hi,
                  1e-8);
        for (int l = 1, first = 1; l < L; l++)
            if (L == 2 || l >= 2) {
                jb_printf(b, "%s%d", first ? "" : ", ", l);
                first = 0;
            }
        jb_printf(b, "]},\n");
    } else {
        jb_printf(b, "  \"inference\": {\"kind\": \"forward\"},\n");
    }
}

int describe_model(const struct mt_trainer *t, char **out, struct mt_err *err)
{
    struct jbuf b = {0};
    *out = NULL;
    jb_printf(&b, "{\n  \"format\": %d,\n", DESCRIBE_FORMAT);
    rule_json(&b, t);
    input_json(&b, t);
    if (model_is_graph(&t->net.d))
        graph_json(&b, t);
    else
        mlp_json(&b, t);
    inference_json(&b, t);
    jb_printf(&b, "  \"evaluation\": {\"batch\": %d, \"epoch\": %d},\n", t->spec.batch, t->epoch);
    jb_printf(&b, "  \"constants\": {\"norm_eps\": %.9g, \"leaky_slope\": %.9g, "
              "\"gelu\": \"tanh\"}\n}\n", (double)MT_NORM_EPS, (double)MT_LEAKY_SLOPE);
    if (b.failed) {
        free(b.p);
        return mt_err_set(err, MT_E_NOMEM, "out of memory describing the model");
    }
    *out = b.p;
    return 0;
}

int describe_tensor_used(const struct mt_trainer *t, const char *name)
{
    char w[16], bias[16];
    if (!is_ff(t) || model_is_graph(&t->net.d))
        return 1;
    snprintf(w, sizeof w, "W%d", t->net.d.n_layers);
    snprintf(bias, sizeof bias, "b%d", t->net.d.n_layers);
    return strcmp(name, w) != 0 && strcmp(name, bias) != 0;
}
