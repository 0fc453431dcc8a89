/* rng.h: the seeded random number generator (xoshiro256**, seeded through
 * splitmix64). Every random draw of a job comes from one of these, so the
 * same seed gives the same run. */
#ifndef MT_RNG_H
#define MT_RNG_H

#include <stdint.h>

struct mt_rng {
    uint64_t s[4];
};

void rng_seed(struct mt_rng *r, uint64_t seed);
uint64_t rng_next(struct mt_rng *r);
float rng_uniform(struct mt_rng *r);                 /* [0, 1) */
float rng_uniform_range(struct mt_rng *r, float lo, float hi);
float rng_normal(struct mt_rng *r);                  /* N(0, 1) */
uint32_t rng_below(struct mt_rng *r, uint32_t n);    /* [0, n), unbiased */
/* Derive an independent stream for a purpose (e.g. "feedback", layer l). */
void rng_derive(struct mt_rng *out, uint64_t seed, uint64_t stream);

#endif
