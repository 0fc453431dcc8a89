/* bpbin.c: backpropagation with binary weights and activations, the
 * BP+BW+BA row of the TinyFoA table (spec 7.7), run as rule `bp` with
 * `binary: true` (bp.c hands over to the functions here).
 *
 * Every layer's weights are binarised, W^b_l = alpha_l sign(W_l); hidden
 * activations are binarised, H_l = ReLU(beta_l sign(Z_l)); the logits stay
 * real. The error goes down through every layer with the straight-through
 * estimator of spec 7.3, scales constant:
 *   Delta_L = E;  G_l = (Delta_l^T H_{l-1}) * [|W_l| < 1];  g_l = 1^T Delta_l;
 *   Delta_{l-1} = (Delta_l W^b_l) * [0 < Z_{l-1} < 1]
 * ([Z^b > 0] of the ReLU times the hard-tanh gate [|Z| < 1]). One optimizer
 * pass over the full gradient block (BP's), then every parameter is clamped
 * to [-1, 1] and the packed signs and alphas are brought up to date.
 *
 * Kept between the forward and the update, packed (binary.h layout,
 * feature-major): per hidden layer the sign bits [Z_l > 0] (H_l = beta_l
 * times them, for the weight gradient of layer l + 1) and the STE mask bits
 * [0 < Z_l < 1]; plus the logits (E). 2 B sum_{l<L} n_l / 8 + 4 B C bytes.
 * H_0 is the data batch. The betas are scalars in the rule's bookkeeping.
 *
 * Persistent: the packed signs of every W_l (MT_MEM_PARAMS, P_w / 8 bytes:
 * the forward reads only these and alpha_l), the full gradient block
 * (MT_MEM_GRADS), and the unpack panel of the binary products
 * (MT_MEM_WORKSPACE, held for the job because evaluation needs it too and
 * the infer hook cannot fail). The latent FP32 weights are the model's
 * parameters. */
#include <stdlib.h>
#include <string.h>

#include "binary.h"
#include "common.h"
#include "../blas.h"
#include "../pack.h"
#include "../spec.h"

#define F4 sizeof(float)

struct bpbin {
    uint8_t *wbits[MT_MAX_LAYERS + 1]; /* packed signs of W_l (n_l, n_{l-1}), l = 1..L */
    float alpha[MT_MAX_LAYERS + 1];    /* mean|W_l| */
    float beta[MT_MAX_LAYERS + 1];     /* mean|Z_l| of the last training forward, l < L */
    float *panel;                      /* binary_panel_floats of the widest product */
    long synced;                       /* t->step at which wbits and alpha last matched W */
};

static size_t wbits_bytes(const struct mt_model_desc *d)
{
    size_t n = 0;
    for (int l = 1; l <= d->n_layers; l++)
        n += pack_bytes((size_t)d->width[l] * d->width[l - 1], 1);
    return n;
}

static size_t panel_floats(const struct mt_model_desc *d)
{
    size_t mx = 0;
    for (int l = 1; l <= d->n_layers; l++) {
        size_t f = binary_panel_floats(d->width[l], d->width[l - 1]);
        mx = f > mx ? f : mx;
    }
    return mx;
}

static size_t kept_bytes(const struct mt_model_desc *d, int B)
{
    size_t n = 0;
    for (int l = 1; l < d->n_layers; l++)
        n += 2 * pack_bytes((size_t)B * d->width[l], 1);
    return n + (size_t)B * d->width[d->n_layers] * F4;
}

/* Forward: the rolling feature-major activations (one buffer without
 * hidden layers). Backward: E^T plus BP's chain buffers. */
static size_t fwd_ws_bytes(const struct mt_model_desc *d, int B)
{
    return (d->n_layers == 1 ? 1 : 2) * (size_t)B * model_max_width(d) * F4;
}

