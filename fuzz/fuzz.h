/*
 * fuzz.h - what the harnesses share: REQUIRE, which aborts (the finding
 * libFuzzer and the replay driver report), and a small FNV-1a style digest
 * to compare two readings of the same data (not a checksum of any file
 * format).
 */
#ifndef SHARD_FUZZ_H
#define SHARD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond))                                                        \
            abort();                                                        \
    } while (0)

static inline uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static inline uint64_t mix_u64(uint64_t h, uint64_t v)
{
    return mix(h, &v, sizeof(v));
}

#endif
