/* test-tinyfoa.c: binary weights and activations (spec 7.3), TinyFoA
 * (spec 7) and BP with binary weights and activations (`bp`, binary: true):
 * the packed-weight products against naive float loops, the STE gradients
 * of a block and of the whole BP chain against naive references, only the
 * active block moving in a vertical step, the stage schedule, the fixed
 * local classifiers, and plan == measured with binary copies counted at
 * their packed size. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"
#include "rng.h"
#include "rules/binary.h"
#include "rules/common.h"
#include "testutil.h"

/* ---- naive references -------------------------------------------------- */

static void fill(float *v, size_t n, float lo, float hi, uint64_t seed)
{
    struct mt_rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        v[i] = rng_uniform_range(&r, lo, hi);
}

static double mean_abs(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)v[i]);
    return s / (double)n;
}

/* Z (B, OUT) = H (B, IN) (alpha sign W)^T + b, W^b built in full, double sums. */
static void naive_binary_linear(double *Z, const double *H, const float *W, const float *b,
                                int B, int IN, int OUT)
{
    double alpha = mean_abs(W, (size_t)OUT * IN);
    for (int s = 0; s < B; s++)
        for (int r = 0; r < OUT; r++) {
            double acc = b ? b[r] : 0.0;
            for (int c = 0; c < IN; c++)
                acc += H[(size_t)s * IN + c] * (W[(size_t)r * IN + c] > 0 ? alpha : -alpha);
            Z[(size_t)s * OUT + r] = acc;
        }
}

/* H = beta [Z > 0], beta = mean|Z|, in place over n values. */
static void naive_binary_act(double *H, const double *Z, size_t n)
{
    double beta = 0;
    for (size_t k = 0; k < n; k++)
        beta += fabs(Z[k]);
    beta /= (double)n;
    for (size_t k = 0; k < n; k++)
        H[k] = Z[k] > 0 ? beta : 0.0;
}

/* E (B, C) = (softmax(A) - Y) / B, returns the mean loss. */
static double naive_error(double *E, const double *A, const uint8_t *y, int B, int C)
{
    double loss = 0;
    for (int s = 0; s < B; s++) {
        const double *a = A + (size_t)s * C;
        double mx = a[0], sum = 0;
        for (int c = 1; c < C; c++)
            mx = a[c] > mx ? a[c] : mx;
        for (int c = 0; c < C; c++)
            sum += exp(a[c] - mx);
        loss += mx + log(sum) - a[y[s]];
        for (int c = 0; c < C; c++)
            E[(size_t)s * C + c] = (exp(a[c] - mx) / sum - (c == y[s])) / B;
    }
    return loss / B;
}

static void assert_close(const float *got, const double *want, size_t n, double rel,
                         const char *what)
{
    double scale = 1e-12;
    for (size_t k = 0; k < n; k++)
        scale = fabs(want[k]) > scale ? fabs(want[k]) : scale;
    for (size_t k = 0; k < n; k++)
        if (fabs((double)got[k] - want[k]) > rel * scale + 1e-9)
            fail_msg("%s[%zu]: got %.9g, want %.9g (scale %g)", what, k, (double)got[k], want[k],
                     scale);
}

static double *widen(const float *v, size_t n)
{
    double *o = malloc(n * sizeof *o);
    for (size_t k = 0; k < n; k++)
        o[k] = v[k];
    return o;
}

/* Weights mostly small (so that many |Z| < 1 and the STE passes
 * gradients) with every 17th entry beyond 1 (so the [|W| < 1] mask acts). */
static void fill_weights(float *W, size_t n, uint64_t seed)
{
    fill(W, n, -0.3f, 0.3f, seed);
    for (size_t k = 0; k < n; k += 17)
        W[k] = k % 2 ? -1.05f : 1.05f;
}

/* ---- the packed pieces ------------------------------------------------- */

static void test_pack_block_and_unpack_at_unaligned_offsets(void **state)
{
    (void)state;
    enum { R = 9, C = 13 };
    float W[R * C], V[R * C];
    uint8_t whole[32], part[32];
    fill(W, R * C, -1, 1, 11);
    pack_sign(whole, W, R * C);
    /* Pack V, then overwrite block rows 2..7, columns 3..12 with W's signs. */
    for (int k = 0; k < R * C; k++)
        V[k] = -W[k];
    pack_sign(part, V, R * C);
    binary_pack_block(part, W, C, 2, 7, 3, 12);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            size_t k = (size_t)r * C + c;
            int in = r >= 2 && r < 7 && c >= 3 && c < 12;
            assert_int_equal(pack_get(part, k, 1), in ? (W[k] > 0) : (V[k] > 0));
        }
    /* Whole-matrix pack through the block path equals pack_sign, over
     * whatever bits were there. */
    memset(part, 0xa5, sizeof part);
    binary_pack_block(part, W, C, 0, R, 0, C);
    for (size_t k = 0; k < R * C; k++)
        assert_int_equal(pack_get(part, k, 1), pack_get(whole, k, 1));
    float out[R * C];
    for (size_t first = 0; first < 20; first++) {
        binary_unpack(out, whole, first, R * C - first, 2.0f, -3.0f);
        for (size_t k = 0; k + first < R * C; k++)
            assert_true(out[k] == (W[first + k] > 0 ? 2.0f : -3.0f));
    }
}

