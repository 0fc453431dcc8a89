/* test-data.c: dataset loaders, normalisation, batches and shuffles.
 *
 * Every file is generated into a fresh directory under /tmp (removed at the
 * end): IDX pairs raw and gzipped, CIFAR-10 batches, and broken versions of
 * each, so the expected bytes and the expected errors are known exactly. */
#define _GNU_SOURCE   /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "arena.h"
#include "data.h"
#include "rng.h"

#define ROWS 4
#define COLS 5
#define DIM (ROWS * COLS)
#define CIFAR_REC 3073

static char tmp[64];   /* the run's directory */

/* ---------------------------------------------------------------- helpers */

static uint8_t pix(long i, long j)
{
    return (uint8_t)(i * 31 + j * 7 + 3);
}

static uint8_t lab(long i)
{
    return (uint8_t)((i * 3) % 10);
}

/* tmp/name in a caller's buffer. */
static char *tp(char *buf, const char *name)
{
    snprintf(buf, MT_PATH_LEN, "%s/%s", tmp, name);
    return buf;
}

/* out = a + b, which must fit. */
static char *cat(char *out, const char *a, const char *b)
{
    int len = snprintf(out, MT_PATH_LEN, "%s%s", a, b);
    assert_true(len > 0 && len < MT_PATH_LEN);
    return out;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void write_file(const char *path, const void *buf, size_t len, int gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        if (len)
            assert_int_equal(gzwrite(g, buf, (unsigned)len), (int)len);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
    }
}

/* An IDX file whose header says n samples (images when the magic has 3
 * dims, labels otherwise), holding only the first data_n of them. */
static void write_idx(const char *path, uint32_t magic, long n, long data_n, int gz)
{
    int ndims = (int)(magic & 0xff), images = ndims == 3;
    size_t dim = images ? DIM : 1, head = 4 + 4 * (size_t)ndims;
    size_t len = head + (size_t)data_n * dim;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    put_be32(buf, magic);
    put_be32(buf + 4, (uint32_t)n);
    if (images) {
        put_be32(buf + 8, ROWS);
        put_be32(buf + 12, COLS);
    }
    for (long i = 0; i < data_n; i++)
        for (size_t j = 0; j < dim; j++)
            buf[head + (size_t)i * dim + j] = images ? pix(i, (long)j) : lab(i);
    write_file(path, buf, len, gz);
    free(buf);
}

/* <name>-img and <name>-lbl with n samples each. */
static void write_pair(const char *name, long n, int gz, char *img, char *lbl)
{
    char base[MT_PATH_LEN];
    tp(base, name);
    cat(img, base, "-img");
    cat(lbl, base, "-lbl");
    write_idx(img, 0x803, n, n, gz);
    write_idx(lbl, 0x801, n, n, gz);
}

/* The four standard MNIST names in tmp/dir (with .gz when gz). */
static void write_named(const char *dir, long ntrain, long ntest, int gz, char *dirpath)
{
    static const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char p[MT_PATH_LEN];
    tp(dirpath, dir);
    assert_int_equal(mkdir(dirpath, 0755), 0);
    for (int i = 0; i < 4; i++) {
        int len = snprintf(p, sizeof p, "%s/%s%s", dirpath, names[i], gz ? ".gz" : "");
        assert_true(len > 0 && len < (int)sizeof p);
        write_idx(p, i % 2 ? 0x801 : 0x803, i < 2 ? ntrain : ntest, i < 2 ? ntrain : ntest, gz);
    }
}

static void idx_spec(struct mt_data_spec *ds, const char *tri, const char *trl, const char *tei,
                     const char *tel)
{
    memset(ds, 0, sizeof *ds);
    ds->kind = MT_DATA_IDX;
    snprintf(ds->train_images, MT_PATH_LEN, "%s", tri);
    snprintf(ds->train_labels, MT_PATH_LEN, "%s", trl);
    snprintf(ds->test_images, MT_PATH_LEN, "%s", tei);
    snprintf(ds->test_labels, MT_PATH_LEN, "%s", tel);
}

static void synth_spec(struct mt_data_spec *ds, uint64_t seed, long ntrain, long ntest, int dim,
                       int classes)
{
    memset(ds, 0, sizeof *ds);
    ds->kind = MT_DATA_SYNTHETIC;
    ds->synthetic_seed = seed;
    ds->synthetic_train = ntrain;
    ds->synthetic_test = ntest;
    ds->synthetic_dim = dim;
    ds->synthetic_classes = classes;
}

