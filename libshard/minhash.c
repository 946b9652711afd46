/*
 * minhash.c - MinHash signatures and an LSH band index (minhash.h).
 *
 * Signatures of the responses added are kept in one array; the band
 * index is open addressing over (band key, response number) entries,
 * several entries per band key, found by probing the run.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "dedup.h"
#include "internal.h"
#include "minhash.h"

#define MAX_HASHES 128
#define SHINGLE_WORDS 3

typedef struct {
    uint64_t key;  /* 0: empty */
    uint32_t item; /* response number */
} band_slot;

struct shard_near {
    double threshold;
    int bands, rows, hashes;
    uint64_t a[MAX_HASHES], b[MAX_HASHES];
    uint32_t *sigs;       /* hashes values per response added */
    uint32_t *stamp;      /* last query that compared each response */
    size_t n_items, cap_sigs, cap_stamp;
    band_slot *slots;
    size_t cap, used;     /* slots (a power of two), entries */
    uint64_t candidates, queries;
    char *lower;          /* the response, ASCII lower-cased */
    size_t cap_lower;
};

/* (1/b)^(1/r), the Jaccard where banding finds half the pairs, by
 * bisection (the library does not link libm's pow). */
static double band_threshold(int b, int r)
{
    double lo = 0.0, hi = 1.0;

    for (int i = 0; i < 60; i++) {
        double x = (lo + hi) / 2, p = 1.0;

        for (int k = 0; k < r; k++)
            p *= x;
        if (p * b < 1.0)
            lo = x;
        else
            hi = x;
    }
    return lo;
}

/* The b x r <= MAX_HASHES whose threshold is nearest t. */
static void choose_shape(shard_near *n, double t)
{
    double best = 2.0;

    for (int r = 1; r <= 32; r++) {
        int b = MAX_HASHES / r;
        double d = band_threshold(b, r) - t;

        if (d < 0)
            d = -d;
        if (d < best) {
            best = d;
            n->bands = b;
            n->rows = r;
        }
    }
    n->hashes = n->bands * n->rows;
}

int shard_near_open(shard_near **out, double threshold, uint64_t seed)
{
    shard_near *n = calloc(1, sizeof(*n));
    uint64_t s = seed;

    *out = NULL;
    if (!n)
        return SHARD_ENOMEM;
    n->threshold = threshold;
    choose_shape(n, threshold);
    for (int i = 0; i < MAX_HASHES; i++) {
        n->a[i] = shard_splitmix64(&s) | 1;
        n->b[i] = shard_splitmix64(&s);
    }
    n->cap = 1024;
    if (!(n->slots = calloc(n->cap, sizeof(*n->slots)))) {
        free(n);
        return SHARD_ENOMEM;
    }
    *out = n;
    return 0;
}

void shard_near_free(shard_near *n)
{
    if (!n)
        return;
    free(n->sigs);
    free(n->stamp);
    free(n->slots);
    free(n->lower);
    free(n);
}

/* Folds one shingle hash x into the signature. */
static void sig_add(const shard_near *n, uint32_t *sig, uint64_t x)
{
    for (int i = 0; i < n->hashes; i++) {
        uint32_t v = (uint32_t)((n->a[i] * x + n->b[i]) >> 32);

        if (v < sig[i])
            sig[i] = v;
    }
}

/*
 * The signature of s[0..len) into sig[]; returns the number of words.
 * Shingles are hashed from the hashes of their words.
 */
static size_t signature(const shard_near *n, const char *s, size_t len,
                        uint32_t *sig)
{
    uint64_t w[SHINGLE_WORDS];
    size_t words = 0, at = 0, start, n_word;

    memset(sig, 0xff, (size_t)n->hashes * sizeof(*sig));
    while ((n_word = shard_word_next(s, len, &at, &start)) > 0) {
        memmove(w, w + 1, (SHINGLE_WORDS - 1) * sizeof(*w));
        w[SHINGLE_WORDS - 1] = XXH3_64bits(s + start, n_word);
        if (++words >= SHINGLE_WORDS)
            sig_add(n, sig, XXH3_64bits(w, sizeof(w)));
    }
    if (words && words < SHINGLE_WORDS)
        sig_add(n, sig, XXH3_64bits(w + SHINGLE_WORDS - words,
                                    words * sizeof(*w)));
    return words;
}