static void test_binary_activate_and_masks(void **state)
{
    (void)state;
    enum { N = 203 };
    float Z[N], H[N];
    double Zd[N], Hd[N];
    uint8_t hb[32], ste[32];
    fill(Z, N, -2.5f, 2.5f, 5);
    Z[7] = 0.0f;
    Z[8] = 1.0f;
    memcpy(H, Z, sizeof Z);
    for (int k = 0; k < N; k++)
        Zd[k] = Z[k];
    long live;
    float beta = binary_activate(H, N, hb, ste, &live);
    naive_binary_act(Hd, Zd, N);
    long want_live = 0;
    for (int k = 0; k < N; k++) {
        assert_true(fabs(H[k] - Hd[k]) <= 1e-6 * fabs(Hd[k]) + 1e-12);
        assert_int_equal(pack_get(hb, k, 1), Z[k] > 0);
        assert_int_equal(pack_get(ste, k, 1), Z[k] > 0 && Z[k] < 1);
        want_live += fabsf(Z[k]) < 1;
    }
    assert_int_equal(live, want_live);
    assert_true(fabs(beta - mean_abs(Z, N)) < 1e-6);
    /* binary_ste_apply zeroes exactly where the mask is 0, from any offset. */
    float d[N];
    for (size_t first = 0; first < 11; first++) {
        for (int k = 0; k < N; k++)
            d[k] = 1.0f + (float)k;
        binary_ste_apply(d, ste, first, N - first);
        for (size_t k = 0; k + first < N; k++)
            assert_true(d[k] == (pack_get(ste, first + k, 1) ? 1.0f + (float)k : 0.0f));
    }
}

/* binary_forward_t and binary_backward_t (panel by panel) against W^b in full. */
static void test_packed_gemm_matches_naive_float(void **state)
{
    (void)state;
    enum { B = 7, IN = 37, OUT = 2 * BINARY_PANEL_ROWS + 5 };
    float *W = malloc(sizeof(float) * OUT * IN), *X = malloc(sizeof(float) * B * IN);
    float *Xt = malloc(sizeof(float) * IN * B), *Zt = malloc(sizeof(float) * OUT * B);
    float *Zt2 = malloc(sizeof(float) * OUT * B), *dH = malloc(sizeof(float) * IN * B);
    float *panel = malloc(sizeof(float) * binary_panel_floats(OUT, IN));
    uint8_t *bits = malloc(pack_bytes(OUT * IN, 1));
    double *Z = malloc(sizeof(double) * B * OUT), *Xd = malloc(sizeof(double) * B * IN);
    double *want = malloc(sizeof(double) * OUT * B);
    fill(W, OUT * IN, -0.3f, 0.3f, 1);
    fill(X, B * IN, -1, 1, 2);
    binary_transpose(Xt, X, B, IN);
    pack_sign(bits, W, OUT * IN);
    float alpha = (float)mean_abs(W, OUT * IN);
    assert_true(binary_panel_floats(OUT, IN) == (size_t)BINARY_PANEL_ROWS * IN);

    for (int k = 0; k < B * IN; k++)
        Xd[k] = X[k];
    naive_binary_linear(Z, Xd, W, NULL, B, IN, OUT);
    for (int s = 0; s < B; s++)
        for (int r = 0; r < OUT; r++)
            want[(size_t)r * B + s] = Z[(size_t)s * OUT + r];
    binary_forward_t(Zt, bits, alpha, X, 1, B, IN, OUT, panel);   /* data batch (B, IN) */
    assert_close(Zt, want, OUT * B, 1e-5, "Zt from batch-major input");
    binary_forward_t(Zt2, bits, alpha, Xt, 0, B, IN, OUT, panel); /* feature-major (IN, B) */
    assert_close(Zt2, want, OUT * B, 1e-5, "Zt from feature-major input");

    /* dHt (IN, B) = W^b^T dZt with dZt = Zt as some error */
    double *wdh = malloc(sizeof(double) * IN * B);
    for (int c = 0; c < IN; c++)
        for (int s = 0; s < B; s++) {
            double acc = 0;
            for (int r = 0; r < OUT; r++)
                acc += (W[(size_t)r * IN + c] > 0 ? alpha : -alpha) * (double)Zt[(size_t)r * B + s];
            wdh[(size_t)c * B + s] = acc;
        }
    binary_backward_t(dH, bits, alpha, Zt, B, IN, OUT, panel);
    assert_close(dH, wdh, IN * B, 1e-5, "dHt");
    free(wdh);
    free(W), free(X), free(Xt), free(Zt), free(Zt2), free(dH), free(panel), free(bits);
    free(Z), free(Xd), free(want);
}

