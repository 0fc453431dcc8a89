/* utf8.c: UTF-8 validation and scrubbing (RFC 3629, table 3-7 of Unicode). */
#include "memtrain/utf8.h"

#include <string.h>

/* The length of the valid sequence starting at s[0] (n bytes left), or 0. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;          /* overlong */
        else if (c == 0xed)
            hi = 0x9f;          /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;          /* overlong */
        else if (c == 0xf4)
            hi = 0x8f;          /* above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

size_t mt_utf8_valid_prefix(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = seq_len(p + i, n - i);
        if (!k)
            return i;
        i += k;
    }
    return n;
}

size_t mt_utf8_scrub(char *s)
{
    size_t n = strlen(s), i = 0, bad = 0;
    while (i < n) {
        i += mt_utf8_valid_prefix(s + i, n - i);
        if (i < n) {
            s[i++] = '?';
            bad++;
        }
    }
    return bad;
}