/* Every pixel and label of d equals the generator's, from sample 0 on. */
static void check_pattern(const struct mt_dataset *d, long n)
{
    assert_int_equal(d->n, n);
    assert_int_equal(d->dim, DIM);
    assert_int_equal(d->c, 1);   /* (n, ROWS, COLS) images are 1xROWSxCOLS */
    assert_int_equal(d->h, ROWS);
    assert_int_equal(d->w, COLS);
    for (long i = 0; i < n; i++) {
        assert_int_equal(d->labels[i], lab(i));
        for (int j = 0; j < DIM; j++)
            assert_int_equal(d->images[i * DIM + j], pix(i, j));
    }
}

static size_t arena_total(const struct mt_arena *a)
{
    struct mt_mem_stats st;
    arena_stats(a, &st);
    return st.total;
}

/* Load expecting failure with `code`; the arena must hold nothing after. */
static void expect_fail(const struct mt_data_spec *ds, int code, struct mt_err *err)
{
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    mt_err_clear(err);
    assert_int_equal(data_load(ds, a, &tr, &te, err), code);
    assert_int_equal(err->code, code);
    assert_int_equal(arena_total(a), 0);
    assert_null(tr.images);
    assert_null(te.images);
    arena_free(a);
}

static void assert_has(const char *msg, const char *part)
{
    if (!strstr(msg, part))
        fail_msg("message \"%s\" lacks \"%s\"", msg, part);
}

/* ---------------------------------------------------------------- IDX */

static void test_idx_raw_round_trip(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("raw-train", 7, 0, tri, trl);
    write_pair("raw-test", 3, 0, tei, tel);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    struct mt_err err = {0};
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    check_pattern(&tr, 7);
    check_pattern(&te, 3);
    assert_int_equal(tr.classes, 1 + 9);   /* labels 0,3,6,9,2,5,8 */
    assert_int_equal(te.classes, 1 + 6);   /* labels 0,3,6 */
    assert_string_equal(tr.source, tri);
    assert_string_equal(te.source, tei);
    arena_free(a);
}

static void test_idx_gzip_round_trip(void **state)
{
    char dir[MT_PATH_LEN];
    write_named("mnist-gz", 6, 4, 1, dir);
    struct mt_data_spec ds = {.kind = MT_DATA_MNIST};
    snprintf(ds.dir, sizeof ds.dir, "%s", dir);
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    struct mt_err err = {0};
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    check_pattern(&tr, 6);
    check_pattern(&te, 4);
    assert_int_equal(tr.classes, 10);       /* a named kind has 10 */
    assert_int_equal(te.classes, 10);
    assert_has(tr.source, "train-images-idx3-ubyte.gz");
    struct mt_data_shape s;
    assert_int_equal(data_probe(&ds, &s, &err), 0);
    assert_int_equal(s.train_n, 6);
    assert_int_equal(s.test_n, 4);
    assert_int_equal(s.dim, DIM);
    assert_int_equal(s.c, 1);
    assert_int_equal(s.h, ROWS);
    assert_int_equal(s.w, COLS);
    arena_free(a);
}

static void test_limits_keep_first_samples(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    /* The header says 9 but only 5 samples follow: a limit of 4 never reads
     * past them, so the load succeeds. */
    tp(tri, "lim-img");
    tp(trl, "lim-lbl");
    write_idx(tri, 0x803, 9, 5, 1);
    write_idx(trl, 0x801, 9, 9, 0);
    write_pair("lim-test", 3, 0, tei, tel);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    ds.train_limit = 4;
    ds.test_limit = 50;                     /* more than there is: all 3 */
    struct mt_data_shape s;
    struct mt_err err = {0};
    assert_int_equal(data_probe(&ds, &s, &err), 0);
    assert_int_equal(s.train_n, 4);
    assert_int_equal(s.test_n, 3);
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    check_pattern(&tr, 4);
    check_pattern(&te, 3);
    arena_free(a);
}

static void test_truncated_images(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    tp(tri, "trunc-img");
    tp(trl, "trunc-lbl");
    write_idx(tri, 0x803, 7, 5, 0);
    write_idx(trl, 0x801, 7, 7, 0);
    write_pair("trunc-test", 2, 0, tei, tel);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, tri);
    assert_has(err.msg, "truncated");
    char want[128];
    snprintf(want, sizeof want, "header says 7 samples of %d bytes, file ends after %d bytes",
             DIM, 16 + 5 * DIM);
    assert_has(err.msg, want);
}

