/* approx_layers.c: approximate activations over a layer list (spec 6 and
 * 0.2a, as the authors' blpa code does it; approx.c is the MLP form and
 * owns the quantiser, the rule and its plan).
 *
 * The forward is exact (graph.c's forward slots are the shared FP32
 * buffers); what the backward reads is kept as graph_keep codes:
 *  - a site is a pre-activation y (B, C, h, w) that only a ReLU reads,
 *    made by a layer whose backward does not read its output, and whose
 *    ReLU output a does not feed the last weight layer (the last layer's
 *    input stays FP32, as the first layer's, the batch, does);
 *  - y is coded: K bits per value, per-channel window (approx.h):
 *     . after a batch-norm (the paper's): u = y / |gamma| with the fixed
 *       step 6/N and zero where beta/|gamma| puts it; the code holds
 *       s_c (C bytes) and the packed values; gamma and beta are the
 *       parameters, unchanged until the update; 1/sigma and the mean stay
 *       exact in the batch-norm's aux, which BP keeps as well;
 *     . otherwise (no batch-norm, e.g. LeNet: conv -> ReLU): the MLP
 *       form's window, mean +- 3 sigma of y over the batch and the
 *       positions per channel; the code holds step_c (4 C), s_c (C) and
 *       the packed values;
 *  - the tensors the backwards read are decoded from y's one code and
 *    keep 0 bytes: the ReLU output a = ReLU(y_hat) for the ReLU (its mask
 *    [q >= s_c] is exact) and for every layer reading a (the next conv's
 *    weight gradient); the batch-norm input z = xhat' / rstd + mean with
 *    xhat' = (y_hat - beta) / gamma, when only that batch-norm's backward
 *    reads z, so its backward sees xhat from the code and 1/sigma exactly;
 *  - everything else is BP's: pooling layers (max pooling keeps its
 *    argmax bytes), the last layer's input, a batch-norm not followed by
 *    a ReLU, the logits.
 * The batch-norm backward is the layer's own (layers/batchnorm.c) on the
 * decoded z: dx = rstd gamma (g - mean(g) - xhat' mean(g xhat')). It
 * differs from the MLP form's (approx_bn_backward, the paper's) only by
 * rstd gamma mean(g) mean(xhat') xhat', which is 0 with exact xhat and
 * second order in the quantisation error otherwise. */
#include "approx.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "../graph.h"
#include "../pack.h"
#include "../spec.h"

#define F4 sizeof(float)

/* How the rule keeps tensor t. */
enum ax_role {
    AX_FP32,         /* as BP keeps it (or not at all) */
    AX_CODE,         /* a site's pre-activation: the code */
    AX_RELU_OUT,     /* ReLU(y_hat), from the site's code */
    AX_BN_IN,        /* the site's batch-norm input, from the code */
};

struct ax_place {
    enum ax_role role;
    int y;           /* the site's coded tensor */
    int bn;          /* its producer when a batch-norm, else -1 */
};

static unsigned flags_of(const struct mt_model_desc *d, int node)
{
    return layer_flags(&d->node[node]);
}

static int reads(const struct mt_layer *L, int t)
{
    return L->src + 1 == t || (L->s.kind == MT_LK_ADD && L->src2 + 1 == t);
}

/* The node reading tensor t when exactly one does, else -1. */
static int sole_reader(const struct mt_model_desc *d, int t)
{
    int r = -1;
    for (int i = 0; i < d->n_nodes; i++)
        if (reads(&d->node[i], t)) {
            if (r >= 0)
                return -1;
            r = i;
        }
    return r;
}

/* Whether y (0 < y < n_nodes) is a site (above); *relu gets its ReLU node. */
static int is_site(const struct mt_model_desc *d, int y, int *relu)
{
    if (y < 1 || y >= d->n_nodes || (flags_of(d, y - 1) & MT_LAYER_NEEDS_OUT))
        return 0;
    int r = sole_reader(d, y);
    if (r < 0 || d->node[r].s.kind != MT_LK_ACT || d->node[r].s.act != MT_ACT_RELU ||
        r + 1 >= d->n_nodes)
        return 0;
    int last = graph_weight_node(d, d->n_layers);
    if (reads(&d->node[last], r + 1))
        return 0;
    *relu = r;
    return 1;
}

/* Whether batch-norm node `bn` may take its input from the code: no
 * backward but its own reads that input. */
static int bn_input_decoded(const struct mt_model_desc *d, int bn)
{
    int z = d->node[bn].src + 1;
    if (z < 1 || (flags_of(d, z - 1) & MT_LAYER_NEEDS_OUT))
        return 0;
    for (int i = 0; i < d->n_nodes; i++)
        if (i != bn && reads(&d->node[i], z) && (flags_of(d, i) & MT_LAYER_NEEDS_IN))
            return 0;
    return 1;
}

static struct ax_place place_of(const struct mt_model_desc *d, int t)
{
    struct ax_place p = {AX_FP32, 0, -1};
    int relu;
    if (t < 1 || t >= d->n_nodes)
        return p;
    if (is_site(d, t, &relu)) {
        p.role = AX_CODE;
        p.y = t;
    } else if (d->node[t - 1].s.kind == MT_LK_ACT && is_site(d, d->node[t - 1].src + 1, &relu)) {
        p.role = AX_RELU_OUT;
        p.y = d->node[t - 1].src + 1;
    } else {
        for (int i = 0; i < d->n_nodes; i++)
            if (d->node[i].s.kind == MT_LK_BATCHNORM && d->node[i].src + 1 == t &&
                is_site(d, i + 1, &relu) && bn_input_decoded(d, i)) {
                p.role = AX_BN_IN;
                p.y = i + 1;
            }
    }
    if (p.role != AX_FP32 && d->node[p.y - 1].s.kind == MT_LK_BATCHNORM)
        p.bn = p.y - 1;
    return p;
}