static uint64_t band_key(const shard_near *n, const uint32_t *sig, int band,
                         uint64_t scope)
{
    uint64_t h = XXH3_64bits_withSeed(sig + band * n->rows,
                                      (size_t)n->rows * sizeof(*sig),
                                      scope * 131 + (uint64_t)band);

    return h ? h : 1;
}

static int slots_grow(shard_near *n)
{
    band_slot *old = n->slots;
    size_t old_cap = n->cap;

    if (!(n->slots = calloc(old_cap * 2, sizeof(*n->slots)))) {
        n->slots = old;
        return SHARD_ENOMEM;
    }
    n->cap = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++) {
        size_t j;

        if (!old[i].key)
            continue;
        j = (size_t)old[i].key & (n->cap - 1);
        while (n->slots[j].key)
            j = (j + 1) & (n->cap - 1);
        n->slots[j] = old[i];
    }
    free(old);
    return 0;
}

/* 1 when the earlier response `item` agrees with sig on enough values. */
static int similar(shard_near *n, const uint32_t *sig, uint32_t item)
{
    const uint32_t *other = n->sigs + (size_t)item * (size_t)n->hashes;
    int same = 0;

    if (n->stamp[item] == (uint32_t)n->queries)
        return 0; /* compared already, through another band */
    n->stamp[item] = (uint32_t)n->queries;
    n->candidates++;
    for (int i = 0; i < n->hashes; i++)
        same += sig[i] == other[i];
    return same >= n->threshold * n->hashes;
}

/* Adds the response whose signature is sig[] (already in n->sigs). */
static int index_add(shard_near *n, const uint64_t *keys)
{
    for (int b = 0; b < n->bands; b++) {
        size_t j;

        if ((n->used + 1) * 2 > n->cap && slots_grow(n) < 0)
            return SHARD_ENOMEM;
        j = (size_t)keys[b] & (n->cap - 1);
        while (n->slots[j].key)
            j = (j + 1) & (n->cap - 1);
        n->slots[j] = (band_slot){keys[b], (uint32_t)n->n_items};
        n->used++;
    }
    n->n_items++;
    return 0;
}

int shard_near_check(shard_near *n, const char *text, size_t len,
                     uint64_t scope)
{
    uint64_t keys[MAX_HASHES];
    uint32_t *sig;

    if (shard_grow((void **)&n->sigs, &n->cap_sigs,
                   (n->n_items + 1) * (size_t)n->hashes, sizeof(*n->sigs)) ||
        shard_grow((void **)&n->stamp, &n->cap_stamp, n->n_items + 1,
                   sizeof(*n->stamp)) ||
        shard_grow((void **)&n->lower, &n->cap_lower, len + 1, 1))
        return SHARD_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        n->lower[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    sig = n->sigs + n->n_items * (size_t)n->hashes;
    if (signature(n, n->lower, len, sig) == 0)
        return 0;

    n->queries++;
    for (int b = 0; b < n->bands; b++) {
        size_t j;

        keys[b] = band_key(n, sig, b, scope);
        for (j = (size_t)keys[b] & (n->cap - 1); n->slots[j].key;
             j = (j + 1) & (n->cap - 1))
            if (n->slots[j].key == keys[b] &&
                similar(n, sig, n->slots[j].item))
                return 1;
    }
    n->stamp[n->n_items] = 0;
    return index_add(n, keys);
}

uint64_t shard_near_candidates(const shard_near *n)
{
    return n->candidates;
}

void shard_near_shape(const shard_near *n, int *bands, int *rows)
{
    *bands = n->bands;
    *rows = n->rows;
}