static void test_truncated_labels_after_images_loaded(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("tl-train", 6, 0, tri, trl);
    tp(tel, "tl-test-lbl");
    tp(tei, "tl-test-img");
    write_idx(tei, 0x803, 4, 4, 1);
    write_idx(tel, 0x801, 4, 2, 1);         /* the last block to be read */
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, tel);
    assert_has(err.msg, "header says 4 samples of 1 bytes");
}

static void test_truncated_header(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("th-train", 3, 0, tri, trl);
    write_pair("th-test", 3, 0, tei, tel);
    write_file(tri, "\0\0\x08\x03\0\0", 6, 0);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, tri);
    assert_has(err.msg, "truncated: file ends after 6 bytes");
}

static void test_cut_gzip_stream(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("cutgz-train", 40, 1, tri, trl);
    write_pair("cutgz-test", 2, 0, tei, tel);
    struct stat st;
    assert_int_equal(stat(tri, &st), 0);
    assert_int_equal(truncate(tri, st.st_size / 2), 0);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, tri);
    assert_has(err.msg, "truncated");
}

static void test_corrupt_gzip_stream(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("badgz-train", 5, 1, tri, trl);
    write_pair("badgz-test", 2, 0, tei, tel);
    /* The first deflate block header (after gzip's 10-byte header) becomes
     * BFINAL=1, BTYPE=3: a reserved block type. */
    FILE *f = fopen(tri, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 10, SEEK_SET), 0);
    assert_int_equal(fputc(0xff, f), 0xff);
    assert_int_equal(fclose(f), 0);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, tri);
    assert_has(err.msg, "gzip");
}

static void test_bad_magic(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("magic-train", 3, 0, tri, trl);
    write_pair("magic-test", 3, 0, tei, tel);
    write_idx(tri, 0x00000d03, 3, 3, 0);     /* IDX of floats */
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, tri);
    assert_has(err.msg, "bad magic number, expected an IDX file of unsigned bytes");
    /* A named kind wants images where images belong. */
    char dir[MT_PATH_LEN], p[MT_PATH_LEN];
    write_named("mnist-swapped", 3, 3, 0, dir);
    cat(p, dir, "/train-images-idx3-ubyte");
    write_idx(p, 0x801, 3, 3, 0);
    struct mt_data_spec named = {.kind = MT_DATA_FASHION};
    snprintf(named.dir, sizeof named.dir, "%s", dir);
    expect_fail(&named, MT_E_FORMAT, &err);
    assert_has(err.msg, p);
    assert_has(err.msg, "not an IDX file of images, expected magic number 0x00000803");
}

static void test_count_mismatch(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("count-train", 7, 0, tri, trl);
    write_pair("count-test", 3, 0, tei, tel);
    write_idx(trl, 0x801, 6, 6, 0);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    char want[3 * MT_PATH_LEN];
    snprintf(want, sizeof want, "%s has 7 images but %s has 6 labels", tri, trl);
    assert_string_equal(err.msg, want);
}

static void test_split_dim_mismatch(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("dim-train", 3, 0, tri, trl);
    tp(tei, "dim-test-img");
    /* 2 dims: (2, ROWS), so samples of ROWS bytes, not DIM. */
    uint8_t buf[8 + 4 + 2 * ROWS] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, ROWS};
    write_file(tei, buf, sizeof buf, 0);
    tp(tel, "dim-test-lbl");
    write_idx(tel, 0x801, 2, 2, 0);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, tei);
    assert_has(err.msg, tri);
    char want[64];
    snprintf(want, sizeof want, "samples of %d bytes", ROWS);
    assert_has(err.msg, want);
}

/* A raw IDX image file of n zero samples with the per-sample dims given. */
static void write_idx_dims(const char *path, long n, const uint32_t *dims, int nd)
{
    size_t per = 1;
    for (int i = 0; i < nd; i++)
        per *= dims[i];
    size_t len = 8 + 4 * (size_t)nd + (size_t)n * per;
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    buf[2] = 8;
    buf[3] = (uint8_t)(nd + 1);
    put_be32(buf + 4, (uint32_t)n);
    for (int i = 0; i < nd; i++)
        put_be32(buf + 8 + 4 * (size_t)i, dims[i]);
    write_file(path, buf, len, 0);
    free(buf);
}

/* The image shape comes from the per-sample dims: (d) is 1x1xd, (h, w) is
 * 1xhxw, (c, h, w) is cxhxw; a test split of the same size but another
 * shape is refused, naming both files and shapes. */
