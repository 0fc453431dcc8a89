/* test-norm.c: batch-norm and layer-norm (norm.h) against double-precision
 * loops and finite differences; the memory-sharing layer-norm backward
 * against the ordinary one; BP through norm layers against finite
 * differences of the whole network; batch-norm's running statistics and
 * evaluation mode; BP's plan with norm layers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "norm.h"
#include "rules/common.h"
#include "testutil.h"

#define EPS TEST_NORM_EPS
#define MOM ((double)MT_BN_MOMENTUM)

static unsigned long lcg = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
    lcg = lcg * 6364136223846793005UL + 1442695040888963407UL;
    return (float)((lcg >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

static void fill(float *a, size_t n, float scale, float shift)
{
    for (size_t i = 0; i < n; i++)
        a[i] = scale * frand() + shift;
}

static void assert_close(double got, double want, double atol, double rtol, const char *what,
                         size_t i)
{
    if (fabs(got - want) > atol + rtol * fabs(want))
        fail_msg("%s[%zu]: got %.9g, expected %.9g", what, i, got, want);
}

/* ---- batch-norm ---- */

static void test_batchnorm_forward_matches_reference(void **state)
{
    /* n = 70 crosses the 64-column strip of norm.c. */
    int B = 5, n = 70;
    size_t N = (size_t)B * n;
    float *z = malloc(N * 4), *y = malloc(N * 4), *xh = malloc(N * 4), *y2 = malloc(N * 4);
    float g[70], b[70], mean[70], rstd[70], rm[70], rv[70];
    fill(z, N, 3.0f, 0.5f);
    fill(g, n, 0.5f, 1.0f);
    fill(b, n, 0.5f, 0.0f);
    fill(rm, n, 1.0f, 0.0f);
    fill(rv, n, 0.5f, 1.0f);
    float rm0[70], rv0[70];
    memcpy(rm0, rm, sizeof rm);
    memcpy(rv0, rv, sizeof rv);
    batchnorm_forward_train(y, xh, z, g, b, B, n, mean, rstd, rm, rv);

    double *zd = test_to_double(z, N), *gd = test_to_double(g, n), *bd = test_to_double(b, n);
    double *yd = malloc(N * sizeof *yd), *xd = malloc(N * sizeof *xd), md[70], vd[70];
    test_ref_bn(yd, zd, gd, bd, B, n, md, vd);
    test_ref_bn(xd, zd, NULL, NULL, B, n, NULL, NULL);
    for (size_t i = 0; i < N; i++) {
        assert_close(y[i], yd[i], 1e-5, 1e-5, "y", i);
        assert_close(xh[i], xd[i], 1e-5, 1e-5, "xhat", i);
    }
    for (int j = 0; j < n; j++) {
        assert_close(mean[j], md[j], 1e-6, 1e-6, "mean", j);
        assert_close(rstd[j], 1 / sqrt(vd[j] + EPS), 1e-6, 1e-5, "rstd", j);
        /* Running mean: momentum step; running variance: unbiased. */
        assert_close(rm[j], (1 - MOM) * rm0[j] + MOM * md[j], 1e-6, 1e-5, "run_mean", j);
        assert_close(rv[j], (1 - MOM) * rv0[j] + MOM * vd[j] * B / (B - 1), 1e-6, 1e-5,
                     "run_var", j);
    }
    /* y and xhat may alias z; mean and rstd may be NULL. */
    memcpy(y2, z, N * 4);
    batchnorm_forward_train(y2, NULL, y2, g, b, B, n, NULL, NULL, NULL, NULL);
    assert_memory_equal(y2, y, N * 4);
    float *y3 = malloc(N * 4);
    memcpy(y2, z, N * 4);
    batchnorm_forward_train(y3, y2, y2, g, b, B, n, mean, rstd, NULL, NULL); /* xhat over z */
    assert_memory_equal(y2, xh, N * 4);
    assert_memory_equal(y3, y, N * 4);
    free(y3);

    /* Evaluation mode uses the running statistics. */
    batchnorm_forward_infer(y, z, g, b, rm, rv, B, n);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < n; j++) {
            double want = gd[j] * (zd[i * n + j] - rm[j]) / sqrt(rv[j] + EPS) + bd[j];
            assert_close(y[i * n + j], want, 1e-5, 1e-5, "infer", (size_t)(i * n + j));
        }
    free(z), free(y), free(xh), free(y2), free(zd), free(gd), free(bd), free(yd), free(xd);
}

