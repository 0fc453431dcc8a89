/* tinyfoa.c: TinyFoA (spec section 7; Huang & Aminifar, AAAI 2025).
 *
 * Binarised weights and activations (binary.h), a fixed random local
 * classifier per hidden layer, layers trained one after another
 * (horizontal, 7.2) and one block of the active layer updated per step
 * (vertical, 7.4). The model 784-2000-2000-2000-2000-10 maps like this:
 *  - hidden layers l = 1..L-1 are trained, each in its own stage; stage s
 *    trains layer s only, for spec.epochs / (L-1) epochs (the first stages
 *    take the remainder), earlier layers frozen, later ones unused;
 *  - layer l's local classifier D_l (C, n_l) is Kaiming normal
 *    (std sqrt(2/n_l)), zero bias, never trained, drawn from the job's seed
 *    (stream 3000 + l); D_{L-1} is the model's last weight layer W_L
 *    itself (b_L = 0, never trained), so after the last stage the model is
 *    the binarised forward through layers 1..L-1 followed by W_L.
 *
 * A step of stage l (spec 7.3, scales constant in the gradient):
 *   frozen forward through layers 1..l-1 (packed signs and alpha only);
 *   Z = H_{l-1} (W^b)^T + b,  H_l = beta [Z > 0],  A = H_l D_l^T,  CE loss;
 *   block (i, j) of M x M: dZ^(j) = (E D_l^(j)) * [0 < Z^(j) < 1],
 *   G^(i,j) = (dZ^(j))^T H_{l-1}^(i) * [|W^(i,j)| < 1],  g^(j) = 1^T dZ^(j);
 *   the optimizer updates that block and bias slice b^(j) only, which are
 *   then clamped to [-1, 1] and re-packed.
 * Block schedule: step q of a stage trains block k = q mod M^2 with output
 * group j = k mod M and input group i = (j + k / M) mod M, so every M steps
 * touch every input and output group once (a generalised diagonal) and
 * every M^2 steps every block once. The public code instead freezes the
 * diagonal block (p, p), p = epoch mod M, and updates the rest (spec 7.4,
 * discrepancy); this file follows the memory model.
 *
 * Memory: the gradient buffer holds one block and its bias slice
 * (MT_MEM_GRADS). Kept from the forward to the update (MT_MEM_ACTS): the
 * packed input bits of the active layer ([H_{l-1} > 0], H_{l-1} = beta_{l-1}
 * times them; none in stage 1, whose input is the data batch), the packed
 * STE mask [0 < Z_l < 1] and the logits: B (n_{l-1} + n_l) / 8 + 4 B C
 * bytes, spec section 9. The packed signs of every hidden W_l, the local
 * classifiers D_1..D_{L-2} (MT_MEM_PARAMS) and the unpack panel
 * (MT_MEM_WORKSPACE) stay for the job. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binary.h"
#include "common.h"
#include "../blas.h"
#include "../pack.h"
#include "../rng.h"
#include "../spec.h"

#define F4 sizeof(float)
#define TINYFOA_DEFAULT_GROUPS 2
#define TINYFOA_MAX_GROUPS 64
#define TINYFOA_STREAM 3000 /* D_l from rng_derive(seed, 3000 + l) */

struct tinyfoa {
    int M;                               /* groups per side of a layer */
    uint8_t *wbits[MT_MAX_LAYERS + 1];   /* packed signs of W_l, l = 1..L-1 */
    float alpha[MT_MAX_LAYERS + 1];      /* mean|W_l| over the M x M tiling */
    double *block_abs;                   /* (M, M) sum |W| per block of the active layer */
    float *panel;                        /* unpack panel, MT_MEM_WORKSPACE */
    int stage;                           /* the layer wbits/alpha/block_abs were set up for */
    long synced;                         /* t->step at which they last matched W; -1 none */
    long live, elems;                    /* this epoch: |Z| < 1 counts of the active layer */
};

/* ---- shapes -------------------------------------------------------------- */

/* First index of group g of n split into M contiguous groups; groups have
 * floor(n/M) or ceil(n/M) members. */
static int group_lo(int n, int M, int g)
{
    return (int)((long)g * n / M);
}

/* n / M rounded up, without forming n + M - 1 (n may be INT_MAX). */
static int ceil_div(int n, int M)
{
    return n / M + (n % M != 0);
}

static int groups_of(const struct mt_spec *s)
{
    return s->rule.groups > 0 ? s->rule.groups : TINYFOA_DEFAULT_GROUPS;
}

