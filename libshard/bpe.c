/*
 * bpe.c - rank table and byte-pair merge.
 *
 * The table is open addressing with linear probing over XXH3-64 of the
 * token bytes, kept at most half full.  Each slot holds a rank, the length
 * and the first eight bytes of its token, so a probe reads the token's
 * other bytes only when those agree and the token is longer.  Strings of
 * one and two bytes, the most frequent lookups, have direct tables.
 *
 * Two merge loops give the same result.  Short pieces use an array of part
 * boundaries that is rescanned for the lowest pair after every merge
 * (O(n * m), cheap for words).  Long pieces keep the parts in a linked list
 * and the candidate pairs in a binary min-heap keyed by (rank, start),
 * which yields the same lowest-rank, leftmost-first order in O(n log n).
 */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bpe.h"
#include "internal.h"

static uint64_t bpe_hash(const unsigned char *s, size_t len)
{
    return XXH3_64bits(s, len);
}

/* The first min(len, 8) bytes of s as a zero-padded little-endian word,
 * read without touching s[len] or beyond. */
static uint64_t bpe_head(const unsigned char *s, size_t len)
{
    uint64_t v = 0;
    uint32_t lo, hi;

    if (len >= 8) {
        memcpy(&v, s, 8);
        return v;
    }
    if (len >= 4) {
        memcpy(&lo, s, 4);
        memcpy(&hi, s + len - 4, 4);
        return (uint64_t)lo | (uint64_t)hi << (8 * (len - 4));
    }
    return (uint64_t)s[0] | (uint64_t)s[len / 2] << (8 * (len / 2)) |
           (uint64_t)s[len - 1] << (8 * (len - 1));
}

/* Whether the slot holds exactly the bytes s[0..len) with head `head`. */
static int bpe_slot_is(const shard_bpe *b, const shard_bpe_slot *slot,
                       const unsigned char *s, size_t len, uint64_t head)
{
    if (slot->head != head || slot->len != len)
        return 0;
    return len <= 8 ||
           memcmp(b->arena + b->tok_off[slot->rank] + 8, s + 8, len - 8) ==
               0;
}

uint64_t shard_bpe_prefetch(const shard_bpe *b, const unsigned char *s,
                            size_t len)
{
    uint64_t h;

    if (len <= 2 || len > b->max_len)
        return 0;
    h = bpe_hash(s, len);
    __builtin_prefetch(&b->slots[h & b->mask]);
    return h;
}

/* shard_bpe_rank() with the hash of s[0..len) already known (ignored for
 * one and two bytes). */
static uint32_t bpe_rank_hashed(const shard_bpe *b, const unsigned char *s,
                                size_t len, uint64_t h)
{
    uint64_t head, i;

    if (len > b->max_len)
        return SHARD_BPE_NONE;
    if (len <= 2)
        return len == 1 ? b->byte_rank[s[0]]
                        : b->pair_rank[s[0] | (unsigned)s[1] << 8];

    head = bpe_head(s, len);
    for (i = h & b->mask;; i = (i + 1) & b->mask) {
        const shard_bpe_slot *slot = &b->slots[i];

        if (slot->rank == SHARD_BPE_NONE)
            return SHARD_BPE_NONE;
        if (bpe_slot_is(b, slot, s, len, head))
            return slot->rank;
    }
}

uint32_t shard_bpe_rank(const shard_bpe *b, const unsigned char *s,
                        size_t len)
{
    if (len <= 2 || len > b->max_len)
        return bpe_rank_hashed(b, s, len, 0);
    return bpe_rank_hashed(b, s, len, bpe_hash(s, len));
}

/* Inserts rank r, whose bytes are already in the id tables.  Returns 0, or
 * 1 when the same bytes already have a rank. */
static int bpe_insert(shard_bpe *b, uint32_t r)
{
    const unsigned char *s = b->arena + b->tok_off[r];
    size_t len = b->tok_len[r];
    uint64_t head = bpe_head(s, len), i;

    for (i = bpe_hash(s, len) & b->mask;; i = (i + 1) & b->mask) {
        shard_bpe_slot *slot = &b->slots[i];

        if (slot->rank == SHARD_BPE_NONE) {
            slot->rank = r;
            slot->len = (uint32_t)len;
            slot->head = head;
            break;
        }
        if (bpe_slot_is(b, slot, s, len, head))
            return 1;
    }

    if (len == 1)
        b->byte_rank[s[0]] = r;
    if (len == 2)
        b->pair_rank[s[0] | (unsigned)s[1] << 8] = r;
    return 0;
}

/* Sizes and allocates the id arrays and the slots for n entries whose
 * largest rank is max_rank. */
