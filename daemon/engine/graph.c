/* graph.c: layer-list models: resolving, memory layout and the passes
 * (graph.h). */
#include "graph.h"

#include <stdio.h>
#include <string.h>

#include "rng.h"

#define F4 sizeof(float)

/* ---- resolving ---------------------------------------------------------- */

struct mt_shape graph_tensor_shape(const struct mt_model_desc *d, int t)
{
    return t == 0 ? d->input : d->node[t - 1].out;
}

static int layer_fail(struct mt_err *err, const struct mt_model_desc *d, int origin,
                      struct mt_shape in, const char *why)
{
    char s[48];
    shape_format(in, s, sizeof s);
    return mt_err_set(err, MT_E_INVAL, "model.layers[%d] (%s): input %s: %s", origin,
                      layer_kind_name(d->spec_layer[origin].kind), s, why);
}

/* Append a node reading tensors src (and src2 for add), check its shape. */
static int add_node(struct mt_model_desc *d, struct mt_layer_spec ls, int src, int src2,
                    int origin, struct mt_err *err)
{
    if (d->n_nodes >= MT_MAX_NODES)
        return mt_err_set(err, MT_E_INVAL, "model.layers[%d]: more than %d nodes once residual "
                          "blocks are expanded", origin, MT_MAX_NODES);
    struct mt_layer *L = &d->node[d->n_nodes];
    memset(L, 0, sizeof *L);
    L->s = ls;
    L->src = src;
    L->src2 = src2;
    L->origin = origin;
    L->in = graph_tensor_shape(d, src + 1);
    if (ls.kind == MT_LK_ADD) {
        struct mt_shape o = graph_tensor_shape(d, src2 + 1);
        if (o.c != L->in.c || o.h != L->in.h || o.w != L->in.w) {
            char s[48], why[96];
            shape_format(o, s, sizeof s);
            snprintf(why, sizeof why, "the shortcut gives %s: the shapes must match", s);
            return layer_fail(err, d, origin, L->in, why);
        }
    }
    struct mt_err e = {0};
    if (layer_ops(ls.kind)->shape(L, &e))
        return layer_fail(err, d, origin, L->in, e.msg);
    return d->n_nodes++;
}

/* A pre-activation basic block (He et al. 2016): BN-f-conv3x3(stride)-BN-f-
 * conv3x3, plus the block's input, or a 1x1 projection (stride) of the first
 * f's output when the shape changes. */
static int add_residual(struct mt_model_desc *d, const struct mt_layer_spec *r, int prev,
                        int origin, struct mt_err *err)
{
    struct mt_shape in = graph_tensor_shape(d, prev + 1);
    struct mt_layer_spec bn = {.kind = MT_LK_BATCHNORM};
    struct mt_layer_spec f = {.kind = MT_LK_ACT, .act = r->act};
    struct mt_layer_spec c1 = {.kind = MT_LK_CONV, .units = r->units, .kh = 3, .kw = 3,
                               .stride = r->stride, .pad = 1};
    struct mt_layer_spec c2 = c1;
    c2.stride = 1;
    int a, f1, c;
    if ((a = add_node(d, bn, prev, -1, origin, err)) < 0 ||
        (f1 = add_node(d, f, a, -1, origin, err)) < 0 ||
        (c = add_node(d, c1, f1, -1, origin, err)) < 0 ||
        (a = add_node(d, bn, c, -1, origin, err)) < 0 ||
        (a = add_node(d, f, a, -1, origin, err)) < 0 ||
        (c = add_node(d, c2, a, -1, origin, err)) < 0)
        return -1;
    int shortcut = prev;
    if (r->stride != 1 || r->units != in.c) {
        struct mt_layer_spec p = {.kind = MT_LK_CONV, .units = r->units, .kh = 1, .kw = 1,
                                  .stride = r->stride};
        if ((shortcut = add_node(d, p, f1, -1, origin, err)) < 0)
            return -1;
    }
    struct mt_layer_spec add = {.kind = MT_LK_ADD};
    return add_node(d, add, c, shortcut, origin, err);
}