/* Largest block of layer l plus its bias slice, in floats. */
static size_t block_floats(const struct mt_model_desc *d, int l, int M)
{
    size_t cj = (size_t)ceil_div(d->width[l], M), ci = (size_t)ceil_div(d->width[l - 1], M);
    return cj * ci + cj;
}

static size_t kept_bytes(const struct mt_model_desc *d, int l, int B)
{
    int C = d->width[d->n_layers];
    size_t in = l >= 2 ? pack_bytes((size_t)B * d->width[l - 1], 1) : 0;
    return in + pack_bytes((size_t)B * d->width[l], 1) + (size_t)B * C * F4;
}

/* Widest layer the forward of stage l passes through. */
static int stage_width(const struct mt_model_desc *d, int l)
{
    int mx = 0;
    for (int k = 1; k <= l; k++)
        mx = d->width[k] > mx ? d->width[k] : mx;
    return mx;
}

/* The forward's rolling feature-major buffers (one in stage 1). */
static size_t fwd_ws_bytes(const struct mt_model_desc *d, int l, int B)
{
    return (l == 1 ? 1 : 2) * (size_t)B * stage_width(d, l) * F4;
}

/* The gradient's transients, sized for the layer's largest block: D_l's
 * columns of group j (C, cj), dZ^(j) (cj, B), H^(i) (ci, B). */
static size_t grad_ws_bytes(const struct mt_model_desc *d, int l, int B, int M)
{
    size_t C = (size_t)d->width[d->n_layers];
    size_t cj = (size_t)ceil_div(d->width[l], M), ci = (size_t)ceil_div(d->width[l - 1], M);
    return (C * cj + cj * (size_t)B + ci * (size_t)B) * F4;
}

/* ---- schedules ----------------------------------------------------------- */

/* Stage (layer, 1..S) of 0-based epoch e of E: the first E % S stages get
 * one epoch more. *first and *len give the stage's epochs. */
static int stage_of_epoch(int E, int S, int e, int *first, int *len)
{
    if (S < 1)
        S = 1;
    int base = E / S, rem = E % S, start = 0;
    if (e >= E)
        e = E - 1;
    for (int s = 1;; s++) {
        int n = base + (s <= rem);
        if (e < start + n || s >= S) {
            *first = start;
            *len = n;
            return s;
        }
        start += n;
    }
}

/* Stage of the epoch in progress (or of the last one once the job is done). */
static int current_stage(const struct mt_trainer *t, int *first, int *len)
{
    return stage_of_epoch(t->spec.epochs, t->net.d.n_layers - 1, t->epoch, first, len);
}

int tinyfoa_eval_stage(const struct mt_trainer *t)
{
    int first, len, e = t->epoch > 0 ? t->epoch - 1 : 0;
    return stage_of_epoch(t->spec.epochs, t->net.d.n_layers - 1, e, &first, &len);
}

/* ---- binary copies ------------------------------------------------------- */

/* alpha of an (out, in) matrix over the M x M tiling; the block sums go to
 * sums (M, M). */
static float grid_alpha(const float *W, int out, int in, int M, double *sums)
{
    double total = 0;
    for (int j = 0; j < M; j++)
        for (int i = 0; i < M; i++) {
            double s = binary_abs_sum(W, in, group_lo(out, M, j), group_lo(out, M, j + 1),
                                      group_lo(in, M, i), group_lo(in, M, i + 1));
            sums[j * M + i] = s;
            total += s;
        }
    return (float)(total / ((double)out * in));
}

static float sum_alpha(const double *sums, int M, int out, int in)
{
    double total = 0;
    for (int k = 0; k < M * M; k++)
        total += sums[k];
    return (float)(total / ((double)out * in));
}

/* Packed signs and alphas of every hidden layer from the latent weights,
 * block sums for layer `stage`. The same numbers the steps keep up to date,
 * so a trainer whose weights were restored from a checkpoint goes on
 * exactly as the one that saved them. */
static void sync_binary(struct mt_trainer *t, struct tinyfoa *tf, int stage, long step)
{
    const struct mt_model_desc *d = &t->net.d;
    for (int l = 1; l < d->n_layers; l++) {
        int in = d->width[l - 1], out = d->width[l];
        binary_pack_block(tf->wbits[l], t->net.W[l], in, 0, out, 0, in);
        if (l != stage)
            tf->alpha[l] = grid_alpha(t->net.W[l], out, in, tf->M, tf->block_abs);
    }
    tf->alpha[stage] = grid_alpha(t->net.W[stage], d->width[stage], d->width[stage - 1], tf->M,
                                  tf->block_abs);
    tf->stage = stage;
    tf->synced = step;
}

