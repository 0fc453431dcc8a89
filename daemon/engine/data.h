/* data.h: datasets kept as bytes, converted to floats one batch at a time.
 *
 * Loaders read MNIST-style IDX files (raw or gzip) and the CIFAR-10 binary
 * format into the arena's data category as uint8 pixels plus uint8 labels;
 * data_batch turns a batch into normalised floats. A missing, truncated,
 * wrong-magic or mismatched file is an error naming the file and the
 * problem. Files are opened without blocking and must be regular files
 * (a FIFO, device or directory is refused by name); an error never quotes
 * a file's bytes. The `synthetic` kind generates a seeded, learnable problem of
 * Gaussian blobs in pixel space for tests. */
#ifndef MT_DATA_H
#define MT_DATA_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "memtrain/err.h"

struct mt_rng;

enum mt_data_kind {
    MT_DATA_MNIST,      /* named: train-images-idx3-ubyte[.gz] ... in dir */
    MT_DATA_FASHION,    /* same file names as MNIST */
    MT_DATA_CIFAR10,    /* named: data_batch_1..5.bin, test_batch.bin in dir */
    MT_DATA_IDX,        /* explicit IDX paths */
    MT_DATA_SYNTHETIC,  /* generated blobs; dims and classes from the model */
};

enum mt_normalize {
    MT_NORM_STANDARD,   /* (x - mean) / std over the training pixels */
    MT_NORM_SCALE,      /* x / 255 */
    MT_NORM_NONE,       /* raw 0..255 */
};

#define MT_PATH_LEN 1024

/* Augmentation of training images (augment.h): zero padding of `crop`
 * pixels on each side then a random crop back to h x w, and a horizontal
 * flip with probability 1/2 when `flip`. Both 0 = off (the default). */
struct mt_augment {
    int crop;                       /* pixels, 0 <= crop < min(h, w) */
    int flip;                       /* 0 or 1 */
};

/* What a dataset will cost before it is loaded (read from the headers). */
/* Each sample is an image of c channels of h x w values, stored CHW row-major
 * (dim = c * h * w): MNIST and Fashion-MNIST 1x28x28, CIFAR-10 3x32x32, IDX
 * from the header's dimensions, synthetic the model's input shape (a layer
 * list's [c, h, w], else 1x1xdim). */
struct mt_data_shape {
    long train_n, test_n;
    int dim;
    int c, h, w;
};

struct mt_data_spec {
    enum mt_data_kind kind;
    char dir[MT_PATH_LEN];          /* named kinds; "" = search the defaults */
    char train_images[MT_PATH_LEN]; /* MT_DATA_IDX */
    char train_labels[MT_PATH_LEN];
    char test_images[MT_PATH_LEN];
    char test_labels[MT_PATH_LEN];
    enum mt_normalize normalize;
    long train_limit;               /* use the first N samples; 0 = all */
    long test_limit;
    long synthetic_train;           /* MT_DATA_SYNTHETIC sizes */
    long synthetic_test;
    int synthetic_dim;              /* set from the model's input width */
    int synthetic_classes;          /* set from the model's classes */
    int synthetic_c, synthetic_h, synthetic_w; /* set from a layer list's input shape;
                                                  0 = 1x1xdim */
    uint64_t synthetic_seed;
    struct mt_augment augment;      /* training batches only */
    /* Not carried in a JobSpec: the shape read earlier from the files
     * (memtraind probes them off its loop, with the submitter's rights);
     * data_probe returns it without opening anything when has_shape. */
    int has_shape;
    struct mt_data_shape shape;
};

struct mt_dataset {
    long n;                 /* samples */
    int dim;                /* values per sample (784, 3072, ...) */
    int c, h, w;            /* per-sample image shape, CHW; c * h * w == dim */
    int classes;            /* 1 + the largest label seen, at least the model's */
    uint8_t *images;        /* (n, dim), arena data category */
    uint8_t *labels;        /* (n) */
    char source[MT_PATH_LEN];/* file it came from, for messages */
};


const char *data_kind_name(enum mt_data_kind k);
int data_kind_from_name(const char *name);          /* -1 when unknown */
const char *data_normalize_name(enum mt_normalize n);
int data_normalize_from_name(const char *name);     /* -1 when unknown */

/* Read the headers only (limits applied): counts and sample size; or
 * ds->shape when ds->has_shape. */
int data_probe(const struct mt_data_spec *ds, struct mt_data_shape *out, struct mt_err *err);
/* For a process that cannot take the reader's rights (memtraind not
 * running as root): may c's user open every file the spec names
 * (mt_creds_may_open)? Datasets found by kind in the default places
 * (no dataset.dir) are the daemon's own and not checked. 0 or MT_E_PERM. */
struct mt_creds;
int data_check_reader(const struct mt_data_spec *ds, const struct mt_creds *c, struct mt_err *err);
/* The shape of two loaded splits (counts, sample size, image shape). */
struct mt_data_shape data_shape_of(const struct mt_dataset *train, const struct mt_dataset *test);
/* Bytes data_load will charge to the data category for these shapes. */
size_t data_bytes(const struct mt_data_shape *s);

/* Load both splits into the arena (data category). */
int data_load(const struct mt_data_spec *ds, struct mt_arena *a, struct mt_dataset *train,
              struct mt_dataset *test, struct mt_err *err);

/* Per-value affine map for the normalisation: x = pixel * scale + shift,
 * computed from the training split. */
struct mt_norm {
    float scale, shift;
};
void data_norm_fit(const struct mt_dataset *train, enum mt_normalize how, struct mt_norm *out);

/* Convert samples idx[0..B-1] to floats x (B, dim) and labels y (B). */
void data_batch(const struct mt_dataset *d, const struct mt_norm *norm, const uint32_t *idx,
                int B, float *x, uint8_t *y);
/* Fisher-Yates shuffle of perm (n) from rng. */
void data_shuffle(uint32_t *perm, long n, struct mt_rng *rng);

#endif
