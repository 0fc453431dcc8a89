/* approx.c: approximate activations, the approx8 and approx4 rules (spec
 * section 6; Chakrabarti & Moseley, "Backprop with Approximate Activations
 * for Memory-efficient Network Training", arXiv 1901.07988).
 *
 * The forward is exact: each hidden layer's output goes through one of two
 * shared FP32 buffers (workspace) to the next layer. What is kept for the
 * update is a K-bit copy of each hidden pre-activation (packed, approx.h)
 * with a per-feature window (a float plus a byte per feature), and the
 * logits, which become E. The backward is BP's chain with two changes:
 * each weight gradient reads the decoded copy of its input (layer 1 reads
 * the exact batch), and the ReLU derivative comes from the codes, where it
 * is exact. Batch-norm layers follow the paper: the copy is of
 * u = y / |gamma| with the fixed step 6/N, 1/sigma is kept exactly, and only
 * the variance term of the batch-norm backward sees the approximation.
 *
 * Kept bytes: sum_{l<L} (K B n_l / 8 + 5 n_l) + 4 B C, against BP's
 * 4 B sum_{l<L} n_l + 4 B C. Cost ~BP's plus elementwise encode/decode. */
#include "approx.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "../act.h"
#include "../dense.h"
#include "../norm.h"
#include "../pack.h"
#include "../spec.h"

#define F4 sizeof(float)

/* ---- the K-bit copy ------------------------------------------------------ */

static int is_bn(const struct mt_model_desc *d, int l)
{
    return l < d->n_layers && d->norm[l] == MT_NK_BATCH;
}

/* s_c = clamp(N/2 - floor(center / step), 1, N-1): zero on the edge below
 * code s_c, the window around `center`, at least one bin on each side. */
static uint8_t zero_code(double center, double step, int N)
{
    double s = N / 2 - floor(center / step);
    if (!(s >= 1)) /* also NaN */
        s = 1;
    if (s > N - 1)
        s = N - 1;
    return (uint8_t)s;
}

void approx_window_stats(float *step, uint8_t *zero, const float *z, int B, int n, int bits)
{
    approx_window_stats_map(step, zero, z, B, n, 1, bits);
}

void approx_window_stats_map(float *step, uint8_t *zero, const float *z, int B, int C, size_t hw,
                             int bits)
{
    int N = 1 << bits;
    double cnt = (double)B * (double)hw;
    for (int c = 0; c < C; c++) {
        double mu = 0, var = 0;
        for (int b = 0; b < B; b++)
            for (size_t j = 0; j < hw; j++)
                mu += z[((size_t)b * C + c) * hw + j];
        mu /= cnt;
        for (int b = 0; b < B; b++)
            for (size_t j = 0; j < hw; j++) {
                double dz = z[((size_t)b * C + c) * hw + j] - mu;
                var += dz * dz;
            }
        /* The paper's 6-sigma window. A channel with no spread over the
         * batch (always so with batch 1 and one value) takes sigma = |mu|,
         * so the window still holds its value and zero; sigma = 1 when it
         * is all zero. */
        double st = 6.0 * sqrt(var / cnt) / N;
        if (!(st >= FLT_MIN && st <= FLT_MAX))
            st = 6.0 * fabs(mu) / N;
        if (!(st >= FLT_MIN && st <= FLT_MAX))
            st = 6.0 / N;
        step[c] = (float)st;
        zero[c] = zero_code(mu, step[c], N);
    }
}

void approx_window_bn(uint8_t *zero, const float *gamma, const float *beta, int n, int bits)
{
    int N = 1 << bits;
    for (int c = 0; c < n; c++) {
        /* u = y / |gamma| has mean beta / |gamma| and std 1: step 6/N. */
        double ag = fmax(fabs((double)gamma[c]), APPROX_MIN_GAMMA);
        zero[c] = zero_code(beta[c] / ag, 6.0 / N, N);
    }
}

float approx_step(const struct approx_win *w, int c)
{
    if (w->step)
        return w->step[c];
    return (6.0f / (float)(1 << w->bits)) * fmaxf(fabsf(w->gamma[c]), APPROX_MIN_GAMMA);
}