static int bpe_alloc(shard_bpe *b, size_t n, uint32_t max_rank)
{
    uint64_t cap = 16;

    while (cap < 2 * (uint64_t)n)
        cap <<= 1;
    b->n_ranks = max_rank + 1;
    b->tok_off = calloc(b->n_ranks, sizeof(*b->tok_off));
    b->tok_len = calloc(b->n_ranks, sizeof(*b->tok_len));
    b->slots = malloc(cap * sizeof(*b->slots));
    b->pair_rank = malloc(65536 * sizeof(*b->pair_rank));
    if (!b->tok_off || !b->tok_len || !b->slots || !b->pair_rank)
        return SHARD_ENOMEM;

    b->mask = cap - 1;
    for (uint64_t i = 0; i < cap; i++)
        b->slots[i].rank = SHARD_BPE_NONE;
    for (int i = 0; i < 256; i++)
        b->byte_rank[i] = SHARD_BPE_NONE;
    for (int i = 0; i < 65536; i++)
        b->pair_rank[i] = SHARD_BPE_NONE;
    return 0;
}

/* Fills the tables; the arena and arrays are in place. */
static int bpe_fill(shard_bpe *b, const shard_bpe_entry *e, size_t n,
                    size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = e[i].rank;

        if (b->tok_len[r] != 0) {
            *bad = i;
            return SHARD_EINPUT;
        }
        b->tok_off[r] = e[i].off;
        b->tok_len[r] = e[i].len;
        if (bpe_insert(b, r)) {
            *bad = i;
            return SHARD_EINPUT;
        }
        if (e[i].len > b->max_len)
            b->max_len = e[i].len;
    }

    for (int i = 0; i < 256; i++) {
        if (b->byte_rank[i] == SHARD_BPE_NONE) {
            *bad = n;
            return SHARD_EINPUT;
        }
    }
    return 0;
}

int shard_bpe_build(shard_bpe *b, unsigned char *arena,
                    const shard_bpe_entry *e, size_t n, size_t *bad)
{
    uint32_t max_rank = 0;
    int rc;

    memset(b, 0, sizeof(*b));
    b->arena = arena;
    for (size_t i = 0; i < n; i++) {
        if (e[i].rank >= SHARD_BPE_RANK_LIMIT) {
            *bad = i;
            shard_bpe_free(b);
            return SHARD_EINPUT;
        }
        if (e[i].rank > max_rank)
            max_rank = e[i].rank;
    }

    rc = bpe_alloc(b, n, max_rank);
    if (rc == 0)
        rc = bpe_fill(b, e, n, bad);
    if (rc != 0)
        shard_bpe_free(b);
    return rc;
}

void shard_bpe_free(shard_bpe *b)
{
    free(b->arena);
    free(b->tok_off);
    free(b->tok_len);
    free(b->slots);
    free(b->pair_rank);
    memset(b, 0, sizeof(*b));
}

/*
 * The array loop.  bound[0..m) are the part boundaries (bound[m-1] == n);
 * part k is piece[bound[k]..bound[k+1]) with rank part[k]; pair[k] is the
 * rank of parts k and k+1 joined, or SHARD_BPE_NONE.
 */
static size_t bpe_merge_array(const shard_bpe *b, const unsigned char *p,
                              size_t n, uint32_t *bound, uint32_t *part,
                              uint32_t *pair, uint32_t *out)
{
    size_t m = n + 1;

    for (size_t k = 0; k < n; k++) {
        bound[k] = (uint32_t)k;
        part[k] = b->byte_rank[p[k]];
        pair[k] = k + 1 < n ? shard_bpe_rank(b, p + k, 2) : SHARD_BPE_NONE;
    }
    bound[n] = (uint32_t)n;

    for (;;) {
        uint32_t best = SHARD_BPE_NONE;
        size_t k = 0;

        for (size_t i = 0; i + 2 < m; i++) {
            if (pair[i] < best) {
                best = pair[i];
                k = i;
            }
        }
        if (best == SHARD_BPE_NONE)
            break;

        part[k] = best;
        m--;
        memmove(bound + k + 1, bound + k + 2, (m - k - 1) * sizeof(*bound));
        memmove(part + k + 1, part + k + 2, (m - k - 2) * sizeof(*part));
        memmove(pair + k + 1, pair + k + 2, (m - k - 2) * sizeof(*pair));

        pair[k] = k + 2 < m ? shard_bpe_rank(b, p + bound[k],
                                             bound[k + 2] - bound[k])
                            : SHARD_BPE_NONE;
        if (k > 0)
            pair[k - 1] = shard_bpe_rank(b, p + bound[k - 1],
                                         bound[k + 1] - bound[k - 1]);
    }

    memcpy(out, part, (m - 1) * sizeof(*out));
    return m - 1;
}

long shard_bpe_merge_small(const shard_bpe *b, const unsigned char *piece,
                           size_t n, uint32_t *out)
{
    uint32_t local[3 * (SHARD_BPE_LARGE + 1)];
    uint32_t *mem = local;
    size_t got;

    if (n > SHARD_BPE_LARGE) {
        mem = malloc(3 * (n + 1) * sizeof(*mem));
        if (!mem)
            return -1;
    }

    got = bpe_merge_array(b, piece, n, mem, mem + n + 1, mem + 2 * (n + 1),
                          out);
    if (mem != local)
        free(mem);
    return (long)got;
}