static void test_idx_image_shape(void **state)
{
    static const uint32_t row[1] = {12}, chw[3] = {3, 2, 2}, hw[2] = {3, 4};
    struct {
        const uint32_t *dims;
        int nd, c, h, w;
    } cases[] = {{row, 1, 1, 1, 12}, {chw, 3, 3, 2, 2}, {hw, 2, 1, 3, 4}};
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    tp(trl, "shape-train-lbl");
    write_idx(trl, 0x801, 2, 2, 0);
    tp(tel, "shape-test-lbl");
    write_idx(tel, 0x801, 2, 2, 0);
    tp(tri, "shape-train-img");
    tp(tei, "shape-test-img");
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_idx_dims(tri, 2, cases[k].dims, cases[k].nd);
        write_idx_dims(tei, 2, cases[k].dims, cases[k].nd);
        struct mt_data_shape s;
        assert_int_equal(data_probe(&ds, &s, &err), 0);
        assert_int_equal(s.dim, 12);
        assert_int_equal(s.c, cases[k].c);
        assert_int_equal(s.h, cases[k].h);
        assert_int_equal(s.w, cases[k].w);
        struct mt_arena *a = arena_new(0);
        struct mt_dataset tr, te;
        assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
        assert_int_equal(te.c * 100 + te.h * 10 + te.w,
                         cases[k].c * 100 + cases[k].h * 10 + cases[k].w);
        arena_free(a);
    }
    write_idx_dims(tri, 2, hw, 2);   /* 1x3x4 train, 3x2x2 test: 12 bytes each */
    write_idx_dims(tei, 2, chw, 3);
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, tei);
    assert_has(err.msg, tri);
    assert_has(err.msg, "images of 3x2x2");
    assert_has(err.msg, "are 1x3x4");
}

static void test_missing_file(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("miss-train", 3, 0, tri, trl);
    tp(tei, "no-such-images");
    tp(tel, "no-such-labels");
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_err err;
    expect_fail(&ds, MT_E_IO, &err);
    assert_has(err.msg, tei);
    assert_has(err.msg, strerror(ENOENT));
    /* A named kind tries both spellings and says so. */
    struct mt_data_spec named = {.kind = MT_DATA_MNIST};
    tp(named.dir, "no-such-dir");
    expect_fail(&named, MT_E_IO, &err);
    assert_has(err.msg, "no-such-dir/train-images-idx3-ubyte");
    assert_has(err.msg, "train-images-idx3-ubyte.gz");
}

static void test_named_label_out_of_range(void **state)
{
    char dir[MT_PATH_LEN], p[MT_PATH_LEN];
    write_named("mnist-badlabel", 3, 2, 0, dir);
    cat(p, dir, "/t10k-labels-idx1-ubyte");
    write_file(p, "\0\0\x08\x01\0\0\0\x02\x01\x0c", 10, 0);
    struct mt_data_spec ds = {.kind = MT_DATA_MNIST};
    snprintf(ds.dir, sizeof ds.dir, "%s", dir);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, "label 12 of sample 1 is out of range (0..9)");
}

static void test_default_search(void **state)
{
    char env[MT_PATH_LEN], dir[MT_PATH_LEN];
    tp(env, "env");
    assert_int_equal(mkdir(env, 0755), 0);
    write_named("env/fashion-mnist", 4, 2, 0, dir);
    assert_int_equal(setenv("MEMTRAIN_DATA_DIR", env, 1), 0);
    struct mt_data_spec ds = {.kind = MT_DATA_FASHION};
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    struct mt_err err = {0};
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    check_pattern(&tr, 4);
    assert_has(tr.source, dir);
    arena_free(a);
    /* Nothing for CIFAR-10: the error lists where it looked. */
    ds.kind = MT_DATA_CIFAR10;
    expect_fail(&ds, MT_E_NOTFOUND, &err);
    assert_has(err.msg, "env/cifar10");
    unsetenv("MEMTRAIN_DATA_DIR");
    expect_fail(&ds, MT_E_NOTFOUND, &err);
    assert_has(err.msg, "$MEMTRAIN_DATA_DIR/cifar10 (not set)");
}

/* ---------------------------------------------------------------- CIFAR-10 */

static uint8_t cpix(long i, long j)
{
    return (uint8_t)(i * 13 + j * 5 + 1);
}

/* tmp/dir with data_batch_1..5.bin holding counts[0..4] records and
 * test_batch.bin holding counts[5]; records numbered on across files. */
