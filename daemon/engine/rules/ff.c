/* ff.c: Forward-Forward (Hinton, "The Forward-Forward Algorithm", arXiv
 * 2212.13345; spec section 7.9).
 *
 * Each hidden layer learns on its own to give a high goodness
 * G = sum_j h_j^2 to positive data (the image with its own label written
 * into its first C values) and a low one to negative data (the same image
 * with a wrong label drawn at random). Layer l's loss is logistic,
 *   L_l = 1/(2B) sum_i softplus(-s_i (G_i - theta_l)),  theta_l = n_l,
 * with s_i = +1 on the B positive rows and -1 on the B negative ones
 * (Hinton's sum of squares against the layer width, as loeweX's code that
 * TinyFoA's FF baseline runs). Each layer's input is the layer below's
 * output divided by its root mean square (layer 1's input too), detached:
 * no error crosses a layer. With ReLU, dL/dZ_i = c_i H_i, c_i = 2 dL/dG_i,
 * so dW_l = H^T diag(c) U and db_l = H^T c (U the layer's input).
 *
 * A step trains the layers bottom-up: layer l's forward, gradient and
 * update, then its normalised output (computed with the old W_l) is layer
 * l+1's input. That is the same as updating every layer after one forward,
 * with one layer's input and output (positive and negative rows) kept and a
 * gradient buffer of one layer.
 *
 * Classification (infer): for each label c, write c into the image, run the
 * forward and add the goodness of layers 2..L-1 (layer 1's when it is the
 * only one): the label with the most goodness wins (Hinton's accumulated
 * goodness). The logits returned are that sum per unit of width minus 1.
 * The output layer W_L is neither used nor trained. A step reports the mean
 * of the layers' logistic losses and, as "correct", the samples whose own
 * label got more goodness than the wrong one drawn for them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "../blas.h"
#include "../dense.h"
#include "../spec.h"

#define F4 sizeof(float)
#define FF_EPS 1e-8f                           /* in the length normalisation */
#define FF_NEG_STREAM (UINT64_C(0xff) << 48)   /* + step: the wrong labels' rng stream */

struct ff_state {
    float *scores;         /* (batch, C) goodness per candidate label in infer, MT_MEM_DATA */
    float lo, hi;          /* label values: "off" and "on" (pixels 0 and 255, normalised) */
    double loss_sum[MT_MAX_RULE_METRICS];   /* per layer over the epoch, for epoch_metrics */
    long steps;
};

/* The widest layer input or output a step holds: max(n_0, n_1..n_{L-1}). */
static int ff_width(const struct mt_model_desc *d)
{
    int w = d->width[0];
    for (int l = 1; l < d->n_layers; l++)
        w = d->width[l] > w ? d->width[l] : w;
    return w;
}

/* One hidden layer's W_l and b_l: the gradient buffer's floats. */
static size_t ff_grad_floats(const struct mt_model_desc *d)
{
    size_t m = 0;
    for (int l = 1; l < d->n_layers; l++)
        m = model_layer_size(d, l) > m ? model_layer_size(d, l) : m;
    return m;
}

/* Whether layer l's goodness counts for classification. */
static int ff_counts(const struct mt_model_desc *d, int l)
{
    return d->n_layers == 2 || l >= 2;
}

/* Write label c into the first C values of a row: hi at c, lo elsewhere. */
static void ff_embed(float *row, int C, int c, float lo, float hi)
{
    for (int j = 0; j < C; j++)
        row[j] = j == c ? hi : lo;
}

/* 1 / (root mean square + eps) of a row of n values. */
static float ff_inv_rms(const float *row, int n)
{
    double ss = 0;
    for (int j = 0; j < n; j++)
        ss += (double)row[j] * row[j];
    return 1.0f / ((float)sqrt(ss / n) + FF_EPS);
}

