/* blas.h: the engine's one door to OpenBLAS, plus the naive reference.
 *
 * All matrices are row-major. gemm computes C = alpha * op(A) op(B) + beta * C
 * with op(A) (M, K), op(B) (K, N), C (M, N). Every matrix product of the
 * engine goes through blas_gemm so a benchmark can time exactly those calls. */
#ifndef MT_BLAS_H
#define MT_BLAS_H

#include <stddef.h>

void blas_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A,
               const float *B, float beta, float *C);
/* The same on sub-matrices: lda, ldb, ldc are the row strides of A, B, C
 * as stored (at least their stored widths). */
void blas_gemm_ld(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* y += alpha x over n floats (OpenBLAS splits long ones over its threads). */
void blas_axpy(size_t n, float alpha, const float *x, float *y);
/* The same by three plain loops, for tests. */
void blas_gemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   const float *B, float beta, float *C);

/* OpenBLAS threads: set (0 = all cores) and read back. */
void blas_set_threads(int n);
int blas_threads(void);
/* The kernel OpenBLAS dispatched to ("Haswell", "SkylakeX", "Cooperlake"). */
const char *blas_corename(void);
/* "OpenBLAS 0.3.21 ..." as the library reports its build. */
const char *blas_config(void);

/* Optional call log for benchmarks: while on, each blas_gemm call is
 * recorded (up to cap entries), operands included, so the very same calls
 * on the very same buffers can be replayed and timed alone. */
struct blas_call {
    int transA, transB, M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
};
void blas_log_start(struct blas_call *buf, int cap);
int blas_log_stop(void); /* number of calls recorded */

#endif
