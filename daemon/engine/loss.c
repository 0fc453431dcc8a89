/* loss.c: stable softmax cross-entropy (loss.h). */
#include "loss.h"

#include <math.h>
#include <stddef.h>

/* Log-sum-exp of a row and its argmax. */
static double row_lse(const float *z, int C, int *argmax)
{
    float mx = z[0];
    int am = 0;
    for (int j = 1; j < C; j++)
        if (z[j] > mx) {
            mx = z[j];
            am = j;
        }
    double s = 0;
    for (int j = 0; j < C; j++)
        s += exp((double)(z[j] - mx));
    *argmax = am;
    return mx + log(s);
}

double loss_softmax_xent(const float *Z, const uint8_t *y, int B, int C, int *correct)
{
    double loss = 0;
    int hits = 0;
    for (int i = 0; i < B; i++) {
        const float *z = Z + (size_t)i * C;
        int am;
        double lse = row_lse(z, C, &am);
        loss += lse - z[y[i]];
        hits += am == y[i];
    }
    if (correct)
        *correct = hits;
    return loss / B;
}

double loss_softmax_xent_backward(float *Z, const uint8_t *y, int B, int C, int *correct)
{
    double loss = 0;
    int hits = 0;
    for (int i = 0; i < B; i++) {
        float *z = Z + (size_t)i * C;
        int am;
        double lse = row_lse(z, C, &am);
        loss += lse - z[y[i]];
        hits += am == y[i];
        for (int j = 0; j < C; j++)
            z[j] = (float)(exp((double)z[j] - lse) / B);
        z[y[i]] -= 1.0f / B;
    }
    if (correct)
        *correct = hits;
    return loss / B;
}