/* ---- TinyFoA ----------------------------------------------------------- */

/* 32-20-14-4 by default: groups of 20 and 14 do not divide by 3. */
static void tiny_spec(struct mt_spec *s, int groups, int batch, long ntrain)
{
    test_spec(s, "tinyfoa", 2, 20, MT_ACT_RELU, batch, ntrain);
    s->model.width[2] = 14;
    s->rule.groups = groups;
    s->epochs = 2;
}

/* The block step q of a stage trains (the rule's documented schedule). */
static void block_of(int q, int M, int *i, int *j)
{
    int k = q % (M * M);
    *j = k % M;
    *i = (*j + k / M) % M;
}

static int glo(int n, int M, int g)
{
    return (int)((long)g * n / M);
}

/* Put trainer t at step q of the epoch `epoch` (0-based). */
static void place(struct mt_trainer *t, int epoch, long q)
{
    t->epoch = epoch;
    t->epoch_step = q;
    t->step = (long)epoch * t->steps_per_epoch + q;
}

/* Naive stage-l step: loss, and the gradient of block (i, j) of layer l:
 * G (cj, ci) then g (cj), as the rule stores them. */
static double naive_tinyfoa_block(const struct mt_trainer *t, int l, int i, int j,
                                  const float *x, const uint8_t *y, int B, double *Gout)
{
    const struct mt_model_desc *d = &t->net.d;
    int M = t->spec.rule.groups, C = d->width[d->n_layers];
    double *in = widen(x, (size_t)B * d->width[0]), *prev = NULL, *Z = NULL;
    for (int k = 1; k <= l; k++) {
        free(Z);
        Z = malloc(sizeof(double) * B * d->width[k]);
        naive_binary_linear(Z, in, t->net.W[k], t->net.b[k], B, d->width[k - 1], d->width[k]);
        free(prev);
        prev = in;
        in = malloc(sizeof(double) * B * d->width[k]);
        naive_binary_act(in, Z, (size_t)B * d->width[k]);
    }
    /* in = H_l, prev = H_{l-1}, Z = Z_l */
    int n = d->width[l], nin = d->width[l - 1];
    const float *D = t->rs.fb[l];
    double *A = calloc((size_t)B * C, sizeof(double)), *E = malloc(sizeof(double) * B * C);
    for (int s = 0; s < B; s++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < n; f++)
                A[(size_t)s * C + c] += in[(size_t)s * n + f] * D[(size_t)c * n + f];
    double loss = naive_error(E, A, y, B, C);
    double *dZ = malloc(sizeof(double) * B * n);
    for (int s = 0; s < B; s++)
        for (int f = 0; f < n; f++) {
            double dh = 0;
            for (int c = 0; c < C; c++)
                dh += E[(size_t)s * C + c] * D[(size_t)c * n + f];
            double z = Z[(size_t)s * n + f];
            dZ[(size_t)s * n + f] = z > 0 && z < 1 ? dh : 0.0;
        }
    int j0 = glo(n, M, j), j1 = glo(n, M, j + 1), i0 = glo(nin, M, i), i1 = glo(nin, M, i + 1);
    int cj = j1 - j0, ci = i1 - i0;
    for (int r = 0; r < cj; r++) {
        for (int c = 0; c < ci; c++) {
            double acc = 0;
            for (int s = 0; s < B; s++)
                acc += dZ[(size_t)s * n + j0 + r] * prev[(size_t)s * nin + i0 + c];
            float w = t->net.W[l][(size_t)(j0 + r) * nin + i0 + c];
            Gout[(size_t)r * ci + c] = fabsf(w) < 1 ? acc : 0.0;
        }
        double gb = 0;
        for (int s = 0; s < B; s++)
            gb += dZ[(size_t)s * n + j0 + r];
        Gout[(size_t)cj * ci + r] = gb;
    }
    free(in), free(prev), free(Z), free(A), free(E), free(dZ);
    return loss;
}