/* Length normalisation, in place over A (rows, n). */
static void ff_normalise(float *A, int rows, int n)
{
    for (int i = 0; i < rows; i++) {
        float *row = A + (size_t)i * n, s = ff_inv_rms(row, n);
        for (int j = 0; j < n; j++)
            row[j] *= s;
    }
}

/* A layer's logistic loss over H (rows, n): rows < npos are positive.
 * coef[i] = 2 dL/dG_i; gsum[i] += G_i when gsum is not NULL. */
static double ff_layer_loss(const float *H, int rows, int npos, int n, double theta, float *coef,
                            float *gsum)
{
    double loss = 0;
    for (int i = 0; i < rows; i++) {
        const float *h = H + (size_t)i * n;
        double g = 0;
        for (int j = 0; j < n; j++)
            g += (double)h[j] * h[j];
        double s = i < npos ? 1.0 : -1.0, a = s * (g - theta);
        /* softplus(-a) and sigmoid(-a), without overflow */
        double e = exp(-fabs(a));
        loss += (a > 0 ? 0.0 : -a) + log1p(e);
        double sig = a > 0 ? e / (1.0 + e) : 1.0 / (1.0 + e);
        coef[i] = (float)(-2.0 * s * sig / rows);
        if (gsum)
            gsum[i] += (float)g;
    }
    return loss / rows;
}

static void ff_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    const struct mt_model_desc *d = &s->model;
    size_t rows = 2 * (size_t)s->batch;
    memset(p, 0, sizeof *p);
    size_t grads = ff_grad_floats(d) * F4;
    size_t acts = 2 * rows * (size_t)ff_width(d) * F4;   /* a layer's input and output */
    size_t ws = 2 * rows * F4;                           /* per-row c_i and goodness sums */
    size_t scores = (size_t)s->batch * d->width[d->n_layers] * F4;
    p->cat[MT_MEM_GRADS] = grads;
    p->cat[MT_MEM_ACTS] = acts;
    p->cat[MT_MEM_WORKSPACE] = ws;
    p->cat[MT_MEM_DATA] = scores;
    rule_plan_phases(p, grads + scores, acts + ws, acts + ws, acts + ws);
}

/* Adam 1e-3 with a cosine decay when the spec names no optimizer (chosen on
 * MNIST, /work/notes/doc-ff.md); SGD gets TinyFoA's FF recipe: lr 1e-3,
 * momentum 0.9, weight decay 3e-4. */
static void ff_defaults(struct mt_spec *s)
{
    if (s->optim.kind == MT_OPT_DEFAULT) {
        s->optim.kind = MT_OPT_ADAM;
        if (s->sched.kind == MT_SCHED_CONSTANT && s->sched.warmup_epochs == 0)
            s->sched.kind = MT_SCHED_COSINE;
    }
    if (s->optim.kind == MT_OPT_SGD) {
        if (isnan(s->optim.momentum))
            s->optim.momentum = 0.9f;
        if (isnan(s->optim.weight_decay))
            s->optim.weight_decay = 3e-4f;
    }
    if (isnan(s->optim.lr))
        s->optim.lr = 1e-3f;
}

static int ff_check(const struct mt_spec *s, struct mt_err *err)
{
    const struct mt_model_desc *d = &s->model;
    int L = d->n_layers, C = d->width[L], n0 = d->width[0];
    if (L < 2)
        return mt_err_set(err, MT_E_INVAL, "rule ff trains hidden layers: the model has none");
    if (C < 2 || n0 <= C)
        return mt_err_set(err, MT_E_INVAL,
                          "rule ff writes the label into the first %d inputs: it needs at least 2 "
                          "classes and more inputs than classes (model.input is %d)", C, n0);
    for (int l = 1; l < L; l++)
        if (d->act[l] != MT_ACT_RELU)
            return mt_err_set(err, MT_E_INVAL,
                              "rule ff: hidden layer %d is %s, but ff trains relu layers only", l,
                              act_name(d->act[l]));
    return 0;
}

