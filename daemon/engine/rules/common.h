/* common.h: pieces the rules share (prefix rule_): the forward pass that
 * keeps activations, the rolling forward that keeps nothing, the backward
 * chain of BP with its per-layer hook (BP, FA, Approx-BP, checkpointing),
 * the output error, the update, and the plan and gradient-block pieces.
 * Shapes follow spec section 0.1; H[l] is (B, n_l), H[0] is the batch x. */
#ifndef MT_RULES_COMMON_H
#define MT_RULES_COMMON_H

#include <stdint.h>

#include "../train.h"

/* Activations BP, FA and DFA keep: H_1..H_{L-1} (and Z_l where the layer's
 * derivative needs it), plus the logits that become the output error E.
 * Norm layers (model.h) keep what their exact backward needs:
 *  - batch-norm (before f): Z[l] is the batch-norm output (f's input, for
 *    act_backward_needs_z layers), xhat[l] (B, n_l) the normalised
 *    pre-activation, rstd[l] (n_l) 1/sigma of each feature;
 *  - layer-norm (after f): H[l] is the layer-norm output Y_l (the next
 *    layer's input), A[l] (B, n_l) its input f(Z_l), rstd[l] (B) 1/sigma of
 *    each row. */
struct kept_acts {
    float *H[MT_MAX_LAYERS + 1];     /* layer l's output, layer l+1's input */
    float *Z[MT_MAX_LAYERS + 1];     /* only for act_backward_needs_z layers, else NULL */
    float *A[MT_MAX_LAYERS + 1];     /* layer-norm layers: f(Z_l), else NULL */
    float *xhat[MT_MAX_LAYERS + 1];  /* batch-norm layers, else NULL */
    float *rstd[MT_MAX_LAYERS + 1];  /* norm layers, else NULL */
    float *logits;                   /* (B, C) */
};

/* Bytes of kept_acts for a batch of B: 4 B sum_{l<L} n_l (+ Z copies)
 * + 4 B C, plus 4 (B n_l + n_l) per batch-norm layer and 4 (B n_l + B) per
 * layer-norm layer. */
size_t rule_kept_acts_bytes(const struct mt_model_desc *d, int B);
/* Push the kept activations (MT_MEM_ACTS) and run the forward, batch-norm in
 * training mode (batch statistics; the running statistics take one momentum
 * step, so call it once per training step). */
int rule_forward_keep(struct mt_trainer *t, const float *x, int B, struct kept_acts *k,
                      struct mt_err *err);
/* Forward keeping nothing: two rolling buffers of (B, max n) floats; the
 * logits end up in one of them, returned. */
float *rule_forward_rolling(const struct mt_net *net, const float *x, int B, float *buf0,
                            float *buf1);
/* Z_l = in W_l^T + b_l, then f in place for hidden layers, with the layer's
 * norm in evaluation mode (batch-norm from the running statistics). */
void rule_layer_forward(const struct mt_net *net, int l, const float *in, float *out, int B);
/* Bytes of the two rolling buffers. */
size_t rule_rolling_bytes(const struct mt_model_desc *d, int B);

/* Offsets of layer l's weight and bias gradients in a full gradient block. */
float *rule_grad_w(const struct mt_trainer *t, int l);
float *rule_grad_b(const struct mt_trainer *t, int l);
/* Batch-norm layers: the gamma and beta gradients (n_l each) after rule_grad_b. */
float *rule_grad_gamma(const struct mt_trainer *t, int l);
float *rule_grad_beta(const struct mt_trainer *t, int l);

/* Workspace of the BP chain: min(L-1, 2) buffers of (B, max hidden n). */
size_t rule_chain_ws_bytes(const struct mt_model_desc *d, int B);

/* The backward chain of BP, run by every rule whose error goes down layer
 * by layer through W_l (or FA's fixed matrices): for l = L..1, layer l's
 * gradients from delta_l and its input, then (l > 1) the error of layer
 * l-1's output, delta_l W_l, into a chain buffer, which the rule's per-layer
 * hook turns into delta_{l-1}, the error at Z_{l-1}. The rules differ only
 * in what they keep for that hook (BP: struct kept_acts; Approx-BP: codes;
 * checkpointing: a replayed segment). */
struct rule_chain;
/* The per-layer hook: g (B, n_l), the gradient of hidden layer l's output,
 * becomes dZ_l in place (through the layer's norm and f'). */
typedef void rule_chain_hook(struct mt_trainer *t, const struct rule_chain *c, int l, float *g,
                             int B);