/* sum(R .* BN(z; gamma, beta)) in double. */
static double bn_objective(const double *z, const double *g, const double *b, const double *R,
                           int B, int n)
{
    double *y = malloc((size_t)B * n * sizeof *y), s = 0;
    test_ref_bn(y, z, g, b, B, n, NULL, NULL);
    for (int i = 0; i < B * n; i++)
        s += R[i] * y[i];
    free(y);
    return s;
}

static void test_batchnorm_backward_is_finite_difference(void **state)
{
    int B = 6, n = 67;
    size_t N = (size_t)B * n;
    float *z = malloc(N * 4), *R = malloc(N * 4), *y = malloc(N * 4), *xh = malloc(N * 4),
          *dz = malloc(N * 4);
    float g[67], b[67], rstd[67], dg[67], db[67];
    fill(z, N, 2.0f, 0.3f);
    fill(R, N, 1.0f, 0.0f);
    fill(g, n, 0.5f, 1.0f);
    fill(b, n, 0.5f, 0.0f);
    batchnorm_forward_train(y, xh, z, g, b, B, n, NULL, rstd, NULL, NULL);
    batchnorm_backward(dz, dg, db, R, xh, g, rstd, B, n);

    double *zd = test_to_double(z, N), *Rd = test_to_double(R, N), *gd = test_to_double(g, n),
           *bd = test_to_double(b, n), h = 1e-6;
    for (size_t i = 0; i < N; i++) {
        double keep = zd[i];
        zd[i] = keep + h;
        double up = bn_objective(zd, gd, bd, Rd, B, n);
        zd[i] = keep - h;
        double dn = bn_objective(zd, gd, bd, Rd, B, n);
        zd[i] = keep;
        assert_close(dz[i], (up - dn) / (2 * h), 2e-5, 2e-3, "dz", i);
    }
    for (int j = 0; j < n; j++) {
        double keep = gd[j];
        gd[j] = keep + h;
        double up = bn_objective(zd, gd, bd, Rd, B, n);
        gd[j] = keep - h;
        double dn = bn_objective(zd, gd, bd, Rd, B, n);
        gd[j] = keep;
        assert_close(dg[j], (up - dn) / (2 * h), 2e-5, 2e-3, "dgamma", j);
        keep = bd[j];
        bd[j] = keep + h;
        up = bn_objective(zd, gd, bd, Rd, B, n);
        bd[j] = keep - h;
        dn = bn_objective(zd, gd, bd, Rd, B, n);
        bd[j] = keep;
        assert_close(db[j], (up - dn) / (2 * h), 2e-5, 2e-3, "dbeta", j);
    }
    /* dz may alias dy. */
    float *d2 = malloc(N * 4);
    memcpy(d2, R, N * 4);
    batchnorm_backward(d2, NULL, NULL, d2, xh, g, rstd, B, n);
    assert_memory_equal(d2, dz, N * 4);
    free(z), free(R), free(y), free(xh), free(dz), free(d2), free(zd), free(Rd), free(gd),
        free(bd);
}

static void test_batchnorm_running_stats_are_a_momentum_average(void **state)
{
    /* Ten batches; the running statistics must equal the closed form
     * (1-m)^k s_0 + sum_i m (1-m)^(k-1-i) s_i of the batch statistics. */
    enum { K = 10, B = 7, n = 9 };
    float z[B * n], y[B * n], rm[n], rv[n];
    double bm[K][n], bv[K][n];
    for (int j = 0; j < n; j++)
        rm[j] = 0.0f, rv[j] = 1.0f;
    for (int k = 0; k < K; k++) {
        fill(z, B * n, 2.0f, (float)k * 0.3f);
        double *zd = test_to_double(z, B * n), yd[B * n];
        test_ref_bn(yd, zd, NULL, NULL, B, n, bm[k], bv[k]);
        free(zd);
        batchnorm_forward_train(y, NULL, z, NULL, NULL, B, n, NULL, NULL, rm, rv);
    }
    for (int j = 0; j < n; j++) {
        double em = 0, ev = pow(1 - MOM, K);
        for (int k = 0; k < K; k++) {
            em += MOM * pow(1 - MOM, K - 1 - k) * bm[k][j];
            ev += MOM * pow(1 - MOM, K - 1 - k) * bv[k][j] * B / (B - 1);
        }
        assert_close(rm[j], em, 1e-6, 1e-5, "run_mean", j);
        assert_close(rv[j], ev, 1e-6, 1e-5, "run_var", j);
    }
}

