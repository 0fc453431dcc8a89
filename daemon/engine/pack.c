/* pack.c: k-bit codes in bytes (pack.h). */
#include "pack.h"

#include <string.h>

size_t pack_bytes(size_t n, int bits)
{
    return (n * (size_t)bits + 7) / 8;
}

void pack_codes(uint8_t *dst, const uint8_t *codes, size_t n, int bits)
{
    int per = 8 / bits;
    uint8_t mask = (uint8_t)((1u << bits) - 1u);
    memset(dst, 0, pack_bytes(n, bits));
    for (size_t i = 0; i < n; i++)
        dst[i / per] |= (uint8_t)((codes[i] & mask) << ((i % per) * bits));
}

void pack_unpack_codes(uint8_t *codes, const uint8_t *src, size_t n, int bits)
{
    for (size_t i = 0; i < n; i++)
        codes[i] = (uint8_t)pack_get(src, i, bits);
}

void pack_sign(uint8_t *dst, const float *x, size_t n)
{
    size_t full = n / 8;
    for (size_t b = 0; b < full; b++) {
        const float *v = x + 8 * b;
        dst[b] = (uint8_t)((v[0] > 0) | (v[1] > 0) << 1 | (v[2] > 0) << 2 | (v[3] > 0) << 3 |
                           (v[4] > 0) << 4 | (v[5] > 0) << 5 | (v[6] > 0) << 6 |
                           (v[7] > 0) << 7);
    }
    if (n % 8) {
        uint8_t last = 0;
        for (size_t i = 8 * full; i < n; i++)
            last |= (uint8_t)((x[i] > 0) << (i % 8));
        dst[full] = last;
    }
}

void pack_unpack_sign(float *out, const uint8_t *src, size_t n, float one, float zero)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (src[i >> 3] >> (i & 7)) & 1 ? one : zero;
}