int graph_resolve(struct mt_model_desc *d, int classes, struct mt_err *err)
{
    if (d->input.c <= 0 || d->input.h <= 0 || d->input.w <= 0)
        return mt_err_set(err, MT_E_INVAL, "model.input: expected [channels, height, width], "
                          "each positive");
    d->n_nodes = 0;
    int prev = -1;
    for (int k = 0; k < d->n_spec; k++) {
        const struct mt_layer_spec *ls = &d->spec_layer[k];
        prev = ls->kind == MT_LK_RESIDUAL ? add_residual(d, ls, prev, k, err)
                                          : add_node(d, *ls, prev, -1, k, err);
        if (prev < 0)
            return err->code ? err->code : MT_E_INVAL;
    }
    if (d->n_nodes == 0)
        return mt_err_set(err, MT_E_INVAL, "model.layers: no layers");
    const struct mt_layer *last = &d->node[d->n_nodes - 1];
    size_t outn = shape_count(last->out);
    if (last->out.h != 1 || last->out.w != 1 || (classes > 0 && outn != (size_t)classes)) {
        char s[48];
        shape_format(last->out, s, sizeof s);
        return mt_err_set(err, MT_E_INVAL, "model.layers[%d] (%s): gives %s per sample; the "
                          "loss needs one value per class (%d): end with a dense layer of %d "
                          "units", last->origin, layer_kind_name(last->s.kind), s, classes,
                          classes);
    }
    if (layer_flags(last) & MT_LAYER_NEEDS_OUT)
        return mt_err_set(err, MT_E_INVAL, "model.layers[%d] (%s): the last layer gives the "
                          "logits and cannot be a nonlinearity", last->origin,
                          layer_kind_name(last->s.kind));
    if (outn > 256)
        return mt_err_set(err, MT_E_INVAL, "model: %zu classes; labels are bytes, at most 256",
                          outn);
    size_t poff = 0, soff = 0;
    int nw = 0;
    d->width[0] = (int)shape_count(d->input);
    for (int i = 0; i < d->n_nodes; i++) {
        struct mt_layer *L = &d->node[i];
        L->param_off = poff;
        L->stat_off = soff;
        poff += layer_n_params(L);
        soff += layer_n_stats(L);
        if (layer_flags(L) & MT_LAYER_WEIGHTS) {
            if (nw >= MT_MAX_LAYERS)
                return mt_err_set(err, MT_E_INVAL, "model.layers[%d]: more than %d weight "
                                  "layers", L->origin, MT_MAX_LAYERS);
            d->width[++nw] = (int)shape_count(L->out);
        }
    }
    if (nw == 0)
        return mt_err_set(err, MT_E_INVAL, "model.layers: no dense or conv layer to train");
    d->n_layers = nw;
    d->width[nw] = (int)outn;
    return 0;
}

size_t graph_param_count(const struct mt_model_desc *d)
{
    size_t n = 0;
    for (int i = 0; i < d->n_nodes; i++)
        n += layer_n_params(&d->node[i]);
    return n;
}

size_t graph_weight_count(const struct mt_model_desc *d)
{
    size_t n = 0;
    for (int i = 0; i < d->n_nodes; i++)
        n += layer_n_weights(&d->node[i]);
    return n;
}

size_t graph_stat_count(const struct mt_model_desc *d)
{
    size_t n = 0;
    for (int i = 0; i < d->n_nodes; i++)
        n += layer_n_stats(&d->node[i]);
    return n;
}

double graph_flops_forward(const struct mt_model_desc *d, int batch)
{
    double f = 0;
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer_ops *o = layer_ops(d->node[i].s.kind);
        if (o->flops)
            f += o->flops(&d->node[i]);
    }
    return f * batch;
}

int graph_next_act(const struct mt_model_desc *d, int i)
{
    /* Follow the main path (the next node reading this one) through
     * shape-only and normalising layers to the first nonlinearity. */
    for (int cur = i;;) {
        int next = -1;
        for (int j = cur + 1; j < d->n_nodes; j++)
            if (d->node[j].src == cur) {
                next = j;
                break;
            }
        if (next < 0)
            return LAYER_OUTPUT;
        const struct mt_layer *N = &d->node[next];
        if (N->s.kind == MT_LK_ACT)
            return (int)N->s.act;
        if (layer_flags(N) & MT_LAYER_WEIGHTS)
            return MT_ACT_IDENTITY;
        cur = next;
    }
}