/* ---- layer-norm ---- */

static double ln_objective(const double *x, const double *R, int B, int n)
{
    double *y = malloc((size_t)B * n * sizeof *y), s = 0;
    test_ref_ln(y, x, B, n);
    for (int i = 0; i < B * n; i++)
        s += R[i] * y[i];
    free(y);
    return s;
}

static void test_layernorm_forward_and_backward(void **state)
{
    int B = 5, n = 33;
    size_t N = (size_t)B * n;
    float *x = malloc(N * 4), *y = malloc(N * 4), *R = malloc(N * 4), *dx = malloc(N * 4);
    float rstd[5];
    fill(x, N, 2.0f, 0.7f);
    fill(R, N, 1.0f, 0.0f);
    layernorm_forward(y, x, rstd, B, n);
    double *xd = test_to_double(x, N), *Rd = test_to_double(R, N), *yd = malloc(N * sizeof *yd), h = 1e-6;
    test_ref_ln(yd, xd, B, n);
    for (size_t i = 0; i < N; i++)
        assert_close(y[i], yd[i], 1e-5, 1e-5, "y", i);
    layernorm_backward(dx, R, x, rstd, B, n);
    for (size_t i = 0; i < N; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double up = ln_objective(xd, Rd, B, n);
        xd[i] = keep - h;
        double dn = ln_objective(xd, Rd, B, n);
        xd[i] = keep;
        assert_close(dx[i], (up - dn) / (2 * h), 2e-5, 2e-3, "dx", i);
    }
    /* y may alias x. */
    float *y2 = malloc(N * 4);
    memcpy(y2, x, N * 4);
    layernorm_forward(y2, y2, rstd, B, n);
    assert_memory_equal(y2, y, N * 4);
    free(x), free(y), free(y2), free(R), free(dx), free(xd), free(Rd), free(yd);
}

static void test_ms_layernorm_backward_equals_ordinary(void **state)
{
    int B = 9, n = 130;
    size_t N = (size_t)B * n;
    float *x = malloc(N * 4), *y = malloc(N * 4), *dy = malloc(N * 4), *a = malloc(N * 4),
          *ms = malloc(N * 4);
    float rstd[9];
    fill(x, N, 4.0f, 1.5f);
    fill(dy, N, 1.0f, 0.2f);
    layernorm_forward(y, x, rstd, B, n);
    layernorm_backward(a, dy, x, rstd, B, n);
    memcpy(ms, dy, N * 4);
    layernorm_backward_ms(ms, ms, y, rstd, B, n); /* dx aliasing dy */
    double mx = 0, worst = 0;
    for (size_t i = 0; i < N; i++) {
        mx = fmax(mx, fabs(a[i]));
        worst = fmax(worst, fabs(a[i] - ms[i]));
    }
    print_message("MS-LN vs LN backward: max |difference| %.3g (max |dx| %.3g)\n", worst, mx);
    assert_true(mx > 0.1);
    assert_true(worst <= 1e-5 * mx);
    free(x), free(y), free(dy), free(a), free(ms);
}

/* ---- BP through norm layers ---- */

/* One BP step on a tiny net with norms; every gradient (weights, biases,
 * gamma, beta) against central differences of test_ref_loss. */
static void check_bp_norm_gradients(enum mt_act act, enum mt_normkind n1, enum mt_normkind n2)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "bp", 2, 7, act, 8, 64);
    s.model.width[2] = 5;
    s.model.norm[1] = n1;
    s.model.norm[2] = n2;
    s.optim.kind = MT_OPT_SGD;
    s.optim.lr = 0.1f;
    assert_ok(trainer_init(&t, &s, &err), err);
    /* gamma and beta away from 1 and 0, so their gradients are exercised. */
    for (int l = 1; l < t.net.d.n_layers; l++)
        if (t.net.gamma[l])
            for (int j = 0; j < t.net.d.width[l]; j++) {
                t.net.gamma[l][j] = 1.0f + 0.5f * frand();
                t.net.beta[l][j] = 0.3f * frand();
            }
    char what[64];
    snprintf(what, sizeof what, "%s %s/%s", act_name(act), norm_kind_name(n1), norm_kind_name(n2));
    assert_step_gradients_match_fd(&t, 8, test_ref_loss, what);
    trainer_fini(&t);
}

