/* blas.c: cblas_sgemm behind one function, and the reference loop (blas.h). */
#include "blas.h"

#include <cblas.h>

extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);
extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int);

static struct blas_call *log_buf;
static int log_cap, log_n;

/* OpenBLAS splits a product over its threads by size alone. A thin one
 * (a side of at most 16: the 10-class output layer) runs faster on one
 * thread than split in two: 128x10x1024 takes 39 us instead of 79 on this
 * machine's 2 cores. Like any change of split, this can move the last bits
 * of a multi-threaded run's results (one thread is untouched); each run is
 * still the same run after run. */
static int thin(int M, int N, int K)
{
    return M <= 16 || N <= 16 || K <= 16;
}

void blas_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A,
               const float *B, float beta, float *C)
{
    blas_gemm_ld(transA, transB, M, N, K, alpha, A, transA ? M : K, B, transB ? K : N, beta, C,
                 N);
}

void blas_gemm_ld(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (log_buf) {
        int i = __atomic_fetch_add(&log_n, 1, __ATOMIC_RELAXED); /* par.h workers log too */
        if (i < log_cap)
            log_buf[i] = (struct blas_call){transA, transB, M, N, K, alpha, beta, A, B, C,
                                            lda, ldb, ldc};
    }
    int threads = thin(M, N, K) ? openblas_get_num_threads() : 1;
    if (threads > 1)
        openblas_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (threads > 1)
        openblas_set_num_threads(threads);
}

void blas_axpy(size_t n, float alpha, const float *x, float *y)
{
    const size_t chunk = (size_t)1 << 30; /* cblas takes an int count */
    for (size_t i = 0; i < n; i += chunk)
        cblas_saxpy((int)(n - i < chunk ? n - i : chunk), alpha, x + i, 1, y + i, 1);
}

void blas_gemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   const float *B, float beta, float *C)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
                float b = transB ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
                acc += (double)a * b;
            }
            float *c = &C[(size_t)i * N + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

void blas_set_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}

int blas_threads(void)
{
    return openblas_get_num_threads();
}

const char *blas_corename(void)
{
    return openblas_get_corename();
}

const char *blas_config(void)
{
    return openblas_get_config();
}

void blas_log_start(struct blas_call *buf, int cap)
{
    log_buf = buf;
    log_cap = cap;
    log_n = 0;
}

int blas_log_stop(void)
{
    log_buf = NULL;
    return log_n < log_cap ? log_n : log_cap;
}