/* Values per channel per sample: 1 for features. */
static size_t win_hw(const struct approx_win *w)
{
    return w->hw > 1 ? w->hw : 1;
}

size_t approx_encode(uint8_t *packed, const float *v, const struct approx_win *w, int B)
{
    int n = w->n, N = 1 << w->bits;
    size_t clipped = 0, i = 0, hw = win_hw(w);
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < n; c++) {
            int s = w->zero[c];
            float step = approx_step(w, c);
            for (size_t j = 0; j < hw; j++, i++) {
                /* k = floor(|v| / step) bins away from zero; NaN counts as clipped. */
                double r = fabs((double)v[i]) / step;
                int k = r < N ? (int)r : N;
                int q;
                if (v[i] > 0) {
                    q = s + k;
                    if (q > N - 1) {
                        q = N - 1;
                        clipped++;
                    }
                } else {
                    q = s - 1 - k;
                    if (q < 0) {
                        q = 0;
                        clipped++;
                    }
                }
                if (w->bits == 8)
                    packed[i] = (uint8_t)q;
                else if (i & 1) /* 4-bit: element i in the low (even i) or high nibble */
                    packed[i >> 1] |= (uint8_t)(q << 4);
                else
                    packed[i >> 1] = (uint8_t)q;
            }
        }
    }
    return clipped;
}

/* out (B, n, hw) from the codes: the bin centre, or 0 below zero when relu. */
static void decode(float *out, const uint8_t *packed, const struct approx_win *w, int B,
                   int relu)
{
    size_t i = 0, hw = win_hw(w);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < w->n; c++) {
            int s = w->zero[c];
            float step = approx_step(w, c);
            for (size_t j = 0; j < hw; j++, i++) {
                int q = (int)pack_get(packed, i, w->bits);
                out[i] = relu && q < s ? 0.0f : ((float)(q - s) + 0.5f) * step;
            }
        }
}

void approx_decode(float *out, const uint8_t *packed, const struct approx_win *w, int B)
{
    decode(out, packed, w, B, 0);
}

void approx_decode_relu(float *out, const uint8_t *packed, const struct approx_win *w, int B)
{
    decode(out, packed, w, B, 1);
}

void approx_mask(float *d, const uint8_t *packed, const struct approx_win *w, int B)
{
    size_t i = 0, hw = win_hw(w);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < w->n; c++)
            for (size_t j = 0; j < hw; j++, i++)
                if ((int)pack_get(packed, i, w->bits) < w->zero[c])
                    d[i] = 0.0f;
}

/* xhat' of element (b, c) from its code: (v_hat - beta) / gamma, with
 * gamma's magnitude floored as in the window. */
static double bn_xhat(const uint8_t *packed, size_t i, const struct approx_win *w, int c,
                      double beta, double gamma_eff)
{
    int q = (int)pack_get(packed, i, w->bits);
    double vhat = ((double)(q - w->zero[c]) + 0.5) * approx_step(w, c);
    return (vhat - beta) / gamma_eff;
}

void approx_bn_backward(float *dy, float *dgamma, float *dbeta, const uint8_t *packed,
                        const struct approx_win *w, const float *beta, const float *rstd,
                        int B)
{
    int n = w->n;
    for (int c = 0; c < n; c++) {
        double gamma = w->gamma[c];
        double ge = gamma < 0 ? -fmax(-gamma, APPROX_MIN_GAMMA) : fmax(gamma, APPROX_MIN_GAMMA);
        double sg = 0, sgx = 0, sx = 0;
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * n + c;
            double x = bn_xhat(packed, i, w, c, beta[c], ge);
            double g = (int)pack_get(packed, i, w->bits) >= w->zero[c] ? dy[i] : 0.0;
            sg += g;
            sgx += g * x;
            sx += x;
        }
        dbeta[c] = (float)sg;
        dgamma[c] = (float)sgx;
        double mean_gg = gamma * sg / B;                  /* mean(gamma g) */
        double mean_tx = (gamma * sgx - mean_gg * sx) / B; /* mean(t xhat') */
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * n + c;
            double x = bn_xhat(packed, i, w, c, beta[c], ge);
            double g = (int)pack_get(packed, i, w->bits) >= w->zero[c] ? dy[i] : 0.0;
            dy[i] = (float)(rstd[c] * (gamma * g - mean_gg - x * mean_tx));
        }
    }
}