void graph_init_params(const struct mt_model_desc *d, float *params, float *stats,
                       struct mt_rng *rng)
{
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        const struct mt_layer_ops *o = layer_ops(L->s.kind);
        if (o->init)
            o->init(L, params + L->param_off, stats ? stats + L->stat_off : NULL, rng, d->init,
                    graph_next_act(d, i));
    }
}

int graph_weight_node(const struct mt_model_desc *d, int l)
{
    for (int i = 0, k = 0; i < d->n_nodes; i++)
        if ((layer_flags(&d->node[i]) & MT_LAYER_WEIGHTS) && ++k == l)
            return i;
    return -1;
}

int graph_weight_layer(const struct mt_model_desc *d, int node)
{
    if (!(layer_flags(&d->node[node]) & MT_LAYER_WEIGHTS))
        return 0;
    int k = 0;
    for (int i = 0; i <= node; i++)
        k += (layer_flags(&d->node[i]) & MT_LAYER_WEIGHTS) != 0;
    return k;
}

int graph_is_projection(const struct mt_model_desc *d, int node)
{
    const struct mt_layer *L = &d->node[node];
    if (L->s.kind != MT_LK_ADD || L->src2 < 0 ||
        !(layer_flags(&d->node[L->src2]) & MT_LAYER_WEIGHTS))
        return 0;
    for (int i = 0; i < d->n_nodes; i++)
        if (i != node && (d->node[i].src == L->src2 || d->node[i].src2 == L->src2))
            return 0;
    return 1;
}

int graph_feeds_weights(const struct mt_model_desc *d, int t)
{
    for (int i = 0; i < d->n_nodes && t > 0; i++)
        if (d->node[i].src + 1 == t && (layer_flags(&d->node[i]) & MT_LAYER_WEIGHTS))
            return 1;
    return 0;
}

size_t graph_tensor_count(const struct mt_model_desc *d, int t)
{
    return shape_count(graph_tensor_shape(d, t));
}

/* ---- memory layout ------------------------------------------------------ */

/* Node indices reading tensor t, in order. */
static int readers(const struct mt_model_desc *d, int t, int *out)
{
    int n = 0;
    for (int i = 0; i < d->n_nodes; i++)
        if (d->node[i].src + 1 == t || (d->node[i].s.kind == MT_LK_ADD && d->node[i].src2 + 1 == t))
            out[n++] = i;
    return n;
}

int graph_readers(const struct mt_model_desc *d, int t, int *out)
{
    return readers(d, t, out);
}

unsigned graph_node_flags(const struct mt_model_desc *d, const struct graph_keep *keep, int i)
{
    return layer_flags_for(&d->node[i], keep && keep->approx);
}

int graph_last_reader(const struct mt_model_desc *d, int t)
{
    int r[MT_MAX_NODES], n = readers(d, t, r);
    return n ? r[n - 1] : -1;
}

/* Whether node i may write its output over tensor s: no tensor sharing s's
 * storage is kept or read by any node but the one that made the next
 * member (a flatten) or i itself. */
static int may_overwrite(const struct mt_model_desc *d, const struct graph_mem *m, int s, int i)
{
    if (s == 0 || m->group[s] == 0)
        return 0;
    int g = m->group[s];
    for (int u = 1; u <= d->n_nodes; u++) {
        if (m->group[u] != g)
            continue;
        if (m->kept[u])
            return 0;
        int r[MT_MAX_NODES], n = readers(d, u, r);
        for (int k = 0; k < n; k++)
            if (r[k] != i && !(m->group[r[k] + 1] == g && r[k] + 1 > u))
                return 0;
    }
    return 1;
}

static void assign_kept(const struct mt_model_desc *d, struct graph_mem *m)
{
    int T = d->n_nodes;
    for (int i = 0; i < T; i++) {
        const struct mt_layer *L = &d->node[i];
        unsigned f = graph_node_flags(d, m->keep, i);
        if (f & MT_LAYER_NEEDS_IN)
            m->kept[L->src + 1] = 1;
        if (f & MT_LAYER_NEEDS_OUT)
            m->kept[i + 1] = 1;
    }
    m->kept[T] = 1; /* the logits, then the output error */
    m->kept[0] = 0; /* the batch is the caller's */
}