static void test_bp_gradients_batchnorm_relu(void **state)
{
    check_bp_norm_gradients(MT_ACT_RELU, MT_NK_BATCH, MT_NK_BATCH);
}
static void test_bp_gradients_batchnorm_gelu(void **state)
{
    check_bp_norm_gradients(MT_ACT_GELU, MT_NK_BATCH, MT_NK_BATCH);
}
static void test_bp_gradients_layernorm_relu(void **state)
{
    check_bp_norm_gradients(MT_ACT_RELU, MT_NK_LAYER, MT_NK_LAYER);
}
static void test_bp_gradients_layernorm_silu(void **state)
{
    check_bp_norm_gradients(MT_ACT_SILU, MT_NK_LAYER, MT_NK_LAYER);
}
static void test_bp_gradients_mixed_norms_tanh(void **state)
{
    check_bp_norm_gradients(MT_ACT_TANH, MT_NK_BATCH, MT_NK_LAYER);
    check_bp_norm_gradients(MT_ACT_GELU, MT_NK_LAYER, MT_NK_NONE);
}

/* Three BP steps: the running statistics equal the momentum average of
 * each step's batch statistics (from the weights before that step), and
 * evaluation (rule_forward_rolling) uses them. */
static void test_bp_batchnorm_running_stats_and_evaluation(void **state)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "bp", 2, 7, MT_ACT_RELU, 8, 64);
    s.model.width[2] = 6;
    s.model.norm[1] = s.model.norm[2] = MT_NK_BATCH;
    s.optim.kind = MT_OPT_SGD;
    s.optim.lr = 0.1f;
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    size_t P = model_param_count(d);
    int B = 8;
    double em[3][8], ev[3][8], bm0[8], bv0[8], bm1[8], bv1[8];
    double *bm[3] = {NULL, bm0, bm1}, *bv[3] = {NULL, bv0, bv1};
    for (int l = 1; l <= 2; l++)
        for (int j = 0; j < d->width[l]; j++)
            em[l][j] = 0, ev[l][j] = 1;
    double lg[8 * 4];
    for (int step = 0; step < 3; step++) {
        uint32_t idx[8];
        for (int i = 0; i < B; i++)
            idx[i] = (uint32_t)(8 * step + i);
        data_batch(&t.train, &t.norm, idx, B, t.x, t.y);
        double *p = test_to_double(t.net.params, P);
        test_ref_forward(d, p, t.x, B, lg, NULL, NULL, bm, bv);
        free(p);
        for (int l = 1; l <= 2; l++)
            for (int j = 0; j < d->width[l]; j++) {
                em[l][j] = (1 - MOM) * em[l][j] + MOM * bm[l][j];
                ev[l][j] = (1 - MOM) * ev[l][j] + MOM * bv[l][j] * B / (B - 1);
            }
        struct mt_step_result res;
        t.lr = 0.1f;
        assert_ok(t.rule->step(&t, t.x, t.y, B, &res, &err), err);
    }
    for (int l = 1; l <= 2; l++)
        for (int j = 0; j < d->width[l]; j++) {
            assert_close(t.net.run_mean[l][j], em[l][j], 1e-5, 1e-4, "run_mean", (size_t)j);
            assert_close(t.net.run_var[l][j], ev[l][j], 1e-5, 1e-4, "run_var", (size_t)j);
        }
    /* Evaluation mode: the plain forward with the running statistics. */
    double *rm[3] = {NULL, NULL, NULL}, *rv[3] = {NULL, NULL, NULL};
    for (int l = 1; l <= 2; l++) {
        rm[l] = test_to_double(t.net.run_mean[l], (size_t)d->width[l]);
        rv[l] = test_to_double(t.net.run_var[l], (size_t)d->width[l]);
    }
    double *p = test_to_double(t.net.params, P), *ptrain = malloc(sizeof(double) * B * 4);
    test_ref_forward(d, p, t.x, B, lg, rm, rv, NULL, NULL);
    test_ref_forward(d, p, t.x, B, ptrain, NULL, NULL, NULL, NULL);
    float b0[8 * 7], b1[8 * 7];
    const float *out = rule_forward_rolling(&t.net, t.x, B, b0, b1);
    double differs = 0;
    for (int i = 0; i < B * 4; i++) {
        assert_close(out[i], lg[i], 1e-4, 1e-4, "eval logits", (size_t)i);
        differs = fmax(differs, fabs(lg[i] - ptrain[i]));
    }
    assert_true(differs > 1e-3); /* the batch statistics would give other logits */
    for (int l = 1; l <= 2; l++)
        free(rm[l]), free(rv[l]);
    free(p), free(ptrain);
    trainer_fini(&t);
}