static void check_block_gradient(int groups, int stage, int q)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    tiny_spec(&s, groups, 16, 64);
    assert_ok(trainer_init(&t, &s, &err), err);
    /* Move the weights off their init so that |W| >= 1 occurs. */
    for (int l = 1; l < t.net.d.n_layers; l++) {
        size_t n = (size_t)t.net.d.width[l] * t.net.d.width[l - 1];
        fill_weights(t.net.W[l], n, 40 + (uint64_t)l);
        fill(t.net.b[l], (size_t)t.net.d.width[l], -0.3f, 0.3f, 50 + (uint64_t)l);
    }
    int B = 16, d0 = t.net.d.width[0];
    float *x = malloc(sizeof(float) * B * d0);
    uint8_t y[16];
    fill(x, (size_t)B * d0, -0.5f, 0.5f, 9);
    for (int k = 0; k < B; k++)
        y[k] = (uint8_t)(k % 4);
    int i, j;
    block_of(q, groups, &i, &j);
    int M = groups, n = t.net.d.width[stage], nin = t.net.d.width[stage - 1];
    int cj = glo(n, M, j + 1) - glo(n, M, j), ci = glo(nin, M, i + 1) - glo(nin, M, i);
    double *want = malloc(sizeof(double) * (cj * ci + cj));
    double loss = naive_tinyfoa_block(&t, stage, i, j, x, y, B, want);
    place(&t, stage - 1, q); /* two stages of one epoch each */
    struct mt_step_result r;
    assert_ok(t.rule->step(&t, x, y, B, &r, &err), err);
    assert_true(fabs(r.loss - loss) < 1e-5 * fabs(loss));
    assert_close(t.rs.grads, want, (size_t)cj * ci + cj, 1e-5, "block gradient");
    /* Some of it is nonzero (the test can fail). */
    double mx = 0;
    for (int k = 0; k < cj * ci; k++)
        mx = fabs(want[k]) > mx ? fabs(want[k]) : mx;
    assert_true(mx > 1e-6);
    free(want);
    free(x);
    trainer_fini(&t);
}

static void test_tinyfoa_block_gradient_matches_naive(void **state)
{
    (void)state;
    check_block_gradient(2, 1, 0);  /* stage 1: real input, block (0, 0) */
    check_block_gradient(3, 1, 5);  /* block (i, j) = (0, 2) of groups 6,7,7 / 10,11,11 */
    check_block_gradient(3, 2, 4);  /* stage 2: binary input, block (2, 1) */
    check_block_gradient(2, 2, 3);  /* block (0, 1) */
    check_block_gradient(1, 2, 0);  /* one group: the whole layer */
}

/* One vertical step of stage 2 changes block (i, j) of W_2 and b_2's slice
 * j, and nothing else: other blocks, other layers, W_L (= D_{L-1}), b_L. */
static void test_only_active_block_changes(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    tiny_spec(&s, 3, 16, 64);
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 0.01f;
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    size_t P = model_param_count(d);
    float *before = malloc(P * sizeof(float));
    float *x = malloc(sizeof(float) * 16 * d->width[0]);
    uint8_t y[16];
    fill(x, (size_t)16 * d->width[0], -1, 1, 3);
    for (int k = 0; k < 16; k++)
        y[k] = (uint8_t)(k % 4);
    for (int q = 0; q < 12; q++) {
        int i, j, M = 3, l = 2, n = d->width[2], nin = d->width[1];
        block_of(q, M, &i, &j);
        memcpy(before, t.net.params, P * sizeof(float));
        place(&t, 1, q);
        struct mt_step_result r;
        assert_ok(t.rule->step(&t, x, y, 16, &r, &err), err);
        int j0 = glo(n, M, j), j1 = glo(n, M, j + 1), i0 = glo(nin, M, i), i1 = glo(nin, M, i + 1);
        size_t off = model_layer_offset(d, l), changed = 0, block = 0;
        for (size_t k = 0; k < P; k++) {
            int mine = 0;
            if (k >= off && k < off + (size_t)n * nin) {
                int rr = (int)((k - off) / nin), cc = (int)((k - off) % nin);
                mine = rr >= j0 && rr < j1 && cc >= i0 && cc < i1;
            } else if (k >= off + (size_t)n * nin && k < off + (size_t)n * nin + n) {
                int rr = (int)(k - off - (size_t)n * nin);
                mine = rr >= j0 && rr < j1;
            }
            if (!mine && memcmp(&before[k], &t.net.params[k], sizeof(float)) != 0)
                fail_msg("step %d, block (%d, %d): parameter %zu outside it changed", q, i, j,
                         k);
            block += mine;
            changed += mine && before[k] != t.net.params[k];
        }
        assert_int_equal(block, (size_t)(j1 - j0) * (i1 - i0) + (j1 - j0));
        assert_true(changed > 0);
    }
    free(before);
    free(x);
    trainer_fini(&t);
}

/* Epochs split over stages, the first stages taking the remainder: 5 epochs
 * over 3 hidden layers are stages 1, 1, 2, 2, 3. In each epoch only that
 * layer's parameters move; the epoch's "stage" metric says so. */