static void assign_groups(const struct mt_model_desc *d, struct graph_mem *m)
{
    for (int t = 0; t <= d->n_nodes; t++)
        m->group[t] = (short)t;
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        unsigned f = layer_flags(L);
        int s = L->src + 1;
        if ((f & MT_LAYER_RESHAPE) || ((f & MT_LAYER_ELEMENTWISE) && may_overwrite(d, m, s, i)))
            m->group[i + 1] = m->group[s];
    }
    /* A group is kept when any of its tensors is. */
    for (int t = 0; t <= d->n_nodes; t++)
        if (m->kept[t])
            m->kept[m->group[t]] = 1;
    for (int t = 0; t <= d->n_nodes; t++)
        m->kept[t] = m->kept[m->group[t]];
}

/* Interval colouring: an own tensor (group root) needing a slot lives from
 * birth[t] to death[t]; slots are reused once free, each as large as the
 * largest tensor it held. */
int graph_colour(int n, const int *birth, const int *death, const size_t *floats,
                  const unsigned char *want, short *slot, size_t *slot_floats)
{
    int nslots = 0, slot_end[2 * GRAPH_T];
    for (int t = 0; t < n; t++)
        slot[t] = -1;
    for (int time = 0;; time++) {
        int any = 0;
        for (int t = 0; t < n; t++) {
            if (!want[t] || birth[t] != time)
                continue;
            any = 1;
            int s = 0;
            while (s < nslots && slot_end[s] >= birth[t])
                s++;
            if (s == nslots)
                slot_floats[nslots++] = 0;
            slot[t] = (short)s;
            slot_end[s] = death[t];
            if (floats[t] > slot_floats[s])
                slot_floats[s] = floats[t];
        }
        int later = 0;
        for (int t = 0; t < n; t++)
            if (want[t] && birth[t] > time)
                later = 1;
        if (!any && !later)
            break;
    }
    return nslots;
}

static void assign_forward_slots(const struct mt_model_desc *d, struct graph_mem *m)
{
    int n = d->n_nodes + 1, birth[GRAPH_T], death[GRAPH_T];
    size_t floats[GRAPH_T];
    unsigned char want[GRAPH_T];
    for (int t = 0; t < n; t++) {
        want[t] = t > 0 && m->group[t] == t && !m->kept[t];
        birth[t] = t - 1;
        death[t] = t - 1;
        floats[t] = (size_t)m->B * shape_count(graph_tensor_shape(d, t));
    }
    for (int u = 1; u < n; u++) {
        int r = graph_last_reader(d, u), g = m->group[u];
        if (r > death[g])
            death[g] = r;
        if (u - 1 > death[g])
            death[g] = u - 1;
    }
    m->n_fslots = graph_colour(n, birth, death, floats, want, m->fslot, m->fslot_floats);
}

/* Backward time of node i: n_nodes - 1 - i. Tensor s's gradient is born at
 * its last reader's backward and dies at its producer's; it takes its
 * reader's output gradient over (gshare) when that reader is elementwise or
 * a flatten and the first to reach it. */
