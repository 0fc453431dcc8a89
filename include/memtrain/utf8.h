/* utf8.h: is a string valid UTF-8, and making it so.
 *
 * Protobuf's `string` fields must hold UTF-8: a strict client (Python's,
 * Go's) refuses a whole message carrying one bad byte. memtraind refuses
 * requests whose strings are not UTF-8 and scrubs text it did not get from a
 * client (a worker's log lines) before storing and echoing it. Valid means
 * RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
#ifndef MEMTRAIN_UTF8_H
#define MEMTRAIN_UTF8_H

#include <stddef.h>

/* The offset of the first byte of s[0..n) that is not part of a valid UTF-8
 * sequence, or n when all of it is valid. */
size_t mt_utf8_valid_prefix(const char *s, size_t n);

/* Replace, in place, each byte of the NUL-terminated s that is not part of a
 * valid sequence with '?' (the length stays). Returns how many were
 * replaced. */
size_t mt_utf8_scrub(char *s);

#endif
