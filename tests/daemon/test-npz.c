/* test-npz.c: mtctl's .npz writer (client/npz.c).
 *
 * Each archive is read back here without any zip library: the local file
 * headers in order, each member's CRC-32 recomputed with zlib, the .npy
 * header dict compared as text, the data compared byte for byte, and the
 * central directory and end record checked against the local headers.
 * When /usr/bin/python3 can import numpy, numpy.load opens the file too
 * (that case is skipped otherwise). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "npz.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test-npz-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_in(const char *name)
{
    static char p[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static unsigned rd16(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The arrays most cases write: a matrix, a vector, a scalar, an empty one. */
static float w1[3 * 4], b1[4], sc[1] = {42.5f};
static const uint64_t w1_shape[] = {3, 4}, b1_shape[] = {4}, empty_shape[] = {0, 5};

static size_t sample(struct npz_entry *e)
{
    for (int i = 0; i < 12; i++)
        w1[i] = (float)i * 0.5f - 1.0f;
    for (int i = 0; i < 4; i++)
        b1[i] = -(float)i / 3.0f;
    e[0] = (struct npz_entry){"W1", w1_shape, 2, w1, sizeof w1, 0};
    e[1] = (struct npz_entry){"b1", b1_shape, 1, b1, sizeof b1, 0};
    e[2] = (struct npz_entry){"adam.m", NULL, 0, sc, sizeof sc, 0};
    e[3] = (struct npz_entry){"empty", empty_shape, 2, NULL, 0, 0};
    return 4;
}

static const char *const sample_dicts[] = {
    "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }",
};

/* Read an archive back and check it member by member against e[]. */
static void check_archive(const char *path, const struct npz_entry *e, size_t n,
                          const char *const *dicts)
{
    size_t len;
    uint8_t *z = slurp(path, &len);
    size_t off = 0;
    uint32_t local_off[16], crcs[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *h = z + off;
        assert_true(off + 30 <= len);
        assert_int_equal(rd32(h), 0x04034b50u);
        assert_int_equal(rd16(h + 6), 0);                 /* no data descriptor */
        assert_int_equal(rd16(h + 8), 0);                 /* stored */
        uint32_t crc = rd32(h + 14), csize = rd32(h + 18), usize = rd32(h + 22);
        unsigned nl = rd16(h + 26), xl = rd16(h + 28);
        assert_int_equal(csize, usize);
        char name[256];
        snprintf(name, sizeof name, "%s.npy", e[i].name);
        assert_int_equal(nl, strlen(name));
        assert_memory_equal(h + 30, name, nl);
        const uint8_t *npy = h + 30 + nl + xl;
        assert_true((size_t)(npy - z) + usize <= len);
        assert_int_equal(crc32(0L, npy, usize), crc);

        /* .npy: magic, version 1.0, header length, dict, data at 64 */
        assert_memory_equal(npy, "\x93NUMPY\x01\x00", 8);
        unsigned hl = rd16(npy + 8);
        assert_int_equal((10 + hl) % 64, 0);
        assert_int_equal(npy[10 + hl - 1], '\n');
        size_t dl = strlen(dicts[i]);
        assert_memory_equal(npy + 10, dicts[i], dl);
        for (size_t k = 10 + dl; k < 10 + hl - 1; k++)
            assert_int_equal(npy[k], ' ');
        assert_int_equal(usize, 10 + hl + e[i].bytes);
        if (e[i].bytes)
            assert_memory_equal(npy + 10 + hl, e[i].data, e[i].bytes);
        local_off[i] = (uint32_t)off;
        crcs[i] = crc;
        off = (size_t)(npy - z) + usize;
    }

    /* the end record, then the central directory it points to */
    assert_true(len >= off + 22);
    const uint8_t *end = z + len - 22;
    assert_int_equal(rd32(end), 0x06054b50u);
    assert_int_equal(rd16(end + 8), n);
    assert_int_equal(rd16(end + 10), n);
    uint32_t cd_size = rd32(end + 12), cd_off = rd32(end + 16);
    assert_int_equal(cd_off, off);
    assert_int_equal(cd_off + cd_size, len - 22);
    const uint8_t *c = z + cd_off;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rd32(c), 0x02014b50u);
        assert_int_equal(rd16(c + 10), 0);
        assert_int_equal(rd32(c + 16), crcs[i]);
        assert_int_equal(rd32(c + 42), local_off[i]);
        unsigned nl = rd16(c + 28);
        char name[256];
        snprintf(name, sizeof name, "%s.npy", e[i].name);
        assert_int_equal(nl, strlen(name));
        assert_memory_equal(c + 46, name, nl);
        c += 46 + nl + rd16(c + 30) + rd16(c + 32);
    }
    assert_ptr_equal(c, end);
    free(z);
}

