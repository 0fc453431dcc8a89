/* augment.h: random crop with zero padding and horizontal flip of training
 * images (dataset.augment; struct mt_augment in data.h).
 *
 * A sample of c x h x w (CHW) is padded with `crop` pixels of value 0 on
 * each side (before normalisation, as torchvision's RandomCrop(padding=)
 * pads a PIL image), cropped back to h x w at a random offset (dy, dx), each
 * in 0 .. 2*crop, and then, when `flip`, mirrored left to right with
 * probability 1/2. The same offset and flip serve every channel.
 *
 * The draws are a pure function of (job seed, epoch, sample index): one
 * generator per sample, derived from a per-epoch key, so the order of the
 * batch, the batch size and where a job was stopped and resumed change
 * nothing. Test batches are never augmented. */
#ifndef MT_AUGMENT_H
#define MT_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "memtrain/err.h"

/* One sample's augmentation. */
struct mt_aug_draw {
    int dy, dx;     /* crop offset in the padded image, 0 .. 2*crop */
    int flip;       /* mirror left to right after the crop */
};

/* Any augmentation asked for. */
int augment_on(const struct mt_augment *a);
/* Can a be applied to samples of shape s (of dataset `kind`)? MT_E_INVAL
 * with a message naming dataset.augment when the samples are not images
 * (height or width below 2) or crop is not below both sides. 0 when a is
 * off. */
int augment_check(const struct mt_augment *a, const struct mt_data_shape *s, const char *kind,
                  struct mt_err *err);
/* The key of one epoch's draws (epoch 0-based: epochs completed before it). */
uint64_t augment_epoch_key(uint64_t seed, int epoch);
/* The draw of training sample `sample` in the epoch of `epoch_key`. */
struct mt_aug_draw augment_draw(const struct mt_augment *a, uint64_t epoch_key, uint32_t sample);
/* data_batch with each sample augmented by its draw: x (B, dim), y (B).
 * The padding is pixel 0, normalised like any other pixel. */
void augment_batch(const struct mt_dataset *d, const struct mt_norm *norm,
                   const struct mt_augment *a, uint64_t epoch_key, const uint32_t *idx, int B,
                   float *x, uint8_t *y);
/* "crop 2, flip", "crop 2", "flip" or "none", for headers and messages. */
void augment_describe(char *buf, size_t len, const struct mt_augment *a);

#endif
