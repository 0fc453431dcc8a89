/* test-approx.c: the approx8 / approx4 rules (spec section 6). The K-bit
 * copy decodes within half a step inside its window and keeps the ReLU mask
 * exact; 4-bit codes pack two per byte; the gradients equal a plain-loop
 * reference built from the decoded copies (with and without batch-norm) and
 * are close to BP's; the kept bytes equal the formula and meet the issue's
 * ratios; plan equals measured. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "norm.h"
#include "pack.h"
#include "rng.h"
#include "rules/approx.h"
#include "rules/common.h"
#include "testutil.h"

/* The code of v by the formula of approx.h, written out once more. */
static int ref_code(float v, double step, int s, int N)
{
    if (v > 0) {
        double k = floor((double)v / step);
        return k >= N - 1 - s ? N - 1 : s + (int)k;
    }
    double k = floor(-(double)v / step);
    return k >= s - 1 ? 0 : s - 1 - (int)k;
}

static void fill_features(float *z, int B, int n, struct mt_rng *rng)
{
    /* Feature c: N(mu_c, sd_c), the mean swept from -5 sd to +5 sd so that
     * some windows are clamped; every 7th feature constant. */
    for (int c = 0; c < n; c++) {
        float sd = 0.1f + 2.0f * rng_uniform(rng);
        float mu = sd * (-5.0f + 10.0f * (float)c / (float)(n - 1));
        for (int b = 0; b < B; b++)
            z[(size_t)b * n + c] = c % 7 == 3 ? mu : mu + sd * rng_normal(rng);
    }
}

static void check_encode_decode(int bits)
{
    enum { B = 64, n = 41 };
    int N = 1 << bits;
    struct mt_rng rng;
    rng_seed(&rng, 11 + (uint64_t)bits);
    float *z = malloc(sizeof(float) * B * n), *dec = malloc(sizeof(float) * B * n);
    float step[n];
    uint8_t zero[n], *codes = malloc(pack_bytes(B * n, bits));
    fill_features(z, B, n, &rng);
    approx_window_stats(step, zero, z, B, n, bits);
    struct approx_win w = {.step = step, .zero = zero, .n = n, .bits = bits};
    size_t clipped = approx_encode(codes, z, &w, B);
    approx_decode(dec, codes, &w, B);

    size_t outside = 0, centred_out = 0, centred = 0;
    double worst = 0;
    for (int c = 0; c < n; c++) {
        double mu = 0, var = 0;
        for (int b = 0; b < B; b++)
            mu += z[b * n + c];
        mu /= B;
        for (int b = 0; b < B; b++)
            var += (z[b * n + c] - mu) * (z[b * n + c] - mu);
        double sd = sqrt(var / B);
        assert_true(zero[c] >= 1 && zero[c] <= N - 1);
        if (c % 7 != 3) /* the window is 6 sigma wide */
            assert_true(fabs(step[c] * N - 6 * sd) <= 1e-5 * 6 * sd);
        double lo = -(double)zero[c] * step[c], hi = (double)(N - zero[c]) * step[c];
        int is_centred = zero[c] > 1 && zero[c] < N - 1; /* zero inside mu +- 3 sigma */
        for (int b = 0; b < B; b++) {
            double v = z[b * n + c];
            if (v < lo || v >= hi) {
                outside++;
                centred_out += is_centred;
                continue;
            }
            double e = fabs(dec[b * n + c] - v) / step[c];
            if (e > worst)
                worst = e;
        }
        centred += is_centred ? B : 0;
    }
    print_message("%d-bit: worst in-window error %.6f steps, %zu of %d clipped "
                  "(%zu of %zu where zero is inside the window)\n",
                  bits, worst, clipped, B * n, centred_out, centred);
    assert_true(worst <= 0.5 * (1 + 1e-5));
    assert_int_equal(clipped, outside);
    assert_true(centred > 0);
    assert_true(centred_out <= centred / 50); /* +-3 sigma holds ~99.7 % */
    free(z);
    free(dec);
    free(codes);
}