/* ---- rule hooks ---------------------------------------------------------- */

static void tinyfoa_defaults(struct mt_spec *s)
{
    rule_optim_defaults(s);
    if (s->rule.groups < 0)
        s->rule.groups = TINYFOA_DEFAULT_GROUPS;
}

static void tinyfoa_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    const struct mt_model_desc *d = &s->model;
    int L = d->n_layers, B = s->batch, M = groups_of(s);
    size_t C = (size_t)d->width[L];
    memset(p, 0, sizeof *p);
    if (L < 2)
        return; /* init refuses it */
    size_t cls = 0, wb = 0, panel = 0, grads = 0, kept = 0, ws = rule_rolling_bytes(d, B);
    size_t fwd = 0, grad = 0;
    for (int l = 1; l < L; l++) {
        if (l < L - 1)
            cls += C * d->width[l] * F4;
        wb += pack_bytes((size_t)d->width[l] * d->width[l - 1], 1);
        size_t pf = binary_panel_floats(d->width[l], d->width[l - 1]) * F4;
        size_t bf = block_floats(d, l, M) * F4;
        size_t k = kept_bytes(d, l, B), fw = fwd_ws_bytes(d, l, B);
        size_t gw = grad_ws_bytes(d, l, B, M);
        panel = pf > panel ? pf : panel;
        grads = bf > grads ? bf : grads;
        kept = k > kept ? k : kept;
        ws = fw > ws ? fw : ws;
        ws = gw > ws ? gw : ws;
        fwd = k + fw > fwd ? k + fw : fwd;
        grad = k + gw > grad ? k + gw : grad;
    }
    p->cat[MT_MEM_PARAMS] = cls + wb;
    p->cat[MT_MEM_GRADS] = grads;
    p->cat[MT_MEM_ACTS] = kept;
    p->cat[MT_MEM_WORKSPACE] = panel + ws;
    rule_plan_phases(p, cls + wb + panel + grads, fwd, grad, 0);
}

static int tinyfoa_check(const struct mt_spec *s, struct mt_err *err)
{
    const struct mt_model_desc *d = &s->model;
    int L = d->n_layers, M = s->rule.groups;
    if (L < 2)
        return mt_err_set(err, MT_E_INVAL,
                          "rule tinyfoa trains hidden layers with local classifiers; the model "
                          "has none");
    if (s->epochs < L - 1)
        return mt_err_set(err, MT_E_INVAL,
                          "rule tinyfoa trains one hidden layer per stage: epochs (%d) must be at "
                          "least the number of hidden layers (%d)", s->epochs, L - 1);
    if (M < 1 || M > TINYFOA_MAX_GROUPS)
        return mt_err_set(err, MT_E_INVAL, "rule.groups: %d is not within 1..%d", M,
                          TINYFOA_MAX_GROUPS);
    for (int l = 1; l < L; l++) {
        if (d->act[l] != MT_ACT_RELU)
            return mt_err_set(err, MT_E_INVAL,
                              "rule tinyfoa: hidden layer %d has activation %s; binary "
                              "activations are ReLU(beta sign Z) (spec 7.3), so use relu", l,
                              act_name(d->act[l]));
        if (d->norm[l] != MT_NK_NONE)
            return mt_err_set(err, MT_E_INVAL, "rule tinyfoa: hidden layer %d has a %s layer; "
                              "tinyfoa takes no norm layers", l, norm_kind_name(d->norm[l]));
        int narrow = d->width[l] < d->width[l - 1] ? d->width[l] : d->width[l - 1];
        if (M > narrow)
            return mt_err_set(err, MT_E_INVAL,
                              "rule.groups: %d groups do not fit layer %d (%d inputs, %d "
                              "outputs): every block needs a row and a column", M, l,
                              d->width[l - 1], d->width[l]);
    }
    return 0;
}

static void tinyfoa_fini(struct mt_trainer *t)
{
    struct tinyfoa *tf = t->rs.priv;
    if (tf)
        free(tf->block_abs);
    free(tf);
    t->rs.priv = NULL;
}

