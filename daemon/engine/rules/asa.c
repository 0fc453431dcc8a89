/* asa.c: auxiliary sign activation, linear-layer variant (spec section 5,
 * Woo & Jeon, ICLR 2023).
 *
 * Every weight layer l >= 2 reads a post-ReLU input, so its auxiliary code is
 * the `relu`-flagged one, S_{l-1} = [H_{l-1} > 0] (1 or 0), and the model is
 *   X~_{l-1} = H_{l-1} + eps S_{l-1},   Z_l = X~_{l-1} W_l^T + b_l,
 * in training and at inference alike (the `infer` hook). Layer 1 reads the
 * data batch X exactly, with no auxiliary term.
 *
 * Kept from the forward to the update: one packed bit per hidden element,
 * [H_l > 0] for l = 1..L-1, which is both layer l+1's code S_l and layer l's
 * ReLU mask, plus the logits that become E:
 *   kept = sum_{l<L} ceil(B n_l / 8) + 4 B C bytes   (spec 5(b), section 9).
 * The exact H_l live only in two rolling workspace buffers.
 *
 * Backward, Delta_L = E, for l = L..1 (spec 5(a)):
 *   G_l = kappa eps Delta_l^T S_{l-1}  (l >= 2),   G_1 = Delta_1^T X,
 *   g_l = 1^T Delta_l,
 *   Delta_{l-1} = (Delta_l W_l) * [H_{l-1} > 0]  (exact; the sign term's
 *   derivative, zero almost everywhere, is ignored).
 * Then one optimizer pass. Only ReLU hidden layers fit this scheme; init
 * refuses the rest.
 *
 * Learning indicator (spec 5(a)): per layer l >= 2 and sample, with h the
 * sample's row of H_{l-1} and a = eps S, LI = 1 - |h|^2 / |h + a|^2, averaged
 * over the epoch's training samples and reported as "li.<l>". A sample whose
 * row is all zero (a = h = 0, LI undefined) is left out of the mean, and a
 * layer with no such sample in the epoch reports nothing.
 *
 * Layer-list models (conv nets, residual nets) train in asa_layers.c with
 * the same math. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asa.h"
#include "../act.h"
#include "../blas.h"
#include "../dense.h"
#include "../graph.h"
#include "../pack.h"
#include "../spec.h"

#define F4 sizeof(float)

/* Authors' defaults (spec 5(a)): eps = 0.01, kappa = 1/eps, so the weight
 * gradient is Delta^T S at the scale of BP's. */
#define ASA_EPSILON 0.01f

/* Rolling buffers of the forward (and delta buffers of the backward):
 * min(L-1, 2) of (B, max hidden n) floats. */
static int asa_nbuf(const struct mt_model_desc *d)
{
    return d->n_layers - 1 < 2 ? d->n_layers - 1 : 2;
}

static size_t asa_ws_bytes(const struct mt_model_desc *d, int B)
{
    return (size_t)asa_nbuf(d) * B * model_hidden_max(d) * F4;
}

/* Bytes kept between forward and update (spec section 9, ASA row). */
static size_t asa_kept_bytes(const struct mt_model_desc *d, int B)
{
    size_t n = 0;
    for (int l = 1; l < d->n_layers; l++)
        n += pack_bytes((size_t)B * d->width[l], 1);
    return n + (size_t)B * d->width[d->n_layers] * F4;
}

static void asa_defaults(struct mt_spec *s)
{
    rule_optim_defaults(s);
    if (isnan(s->rule.epsilon))
        s->rule.epsilon = ASA_EPSILON;
    if (isnan(s->rule.kappa))
        s->rule.kappa = 1.0f / s->rule.epsilon;
    if (s->rule.recompute_inputs < 0)
        s->rule.recompute_inputs = 1;
}

static void asa_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    if (model_is_graph(&s->model)) {
        rule_graph_plan(s, 0, 1, p); /* asa_layers.c: the graph keeps the codes */
        return;
    }
    memset(p, 0, sizeof *p);
    rule_plan_full_grads(s, p);
    size_t acts = asa_kept_bytes(&s->model, s->batch);
    size_t ws = asa_ws_bytes(&s->model, s->batch);
    p->cat[MT_MEM_ACTS] = acts;
    p->cat[MT_MEM_WORKSPACE] = ws;
    /* Forward: bits + logits + rolling buffers; gradient: bits + E + delta
     * buffers; the update runs after everything transient is popped. */
    rule_plan_phases(p, p->cat[MT_MEM_GRADS], acts + ws, acts + ws, 0);
}

