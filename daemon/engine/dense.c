/* dense.c: the fully connected layer (dense.h). */
#include "dense.h"

#include <string.h>

#include "blas.h"

void dense_forward(float *Z, const float *H, const float *W, int B, int IN, int OUT)
{
    blas_gemm(0, 1, B, OUT, IN, 1.0f, H, W, 0.0f, Z);
}

void colsum(float *restrict out, const float *restrict A, int rows, int n)
{
    memset(out, 0, (size_t)n * sizeof *out);
    for (int r = 0; r < rows; r++) {
        const float *restrict row = A + (size_t)r * n;
        for (int j = 0; j < n; j++)
            out[j] += row[j];
    }
}

void dense_backward_params(float *dW, float *db, const float *dZ, const float *H, int B, int IN,
                           int OUT)
{
    blas_gemm(1, 0, OUT, IN, B, 1.0f, dZ, H, 0.0f, dW);
    colsum(db, dZ, B, OUT);
}

void dense_backward_input(float *dH, const float *dZ, const float *M, int B, int IN, int OUT)
{
    blas_gemm(0, 0, B, IN, OUT, 1.0f, dZ, M, 0.0f, dH);
}

void dense_project(float *out, const float *E, const float *D, int B, int C, int N)
{
    blas_gemm(0, 0, B, N, C, 1.0f, E, D, 0.0f, out);
}
