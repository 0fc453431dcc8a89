/* model.c: MLP shapes and the parameter block (model.h). */
#include "model.h"

#include <math.h>
#include <string.h>

#include "checked.h"
#include "graph.h"
#include "layer.h"
#include "rng.h"

int model_validate(const struct mt_model_desc *d, struct mt_err *err)
{
    if (model_is_graph(d))
        return d->n_nodes > 0 ? 0 : mt_err_set(err, MT_E_INVAL, "model: layers not resolved");
    if (d->n_layers < 1 || d->n_layers > MT_MAX_LAYERS)
        return mt_err_set(err, MT_E_INVAL, "model: %d weight layers; expected 1 to %d",
                          d->n_layers, MT_MAX_LAYERS);
    for (int l = 0; l <= d->n_layers; l++)
        if (d->width[l] <= 0 || d->width[l] > (1 << 20))
            return mt_err_set(err, MT_E_INVAL, "model: layer %d width %d out of range (1..%d)",
                              l, d->width[l], 1 << 20);
    for (int l = 1; l < d->n_layers; l++) {
        if ((unsigned)d->act[l] >= MT_ACT_N)
            return mt_err_set(err, MT_E_INVAL, "model: layer %d has no valid activation", l);
        if ((unsigned)d->norm[l] >= MT_NK_N)
            return mt_err_set(err, MT_E_INVAL, "model: layer %d has no valid norm", l);
    }
    if (d->width[d->n_layers] > 256)
        return mt_err_set(err, MT_E_INVAL, "model: %d classes; labels are bytes, at most 256",
                          d->width[d->n_layers]);
    return 0;
}

static const char *norm_names[MT_NK_N] = {"none", "batchnorm", "layernorm"};

const char *norm_kind_name(enum mt_normkind k)
{
    return (unsigned)k < MT_NK_N ? norm_names[k] : "?";
}

int norm_kind_from_name(const char *name)
{
    for (int i = 0; i < MT_NK_N; i++)
        if (strcmp(name, norm_names[i]) == 0)
            return i;
    return -1;
}

static int is_bn(const struct mt_model_desc *d, int l)
{
    return l < d->n_layers && d->norm[l] == MT_NK_BATCH;
}

size_t model_layer_size(const struct mt_model_desc *d, int l)
{
    size_t n = (size_t)d->width[l];
    return n * ((size_t)d->width[l - 1] + 1) + (is_bn(d, l) ? 2 * n : 0);
}

size_t model_stat_count(const struct mt_model_desc *d)
{
    if (model_is_graph(d))
        return graph_stat_count(d);
    size_t n = 0;
    for (int l = 1; l < d->n_layers; l++)
        if (is_bn(d, l))
            n += 2 * (size_t)d->width[l];
    return n;
}

size_t model_layer_offset(const struct mt_model_desc *d, int l)
{
    size_t off = 0;
    for (int k = 1; k < l; k++)
        off += model_layer_size(d, k);
    return off;
}

size_t model_param_count(const struct mt_model_desc *d)
{
    if (model_is_graph(d))
        return graph_param_count(d);
    return model_layer_offset(d, d->n_layers + 1);
}

size_t model_weight_count(const struct mt_model_desc *d)
{
    if (model_is_graph(d))
        return graph_weight_count(d);
    size_t n = 0;
    for (int l = 1; l <= d->n_layers; l++)
        n += (size_t)d->width[l] * d->width[l - 1];
    return n;
}

size_t model_max_layer_size(const struct mt_model_desc *d)
{
    size_t mx = 0;
    for (int l = 1; l <= d->n_layers; l++)
        if (model_layer_size(d, l) > mx)
            mx = model_layer_size(d, l);
    return mx;
}

int model_max_width(const struct mt_model_desc *d)
{
    int mx = 0;
    for (int l = 1; l <= d->n_layers; l++)
        if (d->width[l] > mx)
            mx = d->width[l];
    return mx;
}

int model_hidden_max(const struct mt_model_desc *d)
{
    int mx = 0;
    for (int l = 1; l < d->n_layers; l++)
        if (d->width[l] > mx)
            mx = d->width[l];
    return mx;
}

int model_has_norm(const struct mt_model_desc *d)
{
    if (model_is_graph(d)) {
        for (int i = 0; i < d->n_nodes; i++)
            if (d->node[i].s.kind == MT_LK_BATCHNORM || d->node[i].s.kind == MT_LK_LAYERNORM)
                return 1;
        return 0;
    }
    for (int l = 1; l < d->n_layers; l++)
        if (d->norm[l] != MT_NK_NONE)
            return 1;
    return 0;
}

size_t model_hidden_sum(const struct mt_model_desc *d)
{
    size_t s = 0;
    for (int l = 1; l < d->n_layers; l++)
        s += (size_t)d->width[l];
    return s;
}

double model_flops_forward(const struct mt_model_desc *d, int batch)
{
    if (model_is_graph(d))
        return graph_flops_forward(d, batch);
    return 2.0 * batch * (double)model_weight_count(d);
}