static void test_decode_error_within_half_step_8bit(void **state) { check_encode_decode(8); }
static void test_decode_error_within_half_step_4bit(void **state) { check_encode_decode(4); }

/* Values around zero the mask must get right, and a few far outside. */
static const float specials[] = {0.0f, -0.0f, FLT_MIN, -FLT_MIN, 1e-40f, -1e-40f, 1e-30f,
                                 -1e-30f, 1e-7f, -1e-7f, 1e30f, -1e30f, FLT_TRUE_MIN};

static void check_mask(int bits, int bn)
{
    enum { B = 16, n = 29 };
    struct mt_rng rng;
    rng_seed(&rng, 5 + (uint64_t)bits + 100 * (uint64_t)bn);
    float *v = malloc(sizeof(float) * B * n), *ones = malloc(sizeof(float) * B * n);
    float *h = malloc(sizeof(float) * B * n);
    float step[n], gamma[n], beta[n];
    uint8_t zero[n], *codes = malloc(pack_bytes(B * n, bits));
    size_t ns = sizeof specials / sizeof *specials;
    for (int i = 0; i < B * n; i++) {
        v[i] = rng_normal(&rng) * (i % 5 == 0 ? 1e-3f : 1.0f);
        if (i % 3 == 0)
            v[i] = specials[(size_t)i / 3 % ns];
        if (i % 11 == 0)
            v[i] = 0.0f;
        if (i % n == 1 || i % n == 2) { /* features far below and above zero */
            v[i] = (i % n == 1 ? -10.0f : 10.0f) + 0.1f * rng_normal(&rng);
            if (i / n % 4 == 0)
                v[i] = specials[(size_t)i / n / 4 % 10];
        }
        ones[i] = 1.0f;
    }
    struct approx_win w = {.zero = zero, .n = n, .bits = bits};
    if (bn) {
        for (int c = 0; c < n; c++) { /* some negative and zero gammas, large |beta/gamma| */
            gamma[c] = c % 9 == 0 ? 0.0f : rng_normal(&rng);
            beta[c] = 3.0f * rng_normal(&rng);
        }
        /* beta / |gamma| far below and above zero: s_c clamped at both ends */
        gamma[1] = 0.0f, beta[1] = -2.0f;
        gamma[2] = 0.01f, beta[2] = -1.0f;
        gamma[3] = -0.01f, beta[3] = -1.0f;
        gamma[4] = 0.01f, beta[4] = 1.0f;
        approx_window_bn(zero, gamma, beta, n, bits);
        w.gamma = gamma;
    } else {
        approx_window_stats(step, zero, v, B, n, bits);
        w.step = step;
    }
    approx_encode(codes, v, &w, B);
    approx_mask(ones, codes, &w, B);
    approx_decode_relu(h, codes, &w, B);
    for (int i = 0; i < B * n; i++) {
        float exact = act_f(v[i], MT_ACT_RELU) > 0 ? 1.0f : 0.0f;
        if (ones[i] != exact || (h[i] > 0) != (exact > 0))
            fail_msg("%d-bit%s: element %d = %g: mask %g, decoded %g, exact mask %g", bits,
                     bn ? " batch-norm" : "", i, (double)v[i], (double)ones[i], (double)h[i],
                     (double)exact);
    }
    free(v);
    free(ones);
    free(h);
    free(codes);
}

static void test_decoded_mask_equals_exact_mask(void **state)
{
    check_mask(8, 0);
    check_mask(4, 0);
    check_mask(8, 1);
    check_mask(4, 1);
}