size_t approx_kept_bytes(const struct mt_model_desc *d, int B, int bits)
{
    size_t bytes = (size_t)B * d->width[d->n_layers] * F4;
    for (int l = 1; l < d->n_layers; l++)
        bytes += pack_bytes((size_t)B * d->width[l], bits) + 5 * (size_t)d->width[l];
    return bytes;
}

/* ---- forward and backward ------------------------------------------------ */

void approx_layer_win(const struct mt_trainer *t, const struct approx_kept *k, int l, int bits,
                      struct approx_win *w)
{
    w->n = t->net.d.width[l];
    w->bits = bits;
    w->zero = k->zero[l];
    w->step = k->step[l];
    w->gamma = is_bn(&t->net.d, l) ? t->net.gamma[l] : NULL;
    w->hw = 1;
}

static int push_kept(struct mt_trainer *t, int B, int bits, struct approx_kept *k,
                     struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    struct mt_arena *a = t->arena;
    int L = d->n_layers;
    for (int l = 1; l < L; l++) {
        size_t n = (size_t)d->width[l];
        if (!(k->codes[l] = arena_push(a, MT_MEM_ACTS, pack_bytes((size_t)B * n, bits), err)) ||
            !(k->zero[l] = arena_push(a, MT_MEM_ACTS, n, err)))
            return arena_error(t->arena);
        float **f = is_bn(d, l) ? &k->rstd[l] : &k->step[l];
        if (!(*f = arena_push(a, MT_MEM_ACTS, n * F4, err)))
            return arena_error(t->arena);
    }
    if (!(k->logits = arena_push(a, MT_MEM_ACTS, (size_t)B * d->width[L] * F4, err)))
        return arena_error(t->arena);
    return 0;
}

/* Hidden layer l into out (B, n_l): Z, the window, the codes, then f.
 * A batch-norm layer normalises Z in training mode first (norm.h). */
static void hidden_forward(struct mt_trainer *t, int l, int bits, const float *in, float *out,
                           int B, struct approx_kept *k)
{
    const struct mt_model_desc *d = &t->net.d;
    struct mt_net *net = &t->net;
    int n = d->width[l];
    dense_forward(out, in, net->W[l], B, d->width[l - 1], n);
    act_forward_bias(out, net->b[l], (size_t)B, (size_t)n, MT_ACT_IDENTITY);
    if (is_bn(d, l)) {
        /* y = gamma xhat + beta in place; the batch mean is not needed (NULL). */
        batchnorm_forward_train(out, NULL, out, net->gamma[l], net->beta[l], B, n, NULL,
                                k->rstd[l], net->run_mean[l], net->run_var[l]);
        approx_window_bn(k->zero[l], net->gamma[l], net->beta[l], n, bits);
    } else {
        approx_window_stats(k->step[l], k->zero[l], out, B, n, bits);
    }
    struct approx_win w;
    approx_layer_win(t, k, l, bits, &w);
    k->clipped[l] = approx_encode(k->codes[l], out, &w, B);
    act_forward_bias(out, NULL, (size_t)B, (size_t)n, d->act[l]);
}

int approx_forward(struct mt_trainer *t, const float *x, int B, int bits, struct approx_kept *k,
                   float **buf, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers, rc;
    memset(k, 0, sizeof *k);
    buf[0] = buf[1] = NULL;
    if ((rc = push_kept(t, B, bits, k, err)))
        return rc;
    size_t bytes = (size_t)B * model_hidden_max(d) * F4;
    for (int i = 0; i < 2 && i < L - 1; i++)
        if (!(buf[i] = arena_push(t->arena, MT_MEM_WORKSPACE, bytes, err)))
            return arena_error(t->arena);

    const float *in = x;
    for (int l = 1; l < L; l++) {
        float *out = buf[(l - 1) & 1];
        hidden_forward(t, l, bits, in, out, B, k);
        in = out; /* exact; once layer l+1 has read it only the codes remain */
    }
    rule_layer_forward(&t->net, L, in, k->logits, B);
    return 0;
}