static int ff_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers, C = d->width[L];
    struct ff_state *st = calloc(1, sizeof *st);
    if (!st)
        return mt_err_set(err, MT_E_NOMEM, "rule ff: out of memory");
    t->rs.priv = st;
    t->rs.grads_n = ff_grad_floats(d);
    if (!(t->rs.grads = arena_alloc(t->arena, MT_MEM_GRADS, t->rs.grads_n * F4, err)) ||
        !(st->scores = arena_alloc(t->arena, MT_MEM_DATA, (size_t)t->spec.batch * C * F4, err)))
        return arena_error(t->arena);
    st->lo = t->norm.shift;
    st->hi = 255.0f * t->norm.scale + t->norm.shift;
    return 0;
}

static void ff_fini(struct mt_trainer *t)
{
    free(t->rs.priv);
}

static int ff_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                   struct mt_step_result *r, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    struct ff_state *st = t->rs.priv;
    int L = d->n_layers, C = d->width[L], n0 = d->width[0], rows = 2 * B;
    size_t mark = arena_mark(t->arena), bytes = (size_t)rows * ff_width(d) * F4;
    float *U, *H, *coef, *gsum;
    int rc = 0;

    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if (!(U = arena_push(t->arena, MT_MEM_ACTS, bytes, err)) ||
        !(H = arena_push(t->arena, MT_MEM_ACTS, bytes, err)) ||
        !(coef = arena_push(t->arena, MT_MEM_WORKSPACE, 2 * (size_t)rows * F4, err))) {
        rc = arena_error(t->arena);
        goto out;
    }
    gsum = coef + rows;
    memset(gsum, 0, (size_t)rows * F4);

    /* U (2B, n_0): positive rows, then negative rows with a wrong label
     * from this step's own stream (a resumed job draws the same ones). */
    struct mt_rng rng;
    rng_derive(&rng, t->spec.seed, FF_NEG_STREAM + (uint64_t)t->step);
    for (int i = 0; i < B; i++) {
        int wrong = (int)rng_below(&rng, (uint32_t)C - 1);
        wrong += wrong >= y[i];
        float *pos = U + (size_t)i * n0, *neg = U + (size_t)(B + i) * n0;
        memcpy(pos, x + (size_t)i * n0, (size_t)n0 * F4);
        memcpy(neg, x + (size_t)i * n0, (size_t)n0 * F4);
        ff_embed(pos, C, y[i], st->lo, st->hi);
        ff_embed(neg, C, wrong, st->lo, st->hi);
    }
    ff_normalise(U, rows, n0);

    optim_begin_step(&t->opt);
    double loss = 0;
    for (int l = 1; l < L; l++) {
        int nin = d->width[l - 1], n = d->width[l];
        float *gw = t->rs.grads, *gb = gw + (size_t)n * nin;
        arena_set_phase(t->arena, MT_PHASE_FORWARD);
        rule_layer_forward(&t->net, l, U, H, rows); /* H (2B, n_l) */

        arena_set_phase(t->arena, MT_PHASE_GRADIENT);
        double ll = ff_layer_loss(H, rows, B, n, (double)n, coef, ff_counts(d, l) ? gsum : NULL);
        loss += ll;
        if (l - 1 < MT_MAX_RULE_METRICS)
            st->loss_sum[l - 1] += ll;
        for (int i = 0; i < rows; i++) {                           /* U <- diag(c) U */
            float *u = U + (size_t)i * nin;
            for (int j = 0; j < nin; j++)
                u[j] *= coef[i];
        }
        blas_gemm(1, 0, n, nin, rows, 1.0f, H, U, 0.0f, gw);       /* dW = H^T diag(c) U */
        blas_gemm(1, 0, n, 1, rows, 1.0f, H, coef, 0.0f, gb);      /* db = H^T c */

        arena_set_phase(t->arena, MT_PHASE_UPDATE);
        optim_update(&t->opt, t->lr, t->net.W[l], gw, model_layer_offset(d, l),
                     model_layer_size(d, l));

        arena_set_phase(t->arena, MT_PHASE_FORWARD);
        ff_normalise(H, rows, n);                                  /* layer l+1's input */
        float *tmp = U;
        U = H;
        H = tmp;
    }
    st->steps++;
    r->loss = loss / (L - 1);
    r->correct = 0;
    for (int i = 0; i < B; i++)
        r->correct += gsum[i] > gsum[B + i];
    if (!isfinite(r->loss))
        rc = mt_err_set(err, MT_E_INVAL,
                        "training diverged: ff loss is %g at step %ld (learning rate %g too high?)",
                        r->loss, t->step, (double)t->lr);