static void test_4bit_codes_pack_two_per_byte_and_round_trip(void **state)
{
    enum { B = 3, n = 7 }; /* 21 codes: the last byte holds one */
    struct mt_rng rng;
    rng_seed(&rng, 9);
    float z[B * n], step[n];
    uint8_t zero[n], codes[B * n], back[B * n], repacked[16];
    uint8_t packed[16];
    for (int i = 0; i < B * n; i++)
        z[i] = 2.0f * rng_normal(&rng) + 0.5f;
    approx_window_stats(step, zero, z, B, n, 4);
    struct approx_win w = {.step = step, .zero = zero, .n = n, .bits = 4};
    memset(packed, 0xAA, sizeof packed);
    approx_encode(packed, z, &w, B);
    assert_int_equal(pack_bytes(B * n, 4), 11);
    assert_int_equal(packed[11], 0xAA);          /* nothing written past the end */
    assert_int_equal(packed[10] >> 4, 0);        /* unused high nibble is zero */
    for (int i = 0; i < B * n; i++)
        codes[i] = (uint8_t)ref_code(z[i], step[i % n], zero[i % n], 16);
    pack_unpack_codes(back, packed, B * n, 4);
    assert_memory_equal(back, codes, B * n);
    pack_codes(repacked, back, B * n, 4);
    assert_memory_equal(repacked, packed, 11);
    for (int i = 0; i < B * n; i++) /* element i: byte i/2, low nibble first */
        assert_int_equal((packed[i / 2] >> (4 * (i % 2))) & 15, codes[i]);

    /* 8-bit: one code per byte, the same formula. */
    uint8_t p8[B * n];
    approx_window_stats(step, zero, z, B, n, 8);
    w.bits = 8;
    approx_encode(p8, z, &w, B);
    for (int i = 0; i < B * n; i++)
        assert_int_equal(p8[i], ref_code(z[i], step[i % n], zero[i % n], 256));
}

/* ---- gradients against plain loops -------------------------------------- */

static int rule_bits(const char *rule) { return strcmp(rule, "approx4") == 0 ? 4 : 8; }

/* Decoded v_hat of hidden layer l, by the formula, in double. */
static double ref_vhat(const struct mt_trainer *t, const struct approx_kept *k, int l, int bits,
                       size_t i, int c)
{
    int q = (int)pack_get(k->codes[l], i, bits);
    double step = k->step[l] ? k->step[l][c]
                             : 6.0 / (1 << bits) * fmax(fabs(t->net.gamma[l][c]), 1e-8);
    return (q - k->zero[l][c] + 0.5) * step;
}

/* One forward and backward of the rule on a random batch; the gradient block
 * must equal plain loops over the kept codes: G_l = delta_l^T H_hat_{l-1},
 * delta_{l-1} = (delta_l W_l) * [q >= s] (and the batch-norm backward of
 * spec 6(a) from xhat' = (v_hat - beta) / gamma). Also checks on the way
 * that the forward is exact (logits equal to the rolling forward's) and the
 * mask of the codes is the exact ReLU mask of the forward. */