static void test_stage_schedule_from_epoch(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "tinyfoa", 3, 12, MT_ACT_RELU, 10, 40);
    s.epochs = 5;
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 0.01f;
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    size_t P = model_param_count(d);
    float *before = malloc(P * sizeof(float));
    static const int want[5] = {1, 1, 2, 2, 3};
    for (int e = 0; e < 5; e++) {
        memcpy(before, t.net.params, P * sizeof(float));
        struct mt_epoch_report r;
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
        assert_true(r.n_metrics >= 2);
        assert_string_equal(r.metrics[0].name, "stage");
        assert_true(r.metrics[0].value == want[e]);
        assert_string_equal(r.metrics[1].name, "live");
        assert_true(r.metrics[1].value > 0 && r.metrics[1].value <= 1);
        for (int l = 1; l <= d->n_layers; l++) {
            size_t off = model_layer_offset(d, l), n = model_layer_size(d, l);
            int moved = memcmp(before + off, t.net.params + off, n * sizeof(float)) != 0;
            if (moved != (l == want[e]))
                fail_msg("epoch %d: layer %d %s", e + 1, l, moved ? "moved" : "did not move");
        }
    }
    free(before);
    trainer_fini(&t);
}

/* D_l never changes, is the same for the same seed, and D_{L-1} is W_L
 * with b_L = 0. */
static void test_local_classifiers_fixed(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t, u;
    struct mt_err err = {0};
    test_spec(&s, "tinyfoa", 3, 12, MT_ACT_RELU, 10, 40);
    s.epochs = 3;
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 0.01f;
    assert_ok(trainer_init(&t, &s, &err), err);
    assert_ok(trainer_init(&u, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    int L = d->n_layers, C = d->width[L];
    assert_ptr_equal(t.rs.fb[L - 1], t.net.W[L]);
    double ss = 0;
    for (int k = 0; k < C * d->width[1]; k++)
        ss += (double)t.rs.fb[1][k] * t.rs.fb[1][k];
    /* Kaiming normal std sqrt(2/12): 48 draws, a loose band */
    assert_true(ss / (C * d->width[1]) > 0.05 && ss / (C * d->width[1]) < 0.4);
    for (int e = 0; e < 3; e++) {
        struct mt_epoch_report r;
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    }
    for (int l = 1; l < L; l++)
        assert_memory_equal(t.rs.fb[l], u.rs.fb[l], sizeof(float) * C * d->width[l]);
    assert_memory_equal(t.net.W[L], u.net.W[L], sizeof(float) * C * d->width[L - 1]);
    for (int c = 0; c < C; c++)
        assert_true(t.net.b[L][c] == 0.0f);
    /* A different seed gives different classifiers. */
    trainer_fini(&u);
    s.seed = 4;
    assert_ok(trainer_init(&u, &s, &err), err);
    assert_true(memcmp(t.rs.fb[1], u.rs.fb[1], sizeof(float) * C * d->width[1]) != 0);
    trainer_fini(&u);
    trainer_fini(&t);
}

/* After the last stage, evaluation is the binarised forward through the
 * hidden layers and then W_L (beta from the batch). */
static void test_tinyfoa_infer_is_binary_forward_then_last_layer(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    tiny_spec(&s, 2, 16, 64);
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 0.01f;
    assert_ok(trainer_init(&t, &s, &err), err);
    for (int e = 0; e < 2; e++) {
        struct mt_epoch_report r;
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    }
    const struct mt_model_desc *d = &t.net.d;
    int B = 16, L = d->n_layers, C = d->width[L], mw = model_max_width(d);
    float *x = malloc(sizeof(float) * B * d->width[0]);
    float *b0 = malloc(sizeof(float) * B * mw), *b1 = malloc(sizeof(float) * B * mw);
    fill(x, (size_t)B * d->width[0], -1, 1, 21);
    double *in = widen(x, (size_t)B * d->width[0]);
    for (int l = 1; l < L; l++) {
        double *Z = malloc(sizeof(double) * B * d->width[l]);
        naive_binary_linear(Z, in, t.net.W[l], t.net.b[l], B, d->width[l - 1], d->width[l]);
        naive_binary_act(Z, Z, (size_t)B * d->width[l]);
        free(in);
        in = Z;
    }
    double *A = calloc((size_t)B * C, sizeof(double));
    int n = d->width[L - 1];
    for (int s2 = 0; s2 < B; s2++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < n; f++)
                A[(size_t)s2 * C + c] += in[(size_t)s2 * n + f] * t.net.W[L][(size_t)c * n + f];
    const float *logits = t.rule->infer(&t, x, B, b0, b1);
    assert_close(logits, A, (size_t)B * C, 1e-5, "logits");
    free(x), free(b0), free(b1), free(in), free(A);
    trainer_fini(&t);
}

/* Train the whole job (every stage) and compare the plan with the peaks:
 * the plan is the job's, the largest stage's. */
static void assert_job_plan_matches(const struct mt_spec *s, struct mt_mem_stats *st,
                                    struct mt_mem_plan *plan)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    assert_ok(trainer_init(&t, s, &err), err);
    for (int e = 0; e < t.spec.epochs; e++)
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    struct mt_data_shape shape = data_shape_of(&t.train, &t.test);
    trainer_plan_shape(&t.spec, &shape, plan);
    *st = r.mem;
    for (int c = 0; c < MT_MEM_NCAT; c++)
        if (plan->cat[c] != st->peak[c])
            fail_msg("tinyfoa depth %d batch %d: %s planned %zu, measured %zu",
                     s->model.n_layers - 1, s->batch, mt_mem_cat_name(c), plan->cat[c],
                     st->peak[c]);
    for (int p = 0; p < MT_PHASE_N; p++)
        if (plan->phase[p] != st->phase_peak[p])
            fail_msg("tinyfoa depth %d batch %d: phase %s planned %zu, measured %zu",
                     s->model.n_layers - 1, s->batch, mt_phase_name(p), plan->phase[p],
                     st->phase_peak[p]);
    assert_int_equal(plan->total, st->total_peak);
    trainer_fini(&t);
}

static void test_tinyfoa_plan_equals_measured(void **state)
{
    (void)state;
    static const int depths[] = {1, 2, 3, 4};
    static const int batches[] = {1, 8, 33};
    static const int groups[] = {1, 2, 3};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 3; b++) {
            struct mt_spec s;
            struct mt_mem_stats st;
            struct mt_mem_plan plan;
            test_spec(&s, "tinyfoa", depths[a], 20, MT_ACT_RELU, batches[b], 3 * batches[b] + 5);
            /* uneven widths: later stages can be the larger ones */
            for (int l = 1; l <= depths[a]; l++)
                s.model.width[l] = 14 + 9 * ((l + a) % 3);
            s.rule.groups = groups[(a + b) % 3];
            s.epochs = depths[a];
            assert_job_plan_matches(&s, &st, &plan);
            if (depths[a] == 1) /* one stage: one epoch is the whole job */
                assert_plan_matches(&s, &st, &plan);
        }
}

