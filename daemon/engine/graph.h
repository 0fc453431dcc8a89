/* graph.h: a layer-list model (model.layers) as a graph of nodes, and the
 * passes every rule runs over it.
 *
 * graph_resolve expands the spec's layers (a residual block becomes its
 * nodes) and checks every shape; the node list is then in forward order,
 * each node reading earlier nodes' outputs (layer.h). Tensor t is node
 * t-1's output; tensor 0 is the model's input (the batch).
 *
 * Memory. Where each tensor lives during a training step is decided from
 * shapes alone (struct graph_mem), so the plan and the run are one
 * computation:
 *  - a tensor some backward reads (a layer's input or output, per the
 *    layer's MT_LAYER_NEEDS_*) is kept for the step (activations
 *    category), once, however many layers read it, as autograd does: a
 *    ReLU's output and the next conv's input are one tensor;
 *  - an elementwise layer (activation, residual add) writes over its input
 *    when nothing else reads that input later, and a flatten is its input's
 *    bytes, so a dense layer's output and the ReLU after it share storage;
 *  - every other tensor lives in a forward slot (workspace) from its
 *    producer to its last reader, slots reused by liveness;
 *  - gradients of tensors live in backward slots (workspace) from the first
 *    backward that reaches them to their producer's backward; a tensor read
 *    by several layers (a residual stream) sums its gradients in its slot;
 *  - the layers' own workspace (im2col) is one buffer of the largest need;
 *  - each layer's aux (batch-norm's batch statistics) is kept.
 * The logits are kept: the loss turns them into the output error in place. */
#ifndef MT_GRAPH_H
#define MT_GRAPH_H

#include <stddef.h>

#include "model.h"
#include "memtrain/err.h"

/* Expand d->spec_layer into d->node with shapes, parameter and statistics
 * offsets, given d->input (filled from the dataset when {0}) and `classes`;
 * then set n_layers and width[] (model.h). An error names the layer
 * ("model.layers[3] (conv): input 1x4x4 is smaller than its 5x5 kernel"). */
int graph_resolve(struct mt_model_desc *d, int classes, struct mt_err *err);

size_t graph_param_count(const struct mt_model_desc *d);
size_t graph_weight_count(const struct mt_model_desc *d);
size_t graph_stat_count(const struct mt_model_desc *d);
double graph_flops_forward(const struct mt_model_desc *d, int batch);
/* The nonlinearity (enum mt_act) after node i's output on its main path,
 * LAYER_OUTPUT when the output reaches the logits without one, for init. */
int graph_next_act(const struct mt_model_desc *d, int i);

/* Parameters in model order, then running statistics. */
void graph_init_params(const struct mt_model_desc *d, float *params, float *stats,
                       struct mt_rng *rng);

struct graph_step;

/* How a rule keeps what the backward reads, when not as FP32 tensors
 * (approximate activations' K-bit codes, ASA's sign bits). NULL = BP's
 * FP32 tensors.
 *  - coded(ctx, d, t, B, &bytes): at plan time, for each tensor t > 0 some
 *    backward reads (not the logits): 1 to keep a code of `bytes` instead
 *    (0 bytes: decoded from another tensor's code). ctx is what the caller
 *    gave graph_mem_plan (a spec). It is asked about every other tensor
 *    0 < t < n_nodes too, which only GRAPH_CODE_SOURCE codes: a tensor no
 *    backward reads may hold the code others decode from (approximate
 *    activations code a batch-norm's output, which only the ReLU after it
 *    reads, and that in place); it is encoded and never decoded.
 *  - encode(ud, t, x, B, code, s): right after t is made, x (B, t's values)
 *    into its code (`bytes` long), while x is still exact.
 *  - decode(ud, t, reader, B, out, s): before node `reader`'s backward reads
 *    t: the values it should see, into out (B, t's values).
 *  - weight_input(ud, node, x, B, ws): with `transforms_input`, what weight
 *    layer `node` reads in the forward (training and evaluation) in place of
 *    its input x (ASA's x + eps S), written into ws (B, its input's values)
 *    and returned. With it, a weight layer's backward also reads what
 *    decode gives for its input (t > 0) when that input is kept in FP32
 *    (ASA's sign map of a tensor batch-norm keeps whole).
 *  - approx: every layer runs Approx-BP's backward where its kind has one
 *    (layer.h, approx_backward), reading what that backward reads
 *    (layer_flags_for). */