static size_t bwd_ws_bytes(const struct mt_model_desc *d, int B)
{
    return (size_t)B * d->width[d->n_layers] * F4 + rule_chain_ws_bytes(d, B);
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

void bpbin_defaults(struct mt_spec *s)
{
    rule_optim_defaults(s);
    if (s->rule.binary < 0)
        s->rule.binary = 0;
}

void bpbin_plan(const struct mt_spec *s, struct mt_mem_plan *p)
{
    const struct mt_model_desc *d = &s->model;
    int B = s->batch;
    memset(p, 0, sizeof *p);
    rule_plan_full_grads(s, p);
    size_t wb = wbits_bytes(d), panel = panel_floats(d) * F4;
    size_t kept = kept_bytes(d, B), fwd = fwd_ws_bytes(d, B), bwd = bwd_ws_bytes(d, B);
    p->cat[MT_MEM_PARAMS] = wb;
    p->cat[MT_MEM_ACTS] = kept;
    /* The panel stays; beside it the forward's, the backward's or the
     * evaluation's rolling buffers (the trainer's, at idle). */
    p->cat[MT_MEM_WORKSPACE] = panel + max3(fwd, bwd, rule_rolling_bytes(d, B));
    rule_plan_phases(p, p->cat[MT_MEM_GRADS] + wb + panel, kept + fwd, kept + bwd, 0);
}

/* Packed signs and alphas from the latent weights. */
static void sync_binary(struct mt_trainer *t, struct bpbin *pb, long step)
{
    const struct mt_model_desc *d = &t->net.d;
    for (int l = 1; l <= d->n_layers; l++) {
        int in = d->width[l - 1], out = d->width[l];
        binary_pack_block(pb->wbits[l], t->net.W[l], in, 0, out, 0, in);
        pb->alpha[l] = (float)(binary_abs_sum(t->net.W[l], in, 0, out, 0, in) /
                               ((double)out * in));
    }
    pb->synced = step;
}

int bpbin_check(const struct mt_spec *s, struct mt_err *err)
{
    const struct mt_model_desc *d = &s->model;
    if (s->rule.binary != 1)
        return 0;
    if (model_is_graph(d))
        return mt_err_set(err, MT_E_INVAL,
                          "rule bp with binary: true (BP+BW+BA, spec 7.3) is defined for fully "
                          "connected layers: binary weights and activations of each dense "
                          "layer; it does not train conv or layer-list models (model.layers): "
                          "use an MLP (model.hidden), or binary: false");
    for (int l = 1; l < d->n_layers; l++) {
        if (d->act[l] != MT_ACT_RELU)
            return mt_err_set(err, MT_E_INVAL,
                              "rule bp with binary: true: hidden layer %d has activation %s; "
                              "binary activations are ReLU(beta sign Z) (spec 7.3), so use relu",
                              l, act_name(d->act[l]));
        if (d->norm[l] != MT_NK_NONE)
            return mt_err_set(err, MT_E_INVAL,
                              "rule bp with binary: true: hidden layer %d has a %s layer; "
                              "binary BP takes no norm layers", l, norm_kind_name(d->norm[l]));
    }
    return 0;
}

int bpbin_init(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    struct bpbin *pb = calloc(1, sizeof *pb);
    if (!pb)
        return mt_err_set(err, MT_E_NOMEM, "out of memory for the binary BP state");
    t->rs.priv = pb;
    pb->synced = -1;
    int rc = rule_alloc_full_grads(t, err);
    if (rc)
        return rc;
    for (int l = 1; l <= d->n_layers; l++) {
        size_t bytes = pack_bytes((size_t)d->width[l] * d->width[l - 1], 1);
        if (!(pb->wbits[l] = arena_alloc(t->arena, MT_MEM_PARAMS, bytes, err)))
            return arena_error(t->arena);
    }
    if (!(pb->panel = arena_alloc(t->arena, MT_MEM_WORKSPACE, panel_floats(d) * F4, err)))
        return arena_error(t->arena);
    return 0;
}

void bpbin_fini(struct mt_trainer *t)
{
    free(t->rs.priv);
    t->rs.priv = NULL;
}

/* Forward of the binarised net on x (B, n_0) through the rolling
 * feature-major buffers; hidden layers' bits go to hbits/ste when given.
 * Returns the output layer's Zt (C, B), in buf[(L - 1) & 1]. */
static float *forward(struct mt_trainer *t, struct bpbin *pb, const float *x, int B,
                      float *const buf[2], uint8_t *const *hbits, uint8_t *const *ste)
{
    const struct mt_model_desc *d = &t->net.d;
    const float *in = x;
    float *Zt = NULL;
    for (int l = 1; l <= d->n_layers; l++) {
        Zt = buf[(l - 1) & 1];
        binary_forward_t(Zt, pb->wbits[l], pb->alpha[l], in, l == 1, B, d->width[l - 1],
                         d->width[l], pb->panel);
        binary_add_bias_t(Zt, t->net.b[l], d->width[l], B);
        if (l < d->n_layers)
            pb->beta[l] = binary_activate(Zt, (size_t)d->width[l] * B, hbits ? hbits[l] : NULL,
                                          ste ? ste[l] : NULL, NULL);
        in = Zt;
    }
    return Zt;
}

const float *bpbin_infer(struct mt_trainer *t, float *x, int B, float *buf0, float *buf1)
{
    if (t->spec.rule.binary != 1)
        return NULL; /* the plain forward */
    struct bpbin *pb = t->rs.priv;
    const struct mt_model_desc *d = &t->net.d;
    float *buf[2] = {buf0, buf1};
    if (pb->synced != t->step)
        sync_binary(t, pb, t->step);
    /* beta comes from the evaluated batch itself (spec 7.8: a batch of
     * another size, or the last partial one, gets its own). */
    float *Zt = forward(t, pb, x, B, buf, NULL, NULL);
    float *logits = buf[d->n_layers & 1];
    binary_transpose(logits, Zt, d->width[d->n_layers], B);
    return logits;
}

/* Gradients of every layer from E (B, C), feature-major, into t->rs.grads. */
static int backward(struct mt_trainer *t, struct bpbin *pb, const float *x, int B,
                    const float *E, uint8_t *const *hbits, uint8_t *const *ste,
                    struct mt_err *err)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers, C = d->width[L];
    float *Et, *buf[2] = {NULL, NULL};
    size_t bytes = (size_t)B * model_hidden_max(d) * F4;
    if (!(Et = arena_push(t->arena, MT_MEM_WORKSPACE, (size_t)B * C * F4, err)))
        return arena_error(t->arena);
    for (int i = 0; i < 2 && i < L - 1; i++)
        if (!(buf[i] = arena_push(t->arena, MT_MEM_WORKSPACE, bytes, err)))
            return arena_error(t->arena);
    binary_transpose(Et, E, B, C);

    const float *dZt = Et; /* Delta_l^T (n_l, B) */
    for (int l = L, which = 0; l >= 1; l--) {
        int in = d->width[l - 1], out = d->width[l];
        float *gw = rule_grad_w(t, l);
        if (l == 1) {
            blas_gemm(0, 0, out, in, B, 1.0f, dZt, x, 0.0f, gw);
        } else {
            /* H_{l-1}^T (in, B) = beta_{l-1} [Z_{l-1} > 0], then G = Delta^T H. */
            binary_unpack(buf[which], hbits[l - 1], 0, (size_t)in * B, pb->beta[l - 1], 0.0f);
            blas_gemm(0, 1, out, in, B, 1.0f, dZt, buf[which], 0.0f, gw);
        }
        binary_weight_ste(gw, t->net.W[l], in, out, in);
        binary_row_sums(rule_grad_b(t, l), dZt, out, B);
        if (l == 1)
            break; /* no error for the data (spec 1(f)) */
        float *next = buf[which]; /* H_{l-1} is dead once G_l exists */
        which ^= 1;
        binary_backward_t(next, pb->wbits[l], pb->alpha[l], dZt, B, in, out, pb->panel);
        binary_ste_apply(next, ste[l - 1], 0, (size_t)in * B);
        dZt = next;
    }
    return 0;
}

