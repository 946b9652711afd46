/*
 * merges.c - pair-keyed merge table and the merge loops over it.
 *
 * The table is open addressing with linear probing on a multiplicative
 * hash of the 64-bit pair, at most half full.  A lookup reads one 16-byte
 * slot in the common case.
 *
 * Short pieces keep their parts in an array with the priority of each
 * adjacent pair beside it and rescan it for the lowest after each merge.
 * Long pieces keep the parts in a doubly linked list and the candidate
 * pairs in a binary min-heap keyed by (priority, position of the left
 * part); an entry whose pair has changed since it was pushed is skipped
 * when popped.  Positions only grow from left to right, so both loops
 * merge the lowest priority first and the leftmost on a tie.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "merges.h"

#define MERGES_EMPTY UINT64_MAX
#define MERGES_NONE UINT32_MAX

static uint64_t merges_key(uint32_t left, uint32_t right)
{
    return (uint64_t)left << 32 | right;
}

static uint64_t merges_slot_of(const shard_merges *m, uint64_t key)
{
    return (key * 0x9e3779b97f4a7c15ull >> 32) & m->mask;
}

int shard_merges_init(shard_merges *m, size_t n)
{
    size_t cap = 16;

    memset(m, 0, sizeof(*m));
    while (cap < 2 * n + 2)
        cap *= 2;
    m->slots = malloc(cap * sizeof(*m->slots));
    if (!m->slots)
        return SHARD_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        m->slots[i].pair = MERGES_EMPTY;
    m->mask = cap - 1;
    return 0;
}

void shard_merges_free(shard_merges *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

int shard_merges_add(shard_merges *m, uint32_t left, uint32_t right,
                     uint32_t priority, uint32_t merged)
{
    uint64_t key = merges_key(left, right), i;

    if (2 * (m->count + 1) > m->mask + 1)
        return SHARD_EINVAL;
    for (i = merges_slot_of(m, key);; i = (i + 1) & m->mask) {
        shard_merge_slot *s = &m->slots[i];

        if (s->pair == key)
            return 1;
        if (s->pair == MERGES_EMPTY) {
            *s = (shard_merge_slot){key, priority, merged};
            m->count++;
            return 0;
        }
    }
}

const shard_merge_slot *shard_merges_find(const shard_merges *m,
                                          uint32_t left, uint32_t right)
{
    uint64_t key = merges_key(left, right), i;

    for (i = merges_slot_of(m, key);; i = (i + 1) & m->mask) {
        const shard_merge_slot *s = &m->slots[i];

        if (s->pair == key)
            return s;
        if (s->pair == MERGES_EMPTY)
            return NULL;
    }
}

static uint32_t merges_priority(const shard_merges *m, uint32_t left,
                                uint32_t right)
{
    const shard_merge_slot *s = shard_merges_find(m, left, right);

    return s ? s->priority : MERGES_NONE;
}

static long merges_apply_short(const shard_merges *m, uint32_t *ids,
                               size_t n)
{
    uint32_t prio[SHARD_MERGES_SHORT];

    for (size_t i = 0; i + 1 < n; i++)
        prio[i] = merges_priority(m, ids[i], ids[i + 1]);

    while (n > 1) {
        size_t best = 0;

        for (size_t i = 1; i + 1 < n; i++)
            if (prio[i] < prio[best])
                best = i;
        if (prio[best] == MERGES_NONE)
            break;

        ids[best] = shard_merges_find(m, ids[best], ids[best + 1])->merged;
        memmove(ids + best + 1, ids + best + 2,
                (n - best - 2) * sizeof(*ids));
        memmove(prio + best, prio + best + 1,
                (n - best - 2) * sizeof(*prio));
        n--;
        if (best > 0)
            prio[best - 1] = merges_priority(m, ids[best - 1], ids[best]);
        if (best + 1 < n)
            prio[best] = merges_priority(m, ids[best], ids[best + 1]);
    }
    return (long)n;
}

/* A binary min-heap of (priority << 32 | position) keys. */
typedef struct {
    uint64_t *k;
    size_t n;
} merges_heap;

static void heap_push(merges_heap *h, uint64_t key)
{
    size_t i = h->n++;

    while (i > 0 && h->k[(i - 1) / 2] > key) {
        h->k[i] = h->k[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->k[i] = key;
}

static uint64_t heap_pop(merges_heap *h)
{
    uint64_t top = h->k[0], last = h->k[--h->n];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->k[c + 1] < h->k[c])
            c++;
        if (h->k[c] >= last)
            break;
        h->k[i] = h->k[c];
        i = c;
    }
    if (h->n > 0)
        h->k[i] = last;
    return top;
}

/* Pushes the pair that starts at part `i`, if it is listed. */
static void heap_offer(merges_heap *h, const shard_merges *m,
                       const uint32_t *ids, const uint32_t *next, uint32_t i)
{
    uint32_t p;

    if (next[i] == MERGES_NONE)
        return;
    p = merges_priority(m, ids[i], ids[next[i]]);
    if (p != MERGES_NONE)
        heap_push(h, (uint64_t)p << 32 | i);
}

static long merges_apply_long(const shard_merges *m, uint32_t *ids,
                              size_t n)
{
    /* Every merge pushes at most two pairs and removes a part, so the
     * heap never holds more than 3n entries. */
    uint32_t *next = malloc(n * sizeof(*next));
    uint32_t *prev = malloc(n * sizeof(*prev));
    merges_heap h = {malloc(3 * n * sizeof(*h.k)), 0};
    long out = -1;

    if (!next || !prev || !h.k || n >= MERGES_NONE)
        goto done;
    for (size_t i = 0; i < n; i++) {
        next[i] = i + 1 < n ? (uint32_t)i + 1 : MERGES_NONE;
        prev[i] = i > 0 ? (uint32_t)i - 1 : MERGES_NONE;
    }
    for (uint32_t i = 0; i + 1 < n; i++)
        heap_offer(&h, m, ids, next, i);

    while (h.n > 0) {
        uint64_t key = heap_pop(&h);
        uint32_t i = (uint32_t)key, j = next[i];
        const shard_merge_slot *s;

        /* A part merged into its left neighbour has prev set to itself. */
        if (prev[i] == i || j == MERGES_NONE)
            continue;
        s = shard_merges_find(m, ids[i], ids[j]);
        if (!s || s->priority != key >> 32)
            continue;

        ids[i] = s->merged;
        next[i] = next[j];
        if (next[j] != MERGES_NONE)
            prev[next[j]] = i;
        prev[j] = j;
        if (prev[i] != MERGES_NONE)
            heap_offer(&h, m, ids, next, prev[i]);
        heap_offer(&h, m, ids, next, i);
    }

    out = 0;
    for (uint32_t i = 0; i != MERGES_NONE; i = next[i])
        ids[out++] = ids[i];
done:
    free(next);
    free(prev);
    free(h.k);
    return out;
}

long shard_merges_apply(const shard_merges *m, uint32_t *ids, size_t n)
{
    if (n <= SHARD_MERGES_SHORT)
        return merges_apply_short(m, ids, n);
    return merges_apply_long(m, ids, n);
}