/* Binary copies at packed size: params = P floats + packed signs of the
 * hidden W_l + D_1..D_{L-2}; kept = B (n_{l-1} + n_l)/8 + 4 B C (spec 9);
 * gradients one block. */
static void test_tinyfoa_counts_packed_sizes(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_mem_stats st;
    struct mt_mem_plan plan;
    test_spec(&s, "tinyfoa", 3, 64, MT_ACT_RELU, 16, 3 * 16 + 5);
    s.epochs = 3;
    s.rule.groups = 2;
    assert_job_plan_matches(&s, &st, &plan);
    size_t P = model_param_count(&s.model);
    size_t packed = (64 * 32 + 64 * 64 + 64 * 64) / 8, cls = 2 * 4 * 64 * 4;
    assert_int_equal(st.peak[MT_MEM_PARAMS], P * 4 + packed + cls);
    assert_int_equal(st.peak[MT_MEM_ACTS], 16 * (64 + 64) / 8 + 4 * 16 * 4);
    assert_int_equal(st.peak[MT_MEM_GRADS], (32 * 32 + 32) * 4);
}

static void test_tinyfoa_refuses_what_it_cannot_train(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    tiny_spec(&s, 2, 8, 40);
    s.epochs = 1;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "epochs (1) must be at least the number of hidden layers"));
    tiny_spec(&s, 15, 8, 40);
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "15 groups do not fit layer 2"));
    tiny_spec(&s, 2, 8, 40);
    s.model.act[1] = MT_ACT_TANH;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "hidden layer 1 has activation tanh"));
    test_spec(&s, "tinyfoa", 0, 20, MT_ACT_RELU, 8, 40);
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "has none"));
}

/* A job saved after 3 steps of stage 2 and resumed in a fresh trainer (the
 * weights and Adam state copied, trainer_seek) ends bit for bit where the
 * uninterrupted one does: the binary copies are re-derived from W. */
static int stop_after(void *ud, const struct mt_trainer *t, const struct mt_step_result *r)
{
    (void)r;
    return t->step == *(long *)ud;
}