struct rule_chain {
    const float *x;              /* (B, n_0) the batch, layer 1's input */
    float *const *H;             /* H[l] (B, n_l): layer l+1's input, l = 1..L-1 */
    float *const *fb;            /* FA: the error goes down through fb[l]; NULL: through W_l */
    rule_chain_hook *hidden_backward;
    const void *ctx;             /* what the hook reads (the rule's kept tensors) */
    float *buf[2];               /* the chain's workspace: rule_chain_push */
    int which;                   /* the buffer the next error goes into */
};
/* Push the chain's min(L-1, 2) buffers (MT_MEM_WORKSPACE, rule_chain_ws_bytes
 * in all) and start with the first. */
int rule_chain_push(struct mt_trainer *t, struct rule_chain *c, int B, struct mt_err *err);
/* Layers hi down to lo (hi >= lo >= 1) of the chain. *delta is the error at
 * Z_hi on entry and at Z_{lo-1} on return (lo > 1); it then points into
 * c->buf. The gradients go into t->rs.grads, or into the momentum buffer
 * when t->rs.accumulate. */
void rule_chain_layers(struct mt_trainer *t, struct rule_chain *c, int B, int hi, int lo,
                       float **delta);
/* The whole chain from E (B, C), the error at the logits: rule_chain_push,
 * then layers L..1. Fails only when the buffers cannot be pushed. */
int rule_backward_chain(struct mt_trainer *t, struct rule_chain *c, int B, float *E,
                        struct mt_err *err);
/* BP's chain over struct kept_acts: its hook goes back through the layer's
 * layer-norm (from its input), f, then batch-norm (writing the gamma and
 * beta gradients). fb as in struct rule_chain. */
int rule_backward_kept(struct mt_trainer *t, const float *x, int B, struct kept_acts *k,
                       float *const *fb, struct mt_err *err);

/* The forward phase of BP, FA and DFA: push and fill the kept activations,
 * then turn the logits into E. */
int rule_forward_and_error(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                           struct kept_acts *k, struct mt_step_result *r, struct mt_err *err);
/* Loss, hits and E in place over the logits; fails on a non-finite loss. */
int rule_output_error(struct mt_trainer *t, float *logits, const uint8_t *y, int B,
                      struct mt_step_result *r, struct mt_err *err);
/* One optimizer pass over the whole parameter block (or, when the rule
 * accumulated into the momentum buffer, the update that finishes it). */
void rule_update_all(struct mt_trainer *t);

/* The rules' optimizer recipe: Adam 1e-4 (SGD 0.01) with a cosine decay
 * when the spec names no optimizer and no schedule (docs/spec-reference.md,
 * "Rule defaults"). */
void rule_optim_defaults(struct mt_spec *s);
/* The same recipe with `kind` as the optimizer when the spec names none
 * (SGD then with `momentum` unless given); an optimizer the spec names
 * keeps its lr default (Adam 1e-4, SGD 0.01) and momentum fallback (0). */
void rule_optim_recipe(struct mt_spec *s, enum mt_optim_kind kind, float momentum);
/* Whether s's model is a layer list with a node of layer kind `kind`. */
/* Nodes of a layer-list model of MT_LK_* `kind` (0 for the MLP form). */
int rule_model_count(const struct mt_model_desc *d, int kind);
int rule_model_has(const struct mt_spec *s, int kind);
/* FA's, DFA's and MEM-DFA's recipe on conv nets (docs/spec-reference.md,
 * "Rule defaults"): with batch-norm, lr 0.05 when the spec gives neither an
 * optimizer nor an lr (`recipe`); without, FA's feedback scale 0.3 when not
 * given (`fa`). Other models are left as they are. */
void rule_feedback_conv_defaults(struct mt_spec *s, int recipe, int fa);

/* Plan pieces shared by the rules. */
void rule_plan_full_grads(const struct mt_spec *s, struct mt_mem_plan *p);
/* Record a rule's resident bytes per phase from its persistent and transient parts. */
void rule_plan_phases(struct mt_mem_plan *p, size_t persistent, size_t fwd, size_t grad,
                      size_t upd);
/* Allocate the full gradient block into t->rs.grads (MT_MEM_GRADS). */
int rule_alloc_full_grads(struct mt_trainer *t, struct mt_err *err);
/* Fill feedback matrix m (rows, cols) per the spec's feedback_init/scale. */
void rule_feedback_fill(float *m, int rows, int cols, int fan_in, const struct mt_rule_spec *rs,
                        struct mt_rng *rng);

/* BP's plan and step, shared with FA (bp.c): FA is BP with the error sent
 * down through fixed matrices, so it differs only in `fb` and feedback bytes. */
