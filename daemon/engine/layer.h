/* layer.h: the layer interface, one file per layer kind (layers/).
 *
 * A layer-list model (model.h, model.layers in a spec) is a list of nodes;
 * each node is one layer of a kind below, reading the output of an earlier
 * node (or the model's input) and writing its own output. Every tensor is
 * batch-major and per sample c x h x w, row-major (NCHW); a feature vector
 * is (n, 1, 1), so a dense layer and a conv layer read the same bytes.
 *
 * A kind is a table of free functions in the spirit of kann's operators and
 * llm.c's paired forward/backward functions: its shape rule, its parameters
 * and their initialisation, the forward, and one backward giving the
 * gradient at the input and at the parameters. The rules (rules/) never
 * name a kind: they ask the table what a layer's backward reads (its input,
 * its output, its aux tensor), keep that in the form they choose, and call
 * forward and backward. Adding a kind is one file and one table line here.
 *
 * Parameters of a layer sit in one run of the model's parameter block:
 * weights first (dense (out, in); conv (c_out, c_in, kh, kw), PyTorch's
 * layout), then the bias, then batch-norm's gamma and beta. Running
 * statistics (batch-norm's mean and variance) sit in the statistics block.
 * No function allocates. */
#ifndef MT_LAYER_H
#define MT_LAYER_H

#include <stddef.h>

#include "act.h"
#include "memtrain/err.h"

struct mt_rng;

#define MT_MAX_DIM 65536   /* channels, height, width, kernel, stride, padding */

struct mt_shape {
    int c, h, w;
};

