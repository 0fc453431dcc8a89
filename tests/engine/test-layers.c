/* test-layers.c: each layer and activation against a slow reference:
 * sgemm against three loops, the loss gradient and every activation's BP
 * gradients against central finite differences. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "blas.h"
#include "dense.h"
#include "loss.h"
#include "rng.h"
#include "rules/common.h"
#include "testutil.h"

static void fill(float *a, size_t n, struct mt_rng *r)
{
    for (size_t i = 0; i < n; i++)
        a[i] = rng_uniform_range(r, -1, 1);
}

static void test_gemm_matches_naive_loops(void **state)
{
    struct mt_rng r;
    rng_seed(&r, 1);
    int M = 13, N = 17, K = 29;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    fill(A, (size_t)M * K, &r);
    fill(B, (size_t)K * N, &r);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int beta = 0; beta < 2; beta++) {
                fill(C1, (size_t)M * N, &r);
                for (int i = 0; i < M * N; i++)
                    C2[i] = C1[i];
                blas_gemm(ta, tb, M, N, K, 0.5f, A, B, (float)beta, C1);
                blas_gemm_ref(ta, tb, M, N, K, 0.5f, A, B, (float)beta, C2);
                for (int i = 0; i < M * N; i++)
                    assert_float_equal(C1[i], C2[i], 1e-5);
            }
    free(A), free(B), free(C1), free(C2);
}

/* Thin products (a side of at most 16) run on one OpenBLAS thread; the
 * result still matches the loops and the thread count is put back. */
static void test_gemm_thin_shapes_on_two_threads(void **state)
{
    struct mt_rng r;
    rng_seed(&r, 5);
    static const int shapes[][5] = {
        {0, 1, 128, 10, 300}, {1, 0, 10, 300, 128}, {0, 0, 128, 300, 10}, {0, 1, 64, 96, 80},
    };
    int before = blas_threads();
    blas_set_threads(2);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int ta = shapes[s][0], tb = shapes[s][1], M = shapes[s][2], N = shapes[s][3],
            K = shapes[s][4];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
        fill(A, (size_t)M * K, &r);
        fill(B, (size_t)K * N, &r);
        fill(C1, (size_t)M * N, &r);
        memcpy(C2, C1, sizeof(float) * M * N);
        blas_gemm(ta, tb, M, N, K, 1.0f, A, B, 0.9f, C1);
        blas_gemm_ref(ta, tb, M, N, K, 1.0f, A, B, 0.9f, C2);
        for (int i = 0; i < M * N; i++)
            assert_float_equal(C1[i], C2[i], 1e-4);
        assert_int_equal(blas_threads(), 2);
        free(A), free(B), free(C1), free(C2);
    }
    blas_set_threads(before);
}

/* dW = beta dW + dZ^T H and db = beta db + column sums (SGD momentum's
 * accumulation), and y += alpha x, against loops. */
static void test_dense_accumulate_and_axpy_match_naive(void **state)
{
    struct mt_rng r;
    rng_seed(&r, 6);
    int Bt = 6, IN = 9, OUT = 4;
    float H[54], dZ[24], dW[36], db[4], dW0[36], db0[4], x[37], y[37], y0[37];
    fill(H, 54, &r), fill(dZ, 24, &r), fill(dW, 36, &r), fill(db, 4, &r);
    memcpy(dW0, dW, sizeof dW), memcpy(db0, db, sizeof db);
    dense_accumulate_params(dW, db, 0.9f, dZ, H, Bt, IN, OUT);
    for (int o = 0; o < OUT; o++) {
        double sb = 0;
        for (int b = 0; b < Bt; b++)
            sb += dZ[b * OUT + o];
        assert_float_equal(db[o], 0.9 * db0[o] + sb, 1e-5);
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int b = 0; b < Bt; b++)
                s += dZ[b * OUT + o] * H[b * IN + i];
            assert_float_equal(dW[o * IN + i], 0.9 * dW0[o * IN + i] + s, 1e-5);
        }
    }
    fill(x, 37, &r), fill(y, 37, &r);
    memcpy(y0, y, sizeof y);
    blas_axpy(37, -0.25f, x, y);
    for (int i = 0; i < 37; i++)
        assert_float_equal(y[i], y0[i] - 0.25 * x[i], 1e-6);
}