static void check_gradients(const char *rule, int hidden, const int *bn_layers, int B)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    int bits = rule_bits(rule);
    assert_true(B <= 64);
    test_spec(&s, rule, hidden, 24, MT_ACT_RELU, B, 200);
    if (hidden > 1)
        s.model.width[2] = 17;
    for (int l = 1; l <= hidden; l++)
        s.model.norm[l] = bn_layers && bn_layers[l] ? MT_NK_BATCH : MT_NK_NONE;
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    int L = d->n_layers, C = d->width[L], maxw = model_max_width(d);
    struct mt_rng rng;
    rng_seed(&rng, 21);
    /* Non-trivial batch-norm parameters, one gamma negative. */
    for (int l = 1; l < L; l++)
        if (t.net.gamma[l])
            for (int c = 0; c < d->width[l]; c++) {
                t.net.gamma[l][c] = 0.5f + rng_uniform(&rng);
                t.net.beta[l][c] = 0.5f * rng_normal(&rng);
            }
    if (t.net.gamma[1])
        t.net.gamma[1][0] = -0.7f;
    float *x = malloc(sizeof(float) * B * d->width[0]);
    uint8_t *y = malloc((size_t)B);
    for (int i = 0; i < B * d->width[0]; i++)
        x[i] = rng_normal(&rng);
    for (int b = 0; b < B; b++)
        y[b] = (uint8_t)rng_below(&rng, (uint32_t)C);

    float *r0 = malloc(sizeof(float) * B * maxw), *r1 = malloc(sizeof(float) * B * maxw);
    float *exact_logits = malloc(sizeof(float) * B * C);
    int has_bn = 0;
    for (int l = 1; l < L; l++)
        has_bn |= d->norm[l] == MT_NK_BATCH;

    size_t mark = arena_mark(t.arena);
    struct approx_kept k;
    float *buf[2];
    assert_ok(approx_forward(&t, x, B, bits, &k, buf, &err), err);
    if (!has_bn) {
        memcpy(exact_logits, rule_forward_rolling(&t.net, x, B, r0, r1), sizeof(float) * B * C);
        assert_memory_equal(exact_logits, k.logits, sizeof(float) * B * C);
    }

    /* Plain-loop exact forward in double (batch-norm in training mode):
     * the codes' mask must equal [H > 0] and, for BN, rstd the exact one. */
    double *H[MT_MAX_LAYERS + 1];
    H[0] = malloc(sizeof(double) * B * d->width[0]);
    for (int i = 0; i < B * d->width[0]; i++)
        H[0][i] = x[i];
    for (int l = 1; l <= L; l++) {
        int n = d->width[l], m = d->width[l - 1];
        H[l] = malloc(sizeof(double) * B * n);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < n; j++) {
                double a = t.net.b[l][j];
                for (int i = 0; i < m; i++)
                    a += H[l - 1][b * m + i] * t.net.W[l][(size_t)j * m + i];
                H[l][b * n + j] = a;
            }
        if (l == L)
            break;
        if (d->norm[l] == MT_NK_BATCH)
            for (int j = 0; j < n; j++) {
                double mu = 0, var = 0;
                for (int b = 0; b < B; b++)
                    mu += H[l][b * n + j];
                mu /= B;
                for (int b = 0; b < B; b++)
                    var += (H[l][b * n + j] - mu) * (H[l][b * n + j] - mu);
                double rstd = 1.0 / sqrt(var / B + MT_NORM_EPS);
                assert_true(fabs(k.rstd[l][j] - rstd) <= 1e-3 * rstd);
                for (int b = 0; b < B; b++)
                    H[l][b * n + j] =
                        t.net.gamma[l][j] * (H[l][b * n + j] - mu) * rstd + t.net.beta[l][j];
            }
        size_t flips = 0;
        for (int i = 0; i < B * n; i++) {
            int q = (int)pack_get(k.codes[l], (size_t)i, bits);
            /* double vs float: only a value at zero's edge may differ */
            if ((q >= k.zero[l][i % n]) != (H[l][i] > 0) && fabs(H[l][i]) > 1e-5)
                flips++;
            H[l][i] = H[l][i] > 0 ? H[l][i] : 0;
        }
        assert_int_equal(flips, 0);
    }
    for (int i = 0; i < B * C; i++)
        assert_true(fabs(k.logits[i] - H[L][i]) <= 1e-4 * (1 + fabs(H[L][i])));

    /* E, then the rule's backward. */
    struct mt_step_result res;
    assert_ok(rule_output_error(&t, k.logits, y, B, &res, &err), err);
    double *delta = malloc(sizeof(double) * B * maxw), *prev = malloc(sizeof(double) * B * maxw);
    for (int i = 0; i < B * C; i++)
        delta[i] = k.logits[i];
    approx_backward(&t, x, B, bits, &k, buf);

    for (int l = L; l >= 1; l--) {
        int n = d->width[l], m = d->width[l - 1];
        /* H_hat_{l-1}: the batch for l = 1, else ReLU of the decoded copy. */
        double *hh = malloc(sizeof(double) * B * m);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < m; i++) {
                size_t e = (size_t)b * m + i;
                double v = l > 1 ? ref_vhat(&t, &k, l - 1, bits, e, i) : x[e];
                hh[e] = l > 1 && (int)pack_get(k.codes[l - 1], e, bits) < k.zero[l - 1][i] ? 0 : v;
            }
        const float *gw = rule_grad_w(&t, l), *gb = rule_grad_b(&t, l);
        double scale = 0;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double g = 0;
                for (int b = 0; b < B; b++)
                    g += delta[b * n + j] * hh[b * m + i];
                if (fabs(g) > scale)
                    scale = fabs(g);
            }
        for (int j = 0; j < n; j++) {
            double gbias = 0;
            for (int b = 0; b < B; b++)
                gbias += delta[b * n + j];
            assert_true(fabs(gb[j] - gbias) <= 1e-5 * (1 + scale));
            for (int i = 0; i < m; i++) {
                double g = 0;
                for (int b = 0; b < B; b++)
                    g += delta[b * n + j] * hh[b * m + i];
                if (fabs(gw[(size_t)j * m + i] - g) > 1e-5 * (scale + 1e-3))
                    fail_msg("%s layer %d: G[%d][%d] = %g, reference %g", rule, l, j, i,
                             (double)gw[(size_t)j * m + i], g);
            }
        }
        free(hh);
        if (l == 1)
            break;
        /* delta_{l-1} = (delta_l W_l) * mask, then batch-norm's backward. */
        for (int b = 0; b < B; b++)
            for (int i = 0; i < m; i++) {
                double a = 0;
                for (int j = 0; j < n; j++)
                    a += delta[b * n + j] * t.net.W[l][(size_t)j * m + i];
                size_t e = (size_t)b * m + i;
                prev[e] = (int)pack_get(k.codes[l - 1], e, bits) >= k.zero[l - 1][i] ? a : 0;
            }
        if (d->norm[l - 1] == MT_NK_BATCH) {
            const float *gam = t.net.gamma[l - 1], *bet = t.net.beta[l - 1];
            const float *dgam = rule_grad_b(&t, l - 1) + m, *dbet = dgam + m;
            for (int i = 0; i < m; i++) {
                double sg = 0, sgx = 0, sx = 0, xh[64];
                for (int b = 0; b < B; b++) {
                    xh[b] = (ref_vhat(&t, &k, l - 1, bits, (size_t)b * m + i, i) - bet[i]) /
                            gam[i];
                    sg += prev[b * m + i];
                    sgx += prev[b * m + i] * xh[b];
                    sx += xh[b];
                }
                assert_true(fabs(dbet[i] - sg) <= 1e-5 * (1 + fabs(sg)));
                assert_true(fabs(dgam[i] - sgx) <= 1e-5 * (1 + fabs(sgx)));
                double t_mean = 0, tx_mean = 0, tb[64];
                for (int b = 0; b < B; b++)
                    t_mean += gam[i] * prev[b * m + i] / B;
                for (int b = 0; b < B; b++) {
                    tb[b] = gam[i] * prev[b * m + i] - t_mean;
                    tx_mean += tb[b] * xh[b] / B;
                }
                for (int b = 0; b < B; b++)
                    prev[b * m + i] = k.rstd[l - 1][i] * (tb[b] - xh[b] * tx_mean);
            }
        }
        double *tmp = delta;
        delta = prev;
        prev = tmp;
    }
    arena_pop(t.arena, mark);
    for (int l = 0; l <= L; l++)
        free(H[l]);
    free(delta);
    free(prev);
    free(x);
    free(y);
    free(r0);
    free(r1);
    free(exact_logits);
    trainer_fini(&t);
}