static void test_tinyfoa_resume_is_exact(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer a, b;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    tiny_spec(&s, 2, 8, 64); /* 8 steps an epoch */
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 0.01f;
    assert_ok(trainer_init(&a, &s, &err), err);
    assert_ok(trainer_init(&b, &s, &err), err);
    long stop = 8 + 3;
    trainer_set_step_fn(&b, stop_after, &stop);
    assert_ok(trainer_run_epoch(&b, NULL, NULL, &r, &err), err);
    assert_int_equal(trainer_run_epoch(&b, NULL, NULL, &r, &err), MT_E_CANCELLED);
    struct mt_train_pos pos;
    trainer_position(&b, &pos);
    size_t P = model_param_count(&a.net.d);
    struct mt_trainer c;
    assert_ok(trainer_init(&c, &s, &err), err);
    memcpy(c.net.params, b.net.params, P * sizeof(float));
    memcpy(c.opt.m, b.opt.m, P * sizeof(float));
    memcpy(c.opt.v, b.opt.v, P * sizeof(float));
    c.opt.t = b.opt.t;
    assert_ok(trainer_seek(&c, &pos, &err), err);
    assert_ok(trainer_run_epoch(&c, NULL, NULL, &r, &err), err);
    for (int e = 0; e < 2; e++)
        assert_ok(trainer_run_epoch(&a, NULL, NULL, &r, &err), err);
    assert_memory_equal(a.net.params, c.net.params, P * sizeof(float));
    trainer_fini(&a);
    trainer_fini(&b);
    trainer_fini(&c);
}

static void test_tinyfoa_learns(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    test_spec(&s, "tinyfoa", 2, 64, MT_ACT_RELU, 20, 1000);
    s.epochs = 6;
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 0.01f;
    assert_ok(trainer_init(&t, &s, &err), err);
    double first = 0;
    for (int e = 0; e < s.epochs; e++) {
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
        if (e == 0)
            first = r.test_accuracy;
        print_message("tinyfoa epoch %d: loss %.4f test %.3f stage %g live %.3f\n", e + 1, r.loss,
                      r.test_accuracy, r.metrics[0].value, r.metrics[1].value);
    }
    assert_true(r.test_accuracy > 0.6); /* 4 classes */
    (void)first;
    trainer_fini(&t);
}

/* ---- BP with binary weights and activations ----------------------------- */

/* The full binary BP gradient by plain loops: G_l in the model's layout. */
static double naive_bpbin(const struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                          double *G)
{
    const struct mt_model_desc *d = &t->net.d;
    int L = d->n_layers, C = d->width[L];
    double *H[MT_MAX_LAYERS + 1], *Z[MT_MAX_LAYERS + 1];
    H[0] = widen(x, (size_t)B * d->width[0]);
    for (int l = 1; l <= L; l++) {
        Z[l] = malloc(sizeof(double) * B * d->width[l]);
        naive_binary_linear(Z[l], H[l - 1], t->net.W[l], t->net.b[l], B, d->width[l - 1],
                            d->width[l]);
        H[l] = malloc(sizeof(double) * B * d->width[l]);
        if (l < L)
            naive_binary_act(H[l], Z[l], (size_t)B * d->width[l]);
    }
    double *delta = malloc(sizeof(double) * B * C);
    double loss = naive_error(delta, Z[L], y, B, C);
    for (int l = L; l >= 1; l--) {
        int in = d->width[l - 1], out = d->width[l];
        const float *W = t->net.W[l];
        double alpha = mean_abs(W, (size_t)out * in);
        double *g = G + model_layer_offset(d, l);
        for (int r = 0; r < out; r++) {
            for (int c = 0; c < in; c++) {
                double acc = 0;
                for (int s = 0; s < B; s++)
                    acc += delta[(size_t)s * out + r] * H[l - 1][(size_t)s * in + c];
                g[(size_t)r * in + c] = fabsf(W[(size_t)r * in + c]) < 1 ? acc : 0.0;
            }
            double gb = 0;
            for (int s = 0; s < B; s++)
                gb += delta[(size_t)s * out + r];
            g[(size_t)out * in + r] = gb;
        }
        if (l == 1)
            break;
        double *next = malloc(sizeof(double) * B * in);
        for (int s = 0; s < B; s++)
            for (int c = 0; c < in; c++) {
                double acc = 0;
                for (int r = 0; r < out; r++)
                    acc += delta[(size_t)s * out + r] * (W[(size_t)r * in + c] > 0 ? alpha : -alpha);
                double z = Z[l - 1][(size_t)s * in + c];
                next[(size_t)s * in + c] = z > 0 && z < 1 ? acc : 0.0;
            }
        free(delta);
        delta = next;
    }
    free(delta);
    for (int l = 0; l <= L; l++)
        free(H[l]);
    for (int l = 1; l <= L; l++)
        free(Z[l]);
    return loss;
}