static void assign_backward_slots(const struct mt_model_desc *d, struct graph_mem *m,
                                  int input_grad)
{
    int n = d->n_nodes + 1, T = d->n_nodes;
    int birth[GRAPH_T], death[GRAPH_T];
    short root[GRAPH_T];
    size_t floats[GRAPH_T];
    unsigned char want[GRAPH_T];
    /* need_grad: some parameter lies at or above the tensor's producer (or
     * the input's gradient is wanted). */
    m->need_grad[0] = (unsigned char)input_grad;
    for (int i = 0; i < T; i++) {
        const struct mt_layer *L = &d->node[i];
        m->need_grad[i + 1] = layer_n_params(L) > 0 || m->need_grad[L->src + 1] ||
                              (L->s.kind == MT_LK_ADD && m->need_grad[L->src2 + 1]);
    }
    for (int t = 0; t < n; t++) {
        root[t] = (short)t;
        m->gshare[t] = 0;
        floats[t] = (size_t)m->B * shape_count(graph_tensor_shape(d, t));
    }
    /* Shares, walked in backward order so a root is known before its sharers. */
    for (int i = T - 1; i >= 0; i--) {
        const struct mt_layer *L = &d->node[i];
        unsigned f = layer_flags(L);
        int s = L->src + 1;
        if (s == 0 || !m->need_grad[s] || graph_last_reader(d, s) != i || i + 1 == T)
            continue;
        if (f & (MT_LAYER_ELEMENTWISE | MT_LAYER_RESHAPE)) {
            m->gshare[s] = 1;
            root[s] = root[i + 1];
        }
    }
    for (int t = 0; t < n; t++) {
        want[t] = 0;
        birth[t] = death[t] = -1;
    }
    for (int t = 1; t < n; t++) {
        if (!m->need_grad[t] || t == T)
            continue;
        int r = graph_last_reader(d, t);
        if (r < 0)
            continue; /* read by no one: no gradient reaches it */
        int b = T - 1 - r, e = T - 1 - (t - 1), g = root[t];
        want[g] = 1;
        if (birth[g] < 0 || b < birth[g])
            birth[g] = b;
        if (e > death[g])
            death[g] = e;
        if (floats[t] > floats[g])
            floats[g] = floats[t];
    }
    m->n_gslots = graph_colour(n, birth, death, floats, want, m->gslot, m->gslot_floats);
    for (int t = 1; t < n; t++)
        m->gslot[t] = m->need_grad[t] && t != T ? m->gslot[root[t]] : -1;
    m->gslot[0] = -1;
}

/* The rule's codes: a tensor some backward reads is coded instead of kept
 * when the rule says so (never the logits); coded tensors then live in
 * forward slots like any transient, their codes in the activations. A
 * tensor no backward reads is coded when the rule says GRAPH_CODE_SOURCE
 * (never decoded). */
static void assign_codes(const struct mt_model_desc *d, const struct graph_keep *keep,
                         const void *ctx, struct graph_mem *m)
{
    if (!keep || !keep->coded)
        return;
    for (int t = 1; t < d->n_nodes; t++) {
        size_t bytes = 0;
        int read = m->kept[t], c = keep->coded(ctx, d, t, m->B, &bytes);
        if (c && (read || c == GRAPH_CODE_SOURCE)) {
            m->kept[t] = 0;
            m->coded[t] = 1;
            m->code_bytes[t] = bytes;
            size_t n = (size_t)m->B * shape_count(graph_tensor_shape(d, t));
            if (read && n > m->decode_floats)
                m->decode_floats = n;
        }
    }
}

/* With transforms_input, a weight layer's backward reads what decode gives
 * for its input (t > 0) even when that input is kept in FP32. */
static int decodes_weight_input(const struct graph_mem *m, const struct mt_layer *L)
{
    return m->keep && m->keep->transforms_input && (layer_flags(L) & MT_LAYER_WEIGHTS) &&
           L->src >= 0;
}

static void plan_weight_decodes(const struct mt_model_desc *d, struct graph_mem *m)
{
    for (int i = 0; i < d->n_nodes; i++) {
        size_t n = (size_t)m->B * shape_count(d->node[i].in);
        if (decodes_weight_input(m, &d->node[i]) && n > m->decode_floats)
            m->decode_floats = n;
    }
}

static size_t max_weight_input(const struct mt_model_desc *d, int B)
{
    size_t mx = 0;
    for (int i = 0; i < d->n_nodes; i++)
        if ((layer_flags(&d->node[i]) & MT_LAYER_WEIGHTS) &&
            (size_t)B * shape_count(d->node[i].in) > mx)
            mx = (size_t)B * shape_count(d->node[i].in);
    return mx;
}

static void mem_plan(const struct mt_model_desc *d, int B, const struct graph_keep *keep,
                     const void *ctx, int input_grad, struct graph_mem *m);

void graph_mem_plan(const struct mt_model_desc *d, int B, const struct graph_keep *keep,
                    const void *ctx, struct graph_mem *m)
{
    mem_plan(d, B, keep, ctx, 0, m);
}

void graph_mem_plan_piece(const struct mt_model_desc *d, int B, struct graph_mem *m)
{
    mem_plan(d, B, NULL, NULL, 1, m);
}