static int tinyfoa_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers, C = d->width[L], M = t->spec.rule.groups;
    struct tinyfoa *tf = calloc(1, sizeof *tf);
    if (!tf)
        return mt_err_set(err, MT_E_NOMEM, "out of memory for the tinyfoa state");
    t->rs.priv = tf;
    tf->M = M;
    tf->synced = -1;
    if (!(tf->block_abs = calloc((size_t)M * M, sizeof *tf->block_abs)))
        return mt_err_set(err, MT_E_NOMEM, "out of memory for the tinyfoa state");

    size_t grads = 0, panel = 0;
    for (int l = 1; l < L; l++) {
        size_t bf = block_floats(d, l, M), pf = binary_panel_floats(d->width[l], d->width[l - 1]);
        grads = bf > grads ? bf : grads;
        panel = pf > panel ? pf : panel;
    }
    t->rs.grads_n = grads;
    if (!(t->rs.grads = arena_alloc(t->arena, MT_MEM_GRADS, grads * F4, err)) ||
        !(tf->panel = arena_alloc(t->arena, MT_MEM_WORKSPACE, panel * F4, err)))
        return arena_error(t->arena);
    for (int l = 1; l < L; l++) {
        size_t bytes = pack_bytes((size_t)d->width[l] * d->width[l - 1], 1);
        if (!(tf->wbits[l] = arena_alloc(t->arena, MT_MEM_PARAMS, bytes, err)))
            return arena_error(t->arena);
        /* D_l; the last hidden layer's is W_L, whose bias stays 0. */
        float *D = l < L - 1 ? arena_alloc(t->arena, MT_MEM_PARAMS, (size_t)C * d->width[l] * F4,
                                           err)
                             : t->net.W[L];
        if (!D)
            return arena_error(t->arena);
        struct mt_rng rng;
        rng_derive(&rng, t->spec.seed, TINYFOA_STREAM + (uint64_t)l);
        float std = sqrtf(2.0f / (float)d->width[l]);
        for (size_t k = 0; k < (size_t)C * d->width[l]; k++)
            D[k] = std * rng_normal(&rng);
        t->rs.fb[l] = D;
    }
    memset(t->net.b[L], 0, (size_t)C * F4);
    return 0;
}

/* Forward of layers 1..l-1 (frozen) and the binarised layer l on x (B, n_0),
 * feature-major through buf. inbits (may be NULL) gets [H_{l-1} > 0] and
 * *beta_in beta_{l-1}; ste (may be NULL) the STE mask of layer l; *live the
 * count of |Z_l| < 1. Returns H_l (n_l, B), in buf[(l - 1) & 1]. */
static float *forward(struct mt_trainer *t, struct tinyfoa *tf, int l, const float *x, int B,
                      float *const buf[2], uint8_t *inbits, float *beta_in, uint8_t *ste,
                      long *live)
{
    const struct mt_model_desc *d = &t->net.d;
    const float *in = x;
    float beta = 0.0f, *H = NULL;
    for (int k = 1; k <= l; k++) {
        H = buf[(k - 1) & 1];
        if (k == l && inbits)
            pack_sign(inbits, in, (size_t)d->width[k - 1] * B);
        if (k == l)
            *beta_in = beta;
        binary_forward_t(H, tf->wbits[k], tf->alpha[k], in, k == 1, B, d->width[k - 1],
                         d->width[k], tf->panel);
        binary_add_bias_t(H, t->net.b[k], d->width[k], B);
        beta = binary_activate(H, (size_t)d->width[k] * B, NULL, k == l ? ste : NULL,
                               k == l ? live : NULL);
        in = H;
    }
    return H;
}

/* logits (B, C) = H^T D^T with H (n, B) feature-major and D (C, n). */
static void classify(float *logits, const float *H, const float *D, int B, int C, int n)
{
    blas_gemm(1, 1, B, C, n, 1.0f, H, D, 0.0f, logits);
}

static const float *tinyfoa_infer(struct mt_trainer *t, float *x, int B, float *buf0,
                                  float *buf1)
{
    struct tinyfoa *tf = t->rs.priv;
    const struct mt_model_desc *d = &t->net.d;
    int first, len, l = current_stage(t, &first, &len);
    float *buf[2] = {buf0, buf1}, beta_in;
    if (tf->synced != t->step)
        sync_binary(t, tf, l, t->step);
    /* Layers 1..l and D_l: the model as trained so far; after the last
     * stage, the whole model with W_L. beta from the evaluated batch. */
    const float *H = forward(t, tf, l, x, B, buf, NULL, &beta_in, NULL, NULL);
    float *logits = buf[l & 1];
    classify(logits, H, t->rs.fb[l], B, d->width[d->n_layers], d->width[l]);
    return logits;
}