static void write_cifar(const char *dir, const long counts[6], char *dirpath)
{
    char p[MT_PATH_LEN];
    tp(dirpath, dir);
    assert_int_equal(mkdir(dirpath, 0755), 0);
    long at = 0;
    for (int f = 0; f < 6; f++) {
        if (f < 5)
            snprintf(p, sizeof p, "%s/data_batch_%d.bin", dirpath, f + 1);
        else
            snprintf(p, sizeof p, "%s/test_batch.bin", dirpath);
        if (f == 5)
            at = 0;
        size_t len = (size_t)counts[f] * CIFAR_REC;
        uint8_t *buf = malloc(len + 1);
        assert_non_null(buf);
        for (long r = 0; r < counts[f]; r++, at++) {
            buf[r * CIFAR_REC] = lab(at);
            for (long j = 0; j < 3072; j++)
                buf[r * CIFAR_REC + 1 + j] = cpix(at, j);
        }
        write_file(p, buf, len, 0);
        free(buf);
    }
}

static void check_cifar(const struct mt_dataset *d, long n)
{
    assert_int_equal(d->n, n);
    assert_int_equal(d->dim, 3072);
    assert_int_equal(d->c, 3);   /* R, G, B planes of 32x32: CHW */
    assert_int_equal(d->h, 32);
    assert_int_equal(d->w, 32);
    assert_int_equal(d->classes, 10);
    for (long i = 0; i < n; i++) {
        assert_int_equal(d->labels[i], lab(i));
        for (long j = 0; j < 3072; j++)
            assert_int_equal(d->images[i * 3072 + j], cpix(i, j));
    }
}

static void test_cifar_round_trip(void **state)
{
    static const long counts[6] = {2, 1, 3, 0, 2, 3};
    char dir[MT_PATH_LEN];
    write_cifar("cifar-ok", counts, dir);
    struct mt_data_spec ds = {.kind = MT_DATA_CIFAR10};
    snprintf(ds.dir, sizeof ds.dir, "%s", dir);
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    struct mt_err err = {0};
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    check_cifar(&tr, 8);
    check_cifar(&te, 3);
    arena_free(a);
    /* A limit that ends inside the third batch. */
    ds.train_limit = 4;
    ds.test_limit = 1;
    a = arena_new(0);
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    check_cifar(&tr, 4);
    check_cifar(&te, 1);
    arena_free(a);
}

static void test_cifar_truncated(void **state)
{
    static const long counts[6] = {1, 1, 1, 1, 1, 1};
    char dir[MT_PATH_LEN], p[MT_PATH_LEN];
    write_cifar("cifar-trunc", counts, dir);
    cat(p, dir, "/data_batch_2.bin");
    assert_int_equal(truncate(p, CIFAR_REC - 100), 0);
    struct mt_data_spec ds = {.kind = MT_DATA_CIFAR10};
    snprintf(ds.dir, sizeof ds.dir, "%s", dir);
    struct mt_err err;
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, p);
    assert_has(err.msg, "truncated: 2973 bytes");
    assert_has(err.msg, "expected 0 or 3073 bytes");
}

static void test_cifar_missing_batch_and_bad_label(void **state)
{
    static const long counts[6] = {1, 1, 1, 1, 1, 1};
    char dir[MT_PATH_LEN], p[MT_PATH_LEN];
    write_cifar("cifar-miss", counts, dir);
    cat(p, dir, "/data_batch_4.bin");
    assert_int_equal(remove(p), 0);
    struct mt_data_spec ds = {.kind = MT_DATA_CIFAR10};
    snprintf(ds.dir, sizeof ds.dir, "%s", dir);
    struct mt_err err;
    expect_fail(&ds, MT_E_IO, &err);
    assert_has(err.msg, p);
    assert_has(err.msg, strerror(ENOENT));
    /* Put it back with label 10. */
    uint8_t rec[CIFAR_REC] = {10};
    write_file(p, rec, sizeof rec, 0);
    expect_fail(&ds, MT_E_FORMAT, &err);
    assert_has(err.msg, p);
    assert_has(err.msg, "label 10 of record 0 is out of range");
}

/* ---------------------------------------------------------------- synthetic */