void backprop_plan(const struct mt_spec *s, size_t feedback_bytes, struct mt_mem_plan *p);
int backprop_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                  float *const *fb, struct mt_step_result *r, struct mt_err *err);
/* Whether BP and FA take their gradients straight into the momentum
 * buffer (optim_accumulates; models without norm layers): then they keep no
 * gradient buffer. */
int backprop_accumulates(const struct mt_spec *s);
/* BP's and FA's gradient storage: the full block, or none when they
 * accumulate (sets t->rs.accumulate). */
int backprop_alloc_grads(struct mt_trainer *t, struct mt_err *err);

/* Layer-list models (graphstep.c, graph.h). A rule marks that it trains
 * them with MT_RULE_LAYERS; its init calls rule_graph_init (the trainer's
 * layer plan, t->gm). BP's plan and step over the layers; fb[node] is FA's
 * fixed matrix of each weight layer's shape, NULL for BP. */
int rule_graph_init(struct mt_trainer *t, struct mt_err *err);
void rule_graph_plan(const struct mt_spec *s, size_t feedback_bytes, int grads,
                     struct mt_mem_plan *p);
int rule_graph_bp_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                       float *const *fb, struct mt_step_result *r, struct mt_err *err);
/* FA's matrices over layers: t->rs.fb[l] of weight layer l's weights' shape
 * (l >= 2), seeded as the MLP's. */
size_t rule_graph_fa_feedback_bytes(const struct mt_model_desc *d);
int rule_graph_fa_feedback_init(struct mt_trainer *t, struct mt_err *err);
/* DFA over layers: D_l (C, values of the tensor weight layer l+1 reads) in
 * t->rs.fb[l]; the step projects E at each such tensor (it replaces the
 * gradient a weight layer would send down) and goes back through the layers
 * in between (activations, pools, norms, residual joins) to layer l. */
size_t rule_graph_dfa_feedback_bytes(const struct mt_model_desc *d);
int rule_graph_dfa_feedback_init(struct mt_trainer *t, struct mt_err *err);
/* The factor on D_l (to tensor u) beyond rule.feedback_scale: 1/sqrt(h w) of
 * u when layer l is a conv of a net with three or more convs and no
 * batch-norm, else 1. */
float rule_graph_dfa_feedback_gain(const struct mt_model_desc *d, int l, int u);
int rule_graph_dfa_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                        struct mt_step_result *r, struct mt_err *err);
/* The layer l whose D_l seeds tensor t (the layer before t's first weight
 * reader), 0 when t is no feedback point. */
int rule_graph_seed_layer(const struct mt_model_desc *d, int t);

/* Approx-BP over layers (approxbp_layers.c): the layers' Approx-BP
 * backwards, GELU / SiLU inputs as 2-bit codes, ReLU masks before a
 * layer-norm, for rule_graph_init / rule_graph_bp_step (rule.keep). */
extern const struct graph_keep approxbp_keep;

/* Checkpointing over layers (ckpt_layers.c). */
void ckpt_layers_plan(const struct mt_spec *s, struct mt_mem_plan *p);
void ckpt_layers_node_kept(const struct mt_spec *s, size_t *kept);
int ckpt_layers_init(struct mt_trainer *t, struct mt_err *err);
void ckpt_layers_fini(struct mt_trainer *t);
int ckpt_layers_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                     struct mt_step_result *r, struct mt_err *err);

/* MEM-DFA over layers (memdfa_layers.c). */
int memdfa_layers_check(const struct mt_spec *s, struct mt_err *err);
void memdfa_layers_plan(const struct mt_spec *s, size_t feedback_bytes, struct mt_mem_plan *p);
void memdfa_layers_node_kept(const struct mt_spec *s, size_t *kept);
int memdfa_layers_init(struct mt_trainer *t, struct mt_err *err);
void memdfa_layers_fini(struct mt_trainer *t);
int memdfa_layers_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                       struct mt_step_result *r, struct mt_err *err);

/* DFA pieces shared with MEM-DFA (dfa.c). D_l is (C, n_l), l = 1..L-1. */
size_t dfa_feedback_bytes(const struct mt_model_desc *d);
int dfa_feedback_init(struct mt_trainer *t, struct mt_err *err);
void dfa_defaults(struct mt_spec *s);
/* delta (B, n_l) = (E D_l) * f'(Z_l), reading H_l or Z_l as act_backward does. */
void dfa_delta(float *delta, const float *E, const float *D, const float *v, int B, int C, int n,
               enum mt_act act);
size_t dfa_ws_bytes(const struct mt_model_desc *d, int B);

#endif