static int asa_check(const struct mt_spec *s, struct mt_err *err)
{
    const struct mt_model_desc *d = &s->model;
    float eps = s->rule.epsilon, kappa = s->rule.kappa;
    for (int l = 1; l < d->n_layers && !model_is_graph(d); l++)
        if (d->act[l] != MT_ACT_RELU)
            return mt_err_set(err, MT_E_INVAL,
                              "rule 'asa': hidden layer %d has activation '%s'; asa needs relu "
                              "on every hidden layer (its 1-bit code is the ReLU mask)",
                              l, act_name(d->act[l]));
    if (!(eps > 0.0f) || !isfinite(eps))
        return mt_err_set(err, MT_E_INVAL, "rule 'asa': epsilon must be positive, got %g",
                          (double)eps);
    if (!(kappa > 0.0f) || !isfinite(kappa))
        return mt_err_set(err, MT_E_INVAL, "rule 'asa': kappa must be positive, got %g",
                          (double)kappa);
    return 0;
}

static int asa_init(struct mt_trainer *t, struct mt_err *err)
{
    float eps = t->spec.rule.epsilon, kappa = t->spec.rule.kappa;
    struct asa_state *st = calloc(1, sizeof *st);
    if (!st)
        return mt_err_set(err, MT_E_NOMEM, "rule 'asa': out of memory for its state");
    st->eps = eps;
    st->kappa = kappa;
    st->recompute = t->spec.rule.recompute_inputs != 0;
    t->rs.priv = st;
    int rc = rule_graph_init(t, err);
    return rc ? rc : rule_alloc_full_grads(t, err);
}

static void asa_fini(struct mt_trainer *t)
{
    free(t->rs.priv);
    t->rs.priv = NULL;
}

void asa_sign_term(float *out, const float *h, int B, size_t n, float eps, int relu,
                   double *li_sum, long *li_n)
{
    float low = relu ? 0.0f : eps;
    for (int i = 0; i < B; i++) {
        const float *row = h + (size_t)i * n;
        float *dst = out + (size_t)i * n;
        double hh = 0, xx = 0;
        for (size_t j = 0; j < n; j++) {
            float v = row[j], x = v > 0 ? v + eps : v - low;
            hh += (double)v * v;
            xx += (double)x * x;
            dst[j] = x;
        }
        if (li_sum && xx > 0) {
            *li_sum += 1.0 - hh / xx;
            (*li_n)++;
        }
    }
}

/* The ASA model's forward from x (B, n_0). Hidden outputs go to buf0/buf1
 * alternately (layer l to buf[(l-1) & 1]); the logits to `logits` when given,
 * else to the next buffer. With `bits`, bits[l] gets [H_l > 0] packed before
 * the sign term is added; with `st`, the LI sums grow. Returns the logits. */
static float *asa_forward(const struct mt_net *net, float eps, const float *x, int B,
                          float *buf0, float *buf1, uint8_t *const *bits, float *logits,
                          struct asa_state *st)
{
    const struct mt_model_desc *d = &net->d;
    int L = d->n_layers;
    float *buf[2] = {buf0, buf1}, *h = NULL;
    for (int l = 1; l <= L; l++) {
        float *out = l == L && logits ? logits : buf[(l - 1) & 1];
        if (l == 1) {
            rule_layer_forward(net, 1, x, out, B);
        } else {
            int n = d->width[l - 1];
            if (bits)
                pack_sign(bits[l - 1], h, (size_t)B * n);
            asa_sign_term(h, h, B, (size_t)n, eps, 1, st ? &st->li_sum[l] : NULL,
                          st ? &st->li_n[l] : NULL);
            rule_layer_forward(net, l, h, out, B);
        }
        h = out;
    }
    return h;
}

static const float *asa_infer(struct mt_trainer *t, float *x, int B, float *buf0, float *buf1)
{
    const struct asa_state *st = t->rs.priv;
    if (model_is_graph(&t->net.d))
        return NULL; /* the graph's evaluation, through asa_layers_keep */
    return asa_forward(&t->net, st->eps, x, B, buf0, buf1, NULL, NULL, NULL);
}

/* d (n) *= bit i of mask: the ReLU derivative read from the packed code. */
static void mask_by_bits(float *d, const uint8_t *mask, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((mask[i >> 3] >> (i & 7)) & 1))
            d[i] = 0.0f;
}