void approx_backward(struct mt_trainer *t, const float *x, int B, int bits,
                     const struct approx_kept *k, float **buf)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers;
    const float *delta = k->logits; /* E */
    for (int l = L; l >= 1; l--) {
        int in_n = d->width[l - 1], out_n = d->width[l];
        if (l == 1) { /* the batch is exact, and needs no input gradient (spec 1(f)) */
            dense_backward_params(rule_grad_w(t, 1), rule_grad_b(t, 1), delta, x, B, in_n, out_n);
            break;
        }
        /* The buffer not holding delta: first H_hat_{l-1}, then delta_{l-1}. */
        float *h = delta == buf[0] ? buf[1] : buf[0];
        struct approx_win w;
        approx_layer_win(t, k, l - 1, bits, &w);
        approx_decode_relu(h, k->codes[l - 1], &w, B);
        dense_backward_params(rule_grad_w(t, l), rule_grad_b(t, l), delta, h, B, in_n, out_n);
        dense_backward_input(h, delta, t->net.W[l], B, in_n, out_n);
        if (is_bn(d, l - 1)) {
            approx_bn_backward(h, rule_grad_gamma(t, l - 1), rule_grad_beta(t, l - 1),
                               k->codes[l - 1], &w, t->net.beta[l - 1], k->rstd[l - 1], B);
        } else {
            approx_mask(h, k->codes[l - 1], &w, B);
        }
        delta = h;
    }
}

/* ---- the rule ------------------------------------------------------------ */

static void approx_plan(const struct mt_spec *s, struct mt_mem_plan *p, int bits)
{
    const struct mt_model_desc *d = &s->model;
    if (model_is_graph(d)) { /* BP's over layers with the rule's keep (approx_layers.c) */
        rule_graph_plan(s, 0, !backprop_accumulates(s), p);
        return;
    }
    memset(p, 0, sizeof *p);
    rule_plan_full_grads(s, p);
    size_t acts = approx_kept_bytes(d, s->batch, bits);
    size_t bufs = rule_chain_ws_bytes(d, s->batch); /* the two shared FP32 buffers */
    p->cat[MT_MEM_ACTS] = acts;
    p->cat[MT_MEM_WORKSPACE] = bufs;
    rule_plan_phases(p, p->cat[MT_MEM_GRADS], acts + bufs, acts + bufs, 0);
}

static void approx8_plan(const struct mt_spec *s, struct mt_mem_plan *p) { approx_plan(s, p, 8); }
static void approx4_plan(const struct mt_spec *s, struct mt_mem_plan *p) { approx_plan(s, p, 4); }

static int approx_check(const struct mt_spec *s, struct mt_err *err)
{
    const struct mt_model_desc *d = &s->model;
    const char *name = s->rule.name;
    if (model_is_graph(d))
        return 0; /* sites are ReLUs; every other layer is kept as BP keeps it */
    for (int l = 1; l < d->n_layers; l++) {
        if (d->act[l] != MT_ACT_RELU)
            return mt_err_set(err, MT_E_INVAL,
                              "rule %s: layer %d uses %s; approximate activations need ReLU "
                              "hidden layers (the codes keep the ReLU mask exact)",
                              name, l, act_name(d->act[l]));
        if (d->norm[l] == MT_NK_LAYER)
            return mt_err_set(err, MT_E_INVAL,
                              "rule %s: layer %d has layernorm; approximate activations "
                              "support batchnorm (spec 6(a)) or no norm",
                              name, l);
    }
    return 0;
}