static void test_bpbin_gradient_matches_naive(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "bp", 3, 24, MT_ACT_RELU, 12, 48);
    s.model.width[2] = 40; /* wider than a panel */
    s.rule.binary = 1;
    s.optim.kind = MT_OPT_SGD;
    s.optim.lr = 0.05f;
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    for (int l = 1; l <= d->n_layers; l++) {
        fill_weights(t.net.W[l], (size_t)d->width[l] * d->width[l - 1], 60 + (uint64_t)l);
        fill(t.net.b[l], (size_t)d->width[l], -0.2f, 0.2f, 70 + (uint64_t)l);
    }
    int B = 12;
    float *x = malloc(sizeof(float) * B * d->width[0]);
    uint8_t y[12];
    fill(x, (size_t)B * d->width[0], -1, 1, 8);
    for (int k = 0; k < B; k++)
        y[k] = (uint8_t)(k % 4);
    size_t P = model_param_count(d);
    double *want = malloc(P * sizeof(double));
    double loss = naive_bpbin(&t, x, y, B, want);
    struct mt_step_result r;
    assert_ok(t.rule->step(&t, x, y, B, &r, &err), err);
    assert_true(fabs(r.loss - loss) < 1e-5 * loss);
    for (int l = 1; l <= d->n_layers; l++) {
        size_t off = model_layer_offset(d, l), n = model_layer_size(d, l);
        char what[32];
        snprintf(what, sizeof what, "layer %d gradient", l);
        assert_close(t.rs.grads + off, want + off, n, 1e-5, what);
        int live = 0;
        for (size_t k = 0; k < n; k++)
            live += want[off + k] != 0.0;
        assert_true(live > (int)n / 10); /* the STE passes a fair share */
    }
    /* Clamped after the update. */
    for (size_t k = 0; k < P; k++)
        assert_true(t.net.params[k] >= -1.0f && t.net.params[k] <= 1.0f);
    free(want);
    free(x);
    trainer_fini(&t);
}

static void test_bpbin_plan_equals_measured(void **state)
{
    (void)state;
    static const int depths[] = {0, 1, 2, 3, 5};
    static const int batches[] = {1, 8, 33};
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 3; b++) {
            struct mt_spec s;
            struct mt_mem_stats st;
            struct mt_mem_plan plan;
            test_spec(&s, "bp", depths[a], 20 + 3 * a, MT_ACT_RELU, batches[b],
                      3 * batches[b] + 5);
            s.rule.binary = 1;
            assert_plan_matches(&s, &st, &plan);
        }
}

/* BP+BW+BA keeps two bits per hidden unit and the logits; the signs of
 * every W_l are counted at 1 bit. */
static void test_bpbin_counts_packed_sizes(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_mem_stats st;
    struct mt_mem_plan plan;
    test_spec(&s, "bp", 3, 64, MT_ACT_RELU, 16, 3 * 16 + 5);
    s.rule.binary = 1;
    assert_plan_matches(&s, &st, &plan);
    size_t P = model_param_count(&s.model), Pw = model_weight_count(&s.model);
    assert_int_equal(st.peak[MT_MEM_PARAMS], P * 4 + Pw / 8);
    assert_int_equal(st.peak[MT_MEM_ACTS], 2 * 16 * (3 * 64) / 8 + 4 * 16 * 4);
    assert_int_equal(st.peak[MT_MEM_GRADS], P * 4);
    /* and bp without binary is unchanged: no packed copies */
    s.rule.binary = 0;
    assert_plan_matches(&s, &st, &plan);
    assert_int_equal(st.peak[MT_MEM_PARAMS], P * 4);
}

static void test_bpbin_learns(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    test_spec(&s, "bp", 2, 64, MT_ACT_RELU, 20, 1000);
    s.rule.binary = 1;
    s.epochs = 4;
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 0.01f;
    assert_ok(trainer_init(&t, &s, &err), err);
    for (int e = 0; e < s.epochs; e++) {
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
        print_message("bp binary epoch %d: loss %.4f test %.3f\n", e + 1, r.loss,
                      r.test_accuracy);
    }
    assert_true(r.test_accuracy > 0.6);
    trainer_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_block_and_unpack_at_unaligned_offsets),
        cmocka_unit_test(test_binary_activate_and_masks),
        cmocka_unit_test(test_packed_gemm_matches_naive_float),
        cmocka_unit_test(test_tinyfoa_block_gradient_matches_naive),
        cmocka_unit_test(test_only_active_block_changes),
        cmocka_unit_test(test_stage_schedule_from_epoch),
        cmocka_unit_test(test_local_classifiers_fixed),
        cmocka_unit_test(test_tinyfoa_infer_is_binary_forward_then_last_layer),
        cmocka_unit_test(test_tinyfoa_plan_equals_measured),
        cmocka_unit_test(test_tinyfoa_counts_packed_sizes),
        cmocka_unit_test(test_tinyfoa_refuses_what_it_cannot_train),
        cmocka_unit_test(test_tinyfoa_resume_is_exact),
        cmocka_unit_test(test_tinyfoa_learns),
        cmocka_unit_test(test_bpbin_gradient_matches_naive),
        cmocka_unit_test(test_bpbin_plan_equals_measured),
        cmocka_unit_test(test_bpbin_counts_packed_sizes),
        cmocka_unit_test(test_bpbin_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