static void mem_plan(const struct mt_model_desc *d, int B, const struct graph_keep *keep,
                     const void *ctx, int input_grad, struct graph_mem *m)
{
    memset(m, 0, sizeof *m);
    m->B = B;
    m->keep = keep;
    assign_kept(d, m);
    assign_codes(d, keep, ctx, m);
    plan_weight_decodes(d, m);
    assign_groups(d, m);
    assign_forward_slots(d, m);
    assign_backward_slots(d, m, input_grad);
    m->kept_bytes = 0;
    size_t tmp = 0;
    for (int t = 1; t <= d->n_nodes; t++) {
        size_t cnt = (size_t)B * shape_count(graph_tensor_shape(d, t));
        if (m->group[t] == t && m->kept[t])
            m->kept_bytes += cnt * F4;
        m->kept_bytes += m->code_bytes[t];
        if (cnt > tmp)
            tmp = cnt;
    }
    for (int i = 0; i < d->n_nodes; i++) {
        m->kept_bytes += layer_aux_floats(&d->node[i], B) * F4;
        size_t w = layer_ws_floats(&d->node[i], B);
        if (w > m->ws_floats)
            m->ws_floats = w;
    }
    if (keep && keep->transforms_input)
        m->winput_floats = max_weight_input(d, B);
    m->tmp_floats = tmp;
    m->n_tmp = 0;
    /* A summed gradient needs tmp; an add reading two summed tensors, two. */
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        int k = 0;
        if (m->need_grad[L->src + 1] && graph_last_reader(d, L->src + 1) != i)
            k++;
        if (L->s.kind == MT_LK_ADD && m->need_grad[L->src2 + 1] &&
            graph_last_reader(d, L->src2 + 1) != i)
            k++;
        if (k > m->n_tmp)
            m->n_tmp = k;
    }
}

size_t graph_node_kept_bytes(const struct mt_model_desc *d, const struct graph_mem *m, int i)
{
    int t = i + 1;
    size_t n = layer_aux_floats(&d->node[i], m->B);
    if (m->group[t] == t && m->kept[t])
        n += (size_t)m->B * shape_count(graph_tensor_shape(d, t));
    return n * F4 + m->code_bytes[t];
}

static size_t slots_floats(const size_t *f, int n)
{
    size_t s = 0;
    for (int i = 0; i < n; i++)
        s += f[i];
    return s;
}

size_t graph_mem_forward_ws(const struct graph_mem *m)
{
    return (slots_floats(m->fslot_floats, m->n_fslots) + m->ws_floats + m->winput_floats) * F4;
}

size_t graph_mem_backward_ws(const struct graph_mem *m)
{
    return (slots_floats(m->gslot_floats, m->n_gslots) + (size_t)m->n_tmp * m->tmp_floats +
            m->ws_floats + m->decode_floats) * F4;
}

/* ---- passes ------------------------------------------------------------- */

static float *push(struct mt_arena *a, enum mt_mem_cat cat, size_t floats, struct mt_err *err)
{
    return floats ? arena_push(a, cat, floats * F4, err) : NULL;
}

void graph_run_node(const struct mt_model_desc *d, const struct graph_keep *keep, int i,
                    float *const *t, const float *params, float *stats, float *aux, float *ws,
                    float *wbuf, int B, int train, void *ud)
{
    const struct mt_layer *L = &d->node[i];
    const float *x = t[L->src + 1];
    if (keep && keep->transforms_input && (layer_flags(L) & MT_LAYER_WEIGHTS))
        x = keep->weight_input(ud, i, x, B, wbuf);
    struct mt_layer_fwd f = {
        .x = x,
        .x2 = L->s.kind == MT_LK_ADD ? t[L->src2 + 1] : NULL,
        .y = t[i + 1],
        .p = params + L->param_off,
        .stats = stats ? stats + L->stat_off : NULL,
        .aux = aux,
        .ws = ws,
        .B = B,
        .train = train,
    };
    layer_ops(L->s.kind)->forward(L, &f);
}