/* Gradient of block (i, j) of layer l into t->rs.grads: G (cj, ci) then
 * g (cj). E (B, C) is the output error. */
static int block_gradient(struct mt_trainer *t, int l, int i, int j, const float *x,
                          const float *E, const uint8_t *inbits, float beta_in,
                          const uint8_t *ste, int B, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    struct tinyfoa *tf = t->rs.priv;
    int M = tf->M, C = d->width[d->n_layers], in = d->width[l - 1], out = d->width[l];
    int j0 = group_lo(out, M, j), cj = group_lo(out, M, j + 1) - j0;
    int i0 = group_lo(in, M, i), ci = group_lo(in, M, i + 1) - i0;
    int cj_max = ceil_div(out, M), ci_max = ceil_div(in, M);
    float *Dj, *dZ, *Hi, *G = t->rs.grads, *g = t->rs.grads + (size_t)cj * ci;
    if (!(Dj = arena_push(t->arena, MT_MEM_WORKSPACE, (size_t)C * cj_max * F4, err)) ||
        !(dZ = arena_push(t->arena, MT_MEM_WORKSPACE, (size_t)cj_max * B * F4, err)) ||
        !(Hi = arena_push(t->arena, MT_MEM_WORKSPACE, (size_t)ci_max * B * F4, err)))
        return arena_error(t->arena);
    const float *D = t->rs.fb[l];
    for (int c = 0; c < C; c++)
        memcpy(Dj + (size_t)c * cj, D + (size_t)c * out + j0, (size_t)cj * F4);
    /* dZ^(j) (cj, B) = D^(j)T (cj, C) E^T (C, B), through the STE mask */
    blas_gemm(1, 1, cj, B, C, 1.0f, Dj, E, 0.0f, dZ);
    binary_ste_apply(dZ, ste, (size_t)j0 * B, (size_t)cj * B);
    if (l == 1) {
        /* H_0^(i) (B, ci): columns i0.. of the data batch */
        for (int s = 0; s < B; s++)
            memcpy(Hi + (size_t)s * ci, x + (size_t)s * in + i0, (size_t)ci * F4);
        blas_gemm(0, 0, cj, ci, B, 1.0f, dZ, Hi, 0.0f, G);
    } else {
        /* H_{l-1}^(i) (ci, B) = beta_{l-1} [H > 0], feature-major */
        binary_unpack(Hi, inbits, (size_t)i0 * B, (size_t)ci * B, beta_in, 0.0f);
        blas_gemm(0, 1, cj, ci, B, 1.0f, dZ, Hi, 0.0f, G);
    }
    binary_weight_ste(G, t->net.W[l] + (size_t)j0 * in + i0, in, cj, ci);
    binary_row_sums(g, dZ, cj, B);
    return 0;
}

/* Adam (or SGD) on block (i, j) of layer l and bias slice j only, the
 * block's own step count q / M^2 + 1 for the bias correction; then clamp,
 * re-pack the block's signs and update alpha. */
static void block_update(struct mt_trainer *t, int l, int i, int j, long q, float lr)
{
    const struct mt_model_desc *d = &t->net.d;
    struct tinyfoa *tf = t->rs.priv;
    int M = tf->M, in = d->width[l - 1], out = d->width[l];
    int j0 = group_lo(out, M, j), cj = group_lo(out, M, j + 1) - j0;
    int i0 = group_lo(in, M, i), ci = group_lo(in, M, i + 1) - i0;
    size_t off = model_layer_offset(d, l);
    const float *G = t->rs.grads, *g = t->rs.grads + (size_t)cj * ci;
    struct mt_optim o = t->opt; /* same state arrays, the block's step count */
    optim_begin_step(&t->opt);
    o.t = q / ((long)M * M) + 1;
    for (int r = 0; r < cj; r++) {
        size_t at = (size_t)(j0 + r) * in + i0;
        optim_update(&o, lr, t->net.W[l] + at, G + (size_t)r * ci, off + at, (size_t)ci);
        binary_clamp(t->net.W[l] + at, (size_t)ci);
    }
    optim_update(&o, lr, t->net.b[l] + j0, g, off + (size_t)out * in + j0, (size_t)cj);
    binary_clamp(t->net.b[l] + j0, (size_t)cj);
    binary_pack_block(tf->wbits[l], t->net.W[l], in, j0, j0 + cj, i0, i0 + ci);
    tf->block_abs[j * M + i] = binary_abs_sum(t->net.W[l], in, j0, j0 + cj, i0, i0 + ci);
    tf->alpha[l] = sum_alpha(tf->block_abs, M, out, in);
}

