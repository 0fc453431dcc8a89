/* norm.c: batch-norm and layer-norm over (B, n) row-major tensors (norm.h).
 *
 * Sums run in double. Batch-norm reduces over the rows of a column, so it
 * walks the tensor row by row over a strip of NORM_STRIP columns with the
 * strip's accumulators on the stack (contiguous reads, no allocation).
 *
 * Batch-norm's running variance uses the unbiased variance, var * B / (B - 1),
 * as PyTorch does; with B = 1 (where PyTorch refuses) the biased one, 0.
 *
 * Beyond norm.h's contract, a NULL is accepted for: batchnorm_forward_train's
 * mean and rstd (not written), gamma and beta anywhere (gamma 1, beta 0),
 * batchnorm_backward's dgamma and dbeta (not written). */
#include "norm.h"

#include <math.h>
#include <stddef.h>

#define NORM_STRIP 64

void batchnorm_forward_train(float *y, float *xhat, const float *z, const float *gamma,
                             const float *beta, int B, int n, float *mean, float *rstd,
                             float *run_mean, float *run_var)
{
    double acc[NORM_STRIP];
    float mu[NORM_STRIP], r[NORM_STRIP];
    for (int j0 = 0; j0 < n; j0 += NORM_STRIP) {
        int w = n - j0 < NORM_STRIP ? n - j0 : NORM_STRIP;
        /* Statistics of the strip's columns: mean, then the biased variance. */
        for (int j = 0; j < w; j++)
            acc[j] = 0.0;
        for (int i = 0; i < B; i++) {
            const float *zr = z + (size_t)i * n + j0;
            for (int j = 0; j < w; j++)
                acc[j] += zr[j];
        }
        for (int j = 0; j < w; j++)
            mu[j] = (float)(acc[j] / B);
        for (int j = 0; j < w; j++)
            acc[j] = 0.0;
        for (int i = 0; i < B; i++) {
            const float *zr = z + (size_t)i * n + j0;
            for (int j = 0; j < w; j++) {
                double d = (double)zr[j] - mu[j];
                acc[j] += d * d;
            }
        }
        for (int j = 0; j < w; j++) {
            double var = acc[j] / B;
            float uvar = (float)(B > 1 ? acc[j] / (B - 1) : var);
            r[j] = (float)(1.0 / sqrt(var + MT_NORM_EPS));
            if (mean)
                mean[j0 + j] = mu[j];
            if (rstd)
                rstd[j0 + j] = r[j];
            if (run_mean)
                run_mean[j0 + j] = (1.0f - MT_BN_MOMENTUM) * run_mean[j0 + j]
                                   + MT_BN_MOMENTUM * mu[j];
            if (run_var)
                run_var[j0 + j] = (1.0f - MT_BN_MOMENTUM) * run_var[j0 + j]
                                  + MT_BN_MOMENTUM * uvar;
        }
        /* Normalise the strip (each element is read before it is written,
         * so xhat and y may alias z). */
        for (int i = 0; i < B; i++) {
            const float *zr = z + (size_t)i * n + j0;
            float *yr = y + (size_t)i * n + j0;
            float *xr = xhat ? xhat + (size_t)i * n + j0 : NULL;
            for (int j = 0; j < w; j++) {
                float xh = (zr[j] - mu[j]) * r[j];
                if (xr)
                    xr[j] = xh;
                yr[j] = (gamma ? gamma[j0 + j] : 1.0f) * xh + (beta ? beta[j0 + j] : 0.0f);
            }
        }
    }
}

void batchnorm_forward_infer(float *y, const float *z, const float *gamma, const float *beta,
                             const float *run_mean, const float *run_var, int B, int n)
{
    for (int i = 0; i < B; i++) {
        const float *zr = z + (size_t)i * n;
        float *yr = y + (size_t)i * n;
        for (int j = 0; j < n; j++) {
            float r = 1.0f / sqrtf(run_var[j] + MT_NORM_EPS);
            yr[j] = (gamma ? gamma[j] : 1.0f) * (zr[j] - run_mean[j]) * r
                    + (beta ? beta[j] : 0.0f);
        }
    }
}

/* xhat of element (i, j): read when kept, else recomputed from the input
 * exactly as batchnorm_forward_train computed it (the same bits). */
static inline float bn_xhat(const float *xhat, const float *z, const float *mean,
                            const float *rstd, size_t at, int j)
{
    return xhat ? xhat[at] : (z[at] - mean[j]) * rstd[j];
}

