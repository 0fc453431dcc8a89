/* dense.c: the fully connected layer (dense.h). */
#include "dense.h"

#include <string.h>

#include "blas.h"
#include "simd.h"

void dense_forward(float *Z, const float *H, const float *W, int B, int IN, int OUT)
{
    blas_gemm(0, 1, B, OUT, IN, 1.0f, H, W, 0.0f, Z);
}

void dense_colsum(float *out, const float *A, int rows, int n)
{
    colsum_acc(out, 0.0f, A, rows, n);
}

void colsum_acc(float *restrict out, float beta, const float *restrict A, int rows, int n)
{
    colsum_acc_ld(out, beta, A, rows, n, n);
}

MT_CLONES
void colsum_acc_ld(float *restrict out, float beta, const float *restrict A, int rows, int n,
                   int lda)
{
    if (beta == 0.0f)
        memset(out, 0, (size_t)n * sizeof *out);
    else
        for (int j = 0; j < n; j++)
            out[j] *= beta;
    for (int r = 0; r < rows; r++) {
        const float *restrict row = A + (size_t)r * lda;
        for (int j = 0; j < n; j++)
            out[j] += row[j];
    }
}

void dense_backward_params(float *dW, float *db, const float *dZ, const float *H, int B, int IN,
                           int OUT)
{
    dense_accumulate_params(dW, db, 0.0f, dZ, H, B, IN, OUT);
}

void dense_accumulate_params(float *dW, float *db, float beta, const float *dZ, const float *H,
                             int B, int IN, int OUT)
{
    blas_gemm(1, 0, OUT, IN, B, 1.0f, dZ, H, beta, dW);
    if (db)
        colsum_acc(db, beta, dZ, B, OUT);
}

void dense_backward_input(float *dH, const float *dZ, const float *M, int B, int IN, int OUT)
{
    blas_gemm(0, 0, B, IN, OUT, 1.0f, dZ, M, 0.0f, dH);
}

void dense_project(float *out, const float *E, const float *D, int B, int C, int N)
{
    blas_gemm(0, 0, B, N, C, 1.0f, E, D, 0.0f, out);
}