static void test_archive_reads_back_member_by_member(void **state)
{
    struct npz_entry e[4];
    size_t n = sample(e);
    const char *path = path_in("sample.npz");
    struct mt_err err = {0};
    assert_int_equal(npz_write(path, e, n, &err), 0);
    check_archive(path, e, n, sample_dicts);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_false(exists(tmp));
}

static void test_npy_header_pads_to_64_and_writes_tuples(void **state)
{
    char h[NPY_HEADER_MAX];
    uint64_t one[] = {10}, big[] = {60000, 784, 3};
    size_t n = npy_header(h, sizeof h, one, 1);
    assert_int_equal(n, 128);  /* 10 + 58-byte dict + '\n' = 69, padded to 128 */
    assert_memory_equal(h + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", 58);
    n = npy_header(h, sizeof h, big, 3);
    assert_int_equal(n % 64, 0);
    assert_non_null(strstr(h + 10, "'shape': (60000, 784, 3), }"));
    assert_int_equal(npy_header(h, 32, big, 3), 0);  /* too small a buffer */
}

static void test_empty_archive_is_just_the_end_record(void **state)
{
    const char *path = path_in("none.npz");
    struct mt_err err = {0};
    assert_int_equal(npz_write(path, NULL, 0, &err), 0);
    size_t len;
    uint8_t *z = slurp(path, &len);
    assert_int_equal(len, 22);
    assert_int_equal(rd32(z), 0x06054b50u);
    free(z);
}

static void test_size_not_matching_shape_is_refused(void **state)
{
    struct npz_entry e[4];
    sample(e);
    e[0].bytes -= 4;
    const char *path = path_in("short.npz");
    struct mt_err err = {0};
    assert_int_equal(npz_write(path, e, 4, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "W1"));
    assert_false(exists(path));
}

static void test_bad_and_duplicate_names_are_refused(void **state)
{
    static const char *const bad[] = {"a/b", "..x", "", ".hidden", "sp ace"};
    struct npz_entry e[4];
    struct mt_err err = {0};
    const char *path = path_in("names.npz");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sample(e);
        e[1].name = bad[i];
        assert_int_equal(npz_write(path, e, 4, &err), MT_E_INVAL);
    }
    sample(e);
    e[2].name = "W1";
    assert_int_equal(npz_write(path, e, 4, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "two arrays are named 'W1'"));
    assert_false(exists(path));
}

static void test_archive_over_4gib_is_refused_before_writing(void **state)
{
    /* 5 GiB of floats, never read: the check comes before any byte */
    static const uint64_t shape[] = {1342177280};
    static float dummy;
    struct npz_entry e = {"huge", shape, 1, &dummy, 5368709120ull, 0};
    const char *path = path_in("huge.npz");
    struct mt_err err = {0};
    assert_int_equal(npz_write(path, &e, 1, &err), MT_E_TOOBIG);
    assert_non_null(strstr(err.msg, "4 GiB"));
    assert_non_null(strstr(err.msg, "zip64"));
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_false(exists(path));
    assert_false(exists(tmp));
}

static void test_existing_file_is_replaced_whole_or_left_alone(void **state)
{
    const char *path = path_in("keep.npz");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("old", f);
    fclose(f);
    struct npz_entry e[4];
    sample(e);
    e[3].ndim = 99;  /* refused: the old file must stay */
    struct mt_err err = {0};
    assert_int_equal(npz_write(path, e, 4, &err), MT_E_INVAL);
    size_t len;
    uint8_t *z = slurp(path, &len);
    assert_int_equal(len, 3);
    free(z);
    sample(e);
    assert_int_equal(npz_write(path, e, 4, &err), 0);
    check_archive(path, e, 4, sample_dicts);
}