static void test_dense_backward_matches_naive(void **state)
{
    struct mt_rng r;
    rng_seed(&r, 2);
    int Bt = 5, IN = 7, OUT = 3;
    float H[35], W[21], dZ[15], dW[21], db[3], dH[35];
    fill(H, 35, &r), fill(W, 21, &r), fill(dZ, 15, &r);
    dense_backward_params(dW, db, dZ, H, Bt, IN, OUT);
    dense_backward_input(dH, dZ, W, Bt, IN, OUT);
    for (int o = 0; o < OUT; o++) {
        double sb = 0;
        for (int b = 0; b < Bt; b++)
            sb += dZ[b * OUT + o];
        assert_float_equal(db[o], sb, 1e-5);
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int b = 0; b < Bt; b++)
                s += dZ[b * OUT + o] * H[b * IN + i];
            assert_float_equal(dW[o * IN + i], s, 1e-5);
        }
    }
    for (int b = 0; b < Bt; b++)
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int o = 0; o < OUT; o++)
                s += dZ[b * OUT + o] * W[o * IN + i];
            assert_float_equal(dH[b * IN + i], s, 1e-5);
        }
}

static void test_softmax_xent_gradient_is_finite_difference(void **state)
{
    struct mt_rng r;
    rng_seed(&r, 3);
    int Bt = 4, C = 5;
    float Z[20], E[20];
    uint8_t y[4] = {0, 3, 4, 1};
    fill(Z, 20, &r);
    for (int i = 0; i < 20; i++)
        E[i] = Z[i] * 30; /* large logits: the stable path matters */
    for (int i = 0; i < 20; i++)
        Z[i] = E[i];
    double loss = loss_softmax_xent_backward(E, y, Bt, C, NULL);
    assert_true(isfinite(loss));
    for (int i = 0; i < 20; i++) {
        float h = 1e-2f, keep = Z[i];
        Z[i] = keep + h;
        double lp = loss_softmax_xent(Z, y, Bt, C, NULL);
        Z[i] = keep - h;
        double lm = loss_softmax_xent(Z, y, Bt, C, NULL);
        Z[i] = keep;
        assert_float_equal(E[i], (lp - lm) / (2 * h), 2e-3);
    }
}

static void test_activation_derivatives_match_differences(void **state)
{
    const float xs[] = {-3.1f, -0.7f, -0.05f, 0.05f, 0.4f, 2.5f};
    for (int a = 0; a < MT_ACT_N; a++)
        for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
            double h = 1e-3, x = xs[i];
            double fd = (act_f((float)(x + h), a) - act_f((float)(x - h), a)) / (2 * h);
            assert_float_equal(act_df(xs[i], a), fd, 2e-3);
            /* act_backward reads H (or Z for GELU) and must agree with act_df. */
            float z = xs[i], hval = act_f(z, a), dh = 1.0f;
            act_backward(&dh, act_backward_needs_z(a) ? &z : &hval, 1, a);
            assert_float_equal(dh, act_df(z, a), 1e-5);
        }
}

static void check_bp_gradients(enum mt_act act)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "bp", 2, 7, act, 8, 64);
    s.model.width[2] = 5;
    s.optim.kind = MT_OPT_SGD;
    s.optim.lr = 0.1f;
    assert_ok(trainer_init(&t, &s, &err), err);
    assert_step_gradients_match_fd(&t, 8, test_ref_loss, act_name(act));
    trainer_fini(&t);
}

static void test_bp_gradients_relu(void **state) { check_bp_gradients(MT_ACT_RELU); }
static void test_bp_gradients_leaky_relu(void **state) { check_bp_gradients(MT_ACT_LEAKY_RELU); }
static void test_bp_gradients_tanh(void **state) { check_bp_gradients(MT_ACT_TANH); }
static void test_bp_gradients_sigmoid(void **state) { check_bp_gradients(MT_ACT_SIGMOID); }
static void test_bp_gradients_gelu(void **state) { check_bp_gradients(MT_ACT_GELU); }
static void test_bp_gradients_identity(void **state) { check_bp_gradients(MT_ACT_IDENTITY); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_matches_naive_loops),
        cmocka_unit_test(test_gemm_thin_shapes_on_two_threads),
        cmocka_unit_test(test_dense_accumulate_and_axpy_match_naive),
        cmocka_unit_test(test_dense_backward_matches_naive),
        cmocka_unit_test(test_softmax_xent_gradient_is_finite_difference),
        cmocka_unit_test(test_activation_derivatives_match_differences),
        cmocka_unit_test(test_bp_gradients_relu),
        cmocka_unit_test(test_bp_gradients_leaky_relu),
        cmocka_unit_test(test_bp_gradients_tanh),
        cmocka_unit_test(test_bp_gradients_sigmoid),
        cmocka_unit_test(test_bp_gradients_gelu),
        cmocka_unit_test(test_bp_gradients_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