static void test_gradients_equal_plain_loops_on_decoded_copies(void **state)
{
    check_gradients("approx8", 1, NULL, 9);
    check_gradients("approx8", 3, NULL, 9);
    check_gradients("approx4", 1, NULL, 9);
    check_gradients("approx4", 3, NULL, 16);
}

static void test_batchnorm_gradients_equal_plain_loops(void **state)
{
    static const int bn13[] = {0, 1, 0, 1};
    static const int bn1[] = {0, 1};
    check_gradients("approx8", 3, bn13, 12);
    check_gradients("approx4", 3, bn13, 12);
    check_gradients("approx4", 1, bn1, 7);
}

/* With the same weights, approx8's gradient is within a few percent of BP's. */
static double grad_distance_to_bp(const char *rule, int norm)
{
    struct mt_spec s;
    struct mt_trainer bp, ap;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    test_spec(&s, "bp", 3, 64, MT_ACT_RELU, 64, 64); /* one step */
    for (int l = 1; l <= 3; l++)
        s.model.norm[l] = norm;
    assert_ok(trainer_init(&bp, &s, &err), err);
    snprintf(s.rule.name, sizeof s.rule.name, "%s", rule);
    assert_ok(trainer_init(&ap, &s, &err), err);
    size_t P = model_param_count(&bp.net.d);
    assert_memory_equal(bp.net.params, ap.net.params, P * sizeof(float));
    assert_ok(trainer_run_epoch(&bp, NULL, NULL, &r, &err), err);
    assert_ok(trainer_run_epoch(&ap, NULL, NULL, &r, &err), err);
    double num = 0, den = 0;
    for (size_t i = 0; i < P; i++) {
        double e = (double)ap.rs.grads[i] - bp.rs.grads[i];
        num += e * e;
        den += (double)bp.rs.grads[i] * bp.rs.grads[i];
    }
    trainer_fini(&bp);
    trainer_fini(&ap);
    print_message("%s%s: |G - G_bp| / |G_bp| = %.4f\n", rule, norm ? " batch-norm" : "",
                  sqrt(num / den));
    return sqrt(num / den);
}

