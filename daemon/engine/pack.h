/* pack.h: k-bit codes packed into bytes (k = 1, 2 or 4), for what rules keep
 * between the forward and the update: ASA's sign bits and ReLU masks (1 bit),
 * ReGELU2/ReSiLU2 codes (2 bits), 4-bit approximate activations, binary
 * weights (1 bit).
 *
 * Layout: element i lives in byte (i * k) / 8 at bit (i * k) % 8, least
 * significant bits first; the unused high bits of the last byte are zero.
 * So n codes take pack_bytes(n, k) = ceil(n k / 8) bytes, which is what the
 * plans count. No allocation. */
#ifndef MT_PACK_H
#define MT_PACK_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of n packed k-bit codes. */
size_t pack_bytes(size_t n, int bits);
/* Pack n codes (each < 2^bits, one per byte in `codes`) into dst. */
void pack_codes(uint8_t *dst, const uint8_t *codes, size_t n, int bits);
/* Unpack n codes from src into one byte each. */
void pack_unpack_codes(uint8_t *codes, const uint8_t *src, size_t n, int bits);
/* Code i of a packed array. */
static inline unsigned pack_get(const uint8_t *src, size_t i, int bits)
{
    size_t bit = i * (size_t)bits;
    return (src[bit >> 3] >> (bit & 7)) & ((1u << bits) - 1u);
}
/* 1-bit: bit i of dst = [x_i > 0]. */
void pack_sign(uint8_t *dst, const float *x, size_t n);
/* out_i = bit i ? one : zero. */
void pack_unpack_sign(float *out, const uint8_t *src, size_t n, float one, float zero);

#endif