static inline size_t shape_count(struct mt_shape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

enum mt_layer_kind {
    MT_LK_DENSE,
    MT_LK_CONV,
    MT_LK_MAXPOOL,
    MT_LK_AVGPOOL,
    MT_LK_GAP,          /* global average pool: (c, h, w) -> (c, 1, 1) */
    MT_LK_FLATTEN,      /* (c, h, w) -> (c h w, 1, 1): the same bytes */
    MT_LK_BATCHNORM,    /* per channel (per feature when h = w = 1), with gamma and beta */
    MT_LK_LAYERNORM,    /* per sample over c h w, no affine (spec 8.2) */
    MT_LK_ACT,          /* an elementwise nonlinearity (act.h) */
    MT_LK_ADD,          /* the sum of two inputs of one shape (a residual join) */
    MT_LK_N,
    MT_LK_RESIDUAL = MT_LK_N, /* spec only: a pre-activation basic block, expanded
                                 into the kinds above when the model is resolved */
};

/* A node as the spec and the resolver describe it. */
struct mt_layer_spec {
    enum mt_layer_kind kind;
    int units;          /* dense: outputs; conv, residual: output channels */
    int kh, kw;         /* conv and pools: kernel */
    int stride;         /* conv, pools, residual (the first conv's and the shortcut's) */
    int pad;            /* conv: zero padding on each side */
    int bias;           /* dense, conv: 1 = with a bias */
    enum mt_act act;    /* act */
};

/* A resolved node: its inputs, shapes and place in the parameter block. */
struct mt_layer {
    struct mt_layer_spec s;
    int src, src2;      /* producing nodes; -1 = the model's input; src2 only for add */
    int origin;         /* index in model.layers it came from (for messages) */
    struct mt_shape in, out;
    size_t param_off;   /* floats into the parameter block */
    size_t stat_off;    /* floats into the statistics block */
};

/* What a kind's backward reads, and how its forward may place its output. */
#define MT_LAYER_NEEDS_IN   (1u << 0)  /* backward reads the layer's input */
#define MT_LAYER_NEEDS_OUT  (1u << 1)  /* backward reads the layer's output */
#define MT_LAYER_ELEMENTWISE (1u << 2) /* forward and backward may run in place */
#define MT_LAYER_RESHAPE    (1u << 3)  /* the output is the input's bytes (flatten) */
#define MT_LAYER_WEIGHTS    (1u << 4)  /* has weights an error signal trains (dense, conv) */

struct mt_layer_fwd {
    const float *x;     /* (B, in) */
    const float *x2;    /* add: the second input */
    float *y;           /* (B, out); may equal x for MT_LAYER_ELEMENTWISE kinds */
    const float *p;     /* the layer's parameters */
    float *stats;       /* its running statistics (updated in training) */
    float *aux;         /* aux_floats(B), kept for the backward (training only) */
    float *ws;          /* ws_floats(B) */
    int B;
    int train;          /* batch statistics and aux (1), or running statistics (0) */
};

struct mt_layer_bwd {
    const float *x;     /* the input as kept (NULL unless MT_LAYER_NEEDS_IN) */
    const float *y;     /* the output as kept (NULL unless MT_LAYER_NEEDS_OUT) */
    const float *aux;
    float *dy;          /* (B, out) the gradient at the output; the backward may overwrite it */
    float *dx;          /* (B, in) the gradient at the input, written (not added); NULL = not
                           wanted; may equal dy for MT_LAYER_ELEMENTWISE kinds */
    float *dx2;         /* add: at the second input */
    float *dp;          /* the parameters' gradient, NULL = not wanted: dp = beta dp + grad */
    float beta;
    const float *p;     /* the parameters */
    const float *back;  /* weights the input gradient goes through: p (BP) or FA's fixed
                           matrix of the same shape */
    float *ws;          /* ws_floats(B) */
    int B;
};

struct mt_layer_ops {
    const char *name;   /* as in specs: "dense", "conv", ... */
    unsigned flags;     /* MT_LAYER_* */
    unsigned (*flags_of)(const struct mt_layer *L); /* when they depend on the layer; NULL = flags */
    /* L->in is set: set L->out, or fail with a message naming what does not fit. */
    int (*shape)(struct mt_layer *L, struct mt_err *err);
    size_t (*n_params)(const struct mt_layer *L);   /* NULL = none */
    size_t (*n_weights)(const struct mt_layer *L);  /* the leading weights of n_params */
    size_t (*n_stats)(const struct mt_layer *L);    /* NULL = none */
    /* Initial parameters and statistics; `act` is the nonlinearity that
     * follows the layer (enum mt_act; it picks Kaiming or Xavier, model.h),
     * or LAYER_OUTPUT for the layer that gives the logits. */
    void (*init)(const struct mt_layer *L, float *p, float *stats, struct mt_rng *rng, int init,
                 int act);
    size_t (*aux_floats)(const struct mt_layer *L, int B);  /* NULL = none */
    size_t (*ws_floats)(const struct mt_layer *L, int B);   /* NULL = none */
    void (*forward)(const struct mt_layer *L, const struct mt_layer_fwd *f);
    void (*backward)(const struct mt_layer *L, const struct mt_layer_bwd *b);
    double (*flops)(const struct mt_layer *L);              /* per sample, forward */
    /* Optional: Approx-BP's backward (spec 8.2), which a rule asks for with
     * graph_keep.approx: ReGELU2 / ReSiLU2's step derivative for GELU and
     * SiLU (act), the memory-sharing backward from the output (layernorm).
     * approx_flags: what it reads, when not as `flags` (0 = the same).
     * NULL = the exact backward. */
    void (*approx_backward)(const struct mt_layer *L, const struct mt_layer_bwd *b);
    unsigned approx_flags;
};

const struct mt_layer_ops *layer_ops(enum mt_layer_kind k);
/* "dense", "conv", ..., "residual"; "?" when out of range. */
const char *layer_kind_name(enum mt_layer_kind k);
/* MT_LK_* by name, MT_LK_RESIDUAL included; -1 when unknown. */
int layer_kind_from_name(const char *name);
/* "3x28x28" */
void shape_format(struct mt_shape s, char *buf, size_t size);

/* Counts through the table (0 where a kind has none). */
size_t layer_n_params(const struct mt_layer *L);
size_t layer_n_weights(const struct mt_layer *L);
size_t layer_n_stats(const struct mt_layer *L);
size_t layer_aux_floats(const struct mt_layer *L, int B);
size_t layer_ws_floats(const struct mt_layer *L, int B);
unsigned layer_flags(const struct mt_layer *L);
/* The flags and the backward a rule runs: the kind's approx_* when `approx`
 * and the kind has them, else its own. */
unsigned layer_flags_for(const struct mt_layer *L, int approx);
void layer_backward(const struct mt_layer *L, int approx, const struct mt_layer_bwd *b);

/* part(L, io, lo, hi) over [0, n) items (samples, planes, elements), cut
 * into contiguous ranges for the engine's workers (par.h), each range a
 * multiple of `unit` items except the last. For kernels whose items are
 * independent, so every split gives the same bits. */
void layer_split(const struct mt_layer *L, const void *io, size_t n, size_t unit,
                 void (*part)(const struct mt_layer *L, const void *io, size_t lo, size_t hi));

#define LAYER_OUTPUT (-1)
/* The engine's uniform init, as model_net_init_weights draws an MLP's:
 * with MT_INIT_KAIMING, Kaiming (He) U(+-sqrt(6/fan_in)) before the ReLU
 * family and U(+-sqrt(3/fan_in)) for the output layer; Xavier (Glorot)
 * U(+-sqrt(6/(fan_in+fan_out))) otherwise. n weights drawn in order. */
void layer_init_uniform(float *w, size_t n, int fan_in, int fan_out, struct mt_rng *rng,
                        int init, int act);

#endif