static void test_synthetic_deterministic_per_seed(void **state)
{
    struct mt_data_spec ds;
    struct mt_err err = {0};
    struct mt_dataset tr[3], te[3];
    struct mt_arena *a = arena_new(0);
    for (int k = 0; k < 3; k++) {
        synth_spec(&ds, k == 2 ? 8 : 7, 50, 20, 16, 4);
        assert_int_equal(data_load(&ds, a, &tr[k], &te[k], &err), 0);
        assert_int_equal(tr[k].n, 50);
        assert_int_equal(te[k].n, 20);
        assert_int_equal(tr[k].dim, 16);
        assert_int_equal(tr[k].c * tr[k].h, 1);    /* a 1x1x16 row */
        assert_int_equal(tr[k].w, 16);
        assert_int_equal(tr[k].classes, 4);
    }
    assert_memory_equal(tr[0].images, tr[1].images, 50 * 16);
    assert_memory_equal(tr[0].labels, tr[1].labels, 50);
    assert_memory_equal(te[0].images, te[1].images, 20 * 16);
    assert_memory_not_equal(te[0].images, tr[0].images, 20 * 16);   /* not a copy of train */
    assert_memory_not_equal(tr[0].images, tr[2].images, 50 * 16);
    assert_memory_not_equal(te[0].images, te[2].images, 20 * 16);
    /* Defaults, and a train limit that leaves the test split alone. */
    synth_spec(&ds, 7, 0, 0, 16, 4);
    struct mt_data_shape s;
    assert_int_equal(data_probe(&ds, &s, &err), 0);
    assert_int_equal(s.train_n, 2000);
    assert_int_equal(s.test_n, 500);
    synth_spec(&ds, 7, 50, 20, 16, 4);
    ds.train_limit = 10;
    struct mt_dataset t2, e2;
    assert_int_equal(data_load(&ds, a, &t2, &e2, &err), 0);
    assert_int_equal(t2.n, 10);
    assert_memory_equal(t2.images, tr[0].images, 10 * 16);
    assert_memory_equal(e2.images, te[0].images, 20 * 16);
    arena_free(a);
}

/* Nearest class mean over all pixels, and over pixel j alone (j < 0: all). */
static double centroid_accuracy(const struct mt_dataset *tr, const struct mt_dataset *te,
                                int classes, int j)
{
    int dim = tr->dim;
    double *mean = calloc((size_t)classes * dim, sizeof *mean);
    long *count = calloc((size_t)classes, sizeof *count);
    for (long i = 0; i < tr->n; i++) {
        count[tr->labels[i]]++;
        for (int k = 0; k < dim; k++)
            mean[tr->labels[i] * dim + k] += tr->images[i * dim + k];
    }
    for (int c = 0; c < classes; c++)
        for (int k = 0; k < dim; k++)
            mean[c * dim + k] /= count[c] ? count[c] : 1;
    long right = 0;
    for (long i = 0; i < te->n; i++) {
        int best = 0;
        double bestd = INFINITY;
        for (int c = 0; c < classes; c++) {
            double d2 = 0;
            for (int k = j < 0 ? 0 : j; k < (j < 0 ? dim : j + 1); k++) {
                double diff = te->images[i * dim + k] - mean[c * dim + k];
                d2 += diff * diff;
            }
            if (d2 < bestd) {
                bestd = d2;
                best = c;
            }
        }
        right += best == te->labels[i];
    }
    free(mean);
    free(count);
    return (double)right / (double)te->n;
}

static void test_synthetic_learnable_not_by_one_pixel(void **state)
{
    struct mt_data_spec ds;
    synth_spec(&ds, 42, 2000, 500, 64, 10);
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    struct mt_err err = {0};
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    double all = centroid_accuracy(&tr, &te, 10, -1), best_pixel = 0;
    for (int j = 0; j < 64; j++) {
        double acc = centroid_accuracy(&tr, &te, 10, j);
        best_pixel = acc > best_pixel ? acc : best_pixel;
    }
    print_message("synthetic: nearest mean %.3f, best single pixel %.3f\n", all, best_pixel);
    assert_true(all > 0.9);
    assert_true(best_pixel < 0.5);
    long per_class[10] = {0};
    for (long i = 0; i < tr.n; i++)
        per_class[tr.labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_true(per_class[c] > 120 && per_class[c] < 280);   /* uniform: ~200 each */
    long repeats = 0;   /* drawn independently, a label repeats 1 time in 10 */
    for (long i = 1; i < tr.n; i++)
        repeats += tr.labels[i] == tr.labels[i - 1];
    assert_true(repeats > 120 && repeats < 280);
    arena_free(a);
}

/* ---------------------------------------------------------------- memory */

static void check_bytes_charged(const struct mt_data_spec *ds)
{
    struct mt_data_shape s;
    struct mt_err err = {0};
    assert_int_equal(data_probe(ds, &s, &err), 0);
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    assert_int_equal(data_load(ds, a, &tr, &te, &err), 0);
    struct mt_mem_stats st;
    arena_stats(a, &st);
    assert_int_equal(data_bytes(&s), (size_t)(tr.n * tr.dim + tr.n + te.n * te.dim + te.n));
    assert_int_equal(st.cur[MT_MEM_DATA], data_bytes(&s));
    assert_int_equal(st.total, data_bytes(&s));
    arena_free(a);
}

static void test_data_bytes_equals_arena(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN], dir[MT_PATH_LEN];
    write_pair("bytes-train", 9, 1, tri, trl);
    write_pair("bytes-test", 4, 0, tei, tel);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    ds.train_limit = 5;
    check_bytes_charged(&ds);
    static const long counts[6] = {1, 2, 1, 1, 1, 2};
    write_cifar("cifar-bytes", counts, dir);
    memset(&ds, 0, sizeof ds);
    ds.kind = MT_DATA_CIFAR10;
    snprintf(ds.dir, sizeof ds.dir, "%s", dir);
    check_bytes_charged(&ds);
    synth_spec(&ds, 3, 30, 11, 7, 3);
    check_bytes_charged(&ds);
}

