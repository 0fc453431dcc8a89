/* norm.h: batch-norm and layer-norm over (B, n) row-major tensors, the
 * normalisation layers a model can attach to its hidden layers (model.h,
 * struct mt_model_desc.norm).
 *
 * Batch-norm normalises each feature over the batch (biased variance in the
 * normalisation, unbiased in the running variance, momentum MT_BN_MOMENTUM,
 * as PyTorch does); layer-norm normalises each row over its features and
 * has no affine parameters (spec 8.2: gamma and beta are merged into the
 * next linear layer). sigma = sqrt(var + MT_NORM_EPS). No allocation; the
 * outputs may alias the inputs where noted. */
#ifndef MT_NORM_H
#define MT_NORM_H

#define MT_NORM_EPS 1e-5f
#define MT_BN_MOMENTUM 0.1f

/* Training mode: xhat = (z - mean) * rstd per feature, y = gamma xhat + beta.
 * Writes xhat (may be NULL, or alias z), y (may alias z), mean (n) and
 * rstd (n) = 1/sigma; updates run_mean and run_var when not NULL. */
void batchnorm_forward_train(float *y, float *xhat, const float *z, const float *gamma,
                             const float *beta, int B, int n, float *mean, float *rstd,
                             float *run_mean, float *run_var);
/* Evaluation mode: y = gamma (z - run_mean) / sqrt(run_var + eps) + beta (y may alias z). */
void batchnorm_forward_infer(float *y, const float *z, const float *gamma, const float *beta,
                             const float *run_mean, const float *run_var, int B, int n);
/* Backward from the normalised input: dz = rstd (g - mean(g) - xhat mean(g xhat)) with
 * g = gamma dy; dgamma = sum dy xhat, dbeta = sum dy (over the batch, overwritten).
 * dz may alias dy. */
void batchnorm_backward(float *dz, float *dgamma, float *dbeta, const float *dy,
                        const float *xhat, const float *gamma, const float *rstd, int B, int n);
/* The same from the layer's input z and the batch statistics (mean, rstd)
 * of the forward, as autograd keeps them: xhat is recomputed as the forward
 * computed it, so the result has the same bits. dz may alias dy, not z. */
void batchnorm_backward_input(float *dz, float *dgamma, float *dbeta, const float *dy,
                              const float *z, const float *mean, const float *gamma,
                              const float *rstd, int B, int n);

/* y = (x - mean_row) * rstd_row; rstd (B) = 1/sigma of each row. y may alias x. */
void layernorm_forward(float *y, const float *x, float *rstd, int B, int n);
/* The ordinary backward, from the layer's input x (what autograd keeps). */
void layernorm_backward(float *dx, const float *dy, const float *x, const float *rstd, int B,
                        int n);
/* The memory-sharing backward (spec 8.2), from the output y the next linear
 * layer keeps anyway: dx = rstd (dy - mean(dy) - y mean(dy y)). dx may alias dy. */
void layernorm_backward_ms(float *dx, const float *dy, const float *y, const float *rstd, int B,
                           int n);

#endif
