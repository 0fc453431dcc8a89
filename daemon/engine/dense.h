/* dense.h: the fully connected layer as free functions (llm.c style).
 *
 * Shapes: H (B, IN) layer input, W (OUT, IN), b (OUT), Z (B, OUT).
 * Forward Z = H W^T (NoTrans, Trans); weight gradient dW = dZ^T H
 * (Trans, NoTrans); input gradient dH = dZ W (NoTrans, NoTrans); spec 0.1.
 * The backward functions overwrite their outputs (beta 0) unless told to
 * accumulate. No allocation. */
#ifndef MT_DENSE_H
#define MT_DENSE_H

/* Z = H W^T (bias and nonlinearity are added by act_forward_bias). */
void dense_forward(float *Z, const float *H, const float *W, int B, int IN, int OUT);
/* dW (OUT, IN) = dZ^T H; db (OUT) = column sums of dZ. */
void dense_backward_params(float *dW, float *db, const float *dZ, const float *H, int B, int IN,
                           int OUT);
/* The same added to what is there, scaled: dW = beta dW + dZ^T H and
 * db = beta db + column sums of dZ (beta 0 overwrites; db NULL = no bias). SGD momentum uses
 * it to take the gradient straight into its momentum buffer (optim.h). */
void dense_accumulate_params(float *dW, float *db, float beta, const float *dZ, const float *H,
                             int B, int IN, int OUT);
/* dH (B, IN) = dZ M with M (OUT, IN): W for BP, a feedback matrix for FA. */
void dense_backward_input(float *dH, const float *dZ, const float *M, int B, int IN, int OUT);
/* out (B, N) = E (B, C) D (C, N): DFA's direct projection of the error. */
void dense_project(float *out, const float *E, const float *D, int B, int C, int N);
/* Column sums: out (n) = sum over rows of A (rows, n). */
void dense_colsum(float *out, const float *A, int rows, int n);
/* out = beta out + the column sums of A (beta 0 overwrites). */
void colsum_acc(float *out, float beta, const float *A, int rows, int n);
/* The same over n columns of rows lda floats apart. */
void colsum_acc_ld(float *out, float beta, const float *A, int rows, int n, int lda);

#endif