#define GRAPH_CODE_SOURCE 2   /* coded's answer: code t even when no backward reads it */
struct graph_keep {
    int (*coded)(const void *ctx, const struct mt_model_desc *d, int t, int B, size_t *bytes);
    void (*encode)(void *ud, int t, const float *x, int B, void *code, const struct graph_step *s);
    void (*decode)(void *ud, int t, int reader, int B, float *out, const struct graph_step *s);
    const float *(*weight_input)(void *ud, int node, const float *x, int B, float *ws);
    int transforms_input;
    int approx;
};

/* Where each tensor of a training step lives (see above). Tensor t of
 * n_nodes + 1. */
#define GRAPH_T (MT_MAX_NODES + 1)
struct graph_mem {
    int B;
    unsigned char kept[GRAPH_T];     /* stored in the activations category */
    unsigned char coded[GRAPH_T];    /* kept as a rule's code (graph_keep) instead */
    size_t code_bytes[GRAPH_T];
    short group[GRAPH_T];            /* the tensor whose storage it shares (itself if own) */
    short fslot[GRAPH_T];            /* forward slot of an own, not kept tensor; -1 */
    short gslot[GRAPH_T];            /* backward slot of its gradient; -1 = no gradient */
    unsigned char gshare[GRAPH_T];   /* its gradient is its reader's output gradient, in place */
    unsigned char need_grad[GRAPH_T];/* some parameter lies upstream */
    int n_fslots, n_gslots;
    size_t fslot_floats[GRAPH_T];
    size_t gslot_floats[GRAPH_T];
    size_t kept_bytes;               /* kept tensors and aux, as pushed */
    size_t ws_floats;                /* the largest layer workspace */
    size_t tmp_floats;               /* one tensor, for summed gradients */
    size_t decode_floats;            /* the largest coded (or decoded weight) input: one buffer */
    size_t winput_floats;            /* the largest weight-layer input (transforms_input) */
    const struct graph_keep *keep;
    int n_tmp;                       /* 0, 1, or 2 (an add whose two inputs both sum) */
};
void graph_mem_plan(const struct mt_model_desc *d, int B, const struct graph_keep *keep,
                    const void *ctx, struct graph_mem *m);
/* The same for a piece of a model whose input's gradient is wanted. */
void graph_mem_plan_piece(const struct mt_model_desc *d, int B, struct graph_mem *m);
/* Bytes node i keeps in m's layout: its output when that is stored for the
 * step (a tensor shared in place counts once, at the node that owns the
 * storage) and its aux. */
size_t graph_node_kept_bytes(const struct mt_model_desc *d, const struct graph_mem *m, int i);
/* Bytes per part, as graph_train_forward and graph_backward push them. */
size_t graph_mem_forward_ws(const struct graph_mem *m);   /* slots + layer workspace */
size_t graph_mem_backward_ws(const struct graph_mem *m);  /* slots + tmp + layer workspace */

/* The storage of one step (graph_train_forward fills it). */
struct graph_step {
    float *t[GRAPH_T];               /* each tensor's values */
    void *code[GRAPH_T];             /* coded tensors' codes */
    float *aux[MT_MAX_NODES];
    float *ws;
    size_t mark_after_kept;          /* arena position after the kept tensors and ws */
    /* Set by the caller before graph_backward, for a piece of a model
     * (checkpointing): the gradient at the last node's output (NULL = the
     * logits' storage holds it) and where the gradient at the input goes
     * (NULL = not wanted; then the plan must have been made with
     * input_grad). */
    float *dout;
    float *dinput;
};

/* Training forward over x (B, input): pushes the kept tensors and aux
 * (MT_MEM_ACTS), the layer workspace and the forward slots
 * (MT_MEM_WORKSPACE), runs every node with batch statistics, pops the
 * forward slots. The buffers are m's (planned for m->B); the batch is
 * B <= m->B. The logits are s->t[n_nodes]. */
int graph_train_forward(const struct mt_model_desc *d, const struct graph_mem *m,
                        const float *params, float *stats, const float *x, int B, void *ud,
                        struct mt_arena *a, struct graph_step *s, struct mt_err *err);