/* Gradients of every layer from E (B, C) and the kept bits. buf: the
 * min(L-1, 2) delta buffers, (B, max hidden n) each. */
static void asa_backward(struct mt_trainer *t, const float *x, int B, uint8_t *const *bits,
                         const float *E, float *const *buf)
{
    const struct mt_model_desc *d = &t->net.d;
    const struct asa_state *st = t->rs.priv;
    const float *delta = E;
    int which = 0;
    for (int l = d->n_layers; l >= 1; l--) {
        int in = d->width[l - 1], out = d->width[l];
        if (l == 1) {
            dense_backward_params(rule_grad_w(t, 1), rule_grad_b(t, 1), delta, x, B, in, out);
            break; /* no input gradient for the data (spec 1(f)) */
        }
        size_t cnt = (size_t)B * in;
        float *next = buf[which];
        which ^= 1;
        /* S_{l-1} decoded into the buffer that will hold Delta_{l-1}. */
        pack_unpack_sign(next, bits[l - 1], cnt, 1.0f, 0.0f);
        blas_gemm(1, 0, out, in, B, st->kappa * st->eps, delta, next, 0.0f, rule_grad_w(t, l));
        dense_colsum(rule_grad_b(t, l), delta, B, out);
        dense_backward_input(next, delta, t->net.W[l], B, in, out);
        mask_by_bits(next, bits[l - 1], cnt);
        delta = next;
    }
}

static int asa_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                    struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    struct asa_state *st = t->rs.priv;
    if (model_is_graph(d))
        return asa_layers_step(t, x, y, B, r, err);
    int L = d->n_layers, nbuf = asa_nbuf(d);
    size_t mark = arena_mark(t->arena), ws_mark;
    size_t half = (size_t)B * model_hidden_max(d) * F4;
    uint8_t *bits[MT_MAX_LAYERS + 1] = {NULL};
    float *logits, *buf[2] = {NULL, NULL};
    int rc = 0;

    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    for (int l = 1; l < L; l++)
        if (!(bits[l] = arena_push(t->arena, MT_MEM_ACTS, pack_bytes((size_t)B * d->width[l], 1),
                                   err)))
            goto fail;
    if (!(logits = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * d->width[L] * F4, err)))
        goto fail;
    ws_mark = arena_mark(t->arena);
    for (int i = 0; i < nbuf; i++)
        if (!(buf[i] = arena_push(t->arena, MT_MEM_WORKSPACE, half, err)))
            goto fail;
    asa_forward(&t->net, st->eps, x, B, buf[0], buf[1], bits, logits, st);
    arena_pop(t->arena, ws_mark); /* the exact H_l are gone; bits and logits stay */
    if ((rc = rule_output_error(t, logits, y, B, r, err)))
        goto out;

    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    for (int i = 0; i < nbuf; i++)
        if (!(buf[i] = arena_push(t->arena, MT_MEM_WORKSPACE, half, err)))
            goto fail;
    asa_backward(t, x, B, bits, logits, buf);
    arena_pop(t->arena, mark);
    rule_update_all(t);
    goto out;
fail:
    rc = arena_error(t->arena);
out:
    arena_pop(t->arena, mark);
    return rc;
}

static int asa_epoch_metrics(struct mt_trainer *t, struct mt_rule_metric *out, int max)
{
    struct asa_state *st = t->rs.priv;
    int k = 0;
    for (int l = 2; l <= t->net.d.n_layers; l++) {
        if (k < max && st->li_n[l] > 0) {
            snprintf(out[k].name, sizeof out[k].name, "li.%d", l);
            out[k].value = st->li_sum[l] / (double)st->li_n[l];
            k++;
        }
        st->li_sum[l] = 0;
        st->li_n[l] = 0;
    }
    return k;
}

const struct mt_rule rule_asa = {
    .name = "asa",
    .summary = "auxiliary sign activation: 1 bit per hidden element kept, exact error path",
    .defaults = asa_defaults,
    .plan = asa_plan,
    .check = asa_check,
    .init = asa_init,
    .step = asa_step,
    .infer = asa_infer,
    .fini = asa_fini,
    .epoch_metrics = asa_epoch_metrics,
    .flags = MT_RULE_EPSILON | MT_RULE_KAPPA | MT_RULE_RECOMPUTE | MT_RULE_LAYERS,
    .keep = &asa_layers_keep,
};