int graph_train_forward(const struct mt_model_desc *d, const struct graph_mem *m,
                        const float *params, float *stats, const float *x, int B, void *ud,
                        struct mt_arena *a, struct graph_step *s, struct mt_err *err)
{
    int T = d->n_nodes, PB = m->B;
    memset(s, 0, sizeof *s);
    s->t[0] = (float *)x;
    for (int t = 1; t <= T; t++)
        if (m->group[t] == t && m->kept[t] &&
            !(s->t[t] = push(a, MT_MEM_ACTS, (size_t)PB * shape_count(graph_tensor_shape(d, t)), err)))
            return arena_error(a);
    for (int t = 1; t <= T; t++)
        if (m->code_bytes[t] && !(s->code[t] = arena_push(a, MT_MEM_ACTS, m->code_bytes[t], err)))
            return arena_error(a);
    for (int i = 0; i < T; i++) {
        size_t n = layer_aux_floats(&d->node[i], PB);
        if (n && !(s->aux[i] = push(a, MT_MEM_ACTS, n, err)))
            return arena_error(a);
    }
    if (m->ws_floats && !(s->ws = push(a, MT_MEM_WORKSPACE, m->ws_floats, err)))
        return arena_error(a);
    s->mark_after_kept = arena_mark(a);
    float *slot[GRAPH_T], *wbuf = NULL;
    if (m->winput_floats && !(wbuf = push(a, MT_MEM_WORKSPACE, m->winput_floats, err)))
        return arena_error(a);
    for (int k = 0; k < m->n_fslots; k++)
        if (!(slot[k] = push(a, MT_MEM_WORKSPACE, m->fslot_floats[k], err)))
            return arena_error(a);
    for (int t = 1; t <= T; t++)
        if (m->group[t] == t && !m->kept[t])
            s->t[t] = slot[m->fslot[t]];
    for (int i = 0; i < T; i++) {
        int t = i + 1;
        if (m->group[t] != t)
            s->t[t] = s->t[m->group[t]];
        graph_run_node(d, m->keep, i, s->t, params, stats, s->aux[i], s->ws, wbuf, B, 1, ud);
        if (m->coded[t])
            m->keep->encode(ud, t, s->t[t], B, s->code[t], s);
    }
    arena_pop(a, s->mark_after_kept);
    for (int t = 1; t <= T; t++)
        if (!m->kept[t])
            s->t[t] = NULL; /* gone with the forward slots */
    return 0;
}