int bpbin_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
               struct mt_step_result *r, struct mt_err *err)
{
    struct bpbin *pb = t->rs.priv;
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers, C = d->width[L];
    uint8_t *hbits[MT_MAX_LAYERS + 1] = {0}, *ste[MT_MAX_LAYERS + 1] = {0};
    float *logits, *buf[2] = {NULL, NULL};
    size_t mark = arena_mark(t->arena), ws_mark;
    int rc = 0;

    if (pb->synced != t->step)
        sync_binary(t, pb, t->step);
    arena_set_phase(t->arena, MT_PHASE_FORWARD);
    for (int l = 1; l < L; l++) {
        size_t bytes = pack_bytes((size_t)B * d->width[l], 1);
        if (!(hbits[l] = arena_push(t->arena, MT_MEM_ACTS, bytes, err)) ||
            !(ste[l] = arena_push(t->arena, MT_MEM_ACTS, bytes, err))) {
            rc = arena_error(t->arena);
            goto out;
        }
    }
    if (!(logits = arena_push(t->arena, MT_MEM_ACTS, (size_t)B * C * F4, err))) {
        rc = arena_error(t->arena);
        goto out;
    }
    ws_mark = arena_mark(t->arena);
    for (int i = 0; i < (L == 1 ? 1 : 2); i++)
        if (!(buf[i] = arena_push(t->arena, MT_MEM_WORKSPACE,
                                  (size_t)B * model_max_width(d) * F4, err))) {
            rc = arena_error(t->arena);
            goto out;
        }
    binary_transpose(logits, forward(t, pb, x, B, buf, hbits, ste), C, B);
    arena_pop(t->arena, ws_mark);
    if ((rc = rule_output_error(t, logits, y, B, r, err)))
        goto out;

    arena_set_phase(t->arena, MT_PHASE_GRADIENT);
    if ((rc = backward(t, pb, x, B, logits, hbits, ste, err)))
        goto out;
    arena_pop(t->arena, mark); /* bits and E are dead once gradients exist */
    rule_update_all(t);
    binary_clamp(t->net.params, model_param_count(d));
    sync_binary(t, pb, t->step + 1); /* the trainer counts this step after we return */
out:
    arena_pop(t->arena, mark);
    return rc;
}
