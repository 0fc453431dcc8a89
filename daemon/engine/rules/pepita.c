/* pepita.c: PEPITA, two forward passes and no backward (spec section 7.9;
 * Dellaferrera & Kreiman, "Error-driven Input Modulation", ICML 2022).
 *
 * Pass 1 is the plain forward, keeping H_1..H_{L-1}; its output error
 * e = softmax(Z_L) - Y modulates the input, X' = X + e F^T, with a fixed
 * random F (n_0, C). Pass 2 runs the forward again from X' and updates each
 * layer as soon as its modulated output H_l' exists, as MEM-DFA does:
 *   layer 1:      dW_1 = (H_1 - H_1')^T X' / B
 *   hidden l:     dW_l = (H_l - H_l')^T H_{l-1}' / B
 *   last layer L: dW_L = e'^T H_{L-1}' / B,  e' = softmax(Z_L') - Y
 * and W_l <- W_l - lr * opt(dW_l), the signs of the authors' code (their
 * delta_w is minus ours, added). A layer's update comes after its pass-2
 * output, so pass 2 reads the old W_l only: updating layer by layer gives the
 * same weights as updating all layers after pass 2. No biases: b stays 0
 * (the optimizer only sees the W_l slices). No dropout (the authors' code
 * uses keep 0.9 with one mask for both passes); the engine has none.
 *
 * Kept (MT_MEM_ACTS): pass 1's H_1..H_{L-1} (pass 2 needs each at its
 * layer), e / e' (B, C), X' (B, n_0) and pass 2's two rolling layer buffers
 * (B, max hidden n). Gradients: one layer's W. F lives in t->rs.fb[0]
 * (MT_MEM_PARAMS), drawn once from the job's seed. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "../blas.h"
#include "../loss.h"
#include "../spec.h"

#define F4 sizeof(float)
#define PEPITA_FB_STREAM 1100    /* rng_derive stream of F */

/* Largest n_l n_{l-1}: the one-layer gradient buffer (biases are not trained). */
static size_t max_weight_count(const struct mt_model_desc *d)
{
    size_t m = 0;
    for (int l = 1; l <= d->n_layers; l++) {
        size_t n = (size_t)d->width[l] * d->width[l - 1];
        if (n > m)
            m = n;
    }
    return m;
}

/* Pass 2's rolling buffers: min(L-1, 2) of (B, max hidden n). */
static int pass2_buffers(const struct mt_model_desc *d)
{
    return d->n_layers - 1 < 2 ? d->n_layers - 1 : 2;
}

static void pepita_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    const struct mt_model_desc *d = &s->model;
    size_t B = (size_t)s->batch, C = (size_t)d->width[d->n_layers], n0 = (size_t)d->width[0];
    memset(p, 0, sizeof *p);
    size_t fb = n0 * C * F4;
    size_t grads = max_weight_count(d) * F4;
    size_t pass1 = B * (model_hidden_sum(d) + C) * F4;
    size_t pass2 = B * (n0 + (size_t)pass2_buffers(d) * model_hidden_max(d)) * F4;
    p->cat[MT_MEM_PARAMS] = fb;
    p->cat[MT_MEM_GRADS] = grads;
    p->cat[MT_MEM_ACTS] = pass1 + pass2;
    rule_plan_phases(p, fb + grads, pass1, pass1 + pass2, pass1 + pass2);
}

/* SGD with momentum 0.9, lr 0.01 and a cosine decay when the spec names no
 * optimizer (chosen on MNIST, /work/notes/doc-pepita.md); F as the authors
 * draw it: 0.05 U(+-sqrt(6/n_0)). Adam is unstable here: 1e-4 diverged, so
 * its default lr is 3e-5. */
static void pepita_defaults(struct mt_spec *s)
{
    if (s->optim.kind == MT_OPT_DEFAULT) {
        s->optim.kind = MT_OPT_SGD;
        if (s->sched.kind == MT_SCHED_CONSTANT && s->sched.warmup_epochs == 0)
            s->sched.kind = MT_SCHED_COSINE;
    }
    if (s->optim.kind == MT_OPT_SGD && isnan(s->optim.momentum))
        s->optim.momentum = 0.9f;
    /* Deeper than 3 hidden layers, SGD's lr 0.01 times 2 / (hidden - 1):
     * 784-1024-512-256-128-64-10 at batch 64 diverged at 0.01 and at 0.006
     * and learned at 0.005 (memtrain-bench robust). */
    int hidden = s->model.n_layers - 1;
    if (isnan(s->optim.lr))
        s->optim.lr = s->optim.kind == MT_OPT_SGD
                          ? 0.01f * (hidden > 3 ? 2.0f / (float)(hidden - 1) : 1.0f)
                          : 3e-5f;
    if (s->rule.feedback_init == MT_FB_DEFAULT)
        s->rule.feedback_init = MT_FB_KAIMING;
    if (isnan(s->rule.feedback_scale))
        s->rule.feedback_scale = 0.05f;
}

