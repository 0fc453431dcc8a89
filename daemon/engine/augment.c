/* augment.c: random crop with zero padding and horizontal flip (augment.h). */
#include "augment.h"

#include <stdio.h>

#include "rng.h"

/* rng_derive stream of the job seed that the epoch keys come from; high,
 * like the rules' per-step streams, so it meets no layer's or rule's. */
#define AUGMENT_STREAM (UINT64_C(0xa6) << 48)

int augment_on(const struct mt_augment *a)
{
    return a->crop > 0 || a->flip;
}

int augment_check(const struct mt_augment *a, const struct mt_data_shape *s, const char *kind,
                  struct mt_err *err)
{
    if (!augment_on(a))
        return 0;
    if (s->h < 2 || s->w < 2)
        return mt_err_set(err, MT_E_INVAL, "dataset.augment: the samples of dataset '%s' are "
                          "%dx%dx%d, not images: crop and flip need a height and width of at "
                          "least 2 (synthetic data are images only for a layer list's "
                          "model.input [c, h, w])", kind, s->c, s->h, s->w);
    if (a->crop < 0 || a->crop >= s->h || a->crop >= s->w)
        return mt_err_set(err, MT_E_INVAL, "dataset.augment.crop: must be at least 0 and less "
                          "than the image's height and width (dataset '%s': %dx%d), got %d",
                          kind, s->h, s->w, a->crop);
    return 0;
}

uint64_t augment_epoch_key(uint64_t seed, int epoch)
{
    struct mt_rng r;
    rng_derive(&r, seed, AUGMENT_STREAM);
    rng_derive(&r, rng_next(&r), (uint64_t)(uint32_t)epoch);
    return rng_next(&r);
}

struct mt_aug_draw augment_draw(const struct mt_augment *a, uint64_t epoch_key, uint32_t sample)
{
    struct mt_rng r;
    struct mt_aug_draw d;
    uint32_t span = 2 * (uint32_t)a->crop + 1;
    rng_derive(&r, epoch_key, sample);
    d.dy = (int)rng_below(&r, span);
    d.dx = (int)rng_below(&r, span);
    d.flip = a->flip && (rng_next(&r) >> 63);
    return d;
}

/* One output row (w) from source row src (w), or the padding when src is
 * NULL: column j reads source column (flip ? w-1-j : j) + off. */
static void crop_row(float *dst, const uint8_t *src, int w, int off, int flip, float scale,
                     float shift, float pad)
{
    for (int j = 0; j < w; j++) {
        int sj = (flip ? w - 1 - j : j) + off;
        dst[j] = src && sj >= 0 && sj < w ? (float)src[sj] * scale + shift : pad;
    }
}

/* One sample (c, h, w) into dst (c, h, w). */
static void augment_sample(float *dst, const uint8_t *src, int c, int h, int w, int crop,
                           struct mt_aug_draw d, const struct mt_norm *norm)
{
    float pad = 0.0f * norm->scale + norm->shift;   /* pixel 0, as row_to_float maps it */
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++) {
            int si = i + d.dy - crop;
            const uint8_t *row = si >= 0 && si < h ? src + ((size_t)ch * h + si) * w : NULL;
            crop_row(dst + ((size_t)ch * h + i) * w, row, w, d.dx - crop, d.flip, norm->scale,
                     norm->shift, pad);
        }
}

void augment_batch(const struct mt_dataset *d, const struct mt_norm *norm,
                   const struct mt_augment *a, uint64_t epoch_key, const uint32_t *idx, int B,
                   float *x, uint8_t *y)
{
    size_t dim = (size_t)d->dim;
    for (int i = 0; i < B; i++) {
        struct mt_aug_draw dr = augment_draw(a, epoch_key, idx[i]);
        augment_sample(x + (size_t)i * dim, d->images + (size_t)idx[i] * dim, d->c, d->h, d->w,
                       a->crop, dr, norm);
        if (y)
            y[i] = d->labels[idx[i]];
    }
}

void augment_describe(char *buf, size_t len, const struct mt_augment *a)
{
    if (a->crop > 0)
        snprintf(buf, len, "crop %d%s", a->crop, a->flip ? ", flip" : "");
    else
        snprintf(buf, len, "%s", a->flip ? "flip" : "none");
}