/* Where a weight layer's gradient goes and which weights its input gradient
 * goes through; graph_backward asks this for each node with parameters.
 * Direct feedback (DFA): with `direct`, weight layers send no gradient to
 * their input; instead, just before tensor t's producer runs its backward,
 * seed(ud, t, g, B) may write a gradient for t into g (B, size of t) and
 * return 1; it is added to what t's other readers sent. A residual join
 * then sends its gradient down the shortcut only to a projection (a weight
 * layer whose output only the join reads), so each layer's error comes
 * from the one feedback point above it, as MEM-DFA computes it layer by
 * layer. */
struct graph_grad_sink {
    float *(*dp)(void *ud, int node, float *beta); /* NULL = no gradient for it */
    const float *(*back)(void *ud, int node);      /* NULL = its own weights */
    int (*seed)(void *ud, int t, float *g, int B); /* NULL = none */
    int direct;
    void *ud;
};

/* Weight layers are numbered 1..n_layers in model order (model.h's
 * width[l] is layer l's output): the node of layer l, and the layer of a
 * node (0 when it has no weights). */
int graph_weight_node(const struct mt_model_desc *d, int l);
int graph_weight_layer(const struct mt_model_desc *d, int node);
/* Whether node (a residual join) has a projection shortcut: a weight
 * layer whose output only the join reads. Direct feedback sends a join's
 * gradient down its shortcut only then. */
int graph_is_projection(const struct mt_model_desc *d, int node);
/* Whether a weight layer reads tensor t (t > 0): DFA's injection points. */
int graph_feeds_weights(const struct mt_model_desc *d, int t);
/* Values per sample of tensor t (t = 0: the input). */
size_t graph_tensor_count(const struct mt_model_desc *d, int t);
/* Backward from the error at the logits (in s->t[n_nodes]): pushes the
 * backward slots and tmp (MT_MEM_WORKSPACE), then for every node in
 * reverse its parameter gradient and the gradient at its inputs. */
int graph_backward(const struct mt_model_desc *d, const struct graph_mem *m,
                   const float *params, struct graph_step *s, int B,
                   const struct graph_grad_sink *sink, void *ud, struct mt_arena *a,
                   struct mt_err *err);

/* Evaluation: running statistics, nothing kept, every tensor in a slot
 * (layout from graph_eval_plan, which the caller computes once). ws holds
 * graph_eval_floats(m) floats (batch of m->B or fewer); returns the logits,
 * inside ws. */
void graph_eval_plan(const struct mt_model_desc *d, int B, const struct graph_keep *keep,
                     struct graph_mem *m);
size_t graph_eval_floats(const struct graph_mem *m);
const float *graph_forward_eval(const struct mt_model_desc *d, const struct graph_mem *m,
                                const float *params, const float *stats, const float *x, int B,
                                void *ud, float *ws);

/* The same with batch statistics when `train` (stats NULL: the running
 * statistics do not move; MEM-DFA's first pass), keeping nothing. */
const float *graph_forward_rolling(const struct mt_model_desc *d, const struct graph_mem *m,
                                   const float *params, float *stats, const float *x, int B,
                                   int train, void *ud, float *ws);

/* Pieces for rules that schedule nodes themselves (MEM-DFA, checkpointing). */
struct mt_shape graph_tensor_shape(const struct mt_model_desc *d, int t);
/* The last node reading tensor t, -1 when none. */
int graph_last_reader(const struct mt_model_desc *d, int t);
/* The nodes reading tensor t, in order, into out (MT_MAX_NODES); their count. */
int graph_readers(const struct mt_model_desc *d, int t, int *out);
/* What node i's backward reads under keep (layer_flags_for). */
unsigned graph_node_flags(const struct mt_model_desc *d, const struct graph_keep *keep, int i);
/* Run node i: its inputs from t[], its output into t[i + 1]. */
void graph_run_node(const struct mt_model_desc *d, const struct graph_keep *keep, int i,
                    float *const *t, const float *params, float *stats, float *aux, float *ws,
                    float *wbuf, int B, int train, void *ud);
/* Interval colouring of n items living birth..death (inclusive times) into
 * slots reused once free, each as large as its largest item; items with
 * want[i] == 0 get slot -1. Returns the slot count. */
int graph_colour(int n, const int *birth, const int *death, const size_t *floats,
                 const unsigned char *want, short *slot, size_t *slot_floats);

#endif