/* Layer-norm has no mode: the evaluation forward equals the training one. */
static void test_layernorm_forward_modes_agree(void **state)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "bp", 3, 10, MT_ACT_GELU, 8, 64);
    for (int l = 1; l <= 3; l++)
        s.model.norm[l] = MT_NK_LAYER;
    assert_ok(trainer_init(&t, &s, &err), err);
    uint32_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    data_batch(&t.train, &t.norm, idx, 8, t.x, t.y);
    float b0[80], b1[80];
    const float *ev = rule_forward_rolling(&t.net, t.x, 8, b0, b1);
    struct kept_acts k;
    size_t mark = arena_mark(t.arena);
    assert_ok(rule_forward_keep(&t, t.x, 8, &k, &err), err);
    assert_memory_equal(ev, k.logits, 8 * 4 * sizeof(float));
    /* What BP keeps for a layer-norm layer: input, output and 1/sigma. */
    assert_non_null(k.A[2]);
    assert_non_null(k.rstd[2]);
    assert_non_null(k.Z[2]);
    assert_null(k.xhat[2]);
    arena_pop(t.arena, mark);
    trainer_fini(&t);
}

/* ---- memory ---- */

static void test_bp_plan_matches_measured_with_norms(void **state)
{
    static const int batches[] = {1, 8, 33};
    static const enum mt_act acts[] = {MT_ACT_RELU, MT_ACT_GELU};
    for (int nk = MT_NK_BATCH; nk <= MT_NK_LAYER; nk++)
        for (int a = 0; a < 2; a++)
            for (int depth = 1; depth <= 3; depth++)
                for (int bi = 0; bi < 3; bi++) {
                    struct mt_spec s;
                    struct mt_mem_stats st;
                    struct mt_mem_plan plan;
                    int B = batches[bi];
                    test_spec(&s, "bp", depth, 20, acts[a], B, 3L * B + 5);
                    for (int l = 1; l <= depth; l++)
                        s.model.norm[l] = (enum mt_normkind)nk;
                    s.model.width[1] = 13;
                    assert_plan_matches(&s, &st, &plan);
                    /* kept bytes follow the formula of common.h */
                    size_t want = (size_t)B * 4 * 4; /* logits */
                    for (int l = 1; l <= depth; l++) {
                        size_t n = (size_t)s.model.width[l];
                        want += 4 * B * n * (acts[a] == MT_ACT_GELU ? 2 : 1);
                        want += nk == MT_NK_BATCH ? 4 * (B * n + n) : 4 * (B * n + B);
                    }
                    assert_int_equal(st.peak[MT_MEM_ACTS], want);
                }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm_forward_matches_reference),
        cmocka_unit_test(test_batchnorm_backward_is_finite_difference),
        cmocka_unit_test(test_batchnorm_running_stats_are_a_momentum_average),
        cmocka_unit_test(test_layernorm_forward_and_backward),
        cmocka_unit_test(test_ms_layernorm_backward_equals_ordinary),
        cmocka_unit_test(test_bp_gradients_batchnorm_relu),
        cmocka_unit_test(test_bp_gradients_batchnorm_gelu),
        cmocka_unit_test(test_bp_gradients_layernorm_relu),
        cmocka_unit_test(test_bp_gradients_layernorm_silu),
        cmocka_unit_test(test_bp_gradients_mixed_norms_tanh),
        cmocka_unit_test(test_bp_batchnorm_running_stats_and_evaluation),
        cmocka_unit_test(test_layernorm_forward_modes_agree),
        cmocka_unit_test(test_bp_plan_matches_measured_with_norms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