void model_net_point(struct mt_net *net, const struct mt_model_desc *d, float *params)
{
    memset(net, 0, sizeof *net);
    net->d = *d;
    net->params = params;
    if (model_is_graph(d))
        return; /* layers find their parameters at node.param_off */
    size_t off = 0;
    for (int l = 1; l <= d->n_layers; l++) {
        size_t n = (size_t)d->width[l];
        net->W[l] = params + off;
        net->b[l] = params + off + n * d->width[l - 1];
        if (is_bn(d, l)) {
            net->gamma[l] = net->b[l] + n;
            net->beta[l] = net->b[l] + 2 * n;
        }
        off += model_layer_size(d, l);
    }
}

void model_net_point_stats(struct mt_net *net, float *stats)
{
    const struct mt_model_desc *d = &net->d;
    net->stats = stats;
    if (model_is_graph(d))
        return;
    size_t off = 0;
    for (int l = 1; l < d->n_layers; l++) {
        net->run_mean[l] = net->run_var[l] = NULL;
        if (stats && is_bn(d, l)) {
            net->run_mean[l] = stats + off;
            net->run_var[l] = stats + off + d->width[l];
            off += 2 * (size_t)d->width[l];
        }
    }
}

int model_net_init(struct mt_net *net, const struct mt_model_desc *d, struct mt_arena *a,
                   struct mt_err *err)
{
    float *p = arena_alloc(a, MT_MEM_PARAMS, model_param_count(d) * sizeof(float), err);
    if (!p)
        return arena_error(a);
    model_net_point(net, d, p);
    size_t ns = model_stat_count(d);
    if (ns) {
        float *st = arena_alloc(a, MT_MEM_PARAMS, ns * sizeof(float), err);
        if (!st)
            return arena_error(a);
        model_net_point_stats(net, st);
    }
    return 0;
}

void model_net_init_weights(struct mt_net *net, struct mt_rng *rng)
{
    const struct mt_model_desc *d = &net->d;
    if (model_is_graph(d)) {
        graph_init_params(d, net->params, net->stats, rng);
        return;
    }
    for (int l = 1; l <= d->n_layers; l++) {
        int in = d->width[l - 1], out = d->width[l];
        layer_init_uniform(net->W[l], (size_t)in * out, in, out, rng, d->init,
                           l == d->n_layers ? LAYER_OUTPUT : (int)d->act[l]);
        memset(net->b[l], 0, (size_t)out * sizeof(float));
        if (net->gamma[l])
            for (int j = 0; j < out; j++) {
                net->gamma[l][j] = 1.0f;
                net->beta[l][j] = 0.0f;
            }
        if (net->run_var[l])
            for (int j = 0; j < out; j++) {
                net->run_mean[l][j] = 0.0f;
                net->run_var[l][j] = 1.0f;
            }
    }
}

/* A layer list: each node's parameters, statistics, aux and output for a
 * batch (the shapes are bounded, so each term is; their sum is checked). */
static int graph_check_size(const struct mt_model_desc *d, size_t B, size_t total,
                            struct mt_err *err)
{
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        if (ck_muladd(&total, 1, layer_n_params(L) + layer_n_stats(L)) ||
            ck_muladd(&total, B, shape_count(L->out)) ||
            ck_muladd(&total, 1, layer_aux_floats(L, (int)B) + layer_ws_floats(L, (int)B)) ||
            total > MODEL_SIZE_MAX / 4)
            return mt_err_set(err, MT_E_LIMIT, "model.layers[%d] (%s, batch %zu): the model "
                              "needs more than 64 PiB up to this layer: no plan this large is "
                              "accepted", L->origin, layer_kind_name(L->s.kind), B);
    }
    return 0;
}

int model_check_size(const struct mt_model_desc *d, int batch, size_t samples,
                     struct mt_err *err)
{
    size_t B = batch > 0 ? (size_t)batch : 0, total = 0, n0 = (size_t)d->width[0];
    if (ck_muladd(&total, n0, samples) || ck_muladd(&total, n0, B) ||
        total > MODEL_SIZE_MAX / 4)
        return mt_err_set(err, MT_E_LIMIT, "the data (%zu samples of %zu values) needs more "
                          "than 64 PiB: no plan this large is accepted", samples, n0);
    if (model_is_graph(d))
        return graph_check_size(d, B, total, err);
    for (int l = 1; l <= d->n_layers; l++) {
        size_t in = (size_t)d->width[l - 1], out = (size_t)d->width[l];
        if (ck_muladd(&total, in + 1, out) || ck_muladd(&total, B, out) ||
            total > MODEL_SIZE_MAX / 4)
            return mt_err_set(err, MT_E_LIMIT, "layer %d (%zu x %zu, batch %zu): the model "
                              "needs more than 64 PiB up to this layer: no plan this large is "
                              "accepted", l, in, out, B);
    }
    return 0;
}