static void test_gradients_close_to_bp(void **state)
{
    assert_true(grad_distance_to_bp("approx8", MT_NK_NONE) < 0.02);
    assert_true(grad_distance_to_bp("approx4", MT_NK_NONE) < 0.25);
}

static void test_batchnorm_gradients_close_to_bp(void **state)
{
    assert_true(grad_distance_to_bp("approx8", MT_NK_BATCH) < 0.02);
    assert_true(grad_distance_to_bp("approx4", MT_NK_BATCH) < 0.25);
}

/* ---- memory --------------------------------------------------------------- */

static size_t plan_acts(const char *rule, struct mt_mem_plan *plan)
{
    struct mt_spec s;
    struct mt_err err = {0};
    test_spec(&s, rule, 4, 2000, MT_ACT_RELU, 100, 60000);
    s.model.width[0] = 784;
    s.model.width[5] = 10;
    assert_ok(spec_finish(&s, &err), err);
    struct mt_data_shape shape = {.train_n = 60000, .test_n = 10000, .dim = 784};
    trainer_plan_shape(&s, &shape, plan);
    return plan->cat[MT_MEM_ACTS];
}

static void test_kept_bytes_formula_and_ratios_784_4x2000_10(void **state)
{
    struct mt_mem_plan p;
    size_t bp = plan_acts("bp", &p);
    size_t a8 = plan_acts("approx8", &p);
    size_t a4 = plan_acts("approx4", &p);
    /* 4 B sum n + 4 B C; approx: sum (K B n / 8 + 5 n) + 4 B C. */
    assert_int_equal(bp, 4 * 100 * 8000 + 4 * 100 * 10);
    assert_int_equal(a8, 100 * 8000 + 5 * 8000 + 4000);
    assert_int_equal(a4, 100 * 8000 / 2 + 5 * 8000 + 4000);
    struct mt_model_desc d;
    memset(&d, 0, sizeof d);
    d.n_layers = 5;
    d.width[0] = 784;
    for (int l = 1; l < 5; l++)
        d.width[l] = 2000;
    d.width[5] = 10;
    assert_int_equal(approx_kept_bytes(&d, 100, 8), a8);
    assert_int_equal(approx_kept_bytes(&d, 100, 4), a4);
    print_message("kept: bp %zu, approx8 %zu (1/%.3f), approx4 %zu (1/%.3f)\n", bp, a8,
                  (double)bp / a8, a4, (double)bp / a4);
    assert_true(3.5 * a8 <= bp);
    assert_true(7.0 * a4 <= bp);
}