static int tinyfoa_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                        struct mt_step_result *r, struct mt_err *err)
{
    struct tinyfoa *tf = t->rs.priv;
    const struct mt_model_desc *d = &t->net.d;
    int first, len, l = current_stage(t, &first, &len);
    int M = tf->M, C = d->width[d->n_layers], in = d->width[l - 1], out = d->width[l];
    uint8_t *inbits = NULL, *ste;
    float *logits, *buf[2] = {NULL, NULL}, beta_in = 0.0f;
    size_t mark = arena_mark(t->arena), ws_mark;
    long live = 0;
    int rc = 0;

    if (tf->synced != t->step || tf->stage != l)
        sync_binary(t, tf, l, t->step);
    /* Step q of the stage picks the block; the schedule restarts with each
     * stage, which is a training run of its own (7.2). */
    long q = (long)(t->epoch - first) * t->steps_per_epoch + t->epoch_step;
    int k = (int)(q % ((long)M * M)), j = k % M, i = (j + k / M) % M;
    t->lr = optim_sched_lr(&t->spec.sched, t->spec.optim.lr, q, t->steps_per_epoch, len);

    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if ((l >= 2 && !(inbits = arena_push(t->arena, MT_MEM_ACTS,
                                         pack_bytes((size_t)B * in, 1), err))) ||
        !(ste = arena_push(t->arena, MT_MEM_ACTS, pack_bytes((size_t)B * out, 1), err)) ||
        !(logits = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * C * F4, err))) {
        rc = arena_error(t->arena);
        goto out;
    }
    ws_mark = arena_mark(t->arena);
    for (int b = 0; b < (l == 1 ? 1 : 2); b++)
        if (!(buf[b] = arena_push(t->arena, MT_MEM_WORKSPACE,
                                  (size_t)B * stage_width(d, l) * F4, err))) {
            rc = arena_error(t->arena);
            goto out;
        }
    const float *H = forward(t, tf, l, x, B, buf, inbits, &beta_in, ste, &live);
    classify(logits, H, t->rs.fb[l], B, C, out);
    tf->live += live;
    tf->elems += (long)out * B;
    arena_pop(t->arena, ws_mark);
    if ((rc = rule_output_error(t, logits, y, B, r, err)))
        goto out;

    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    if ((rc = block_gradient(t, l, i, j, x, logits, inbits, beta_in, ste, B, err)))
        goto out;
    arena_pop(t->arena, mark); /* bits and E are dead once the block's gradient exists */
    arena_set_phase(t->arena, MT_PHASE_UPDATE);
    block_update(t, l, i, j, q, t->lr);
    tf->synced = t->step + 1; /* the trainer counts this step after we return */
out:
    arena_pop(t->arena, mark);
    return rc;
}

static int tinyfoa_epoch_metrics(struct mt_trainer *t, struct mt_rule_metric *out, int max)
{
    struct tinyfoa *tf = t->rs.priv;
    int first, len, n = 0;
    /* called after t->epoch counted the epoch just trained */
    int stage = stage_of_epoch(t->spec.epochs, t->net.d.n_layers - 1,
                               t->epoch > 0 ? t->epoch - 1 : 0, &first, &len);
    if (n < max) {
        snprintf(out[n].name, sizeof out[n].name, "stage");
        out[n++].value = stage;
    }
    if (n < max) {
        snprintf(out[n].name, sizeof out[n].name, "live");
        out[n++].value = tf->elems ? (double)tf->live / (double)tf->elems : 0.0;
    }
    tf->live = tf->elems = 0;
    return n;
}

const struct mt_rule rule_tinyfoa = {
    .name = "tinyfoa",
    .summary = "TinyFoA: binary layers trained one by one with fixed local classifiers, one "
               "block per step",
    .defaults = tinyfoa_defaults,
    .plan = tinyfoa_plan,
    .check = tinyfoa_check,
    .init = tinyfoa_init,
    .step = tinyfoa_step,
    .infer = tinyfoa_infer,
    .fini = tinyfoa_fini,
    .epoch_metrics = tinyfoa_epoch_metrics,
    .flags = MT_RULE_GROUPS,
    .fc_only = "(TinyFoA) is defined for fully connected layers (the paper's locally "
               "connected variant is not implemented): binary layers trained one by one, each "
               "with a fixed local classifier",
};
