/* fuzz-data.c: bytes -> dataset files -> data_probe and data_load.
 *
 * Input: one byte choosing the format (even: IDX, odd: CIFAR-10), one byte
 * of limits (bits 0-3: train_limit, bits 4-7: test_limit; 0 = all), then
 * the files, each a 4-byte little-endian length and that many bytes (a
 * missing file is empty). IDX takes four files (train images and labels,
 * test images and labels; bit 1 of the first byte names them .gz, which
 * zlib reads raw when they are not gzip), CIFAR-10 six
 * (data_batch_1..5.bin, test_batch.bin). Each is written to a temporary
 * directory, probed, then loaded into an arena capped at 64 MiB. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "data.h"

#define ARENA_CAP (64u << 20)

static char dir[64];

static void put_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (n && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

/* The next length-prefixed piece of the input (empty past its end). */
static void next_piece(const uint8_t **p, size_t *left, const uint8_t **out, size_t *n)
{
    *out = *p;
    *n = 0;
    if (*left < 4) {
        *p += *left;
        *left = 0;
        return;
    }
    size_t len = (size_t)(*p)[0] | (size_t)(*p)[1] << 8 | (size_t)(*p)[2] << 16 |
                 (size_t)(*p)[3] << 24;
    *p += 4;
    *left -= 4;
    if (len > *left)
        len = *left;
    *out = *p;
    *n = len;
    *p += len;
    *left -= len;
}

static void remove_dir(void)
{
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/mt-fuzz-data-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    atexit(remove_dir); /* the files in it go after each input */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *idx_names[4] = {"train-img", "train-lbl", "test-img", "test-lbl"};
    if (size < 2)
        return 0;
    int cifar = data[0] & 1, gz = (data[0] >> 1) & 1;
    struct mt_data_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.normalize = MT_NORM_STANDARD;
    ds.train_limit = data[1] & 15;
    ds.test_limit = data[1] >> 4;
    const uint8_t *p = data + 2, *piece;
    size_t left = size - 2, n;
    char paths[6][MT_PATH_LEN];
    int files = cifar ? 6 : 4;
    for (int i = 0; i < files; i++) {
        if (cifar) {
            if (i < 5)
                snprintf(paths[i], MT_PATH_LEN, "%s/data_batch_%d.bin", dir, i + 1);
            else
                snprintf(paths[i], MT_PATH_LEN, "%s/test_batch.bin", dir);
        } else {
            snprintf(paths[i], MT_PATH_LEN, "%s/%s%s", dir, idx_names[i], gz ? ".gz" : "");
        }
        next_piece(&p, &left, &piece, &n);
        put_file(paths[i], piece, n);
    }
    if (cifar) {
        ds.kind = MT_DATA_CIFAR10;
        snprintf(ds.dir, sizeof ds.dir, "%s", dir);
    } else {
        ds.kind = MT_DATA_IDX;
        memcpy(ds.train_images, paths[0], MT_PATH_LEN);
        memcpy(ds.train_labels, paths[1], MT_PATH_LEN);
        memcpy(ds.test_images, paths[2], MT_PATH_LEN);
        memcpy(ds.test_labels, paths[3], MT_PATH_LEN);
    }

    struct mt_err err = {0};
    struct mt_data_shape shape;
    if (!data_probe(&ds, &shape, &err) && data_bytes(&shape) <= ARENA_CAP) {
        struct mt_arena *a = arena_new(ARENA_CAP);
        if (!a)
            abort();
        struct mt_dataset train, test;
        memset(&train, 0, sizeof train);
        memset(&test, 0, sizeof test);
        if (!data_load(&ds, a, &train, &test, &err) && train.n > 0) {
            struct mt_norm norm;
            data_norm_fit(&train, ds.normalize, &norm);
        }
        arena_free(a);
    }
    for (int i = 0; i < files; i++)
        unlink(paths[i]);
    return 0;
}