/* A binary min-heap of packed (rank << 40 | start) keys. */
typedef struct {
    uint64_t *key;
    size_t len;
} bpe_heap;

#define BPE_KEY(rank, start) (((uint64_t)(rank) << 40) | (uint64_t)(start))

static void bpe_heap_down(bpe_heap *h, size_t i)
{
    uint64_t v = h->key[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= h->len)
            break;
        if (c + 1 < h->len && h->key[c + 1] < h->key[c])
            c++;
        if (h->key[c] >= v)
            break;
        h->key[i] = h->key[c];
        i = c;
    }
    h->key[i] = v;
}

static void bpe_heap_push(bpe_heap *h, uint64_t v)
{
    size_t i = h->len++;

    while (i > 0 && h->key[(i - 1) / 2] > v) {
        h->key[i] = h->key[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->key[i] = v;
}

static uint64_t bpe_heap_pop(bpe_heap *h)
{
    uint64_t top = h->key[0];

    h->key[0] = h->key[--h->len];
    if (h->len > 0)
        bpe_heap_down(h, 0);
    return top;
}

/*
 * State of the heap merge.  Parts are linked through next[]/prev[] by
 * their start offsets; a start whose part was absorbed on its left has
 * part[] == SHARD_BPE_NONE.  pair[s] is the rank of the part at s joined
 * with its right neighbour.  A heap key is stale when its start is dead or
 * pair[] no longer holds its rank: a changed pair at the same start is a
 * longer byte string and so has a different rank.
 */
typedef struct {
    const shard_bpe *b;
    const unsigned char *p;
    uint32_t n;
    uint32_t *next, *prev, *part, *pair;
    bpe_heap heap;
} bpe_large;

/* Recomputes pair[s] and queues it when it is a token. */
static void bpe_large_pair(bpe_large *g, uint32_t s)
{
    uint32_t nx = g->next[s];
    uint32_t r = SHARD_BPE_NONE;

    if (nx < g->n)
        r = shard_bpe_rank(g->b, g->p + s, g->next[nx] - s);
    g->pair[s] = r;
    if (r != SHARD_BPE_NONE)
        bpe_heap_push(&g->heap, BPE_KEY(r, s));
}

static void bpe_large_run(bpe_large *g)
{
    while (g->heap.len > 0) {
        uint64_t key = bpe_heap_pop(&g->heap);
        uint32_t s = (uint32_t)(key & ((1ull << 40) - 1));
        uint32_t r = (uint32_t)(key >> 40);
        uint32_t gone;

        if (g->part[s] == SHARD_BPE_NONE || g->pair[s] != r)
            continue;

        gone = g->next[s];
        g->part[s] = r;
        g->part[gone] = SHARD_BPE_NONE;
        g->next[s] = g->next[gone];
        if (g->next[s] < g->n)
            g->prev[g->next[s]] = s;

        bpe_large_pair(g, s);
        if (s > 0)
            bpe_large_pair(g, g->prev[s]);
    }
}

long shard_bpe_merge_large(const shard_bpe *b, const unsigned char *piece,
                           size_t n, uint32_t *out)
{
    bpe_large g = {.b = b, .p = piece, .n = (uint32_t)n};
    uint32_t *mem;
    size_t got = 0;

    if (n >= UINT32_MAX || n >= (1ull << 40))
        return -1;
    mem = malloc(4 * (size_t)n * sizeof(*mem));
    g.heap.key = malloc(2 * (size_t)n * sizeof(*g.heap.key));
    if (!mem || !g.heap.key) {
        free(mem);
        free(g.heap.key);
        return -1;
    }
    g.next = mem;
    g.prev = mem + n;
    g.part = mem + 2 * n;
    g.pair = mem + 3 * n;

    for (uint32_t s = 0; s < g.n; s++) {
        g.next[s] = s + 1;
        g.prev[s] = s - 1;
        g.part[s] = b->byte_rank[piece[s]];
        g.pair[s] = s + 1 < g.n ? shard_bpe_rank(b, piece + s, 2)
                                : SHARD_BPE_NONE;
        if (g.pair[s] != SHARD_BPE_NONE)
            g.heap.key[g.heap.len++] = BPE_KEY(g.pair[s], s);
    }
    for (size_t i = g.heap.len / 2; i-- > 0;)
        bpe_heap_down(&g.heap, i);

    bpe_large_run(&g);

    for (uint32_t s = 0; s < g.n; s = g.next[s])
        out[got++] = g.part[s];
    free(mem);
    free(g.heap.key);
    return (long)got;
}

long shard_bpe_encode(const shard_bpe *b, const unsigned char *piece,
                      size_t n, uint64_t hash, uint32_t *out)
{
    uint32_t r = bpe_rank_hashed(b, piece, n, hash);

    if (r != SHARD_BPE_NONE) {
        out[0] = r;
        return 1;
    }
    if (n < SHARD_BPE_LARGE)
        return shard_bpe_merge_small(b, piece, n, out);
    return shard_bpe_merge_large(b, piece, n, out);
}
