/*
 * fuzz_hash.h - a small FNV-1a style digest the harnesses use to compare
 * two readings of the same data.  Not a checksum of any file format.
 */
#ifndef SHARD_FUZZ_HASH_H
#define SHARD_FUZZ_HASH_H

#include <stddef.h>
#include <stdint.h>

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