out:
    arena_pop(t->arena, mark);
    return rc;
}

static const float *ff_infer(struct mt_trainer *t, float *x, int B, float *buf0, float *buf1)
{
    const struct mt_model_desc *d = &t->net.d;
    struct ff_state *st = t->rs.priv;
    int L = d->n_layers, C = d->width[L], n0 = d->width[0], n1 = d->width[1];
    float *S = st->scores, width = 0;
    memset(S, 0, (size_t)B * C * F4);
    for (int l = 1; l < L; l++)
        width += ff_counts(d, l) ? (float)d->width[l] : 0.0f;

    for (int c = 0; c < C; c++) {
        for (int i = 0; i < B; i++)
            ff_embed(x + (size_t)i * n0, C, c, st->lo, st->hi);
        /* Layer 1 on the normalised input: (x / r) W^T = (x W^T) / r. */
        dense_forward(buf0, x, t->net.W[1], B, n0, n1);
        for (int i = 0; i < B; i++) {
            float s = ff_inv_rms(x + (size_t)i * n0, n0), *z = buf0 + (size_t)i * n1;
            for (int j = 0; j < n1; j++)
                z[j] *= s;
        }
        act_forward_bias(buf0, t->net.b[1], (size_t)B, (size_t)n1, d->act[1]);
        float *cur = buf0, *other = buf1;
        for (int l = 1; l < L; l++) {
            int n = d->width[l];
            if (l > 1) {
                rule_layer_forward(&t->net, l, cur, other, B);
                float *tmp = cur;
                cur = other;
                other = tmp;
            }
            if (ff_counts(d, l))
                for (int i = 0; i < B; i++) {
                    const float *h = cur + (size_t)i * n;
                    double g = 0;
                    for (int j = 0; j < n; j++)
                        g += (double)h[j] * h[j];
                    S[(size_t)i * C + c] += (float)g;
                }
            if (l + 1 < L)
                ff_normalise(cur, B, n);
        }
    }
    for (size_t i = 0; i < (size_t)B * C; i++)
        S[i] = S[i] / width - 1.0f;
    return S;
}

/* The mean logistic loss of each hidden layer over the epoch ("ff_loss.l"). */
static int ff_epoch_metrics(struct mt_trainer *t, struct mt_rule_metric *out, int max)
{
    struct ff_state *st = t->rs.priv;
    int n = 0;
    for (int l = 1; l < t->net.d.n_layers && n < max && l - 1 < MT_MAX_RULE_METRICS; l++, n++) {
        snprintf(out[n].name, sizeof out[n].name, "ff_loss.%d", l);
        out[n].value = st->steps ? st->loss_sum[l - 1] / (double)st->steps : 0.0;
        st->loss_sum[l - 1] = 0;
    }
    st->steps = 0;
    return n;
}

const struct mt_rule rule_ff = {
    .name = "ff",
    .fc_only = "(Forward-Forward) is defined for fully connected layers: the label is written "
               "into the input's first values and each layer's goodness is the sum of squares "
               "of its units",
    .summary = "Forward-Forward: layer-local goodness on positive and negative data",
    .defaults = ff_defaults,
    .plan = ff_plan,
    .check = ff_check,
    .init = ff_init,
    .step = ff_step,
    .infer = ff_infer,
    .fini = ff_fini,
    .epoch_metrics = ff_epoch_metrics,
};