static int approx_init(struct mt_trainer *t, int bits, struct mt_err *err)
{
    const char *name = t->spec.rule.name;
    int rc = rule_graph_init(t, err);
    if (!rc) /* layer lists store gradients as BP over layers does */
        rc = model_is_graph(&t->net.d) ? backprop_alloc_grads(t, err)
                                       : rule_alloc_full_grads(t, err);
    if (rc)
        return rc;
    struct approx_state *st = calloc(1, sizeof *st);
    if (!st)
        return mt_err_set(err, MT_E_NOMEM, "rule %s: out of memory for its state", name);
    st->bits = bits;
    t->rs.priv = st;
    return 0;
}

static int approx8_init(struct mt_trainer *t, struct mt_err *err) { return approx_init(t, 8, err); }
static int approx4_init(struct mt_trainer *t, struct mt_err *err) { return approx_init(t, 4, err); }

static int approx_train_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                             struct mt_step_result *r, struct mt_err *err)
{
    struct approx_state *st = t->rs.priv;
    const struct mt_model_desc *d = &t->net.d;
    if (model_is_graph(d)) /* codes through approx8_keep / approx4_keep */
        return rule_graph_bp_step(t, x, y, B, NULL, r, err);
    size_t mark = arena_mark(t->arena);
    struct approx_kept k;
    float *buf[2];
    int rc;
    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    if ((rc = approx_forward(t, x, B, st->bits, &k, buf, err)) ||
        (rc = rule_output_error(t, k.logits, y, B, r, err)))
        goto out;
    for (int l = 1; l < d->n_layers; l++) {
        st->clipped[l] += (double)k.clipped[l];
        st->coded[l] += (double)B * d->width[l];
    }
    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    approx_backward(t, x, B, st->bits, &k, buf);
    arena_pop(t->arena, mark); /* the copies are dead once gradients exist */
    rule_update_all(t);
out:
    arena_pop(t->arena, mark);
    return rc;
}

static void approx_fini(struct mt_trainer *t)
{
    free(t->rs.priv);
    t->rs.priv = NULL;
}

/* "clip": fraction of all codes this epoch that were clipped to an end bin
 * (the value lay outside its window); "clip.l" the same for hidden layer l
 * (MLP) or the l-th site (layer lists). */
static int approx_epoch_metrics(struct mt_trainer *t, struct mt_rule_metric *out, int max)
{
    struct approx_state *st = t->rs.priv;
    const struct mt_model_desc *d = &t->net.d;
    int L = model_is_graph(d) ? approx_layers_n_sites(d) + 1 : d->n_layers, m = 0;
    double c = 0, n = 0;
    for (int l = 1; l < L; l++) {
        c += st->clipped[l];
        n += st->coded[l];
    }
    if (m < max && L > 1) {
        snprintf(out[m].name, sizeof out[m].name, "clip");
        out[m++].value = n > 0 ? c / n : 0;
    }
    for (int l = 1; l < L && m < max; l++) {
        snprintf(out[m].name, sizeof out[m].name, "clip.%d", l);
        out[m++].value = st->coded[l] > 0 ? st->clipped[l] / st->coded[l] : 0;
    }
    memset(st->clipped, 0, sizeof st->clipped);
    memset(st->coded, 0, sizeof st->coded);
    return m;
}

const struct mt_rule rule_approx8 = {
    .name = "approx8",
    .summary = "approximate activations: an 8-bit copy of each hidden layer, exact ReLU mask",
    .defaults = rule_optim_defaults,
    .plan = approx8_plan,
    .check = approx_check,
    .init = approx8_init,
    .step = approx_train_step,
    .fini = approx_fini,
    .epoch_metrics = approx_epoch_metrics,
    .flags = MT_RULE_NORMS | MT_RULE_LAYERS,
    .keep = &approx8_keep,
};

const struct mt_rule rule_approx4 = {
    .name = "approx4",
    .summary = "approximate activations: a 4-bit copy of each hidden layer, exact ReLU mask",
    .defaults = rule_optim_defaults,
    .plan = approx4_plan,
    .check = approx_check,
    .init = approx4_init,
    .step = approx_train_step,
    .fini = approx_fini,
    .epoch_metrics = approx_epoch_metrics,
    .flags = MT_RULE_NORMS | MT_RULE_LAYERS,
    .keep = &approx4_keep,
};