static void add_into(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

int graph_backward(const struct mt_model_desc *d, const struct graph_mem *m,
                   const float *params, struct graph_step *s, int B,
                   const struct graph_grad_sink *sink, void *ud, struct mt_arena *a,
                   struct mt_err *err)
{
    int T = d->n_nodes;
    float *slot[GRAPH_T], *g[GRAPH_T], *tmp[2] = {NULL, NULL}, *dec = NULL;
    unsigned char have[GRAPH_T];
    for (int k = 0; k < m->n_gslots; k++)
        if (!(slot[k] = push(a, MT_MEM_WORKSPACE, m->gslot_floats[k], err)))
            return arena_error(a);
    for (int k = 0; k < m->n_tmp; k++)
        if (!(tmp[k] = push(a, MT_MEM_WORKSPACE, m->tmp_floats, err)))
            return arena_error(a);
    if (m->decode_floats && !(dec = push(a, MT_MEM_WORKSPACE, m->decode_floats, err)))
        return arena_error(a);
    for (int t = 0; t <= T; t++) {
        g[t] = m->gslot[t] >= 0 ? slot[m->gslot[t]] : NULL;
        have[t] = 0;
    }
    g[0] = s->dinput;
    g[T] = s->dout ? s->dout : s->t[T];
    have[T] = 1;
    for (int i = T - 1; i >= 0; i--) {
        const struct mt_layer *L = &d->node[i];
        unsigned f = graph_node_flags(d, m->keep, i);
        int t = i + 1, in[2] = {L->src + 1, L->s.kind == MT_LK_ADD ? L->src2 + 1 : -1};
        if (sink->seed && m->need_grad[t] && t < T) {
            float *dst = have[t] ? tmp[0] : g[t];
            if (sink->seed(sink->ud, t, dst, B)) {
                if (have[t])
                    add_into(g[t], dst, (size_t)B * shape_count(L->out));
                have[t] = 1;
            }
        }
        if (!have[t])
            continue; /* it does not reach the loss */
        /* A coded tensor is decoded for its reader (no kind reads both its
         * input and its output). */
        int rt = (f & MT_LAYER_NEEDS_IN) ? in[0] : (f & MT_LAYER_NEEDS_OUT) ? t : -1;
        const float *rd = rt >= 0 ? s->t[rt] : NULL;
        if (rt > 0 && (m->coded[rt] || decodes_weight_input(m, L))) {
            m->keep->decode(ud, rt, i, B, dec, s);
            rd = dec;
        }
        struct mt_layer_bwd b = {
            .x = (f & MT_LAYER_NEEDS_IN) ? rd : NULL,
            .y = (f & MT_LAYER_NEEDS_OUT) ? rd : NULL,
            .aux = s->aux[i],
            .dy = g[t],
            .p = params + L->param_off,
            .ws = s->ws,
            .B = B,
        };
        if (layer_n_params(L)) {
            b.dp = sink->dp(sink->ud, i, &b.beta);
            const float *bk = sink->back ? sink->back(sink->ud, i) : NULL;
            b.back = bk ? bk : b.p;
        }
        /* Each input's gradient: written in place, into its slot, or (when a
         * later reader already wrote there) into tmp and then added. */
        float *dst[2] = {NULL, NULL};
        for (int k = 0; k < 2; k++) {
            int u = in[k];
            if (u < 0 || !m->need_grad[u] || (sink->direct && (f & MT_LAYER_WEIGHTS)))
                continue;
            /* Direct feedback keeps each layer's error local: a residual
             * join sends none down its shortcut unless that is a
             * projection (graph_is_projection). */
            if (sink->direct && k == 1 && !graph_is_projection(d, i))
                continue;
            dst[k] = have[u] ? tmp[k] : (k == 0 && m->gshare[u]) ? g[t] : g[u];
        }
        b.dx = dst[0];
        b.dx2 = dst[1];
        layer_backward(L, m->keep && m->keep->approx, &b);
        for (int k = 0; k < 2; k++) {
            int u = in[k];
            if (!dst[k])
                continue;
            if (have[u])
                add_into(g[u], tmp[k], (size_t)B * shape_count(L->in));
            have[u] = 1;
        }
    }
    return 0;
}

/* ---- evaluation --------------------------------------------------------- */

void graph_eval_plan(const struct mt_model_desc *d, int B, const struct graph_keep *keep,
                     struct graph_mem *m)
{
    memset(m, 0, sizeof *m);
    m->B = B;
    m->keep = keep;
    if (keep && keep->transforms_input)
        m->winput_floats = max_weight_input(d, B);
    assign_groups(d, m);  /* nothing kept: every tensor in a forward slot */
    assign_forward_slots(d, m);
    for (int i = 0; i < d->n_nodes; i++) {
        size_t w = layer_ws_floats(&d->node[i], B);
        if (w > m->ws_floats)
            m->ws_floats = w;
    }
}

size_t graph_eval_floats(const struct graph_mem *m)
{
    return slots_floats(m->fslot_floats, m->n_fslots) + m->ws_floats + m->winput_floats;
}

const float *graph_forward_eval(const struct mt_model_desc *d, const struct graph_mem *m,
                                const float *params, const float *stats, const float *x, int B,
                                void *ud, float *ws)
{
    return graph_forward_rolling(d, m, params, (float *)stats, x, B, 0, ud, ws);
}

const float *graph_forward_rolling(const struct mt_model_desc *d, const struct graph_mem *m,
                                   const float *params, float *stats, const float *x, int B,
                                   int train, void *ud, float *ws)
{
    float *t[GRAPH_T], *slot[GRAPH_T];
    float *p = ws;
    for (int k = 0; k < m->n_fslots; k++) {
        slot[k] = p;
        p += m->fslot_floats[k];
    }
    t[0] = (float *)x;
    float *wbuf = p + m->ws_floats;
    for (int i = 0; i < d->n_nodes; i++) {
        int u = i + 1;
        t[u] = m->group[u] == u ? slot[m->fslot[u]] : t[m->group[u]];
        graph_run_node(d, m->keep, i, t, params, stats, NULL, p, wbuf, B, train, ud);
    }
    return t[d->n_nodes];
}
