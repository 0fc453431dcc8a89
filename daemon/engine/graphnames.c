/* graphnames.c: names of a layer list's nodes and parameter tensors
 * (graphnames.h). */
#include "graphnames.h"

#include <stdio.h>

#include "act.h"
#include "layer.h"

const char *graph_node_part(const struct mt_model_desc *d, int i)
{
    static const char *const block[] = {"bn1", "act1", "conv1", "bn2", "act2", "conv2"};
    const struct mt_layer *L = &d->node[i];
    if (d->spec_layer[L->origin].kind != MT_LK_RESIDUAL)
        return L->s.kind == MT_LK_ACT ? act_name(L->s.act) : layer_kind_name(L->s.kind);
    int j = 0;   /* the node's place within its block (add_residual's order) */
    while (i - j - 1 >= 0 && d->node[i - j - 1].origin == L->origin)
        j++;
    if (j < 6)
        return block[j];
    return L->s.kind == MT_LK_ADD ? "add" : "shortcut";
}

static void tensor(struct graph_tensor *t, const struct mt_model_desc *d, int i,
                   const char *what, size_t off, int stat, int rank, size_t d0, size_t d1,
                   size_t d2, size_t d3)
{
    const struct mt_layer *L = &d->node[i];
    snprintf(t->name, sizeof t->name, "layers.%d.%s.%s", L->origin, graph_node_part(d, i), what);
    t->rank = rank;
    t->shape[0] = d0, t->shape[1] = d1, t->shape[2] = d2, t->shape[3] = d3;
    t->count = d0;
    for (int k = 1; k < rank; k++)
        t->count *= t->shape[k];
    t->off = off;
    t->stat = stat;
    t->node = i;
}

int graph_param_tensors(const struct mt_model_desc *d, struct graph_tensor *out)
{
    int n = 0;
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        size_t np = layer_n_params(L), ns = layer_n_stats(L), po = L->param_off;
        size_t u = (size_t)L->s.units, c = (size_t)L->out.c;
        if (!np && !ns)
            continue;
        switch (L->s.kind) {
        case MT_LK_CONV:
            tensor(&out[n++], d, i, "weight", po, 0, 4, u, (size_t)L->in.c, (size_t)L->s.kh,
                   (size_t)L->s.kw);
            break;
        case MT_LK_DENSE:
            tensor(&out[n++], d, i, "weight", po, 0, 2, u, shape_count(L->in), 0, 0);
            break;
        case MT_LK_BATCHNORM:
            tensor(&out[n++], d, i, "weight", po, 0, 1, c, 0, 0, 0);
            tensor(&out[n++], d, i, "bias", po + c, 0, 1, c, 0, 0, 0);
            tensor(&out[n++], d, i, "running_mean", L->stat_off, 1, 1, c, 0, 0, 0);
            tensor(&out[n++], d, i, "running_var", L->stat_off + c, 1, 1, c, 0, 0, 0);
            continue;
        default: /* a kind with other parameters: one flat tensor each */
            if (np)
                tensor(&out[n++], d, i, "params", po, 0, 1, np, 0, 0, 0);
            if (ns)
                tensor(&out[n++], d, i, "stats", L->stat_off, 1, 1, ns, 0, 0, 0);
            continue;
        }
        size_t nw = out[n - 1].count;
        if (np > nw) /* dense and conv: the bias follows the weights */
            tensor(&out[n++], d, i, "bias", po + nw, 0, 1, np - nw, 0, 0, 0);
    }
    return n;
}

/* One model.layers entry, compact: conv20k5, conv64k3s2p1, maxpool2,
 * res128s2, dense10, relu, bn, gap. */
static int spec_layer_string(char *buf, size_t len, const struct mt_layer_spec *l)
{
    char sz[32] = "", st[16] = "", pd[16] = "";
    int pool = l->kind == MT_LK_MAXPOOL || l->kind == MT_LK_AVGPOOL;
    if (l->kh && l->kh == l->kw)
        snprintf(sz, sizeof sz, "%d", l->kh);
    else if (l->kh)
        snprintf(sz, sizeof sz, "%dx%d", l->kh, l->kw);
    if (l->stride > 1 && !(pool && l->stride == l->kh))
        snprintf(st, sizeof st, "s%d", l->stride);
    if (l->pad)
        snprintf(pd, sizeof pd, "p%d", l->pad);
    switch (l->kind) {
    case MT_LK_CONV:
        return snprintf(buf, len, "conv%dk%s%s%s%s", l->units, sz, st, pd, l->bias ? "" : "nb");
    case MT_LK_DENSE:
        return snprintf(buf, len, "dense%d%s", l->units, l->bias ? "" : "nb");
    case MT_LK_MAXPOOL:
    case MT_LK_AVGPOOL:
        return snprintf(buf, len, "%s%s%s", layer_kind_name(l->kind), sz, st);
    case MT_LK_RESIDUAL:
        return snprintf(buf, len, "res%d%s%s%s", l->units, st, l->act == MT_ACT_RELU ? "" : "-",
                        l->act == MT_ACT_RELU ? "" : act_name(l->act));
    case MT_LK_ACT:
        return snprintf(buf, len, "%s", act_name(l->act));
    case MT_LK_BATCHNORM:
        return snprintf(buf, len, "bn");
    case MT_LK_LAYERNORM:
        return snprintf(buf, len, "ln");
    case MT_LK_GAP:
        return snprintf(buf, len, "gap");
    default:
        return snprintf(buf, len, "%s", layer_kind_name(l->kind));
    }
}

void graph_model_string(char *buf, size_t len, const struct mt_model_desc *d)
{
    size_t n = (size_t)snprintf(buf, len, "%dx%dx%d", d->input.c, d->input.h, d->input.w);
    for (int k = 0; k < d->n_spec && n + 1 < len; k++) {
        buf[n++] = ' ';
        n += (size_t)spec_layer_string(buf + n, len - n, &d->spec_layer[k]);
    }
}
