/* simd.h: MT_CLONES compiles a hot loop for AVX-512, AVX2 and plain x86-64,
 * picked once at load time (GCC target_clones). The loops it marks are
 * element-wise or sum in a fixed order, and the build contracts no
 * multiply-adds (-ffp-contract=off), so every clone gives the same bits. */
#ifndef MT_SIMD_H
#define MT_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MT_CLONES
#endif

#endif
