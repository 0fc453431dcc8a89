/* model.h: an MLP's shape and its parameters in one contiguous block.
 *
 * Layer l (1..L) has W_l (n_l x n_{l-1}, row-major) followed by b_l (n_l)
 * inside one block of P floats (spec section 0.1), so an optimizer step and a
 * checkpoint are flat loops over memory. */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "act.h"
#include "layer.h"
#include "memtrain/err.h"

#define MT_MAX_LAYERS 64
#define MT_MAX_SPEC_LAYERS 128   /* entries of model.layers */
#define MT_MAX_NODES 256         /* nodes once residual blocks are expanded */

enum mt_init { MT_INIT_KAIMING, MT_INIT_XAVIER };

/* A normalisation layer attached to hidden layer l (norm.h):
 *  - batch-norm sits between the linear layer and its activation:
 *    H_l = f(gamma_l * (Z_l - mu) / sigma + beta_l), batch statistics in
 *    training, running statistics in evaluation; gamma_l and beta_l follow
 *    b_l in the layer's parameter block, the running mean and variance live
 *    in net.stats;
 *  - layer-norm (no affine) follows the activation: the layer's output, the
 *    next layer's input, is Y_l = (H_l - mean_row) / sigma_row. */
enum mt_normkind { MT_NK_NONE, MT_NK_BATCH, MT_NK_LAYER, MT_NK_N };

/* Two forms (spec reference, "model"): an MLP (model.hidden), described by
 * n_layers, width, act and norm; or a layer list (model.layers, n_spec > 0),
 * resolved by graph_resolve (graph.h) into nodes, after which n_layers is
 * its number of weight layers, width[0] the input's values, width[l] the
 * values of weight layer l's output and width[n_layers] the classes: the
 * MLP functions below are for the MLP form only. */
struct mt_model_desc {
    int n_layers;                      /* L: weight layers (hidden layers + 1) */
    int width[MT_MAX_LAYERS + 1];      /* n_0 (input) .. n_L (classes) */
    enum mt_act act[MT_MAX_LAYERS + 1];/* act[l] follows Z_l, l = 1..L-1 */
    enum mt_normkind norm[MT_MAX_LAYERS + 1]; /* norm[l], l = 1..L-1; MT_NK_NONE = none */
    enum mt_init init;
    /* The layer-list form: */
    struct mt_shape input;             /* per sample; {0} = from the dataset */
    int n_spec;                        /* entries of model.layers; 0 = the MLP form */
    struct mt_layer_spec spec_layer[MT_MAX_SPEC_LAYERS];
    int n_nodes;                       /* graph_resolve's nodes */
    struct mt_layer node[MT_MAX_NODES];
};

static inline int model_is_graph(const struct mt_model_desc *d)
{
    return d->n_spec > 0;
}

struct mt_net {
    struct mt_model_desc d;
    float *params;                     /* (P) owned by the arena, MT_MEM_PARAMS */
    float *W[MT_MAX_LAYERS + 1];       /* W[l] (n_l, n_{l-1}) inside params */
    float *b[MT_MAX_LAYERS + 1];       /* b[l] (n_l) inside params */
    float *gamma[MT_MAX_LAYERS + 1];   /* batch-norm layers: gamma[l], beta[l] (n_l) follow b[l] */
    float *beta[MT_MAX_LAYERS + 1];
    float *stats;                      /* running mean and variance of every batch-norm layer,
                                          MT_MEM_PARAMS; NULL when there is none */
    float *run_mean[MT_MAX_LAYERS + 1];/* (n_l) inside stats */
    float *run_var[MT_MAX_LAYERS + 1];
};

struct mt_rng;

/* Checks widths, depth and activations; message names the bad layer. */
int model_validate(const struct mt_model_desc *d, struct mt_err *err);
size_t model_param_count(const struct mt_model_desc *d);     /* P */
size_t model_weight_count(const struct mt_model_desc *d);    /* P_w */
size_t model_layer_offset(const struct mt_model_desc *d, int l); /* float index of W_l */
/* n_l (n_{l-1} + 1), + 2 n_l for a batch-norm layer's gamma and beta */
size_t model_layer_size(const struct mt_model_desc *d, int l);
/* Floats of running statistics: 2 n_l per batch-norm layer. */
size_t model_stat_count(const struct mt_model_desc *d);
const char *norm_kind_name(enum mt_normkind k);     /* "none", "batchnorm", "layernorm" */
int norm_kind_from_name(const char *name);          /* -1 when unknown */
size_t model_max_layer_size(const struct mt_model_desc *d);
int model_max_width(const struct mt_model_desc *d);  /* max n_l over l = 1..L */
/* Largest hidden width, max n_l over l = 1..L-1 (0 without hidden layers). */
int model_hidden_max(const struct mt_model_desc *d);
/* Whether any hidden layer has a norm (batch- or layer-norm). */
int model_has_norm(const struct mt_model_desc *d);
/* Sum of n_l over the hidden layers l = 1..L-1. */
size_t model_hidden_sum(const struct mt_model_desc *d);
double model_flops_forward(const struct mt_model_desc *d, int batch); /* 2 B P_w */

/* Plans are sums of a few multiples of these per-layer figures, in bytes:
 * weights and biases 4(n_{l-1}+1)n_l, a batch's activations 4 B n_l, and
 * the data 4 n_0 (samples + B). A model whose figures together pass
 * MODEL_SIZE_MAX could make a plan wrap: model_check_size refuses it
 * (MT_E_LIMIT) naming the first layer that crosses, computed with checked
 * arithmetic, so no plan of an admitted spec overflows. samples: the
 * training plus test samples when known up front (synthetic), else 0. */
#define MODEL_SIZE_MAX ((size_t)1 << 56)     /* 64 PiB, 256x below SIZE_MAX */
int model_check_size(const struct mt_model_desc *d, int batch, size_t samples,
                     struct mt_err *err);

/* Allocate the parameter block (and the running statistics) from the
 * arena and carve the W/b/gamma/beta pointers. */
int model_net_init(struct mt_net *net, const struct mt_model_desc *d, struct mt_arena *a,
                   struct mt_err *err);
/* Point W/b into an existing block of P floats (a copy of another net's);
 * stats (model_stat_count floats) may be NULL when there is no batch-norm. */
void model_net_point(struct mt_net *net, const struct mt_model_desc *d, float *params);
void model_net_point_stats(struct mt_net *net, float *stats);
/* Kaiming (He) uniform for ReLU-family layers, Xavier (Glorot) uniform
 * otherwise or when d->init says so; biases zero; batch-norm gamma 1, beta 0,
 * running mean 0 and variance 1. */
void model_net_init_weights(struct mt_net *net, struct mt_rng *rng);

#endif