static void test_failed_load_leaves_arena_empty(void **state)
{
    struct mt_data_spec ds;
    struct mt_err err;
    /* Each of the four blocks fails in turn; the fifth run succeeds. */
    synth_spec(&ds, 5, 20, 10, 8, 3);
    for (long n = 0;; n++) {
        struct mt_arena *a = arena_new(0);
        struct mt_dataset tr, te;
        arena_fail_after(a, n);
        int rc = data_load(&ds, a, &tr, &te, &err);
        if (rc == 0) {
            assert_int_equal(n, 4);
            arena_free(a);
            break;
        }
        assert_int_equal(rc, MT_E_INJECTED);
        assert_int_equal(arena_total(a), 0);
        arena_free(a);
    }
    /* A limit too small for the data. */
    struct mt_arena *a = arena_new(20 * 8);
    struct mt_dataset tr, te;
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), MT_E_LIMIT);
    assert_int_equal(arena_total(a), 0);
    arena_free(a);
}

/* ---------------------------------------------------------------- batches */

static void test_norm_standard_zero_mean_unit_std(void **state)
{
    struct mt_data_spec ds;
    synth_spec(&ds, 11, 300, 10, 32, 5);
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    struct mt_err err = {0};
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    struct mt_norm norm;
    data_norm_fit(&tr, MT_NORM_STANDARD, &norm);
    uint32_t *idx = malloc(300 * sizeof *idx);
    float *x = malloc(300 * 32 * sizeof *x);
    uint8_t y[300];
    for (uint32_t i = 0; i < 300; i++)
        idx[i] = i;
    data_batch(&tr, &norm, idx, 300, x, y);
    double s = 0, sq = 0;
    for (int k = 0; k < 300 * 32; k++) {
        s += x[k];
        sq += (double)x[k] * x[k];
    }
    double mean = s / (300 * 32), std = sqrt(sq / (300 * 32) - mean * mean);
    assert_true(fabs(mean) < 1e-4);
    assert_true(fabs(std - 1.0) < 1e-4);
    assert_memory_equal(y, tr.labels, 300);
    data_norm_fit(&tr, MT_NORM_SCALE, &norm);
    assert_true(norm.scale == 1.0f / 255.0f && norm.shift == 0.0f);
    data_norm_fit(&tr, MT_NORM_NONE, &norm);
    assert_true(norm.scale == 1.0f && norm.shift == 0.0f);
    free(idx);
    free(x);
    arena_free(a);
}

static void test_batch_gathers_rows(void **state)
{
    char tri[MT_PATH_LEN], trl[MT_PATH_LEN], tei[MT_PATH_LEN], tel[MT_PATH_LEN];
    write_pair("batch-train", 7, 0, tri, trl);
    write_pair("batch-test", 1, 0, tei, tel);
    struct mt_data_spec ds;
    idx_spec(&ds, tri, trl, tei, tel);
    struct mt_arena *a = arena_new(0);
    struct mt_dataset tr, te;
    struct mt_err err = {0};
    assert_int_equal(data_load(&ds, a, &tr, &te, &err), 0);
    const uint32_t idx[3] = {5, 0, 5};
    float x[3 * DIM];
    uint8_t y[3];
    struct mt_norm norm = {.scale = 0.5f, .shift = -3.0f};
    data_batch(&tr, &norm, idx, 3, x, y);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(y[i], lab(idx[i]));
        for (int j = 0; j < DIM; j++)
            assert_float_equal(x[i * DIM + j], pix(idx[i], j) * 0.5f - 3.0f, 1e-6);
    }
    arena_free(a);
}

