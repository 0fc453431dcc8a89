/* plural.h: "1 epoch", "2 epochs" in the messages of every program. */
#ifndef MEMTRAIN_PLURAL_H
#define MEMTRAIN_PLURAL_H

#include <stdint.h>

/* The English plural ending for a count: "" for 1, "s" otherwise
 * ("%u epoch%s", n, mt_plural(n)). */
static inline const char *mt_plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

#endif