static void test_unwritable_place_names_the_file(void **state)
{
    struct npz_entry e[4];
    size_t n = sample(e);
    const char *path = path_in("no-such-dir/x.npz");
    struct mt_err err = {0};
    assert_int_equal(npz_write(path, e, n, &err), MT_E_IO);
    assert_non_null(strstr(err.msg, "no-such-dir/x.npz.tmp"));
    assert_non_null(strstr(err.msg, "No such file or directory"));
}

static int have_numpy(void)
{
    return access("/usr/bin/python3", X_OK) == 0 &&
           system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

/* Run a Python script (its lines, sys.argv[1] = path) under /usr/bin/python3;
 * it must exit 0. */
static void numpy_check(const char *path, const char *script)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c '\n%s' '%s'", script, path);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
}

static void test_numpy_loads_the_archive(void **state)
{
    if (!have_numpy())
        skip();  /* no numpy here: the byte-level checks above stand alone */
    struct npz_entry e[4];
    size_t n = sample(e);
    const char *path = path_in("numpy.npz");
    struct mt_err err = {0};
    assert_int_equal(npz_write(path, e, n, &err), 0);
    numpy_check(path,
                "import numpy as np, sys\n"
                "z = np.load(sys.argv[1])\n"
                "assert sorted(z.files) == [\"W1\", \"adam.m\", \"b1\", \"empty\"], z.files\n"
                "w = np.arange(12, dtype=np.float32).reshape(3, 4) * np.float32(0.5) - np.float32(1)\n"
                "assert z[\"W1\"].dtype == np.dtype(\"<f4\") and z[\"W1\"].shape == (3, 4)\n"
                "assert (z[\"W1\"] == w).all()\n"
                "assert (z[\"b1\"] == -np.arange(4, dtype=np.float32) / np.float32(3)).all()\n"
                "assert z[\"adam.m\"].shape == () and z[\"adam.m\"] == np.float32(42.5)\n"
                "assert z[\"empty\"].shape == (0, 5)\n");
}

/* A raw member (the model's description): stored under its own name, its
 * bytes unchanged, beside the arrays; numpy gives the bytes back. */
static void test_raw_member_is_stored_as_is(void **state)
{
    static const char json[] = "{\"format\": 1}\n";
    struct npz_entry e[5];
    size_t n = sample(e);
    e[n++] = (struct npz_entry){"memtrain.json", NULL, 0, json, sizeof json - 1, 1};
    const char *path = path_in("raw.npz");
    struct mt_err err = {0};
    assert_int_equal(npz_write(path, e, n, &err), 0);
    size_t len;
    uint8_t *z = slurp(path, &len);
    /* the last local header: its name and the bytes right after it */
    size_t at = 0;
    for (size_t i = 0; i + 30 < len; i++)
        if (rd32(z + i) == 0x04034b50u)
            at = i;
    assert_int_equal(rd16(z + at + 26), strlen("memtrain.json"));
    assert_memory_equal(z + at + 30, "memtrain.json", 13);
    assert_int_equal(rd32(z + at + 22), sizeof json - 1);
    assert_memory_equal(z + at + 30 + 13, json, sizeof json - 1);
    assert_int_equal(rd32(z + at + 14), crc32(0L, (const Bytef *)json, sizeof json - 1));
    free(z);
    if (!have_numpy())
        return;
    numpy_check(path,
                "import numpy as np, json, sys\n"
                "z = np.load(sys.argv[1])\n"
                "assert \"memtrain.json\" in z.files, z.files\n"
                "assert json.loads(z[\"memtrain.json\"]) == {\"format\": 1}\n"
                "assert z[\"W1\"].shape == (3, 4)\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_archive_reads_back_member_by_member),
        cmocka_unit_test(test_npy_header_pads_to_64_and_writes_tuples),
        cmocka_unit_test(test_empty_archive_is_just_the_end_record),
        cmocka_unit_test(test_size_not_matching_shape_is_refused),
        cmocka_unit_test(test_bad_and_duplicate_names_are_refused),
        cmocka_unit_test(test_archive_over_4gib_is_refused_before_writing),
        cmocka_unit_test(test_existing_file_is_replaced_whole_or_left_alone),
        cmocka_unit_test(test_unwritable_place_names_the_file),
        cmocka_unit_test(test_numpy_loads_the_archive),
        cmocka_unit_test(test_raw_member_is_stored_as_is),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