static void test_shuffle_is_permutation_and_deterministic(void **state)
{
    enum { N = 1000 };
    static uint32_t p1[N], p2[N], p3[N];
    struct mt_rng r1, r2, r3;
    rng_seed(&r1, 99);
    rng_seed(&r2, 99);
    rng_seed(&r3, 100);
    for (uint32_t i = 0; i < N; i++)
        p1[i] = p2[i] = p3[i] = i;
    data_shuffle(p1, N, &r1);
    data_shuffle(p2, N, &r2);
    data_shuffle(p3, N, &r3);
    assert_memory_equal(p1, p2, sizeof p1);
    assert_memory_not_equal(p1, p3, sizeof p1);
    static uint8_t seen[N];
    long moved = 0;
    for (uint32_t i = 0; i < N; i++) {
        assert_true(p1[i] < N);
        assert_int_equal(seen[p1[i]], 0);
        seen[p1[i]] = 1;
        moved += p1[i] != i;
    }
    assert_true(moved > N / 2);
    /* Each of the 24 orders of 4 comes up about equally often. */
    long freq[4 * 4 * 4 * 4] = {0};
    for (int t = 0; t < 24000; t++) {
        uint32_t q[4] = {0, 1, 2, 3};
        data_shuffle(q, 4, &r1);
        freq[q[0] * 64 + q[1] * 16 + q[2] * 4 + q[3]]++;
    }
    int orders = 0;
    for (int k = 0; k < 256; k++) {
        if (freq[k]) {
            orders++;
            assert_true(freq[k] > 850 && freq[k] < 1150);
        }
    }
    assert_int_equal(orders, 24);
    uint32_t one = 0;
    data_shuffle(&one, 1, &r1);
    data_shuffle(NULL, 0, &r1);
    assert_int_equal(one, 0);
}

static void test_names_round_trip(void **state)
{
    static const char *kinds[] = {"mnist", "fashion-mnist", "cifar10", "idx", "synthetic"};
    static const char *norms[] = {"standard", "scale", "none"};
    for (int k = 0; k < 5; k++) {
        assert_string_equal(data_kind_name((enum mt_data_kind)k), kinds[k]);
        assert_int_equal(data_kind_from_name(kinds[k]), k);
    }
    for (int n = 0; n < 3; n++) {
        assert_string_equal(data_normalize_name((enum mt_normalize)n), norms[n]);
        assert_int_equal(data_normalize_from_name(norms[n]), n);
    }
    assert_int_equal(data_kind_from_name("MNIST-ish"), -1);
    assert_int_equal(data_normalize_from_name(""), -1);
    assert_int_equal(data_kind_from_name(NULL), -1);
}

/* ---------------------------------------------------------------- main */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    snprintf(tmp, sizeof tmp, "/tmp/memtrain-test-data-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    return nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_raw_round_trip),
        cmocka_unit_test(test_idx_gzip_round_trip),
        cmocka_unit_test(test_limits_keep_first_samples),
        cmocka_unit_test(test_truncated_images),
        cmocka_unit_test(test_truncated_labels_after_images_loaded),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_cut_gzip_stream),
        cmocka_unit_test(test_corrupt_gzip_stream),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_count_mismatch),
        cmocka_unit_test(test_split_dim_mismatch),
        cmocka_unit_test(test_idx_image_shape),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_named_label_out_of_range),
        cmocka_unit_test(test_default_search),
        cmocka_unit_test(test_cifar_round_trip),
        cmocka_unit_test(test_cifar_truncated),
        cmocka_unit_test(test_cifar_missing_batch_and_bad_label),
        cmocka_unit_test(test_synthetic_deterministic_per_seed),
        cmocka_unit_test(test_synthetic_learnable_not_by_one_pixel),
        cmocka_unit_test(test_data_bytes_equals_arena),
        cmocka_unit_test(test_failed_load_leaves_arena_empty),
        cmocka_unit_test(test_norm_standard_zero_mean_unit_std),
        cmocka_unit_test(test_batch_gathers_rows),
        cmocka_unit_test(test_shuffle_is_permutation_and_deterministic),
        cmocka_unit_test(test_names_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