static void test_plan_equals_measured(void **state)
{
    static const char *rules[] = {"approx8", "approx4"};
    static const int depths[] = {1, 2, 4};
    static const int batches[] = {1, 8, 33};
    for (int bn = 0; bn < 2; bn++)
        for (int r = 0; r < 2; r++)
            for (int di = 0; di < 3; di++)
                for (int bi = 0; bi < 3; bi++) {
                    struct mt_spec s;
                    struct mt_mem_stats st;
                    struct mt_mem_plan plan;
                    int B = batches[bi];
                    test_spec(&s, rules[r], depths[di], 15 + 2 * di, MT_ACT_RELU, B, 3 * B + 5);
                    if (depths[di] > 1)
                        s.model.width[2] = 27; /* the widest layer is not the first */
                    for (int l = 1; l <= depths[di]; l++) /* every other layer batch-norm */
                        s.model.norm[l] = bn && l % 2 ? MT_NK_BATCH : MT_NK_NONE;
                    assert_plan_matches(&s, &st, &plan);
                    assert_int_equal(st.peak[MT_MEM_ACTS],
                                     approx_kept_bytes(&s.model, B, rule_bits(rules[r])));
                }
}

/* ---- the rule as a whole -------------------------------------------------- */

static void test_refuses_other_activations_and_layernorm(void **state)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "approx4", 2, 16, MT_ACT_TANH, 8, 40);
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "ReLU"));
    print_message("%s\n", err.msg);
    test_spec(&s, "approx8", 2, 16, MT_ACT_RELU, 8, 40);
    s.model.norm[2] = MT_NK_LAYER;
    memset(&err, 0, sizeof err);
    assert_int_not_equal(trainer_init(&t, &s, &err), 0);
    assert_non_null(strstr(err.msg, "layernorm"));
    print_message("%s\n", err.msg);
}

static void check_learns(const char *rule, int norm)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, rule, 2, 64, MT_ACT_RELU, 32, 2000);
    for (int l = 1; l <= 2; l++)
        s.model.norm[l] = norm;
    s.epochs = 4;
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 1e-3f;
    assert_ok(trainer_init(&t, &s, &err), err);
    struct mt_epoch_report first, r;
    for (int e = 0; e < s.epochs; e++) {
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
        if (e == 0)
            first = r;
    }
    assert_true(r.n_metrics >= 3);
    assert_string_equal(r.metrics[0].name, "clip");
    assert_string_equal(r.metrics[2].name, "clip.2");
    print_message("%s%s: loss %.4f -> %.4f, test accuracy %.3f, clipped %.4f\n", rule,
                  norm ? " batch-norm" : "", first.loss, r.loss, r.test_accuracy,
                  r.metrics[0].value);
    assert_true(r.loss < first.loss);
    assert_true(r.test_accuracy > 0.8); /* 4 classes: chance is 0.25 */
    assert_true(r.metrics[0].value < 0.05);
    trainer_fini(&t);
}

static void test_learns(void **state)
{
    check_learns("approx8", MT_NK_NONE);
    check_learns("approx4", MT_NK_NONE);
}

static void test_learns_with_batchnorm(void **state)
{
    check_learns("approx8", MT_NK_BATCH);
    check_learns("approx4", MT_NK_BATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_error_within_half_step_8bit),
        cmocka_unit_test(test_decode_error_within_half_step_4bit),
        cmocka_unit_test(test_decoded_mask_equals_exact_mask),
        cmocka_unit_test(test_4bit_codes_pack_two_per_byte_and_round_trip),
        cmocka_unit_test(test_gradients_equal_plain_loops_on_decoded_copies),
        cmocka_unit_test(test_batchnorm_gradients_equal_plain_loops),
        cmocka_unit_test(test_gradients_close_to_bp),
        cmocka_unit_test(test_batchnorm_gradients_close_to_bp),
        cmocka_unit_test(test_kept_bytes_formula_and_ratios_784_4x2000_10),
        cmocka_unit_test(test_plan_equals_measured),
        cmocka_unit_test(test_refuses_other_activations_and_layernorm),
        cmocka_unit_test(test_learns),
        cmocka_unit_test(test_learns_with_batchnorm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