/* ---- the code of a site: [step_c (4 C), no batch-norm] [s_c (C)] [packed] */

static size_t code_head(const struct mt_model_desc *d, int y, int C)
{
    return (d->node[y - 1].s.kind == MT_LK_BATCHNORM ? 0 : (size_t)C * F4) + (size_t)C;
}

size_t approx_layers_code_bytes(const struct mt_model_desc *d, int y, int B, int bits)
{
    struct mt_shape sh = graph_tensor_shape(d, y);
    return code_head(d, y, sh.c) + pack_bytes((size_t)B * shape_count(sh), bits);
}

/* The window of site y from its code and the parameters; *packed its values. */
static void site_win(const struct mt_model_desc *d, const float *params, int y, int bits,
                     void *code, struct approx_win *w, uint8_t **packed)
{
    const struct mt_layer *P = &d->node[y - 1];
    struct mt_shape sh = graph_tensor_shape(d, y);
    uint8_t *c = code;
    memset(w, 0, sizeof *w);
    w->n = sh.c;
    w->hw = (size_t)sh.h * sh.w;
    w->bits = bits;
    if (P->s.kind == MT_LK_BATCHNORM) {
        w->gamma = params + P->param_off;
    } else {
        w->step = (float *)code;
        c += (size_t)sh.c * F4;
    }
    w->zero = c;
    *packed = c + sh.c;
}

static int coded(const struct mt_model_desc *d, int t, int B, int bits, size_t *bytes)
{
    struct ax_place p = place_of(d, t);
    if (p.role == AX_CODE) { /* read by no backward: only the ReLU reads y */
        *bytes = approx_layers_code_bytes(d, t, B, bits);
        return GRAPH_CODE_SOURCE;
    }
    *bytes = 0;
    return p.role != AX_FP32;
}

static int coded8(const void *ctx, const struct mt_model_desc *d, int t, int B, size_t *bytes)
{
    (void)ctx;
    return coded(d, t, B, 8, bytes);
}

static int coded4(const void *ctx, const struct mt_model_desc *d, int t, int B, size_t *bytes)
{
    (void)ctx;
    return coded(d, t, B, 4, bytes);
}

size_t approx_layers_encode(const struct mt_model_desc *d, const float *params, int y, int bits,
                            const float *x, int B, void *code)
{
    struct approx_win w;
    uint8_t *packed;
    site_win(d, params, y, bits, code, &w, &packed);
    if (w.gamma)
        approx_window_bn((uint8_t *)w.zero, w.gamma, w.gamma + w.n, w.n, bits);
    else
        approx_window_stats_map((float *)w.step, (uint8_t *)w.zero, x, B, w.n, w.hw, bits);
    return approx_encode(packed, x, &w, B);
}

void approx_layers_decode(const struct mt_model_desc *d, const float *params, int t, int bits,
                          const struct graph_step *s, int B, float *out)
{
    struct ax_place p = place_of(d, t);
    struct approx_win w;
    uint8_t *packed;
    site_win(d, params, p.y, bits, s->code[p.y], &w, &packed);
    if (p.role == AX_RELU_OUT) {
        approx_decode_relu(out, packed, &w, B);
        return;
    }
    /* AX_BN_IN: z = xhat' / rstd + mean, xhat' = (y_hat - beta) / gamma,
     * gamma's magnitude floored as in the window; aux = (mean, rstd). */
    approx_decode(out, packed, &w, B);
    const float *beta = w.gamma + w.n, *mean = s->aux[p.bn], *rstd = mean + w.n;
    size_t i = 0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < w.n; c++) {
            double g = w.gamma[c];
            double ge = g < 0 ? -fmax(-g, APPROX_MIN_GAMMA) : fmax(g, APPROX_MIN_GAMMA);
            for (size_t j = 0; j < w.hw; j++, i++)
                out[i] = (float)((out[i] - beta[c]) / ge / rstd[c] + mean[c]);
        }
}

int approx_layers_site(const struct mt_model_desc *d, int t)
{
    return place_of(d, t).role == AX_CODE;
}

int approx_layers_n_sites(const struct mt_model_desc *d)
{
    int n = 0;
    for (int t = 1; t < d->n_nodes; t++)
        n += approx_layers_site(d, t);
    return n;
}

/* ---- the rule's keep ----------------------------------------------------- */

static void keep_encode(void *ud, int t, const float *x, int B, void *code,
                        const struct graph_step *s)
{
    (void)s;
    struct mt_trainer *tr = ud;
    struct approx_state *st = tr->rs.priv;
    const struct mt_model_desc *d = &tr->net.d;
    if (place_of(d, t).role != AX_CODE)
        return; /* decoded from a site's code */
    int k = 0;
    for (int u = 1; u <= t; u++)
        k += approx_layers_site(d, u);
    if (k > MT_MAX_NODES)
        k = MT_MAX_NODES;
    st->clipped[k] += (double)approx_layers_encode(d, tr->net.params, t, st->bits, x, B, code);
    st->coded[k] += (double)B * graph_tensor_count(d, t);
}

static void keep_decode(void *ud, int t, int reader, int B, float *out,
                        const struct graph_step *s)
{
    (void)reader;
    struct mt_trainer *tr = ud;
    const struct approx_state *st = tr->rs.priv;
    approx_layers_decode(&tr->net.d, tr->net.params, t, st->bits, s, B, out);
}

const struct graph_keep approx8_keep = {
    .coded = coded8, .encode = keep_encode, .decode = keep_decode,
};

const struct graph_keep approx4_keep = {
    .coded = coded4, .encode = keep_encode, .decode = keep_decode,
};