static void bn_backward(float *dz, float *dgamma, float *dbeta, const float *dy,
                        const float *xhat, const float *z, const float *mean,
                        const float *gamma, const float *rstd, int B, int n)
{
    double sg[NORM_STRIP], sb[NORM_STRIP];
    for (int j0 = 0; j0 < n; j0 += NORM_STRIP) {
        int w = n - j0 < NORM_STRIP ? n - j0 : NORM_STRIP;
        for (int j = 0; j < w; j++)
            sg[j] = sb[j] = 0.0;
        for (int i = 0; i < B; i++) {
            const float *d = dy + (size_t)i * n + j0;
            size_t at = (size_t)i * n + j0;
            for (int j = 0; j < w; j++) {
                sg[j] += (double)d[j] * bn_xhat(xhat, z, mean, rstd, at + j, j0 + j);
                sb[j] += d[j];
            }
        }
        /* dz = rstd gamma (dy - sum(dy)/B - xhat sum(dy xhat)/B), which is
         * rstd (g - mean(g) - xhat mean(g xhat)) with g = gamma dy. */
        float mg[NORM_STRIP], mb[NORM_STRIP], sc[NORM_STRIP];
        for (int j = 0; j < w; j++) {
            if (dgamma)
                dgamma[j0 + j] = (float)sg[j];
            if (dbeta)
                dbeta[j0 + j] = (float)sb[j];
            mg[j] = (float)(sg[j] / B);
            mb[j] = (float)(sb[j] / B);
            sc[j] = rstd[j0 + j] * (gamma ? gamma[j0 + j] : 1.0f);
        }
        for (int i = 0; i < B; i++) {
            const float *d = dy + (size_t)i * n + j0;
            size_t at = (size_t)i * n + j0;
            float *o = dz + at;
            for (int j = 0; j < w; j++)
                o[j] = sc[j] * (d[j] - mb[j] - bn_xhat(xhat, z, mean, rstd, at + j, j0 + j) * mg[j]);
        }
    }
}

void batchnorm_backward(float *dz, float *dgamma, float *dbeta, const float *dy,
                        const float *xhat, const float *gamma, const float *rstd, int B, int n)
{
    bn_backward(dz, dgamma, dbeta, dy, xhat, NULL, NULL, gamma, rstd, B, n);
}

void batchnorm_backward_input(float *dz, float *dgamma, float *dbeta, const float *dy,
                              const float *z, const float *mean, const float *gamma,
                              const float *rstd, int B, int n)
{
    bn_backward(dz, dgamma, dbeta, dy, NULL, z, mean, gamma, rstd, B, n);
}

void layernorm_forward(float *y, const float *x, float *rstd, int B, int n)
{
    for (int i = 0; i < B; i++) {
        const float *xr = x + (size_t)i * n;
        float *yr = y + (size_t)i * n;
        double s = 0.0;
        for (int j = 0; j < n; j++)
            s += xr[j];
        float mean = (float)(s / n);
        double v = 0.0;
        for (int j = 0; j < n; j++) {
            double d = (double)xr[j] - mean;
            v += d * d;
        }
        float r = (float)(1.0 / sqrt(v / n + MT_NORM_EPS));
        rstd[i] = r;
        for (int j = 0; j < n; j++)
            yr[j] = (xr[j] - mean) * r;
    }
}

void layernorm_backward(float *dx, const float *dy, const float *x, const float *rstd, int B,
                        int n)
{
    /* From the input, as autograd has it: with c = x - mean,
     * dx = r (dy - mean(dy)) - c r^3 mean(dy c). */
    for (int i = 0; i < B; i++) {
        const float *xr = x + (size_t)i * n, *d = dy + (size_t)i * n;
        float *o = dx + (size_t)i * n;
        double s = 0.0;
        for (int j = 0; j < n; j++)
            s += xr[j];
        float mean = (float)(s / n), r = rstd[i];
        double sd = 0.0, sdc = 0.0;
        for (int j = 0; j < n; j++) {
            sd += d[j];
            sdc += (double)d[j] * (xr[j] - mean);
        }
        float md = (float)(sd / n), k = (float)(sdc / n) * r * r * r;
        for (int j = 0; j < n; j++)
            o[j] = r * (d[j] - md) - (xr[j] - mean) * k;
    }
}

void layernorm_backward_ms(float *dx, const float *dy, const float *y, const float *rstd, int B,
                           int n)
{
    /* From the output: dx = r (dy - mean(dy) - y mean(dy y)). */
    for (int i = 0; i < B; i++) {
        const float *yr = y + (size_t)i * n, *d = dy + (size_t)i * n;
        float *o = dx + (size_t)i * n;
        double sd = 0.0, sdy = 0.0;
        for (int j = 0; j < n; j++) {
            sd += d[j];
            sdy += (double)d[j] * yr[j];
        }
        float md = (float)(sd / n), mdy = (float)(sdy / n), r = rstd[i];
        for (int j = 0; j < n; j++)
            o[j] = r * (d[j] - md - yr[j] * mdy);
    }
}