static int pepita_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int n0 = d->width[0], C = d->width[d->n_layers];
    t->rs.grads_n = max_weight_count(d);
    if (!(t->rs.grads = arena_alloc(t->arena, MT_MEM_GRADS, t->rs.grads_n * F4, err)))
        return arena_error(t->arena);
    if (!(t->rs.fb[0] = arena_alloc(t->arena, MT_MEM_PARAMS, (size_t)n0 * C * F4, err)))
        return arena_error(t->arena);
    /* F (n_0, C): 0.05 U(+-sqrt(6/n_0)) by default, the authors' He-uniform draw. */
    struct mt_rng rng;
    rng_derive(&rng, t->spec.seed, PEPITA_FB_STREAM);
    rule_feedback_fill(t->rs.fb[0], n0, C, n0, &t->spec.rule, &rng);
    return 0;
}

static int pepita_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                       struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers, C = d->width[L], n0 = d->width[0];
    size_t mark = arena_mark(t->arena);
    size_t hmax = (size_t)B * model_hidden_max(d) * F4;
    float *H[MT_MAX_LAYERS + 1] = {NULL}, *E, *Xm, *buf[2] = {NULL, NULL};
    float *gw = t->rs.grads;     /* (n_l, n_{l-1}) of the layer being updated */
    const float *in = x;
    int rc = 0;

    /* Pass 1: H_1..H_{L-1} kept, logits into E, then e = B E. */
    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    for (int l = 1; l < L; l++)
        if (!(H[l] = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * d->width[l] * F4, err)))
            goto fail;
    if (!(E = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * C * F4, err)))
        goto fail;
    for (int l = 1; l <= L; l++) {
        float *out = l < L ? H[l] : E;
        rule_layer_forward(&t->net, l, in, out, B);
        in = out;
    }
    if ((rc = rule_output_error(t, E, y, B, r, err)))   /* E = (softmax - Y) / B */
        goto out;

    /* X' (B, n_0) = X + e F^T, with e = B E. */
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    if (!(Xm = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * n0 * F4, err)))
        goto fail;
    for (int i = 0; i < pass2_buffers(d); i++)
        if (!(buf[i] = arena_push(t->arena, MT_MEM_ACTS, hmax, err)))
            goto fail;
    memcpy(Xm, x, (size_t)B * n0 * F4);
    blas_gemm(0, 1, B, n0, C, (float)B, E, t->rs.fb[0], 1.0f, Xm);

    /* Pass 2, updating each layer once its modulated output exists. */
    optim_begin_step(&t->opt);
    in = Xm;
    for (int l = 1; l <= L; l++) {
        int nin = d->width[l - 1], nout = d->width[l];
        size_t cnt = (size_t)B * nout;
        float *out;
        arena_set_phase(t->arena, MT_PHASE_GRADIENT);
        if (l < L) {
            out = buf[(l - 1) & 1];
            rule_layer_forward(&t->net, l, in, out, B);       /* H_l' */
            for (size_t i = 0; i < cnt; i++)
                H[l][i] -= out[i];                            /* H_l - H_l' */
            blas_gemm(1, 0, nout, nin, B, 1.0f / (float)B, H[l], in, 0.0f, gw);
        } else {
            out = E;
            rule_layer_forward(&t->net, l, in, out, B);       /* Z_L' */
            loss_softmax_xent_backward(out, y, B, C, NULL);   /* e' / B */
            blas_gemm(1, 0, nout, nin, B, 1.0f, out, in, 0.0f, gw);
        }
        arena_set_phase(t->arena, MT_PHASE_UPDATE);
        optim_update(&t->opt, t->lr, t->net.W[l], gw, model_layer_offset(d, l),
                     (size_t)nout * nin);
        in = out;
    }
    goto out;
fail:
    rc = arena_error(t->arena);
out:
    arena_pop(t->arena, mark);
    return rc;
}

const struct mt_rule rule_pepita = {
    .name = "pepita",
    .summary = "PEPITA: two forward passes, the error modulates the input (no backward)",
    .defaults = pepita_defaults,
    .plan = pepita_plan,
    .init = pepita_init,
    .step = pepita_step,
    .flags = MT_RULE_FEEDBACK,
    .fc_only = "(PEPITA) is defined for fully connected layers: the error modulates the input "
               "through a fixed matrix and each layer learns from its two forward outputs",
};
