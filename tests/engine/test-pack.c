/* test-pack.c: k-bit packing (pack.h) against plain loops: 1-, 2- and 4-bit
 * codes round-trip at every length, the layout is the documented one (code
 * i at bit i*k of the little end), the unused high bits of the last byte are
 * zero, nothing past pack_bytes is written, and the sign packing agrees
 * with a naive loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"
#include "rng.h"

#define MAXN 1100
#define GUARD 0xA5

/* Lengths 0..130 and a few long ones around multiples of 8. */
static size_t test_len(int i)
{
    static const size_t big[] = {255, 256, 257, 511, 1000, 1001, 1023, 1024, 1025, 1099};
    return i <= 130 ? (size_t)i : big[i - 131];
}
#define NLEN (131 + 10)

static void test_pack_bytes_is_ceil_of_bits(void **state)
{
    (void)state;
    assert_int_equal(pack_bytes(0, 1), 0);
    assert_int_equal(pack_bytes(1, 1), 1);
    assert_int_equal(pack_bytes(8, 1), 1);
    assert_int_equal(pack_bytes(9, 1), 2);
    assert_int_equal(pack_bytes(1, 2), 1);
    assert_int_equal(pack_bytes(4, 2), 1);
    assert_int_equal(pack_bytes(5, 2), 2);
    assert_int_equal(pack_bytes(1, 4), 1);
    assert_int_equal(pack_bytes(2, 4), 1);
    assert_int_equal(pack_bytes(3, 4), 2);
    assert_int_equal(pack_bytes(200000, 1), 25000); /* 100 x 2000 ASA bits */
    for (size_t n = 0; n < 100; n++)
        for (int k = 1; k <= 4; k *= 2)
            assert_int_equal(pack_bytes(n, k), (n * (size_t)k + 7) / 8);
}

/* Byte b of the naive layout: bits of codes i with i*k in [8b, 8b+8). */
static uint8_t naive_byte(const uint8_t *codes, size_t n, int k, size_t b)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        if ((i * (size_t)k) / 8 == b)
            v |= (unsigned)codes[i] << ((i * (size_t)k) % 8);
    return (uint8_t)v;
}

static void check_codes_round_trip(int k)
{
    struct mt_rng rng;
    uint8_t codes[MAXN], back[MAXN], packed[MAXN + 8];
    rng_seed(&rng, 100 + (uint64_t)k);
    for (int t = 0; t < NLEN; t++) {
        size_t n = test_len(t), nb = pack_bytes(n, k);
        for (size_t i = 0; i < n; i++)
            codes[i] = (uint8_t)rng_below(&rng, 1u << k);
        memset(packed, 0xFF, nb);               /* stale bits must not survive */
        memset(packed + nb, GUARD, 8);
        pack_codes(packed, codes, n, k);
        for (size_t j = 0; j < 8; j++)
            if (packed[nb + j] != GUARD)
                fail_msg("k=%d n=%zu: pack_codes wrote byte %zu past pack_bytes", k, n, nb + j);
        for (size_t b = 0; b < nb; b++)
            if (packed[b] != naive_byte(codes, n, k, b))
                fail_msg("k=%d n=%zu: byte %zu is 0x%02x, layout says 0x%02x", k, n, b,
                         packed[b], naive_byte(codes, n, k, b));
        if (n % (8 / k)) {
            unsigned used = (unsigned)(n * (size_t)k % 8);
            if (packed[nb - 1] >> used)
                fail_msg("k=%d n=%zu: unused high bits of the last byte are 0x%02x", k, n,
                         packed[nb - 1] >> used);
        }
        memset(back, 0xEE, sizeof back);
        pack_unpack_codes(back, packed, n, k);
        assert_memory_equal(back, codes, n);
        assert_int_equal(back[n], 0xEE); /* nothing written past n */
        for (size_t i = 0; i < n; i++)
            assert_int_equal(pack_get(packed, i, k), codes[i]);
    }
}

static void test_1bit_codes_round_trip(void **state) { (void)state; check_codes_round_trip(1); }
static void test_2bit_codes_round_trip(void **state) { (void)state; check_codes_round_trip(2); }
static void test_4bit_codes_round_trip(void **state) { (void)state; check_codes_round_trip(4); }

/* Values around zero that a sign packer could get wrong. */
static float sign_sample(struct mt_rng *rng)
{
    switch (rng_below(rng, 8)) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return 1e-30f;
    case 3: return -1e-30f;
    case 4: return NAN;
    default: return rng_normal(rng);
    }
}

static void test_pack_sign_matches_naive_loop(void **state)
{
    (void)state;
    struct mt_rng rng;
    float x[MAXN], out[MAXN];
    uint8_t packed[MAXN / 8 + 16];
    rng_seed(&rng, 42);
    for (int t = 0; t < NLEN; t++) {
        size_t n = test_len(t), nb = pack_bytes(n, 1);
        for (size_t i = 0; i < n; i++)
            x[i] = sign_sample(&rng);
        memset(packed, 0xFF, nb);
        memset(packed + nb, GUARD, 8);
        pack_sign(packed, x, n);
        for (size_t j = 0; j < 8; j++)
            assert_int_equal(packed[nb + j], GUARD);
        for (size_t i = 0; i < n; i++) {
            unsigned want = x[i] > 0, got = (packed[i / 8] >> (i % 8)) & 1u;
            if (got != want)
                fail_msg("n=%zu: bit %zu is %u for x = %g", n, i, got, (double)x[i]);
        }
        if (n % 8)
            assert_int_equal(packed[nb - 1] >> (n % 8), 0);
        /* pack_codes of the naive 0/1 codes gives the same bytes. */
        uint8_t codes[MAXN], ref[MAXN / 8 + 16];
        for (size_t i = 0; i < n; i++)
            codes[i] = x[i] > 0;
        pack_codes(ref, codes, n, 1);
        assert_memory_equal(ref, packed, nb);

        out[n] = 7.0f;
        pack_unpack_sign(out, packed, n, 0.25f, -3.0f);
        for (size_t i = 0; i < n; i++)
            if (out[i] != (x[i] > 0 ? 0.25f : -3.0f))
                fail_msg("n=%zu: pack_unpack_sign[%zu] = %g for x = %g", n, i, (double)out[i],
                         (double)x[i]);
        assert_true(out[n] == 7.0f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_bytes_is_ceil_of_bits),
        cmocka_unit_test(test_1bit_codes_round_trip),
        cmocka_unit_test(test_2bit_codes_round_trip),
        cmocka_unit_test(test_4bit_codes_round_trip),
        cmocka_unit_test(test_pack_sign_matches_naive_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
