/* loss.h: mean softmax cross-entropy and its gradient (spec section 0.1). */
#ifndef MT_LOSS_H
#define MT_LOSS_H

#include <stdint.h>

/* Over logits Z (B, C) in place: Z becomes E = (softmax(Z) - Y) / B.
 * Returns the mean loss; *correct counts argmax hits. Stable (max-shifted). */
double loss_softmax_xent_backward(float *Z, const uint8_t *y, int B, int C, int *correct);
/* Loss and hits only, logits untouched (evaluation). */
double loss_softmax_xent(const float *Z, const uint8_t *y, int B, int C, int *correct);

#endif
