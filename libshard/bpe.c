/*
 * bpe.c - rank table and byte-pair merge.
 *
 * The table is open addressing with linear probing over XXH3-64 of the
 * token bytes, kept at most half full.  Each slot holds a rank, the length
 * and the first eight bytes of its token, so a probe reads the token's
 * other bytes only when those agree and the token is longer.  Strings of
 * one and two bytes, the most frequent lookups, have direct tables.
 *
 * The merge loops all give tiktoken's result.  Short pieces use an array
 * of parts that is rescanned for the lowest pair after every merge
 * (O(n * m), cheap for words).  Long pieces are first cut where no merge
 * can cross (shard_bpe_merge_large); each chunk then goes to the array
 * loop, to a min-tree over start offsets, or, when long, to a queue of
 * per-rank lists, all of which yield the lowest-rank, leftmost pair first.
 * A chunk of one byte repeated is merged as groups of equal parts
 * (runs.c).
 * A binary heap of (rank, start) keys, O(n log n), is the fallback of the
 * queue and the tests' independent check.  The merge loops look strings
 * up through a packed table of 3- and 4-byte tokens and a hash filter
 * before the main table, since most strings they ask about are short or
 * not tokens.
 *
 * Words repeat, so the merges of short pieces that are not tokens
 * themselves are kept in a small direct-mapped cache per thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bpe.h"
#include "internal.h"
#include "runs.h"

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

/*
 * The short table holds the tokens of three and four bytes, the strings
 * most merges ask about, in one 64-bit word each: the bytes (little-endian,
 * zero-padded), the length at bit 32 and the rank from bit 40.  At eight
 * bytes a slot and no hashing of bytes, it is a quarter of the main
 * table's size per token and stays in cache where the main table does not.
 */
#define BPE_SHORT_EMPTY UINT64_MAX

static uint64_t bpe_short_key(const unsigned char *s, size_t len)
{
    uint32_t k = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16;

    if (len == 4)
        k |= (uint32_t)s[3] << 24;
    return (uint64_t)k | (uint64_t)len << 32;
}

static uint64_t bpe_short_index(const shard_bpe *b, uint64_t key)
{
    return (key * 0x9e3779b97f4a7c15ull) >> 32 & b->short_mask;
}

/* Rank of a three- or four-byte string, or SHARD_BPE_NONE. */
static uint32_t bpe_rank_short(const shard_bpe *b, const unsigned char *s,
                               size_t len)
{
    uint64_t key = bpe_short_key(s, len);

    for (uint64_t i = bpe_short_index(b, key);; i = (i + 1) & b->short_mask) {
        uint64_t v = b->short_slots[i];

        if (v == BPE_SHORT_EMPTY)
            return SHARD_BPE_NONE;
        if ((v & 0xffffffffffull) == key)
            return (uint32_t)(v >> 40);
    }
}

/* Sizes the short table and fills it from the rank arrays. */
static int bpe_short_build(shard_bpe *b)
{
    size_t count = 0;
    uint64_t cap = 16;

    for (uint32_t r = 0; r < b->n_ranks; r++)
        count += b->tok_len[r] == 3 || b->tok_len[r] == 4;
    while (3 * cap < 4 * (uint64_t)count)
        cap <<= 1;
    b->short_slots = malloc(cap * sizeof(*b->short_slots));
    if (!b->short_slots)
        return SHARD_ENOMEM;
    b->short_mask = cap - 1;
    memset(b->short_slots, 0xff, cap * sizeof(*b->short_slots));

    for (uint32_t r = 0; r < b->n_ranks; r++) {
        uint64_t key, i;

        if (b->tok_len[r] != 3 && b->tok_len[r] != 4)
            continue;
        key = bpe_short_key(b->arena + b->tok_off[r], b->tok_len[r]);
        for (i = bpe_short_index(b, key);
             b->short_slots[i] != BPE_SHORT_EMPTY; i = (i + 1) & (cap - 1))
            ;
        b->short_slots[i] = key | (uint64_t)r << 40;
    }
    return 0;
}

/* The filter bit of a hash: bits the slot index (h & mask) never uses
 * while the table has fewer than 2^40 slots. */
#define BPE_FILTER_BITS 20
#define BPE_FILTER_BIT(h) ((h) >> (64 - BPE_FILTER_BITS))

/*
 * shard_bpe_rank() for the merge loops, where most strings asked about
 * are not tokens: a filter of 2^20 bits (128 KB) of the tokens' hashes
 * (small enough to stay in cache, unlike the slots) turns most of those
 * away before the probe.
 */
static uint32_t bpe_rank_merge(const shard_bpe *b, const unsigned char *s,
                               size_t len)
{
    uint64_t h;

    if (len == 3 || len == 4)
        return bpe_rank_short(b, s, len);
    if (len <= 2 || len > b->max_len)
        return bpe_rank_hashed(b, s, len, 0);
    h = bpe_hash(s, len);
    if (!(b->filter[BPE_FILTER_BIT(h) >> 6] >> (BPE_FILTER_BIT(h) & 63) & 1))
        return SHARD_BPE_NONE;
    return bpe_rank_hashed(b, s, len, h);
}

/* The trigram bit of the three bytes at s. */
static uint32_t bpe_trigram_at(const unsigned char *s)
{
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16;
}

static int bpe_has_trigram(const shard_bpe *b, const unsigned char *s)
{
    uint32_t t = bpe_trigram_at(s);

    return (int)(b->trigram[t >> 6] >> (t & 63) & 1);
}

/*
 * Rank of p[start..end) as the join of p[start..mid) and p[mid..end), or
 * SHARD_BPE_NONE.  A token of three bytes or more holds the three bytes
 * around the join (two before it when the left part has two), so when
 * the trigram table lacks them the join is no token and the lookup is
 * skipped; the trigram table's rows for one script sit close together, so
 * this check hits the cache where the lookup may not.
 */
static uint32_t bpe_rank_join(const shard_bpe *b, const unsigned char *p,
                              size_t start, size_t mid, size_t end)
{
    if (end - start >= 3 &&
        !bpe_has_trigram(b, p + (mid - start >= 2 ? mid - 2 : mid - 1)))
        return SHARD_BPE_NONE;
    return bpe_rank_merge(b, p + start, end - start);
}

uint32_t shard_bpe_rank_hashed(const shard_bpe *b, const unsigned char *s,
                               size_t len, uint64_t hash)
{
    return bpe_rank_hashed(b, s, len, hash);
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
    uint64_t head = bpe_head(s, len), h = bpe_hash(s, len), i;

    b->filter[BPE_FILTER_BIT(h) >> 6] |= 1ull << (BPE_FILTER_BIT(h) & 63);
    for (i = h & b->mask;; i = (i + 1) & b->mask) {
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
    b->trigram = calloc(1u << 18, sizeof(*b->trigram));
    b->filter = calloc(1u << (BPE_FILTER_BITS - 6), sizeof(*b->filter));
    if (!b->tok_off || !b->tok_len || !b->slots || !b->pair_rank ||
        !b->trigram || !b->filter)
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

/* Marks every three consecutive bytes of a token. */
static void bpe_note_trigrams(shard_bpe *b, const unsigned char *s,
                              size_t len)
{
    for (size_t i = 0; i + 3 <= len; i++) {
        uint32_t t = bpe_trigram_at(s + i);

        b->trigram[t >> 6] |= 1ull << (t & 63);
    }
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
        bpe_note_trigrams(b, b->arena + e[i].off, e[i].len);
    }

    for (int i = 0; i < 256; i++) {
        if (b->byte_rank[i] == SHARD_BPE_NONE) {
            *bad = n;
            return SHARD_EINPUT;
        }
    }
    return 0;
}

/* ---- the piece cache ------------------------------------------------ */

/*
 * One entry: a piece of at most BPE_CACHE_BYTES bytes and the ranks it
 * merges to, when there are at most BPE_CACHE_RANKS.  `serial` is the
 * table's; tables get new serials when built (never 0, which an empty
 * entry holds), so a table never reads another's entries, even one
 * freed before it was built at the same address.
 */
#define BPE_CACHE_SLOTS 4096 /* a power of two: 256 KB a thread */
#define BPE_CACHE_BYTES 24
#define BPE_CACHE_RANKS 6 /* with the above, an entry is 64 bytes */

typedef struct {
    uint64_t hash;
    uint32_t serial;
    uint8_t len, n_ranks;
    unsigned char bytes[BPE_CACHE_BYTES];
    uint32_t ranks[BPE_CACHE_RANKS];
} bpe_cache_entry;

static atomic_uint bpe_serials;
static pthread_key_t bpe_cache_key;
static pthread_once_t bpe_cache_once = PTHREAD_ONCE_INIT;
static int bpe_cache_key_ok;
static _Thread_local bpe_cache_entry *bpe_cache_mine;

static uint32_t bpe_new_serial(void)
{
    uint32_t s;

    while ((s = atomic_fetch_add(&bpe_serials, 1) + 1) == 0)
        ;
    return s;
}

static void bpe_cache_key_make(void)
{
    /* The key's destructor frees a thread's cache when the thread ends. */
    bpe_cache_key_ok = pthread_key_create(&bpe_cache_key, free) == 0;
}

/* The calling thread's cache, made on first use; NULL without memory. */
static bpe_cache_entry *bpe_cache(void)
{
    bpe_cache_entry *c = bpe_cache_mine;

    if (c)
        return c;
    pthread_once(&bpe_cache_once, bpe_cache_key_make);
    if (!bpe_cache_key_ok ||
        !(c = calloc(BPE_CACHE_SLOTS, sizeof(*c))))
        return NULL;
    if (pthread_setspecific(bpe_cache_key, c) != 0) {
        free(c);
        return NULL;
    }
    bpe_cache_mine = c;
    return c;
}

/*
 * merge() of a piece with hash h, through the calling thread's cache,
 * which keeps what merge() gave for pieces of at most BPE_CACHE_BYTES
 * bytes when it gave at most BPE_CACHE_RANKS ranks; longer pieces, and
 * hash 0, go straight to merge().  Inlined into each caller, so that a
 * constant merge() is called directly.
 */
static inline long bpe_cached(const shard_bpe *b, const unsigned char *piece,
                              size_t n, uint64_t h, shard_bpe_merge_fn merge,
                              const void *ctx, uint32_t *out)
{
    bpe_cache_entry *c, *e;
    long got;

    if (n > BPE_CACHE_BYTES || !h || !(c = bpe_cache()))
        return merge(ctx, piece, n, out);
    e = &c[(h >> 32) & (BPE_CACHE_SLOTS - 1)];
    if (e->serial == b->serial && e->hash == h && e->len == n &&
        memcmp(e->bytes, piece, n) == 0) {
        memcpy(out, e->ranks, e->n_ranks * sizeof(*out));
        return e->n_ranks;
    }

    got = merge(ctx, piece, n, out);
    if (got > 0 && got <= BPE_CACHE_RANKS) {
        e->serial = b->serial;
        e->hash = h;
        e->len = (uint8_t)n;
        e->n_ranks = (uint8_t)got;
        memcpy(e->bytes, piece, n);
        memcpy(e->ranks, out, (size_t)got * sizeof(*out));
    }
    return got;
}

static long bpe_merge_small_fn(const void *b, const unsigned char *piece,
                               size_t n, uint32_t *out)
{
    return shard_bpe_merge_small(b, piece, n, out);
}

long shard_bpe_cached(const shard_bpe *b, const unsigned char *piece,
                      size_t n, uint64_t hash, shard_bpe_merge_fn merge,
                      const void *ctx, uint32_t *out)
{
    return bpe_cached(b, piece, n, hash, merge, ctx, out);
}

int shard_bpe_build(shard_bpe *b, unsigned char *arena,
                    const shard_bpe_entry *e, size_t n, size_t *bad)
{
    uint32_t max_rank = 0;
    int rc;

    memset(b, 0, sizeof(*b));
    b->arena = arena;
    b->serial = bpe_new_serial();
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
    if (rc == 0)
        rc = bpe_short_build(b);
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
    free(b->trigram);
    free(b->filter);
    free(b->short_slots);
    memset(b, 0, sizeof(*b));
}

/*
 * The array loop.  e[0..m) are the parts in order: e[k].bound is where
 * part k starts (e[m-1].bound == n, the end), e[k].part its rank, e[k].pair
 * the rank of parts k and k+1 joined, or SHARD_BPE_NONE.  A merge removes
 * one entry with a single move.
 */
typedef struct {
    uint32_t bound, part, pair;
} bpe_entry;

static size_t bpe_merge_array(const shard_bpe *b, const unsigned char *p,
                              size_t n, bpe_entry *e, uint32_t *out)
{
    size_t m = n + 1;

    for (size_t k = 0; k < n; k++) {
        e[k].bound = (uint32_t)k;
        e[k].part = b->byte_rank[p[k]];
        e[k].pair = k + 1 < n ? b->pair_rank[p[k] | (unsigned)p[k + 1] << 8]
                              : SHARD_BPE_NONE;
    }
    e[n].bound = (uint32_t)n;

    for (;;) {
        uint32_t best = SHARD_BPE_NONE;
        size_t k = 0;

        /* Branch-free: where the lowest rank sits is random. */
        for (size_t i = 0; i + 2 < m; i++) {
            uint32_t v = e[i].pair;

            k = v < best ? i : k;
            best = v < best ? v : best;
        }
        if (best == SHARD_BPE_NONE)
            break;

        e[k].part = best;
        m--;
        memmove(e + k + 1, e + k + 2, (m - k - 1) * sizeof(*e));

        e[k].pair = k + 2 < m ? bpe_rank_join(b, p, e[k].bound,
                                              e[k + 1].bound, e[k + 2].bound)
                              : SHARD_BPE_NONE;
        if (k > 0)
            e[k - 1].pair = bpe_rank_join(b, p, e[k - 1].bound, e[k].bound,
                                          e[k + 1].bound);
    }

    for (size_t k = 0; k + 1 < m; k++)
        out[k] = e[k].part;
    return m - 1;
}

long shard_bpe_merge_small(const shard_bpe *b, const unsigned char *piece,
                           size_t n, uint32_t *out)
{
    bpe_entry local[SHARD_BPE_LARGE + 1];
    bpe_entry *mem = local;
    size_t got;

    if (n > SHARD_BPE_LARGE) {
        mem = malloc((n + 1) * sizeof(*mem));
        if (!mem)
            return -1;
    }

    got = bpe_merge_array(b, piece, n, mem, out);
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
 * The parts of a long piece, for the heap, tree and queue merges: one node
 * per start offset, so that touching a start touches one or two cache
 * lines.  Parts are linked through next/prev by their start offsets; a
 * start whose part was absorbed on its left has part == SHARD_BPE_NONE.
 * v[s].pair is the rank of the part at s joined with its right neighbour.
 */
typedef struct {
    uint32_t next, prev, part, pair;
    uint32_t after, before; /* the rank queue's list links */
} bpe_node;

typedef struct {
    const shard_bpe *b;
    const unsigned char *p;
    uint32_t n;
    bpe_node *v; /* [n], one cache line or two per start */
} bpe_parts;

/* Takes the n nodes at v and starts from single bytes. */
static void bpe_parts_start(bpe_parts *g, bpe_node *v)
{
    const shard_bpe *b = g->b;

    g->v = v;
    for (uint32_t s = 0; s < g->n; s++) {
        g->v[s].next = s + 1;
        g->v[s].prev = s - 1;
        g->v[s].part = b->byte_rank[g->p[s]];
        g->v[s].pair = s + 1 < g->n
                         ? b->pair_rank[g->p[s] | (unsigned)g->p[s + 1] << 8]
                         : SHARD_BPE_NONE;
    }
}

/* The rank of the part at s joined with the next one, or NONE. */
static uint32_t bpe_parts_pair_rank(const bpe_parts *g, uint32_t s)
{
    uint32_t nx = g->v[s].next;

    if (nx >= g->n)
        return SHARD_BPE_NONE;
    return bpe_rank_join(g->b, g->p, s, nx, g->v[nx].next);
}

/* Joins the part at s with the next one into rank r. */
static void bpe_parts_join(bpe_parts *g, uint32_t s, uint32_t r)
{
    uint32_t gone = g->v[s].next;

    g->v[s].part = r;
    g->v[gone].part = SHARD_BPE_NONE;
    g->v[s].next = g->v[gone].next;
    if (g->v[s].next < g->n)
        g->v[g->v[s].next].prev = s;
}

/* Writes the ranks of the parts, left to right; returns how many. */
static long bpe_parts_emit(const bpe_parts *g, uint32_t *out)
{
    long got = 0;

    for (uint32_t s = 0; s < g->n; s = g->v[s].next)
        out[got++] = g->v[s].part;
    return got;
}

/*
 * State of the heap merge.  A heap key is stale when its start is dead or
 * pair[] no longer holds its rank: a changed pair at the same start is a
 * longer byte string and so has a different rank.
 */
typedef struct {
    bpe_parts t;
    bpe_heap heap;
} bpe_large;

/* Recomputes pair[s] and queues it when it is a token. */
static void bpe_large_pair(bpe_large *g, uint32_t s)
{
    uint32_t r = bpe_parts_pair_rank(&g->t, s);

    g->t.v[s].pair = r;
    if (r != SHARD_BPE_NONE)
        bpe_heap_push(&g->heap, BPE_KEY(r, s));
}

static void bpe_large_run(bpe_large *g)
{
    while (g->heap.len > 0) {
        uint64_t key = bpe_heap_pop(&g->heap);
        uint32_t s = (uint32_t)(key & ((1ull << 40) - 1));
        uint32_t r = (uint32_t)(key >> 40);

        if (g->t.v[s].part == SHARD_BPE_NONE || g->t.v[s].pair != r)
            continue;

        bpe_parts_join(&g->t, s, r);
        bpe_large_pair(g, s);
        if (s > 0)
            bpe_large_pair(g, g->t.v[s].prev);
    }
}

long shard_bpe_merge_heap(const shard_bpe *b, const unsigned char *piece,
                          size_t n, uint32_t *out)
{
    bpe_large g = {.t = {.b = b, .p = piece, .n = (uint32_t)n}};
    bpe_node *mem;
    long got;

    if (n >= UINT32_MAX || n >= (1ull << 40))
        return -1;
    mem = malloc(n * sizeof(*mem));
    g.heap.key = malloc(2 * (size_t)n * sizeof(*g.heap.key));
    if (!mem || !g.heap.key) {
        free(mem);
        free(g.heap.key);
        return -1;
    }

    bpe_parts_start(&g.t, mem);
    for (uint32_t s = 0; s < g.t.n; s++)
        if (g.t.v[s].pair != SHARD_BPE_NONE)
            g.heap.key[g.heap.len++] = BPE_KEY(g.t.v[s].pair, s);
    for (size_t i = g.heap.len / 2; i-- > 0;)
        bpe_heap_down(&g.heap, i);

    bpe_large_run(&g);
    got = bpe_parts_emit(&g.t, out);
    free(mem);
    free(g.heap.key);
    return got;
}

/*
 * The rank queue: every start whose pair is a token sits in the list of
 * that pair's rank, so a start is in at most one list (its current pair)
 * and nothing in the queue is ever stale.  The non-empty ranks are bits of
 * a four-level bitmap (64 ranks per word at the bottom, one bit per
 * non-zero word of the level below above it): the lowest is four loads
 * away.  Lists must be in start order, so that the head of the lowest
 * list is the leftmost pair of the lowest rank.  Starts are appended; a
 * start that would arrive before the tail of its list sets `disorder`,
 * and the caller then merges the piece with the heap instead.  (Starts
 * have arrived in order in every piece tried: the published vocabularies
 * on adversarial pieces and 36,000 random texts under random vocabularies
 * whose ranks follow no merge order; the check keeps the result exact
 * should some vocabulary break that.)  head[] and tail[] of a rank are
 * only read while its bit is set, so they need no clearing.
 */
#define BPE_LEVELS 4

typedef struct {
    uint64_t *bits[BPE_LEVELS];
    uint32_t *head, *tail;    /* [n_ranks] */
    bpe_node *v;              /* [n]: after/before link the lists */
    int disorder;
} bpe_queue;

static void bpe_queue_mark(bpe_queue *q, uint32_t r)
{
    for (int k = 0; k < BPE_LEVELS; k++, r >>= 6) {
        uint64_t old = q->bits[k][r >> 6];

        q->bits[k][r >> 6] = old | 1ull << (r & 63);
        if (old != 0)
            break;
    }
}

static void bpe_queue_unmark(bpe_queue *q, uint32_t r)
{
    for (int k = 0; k < BPE_LEVELS; k++, r >>= 6) {
        q->bits[k][r >> 6] &= ~(1ull << (r & 63));
        if (q->bits[k][r >> 6] != 0)
            break;
    }
}

/* The lowest rank with a non-empty list, or SHARD_BPE_NONE. */
static uint32_t bpe_queue_min(const bpe_queue *q)
{
    uint32_t i = 0;

    if (q->bits[BPE_LEVELS - 1][0] == 0)
        return SHARD_BPE_NONE;
    for (int k = BPE_LEVELS - 1; k >= 0; k--)
        i = i << 6 | (uint32_t)__builtin_ctzll(q->bits[k][i]);
    return i;
}

/* Appends start s to the list of rank r. */
static inline void bpe_queue_add(bpe_queue *q, uint32_t r, uint32_t s)
{
    uint32_t t;

    q->v[s].after = SHARD_BPE_NONE;
    if (!(q->bits[0][r >> 6] >> (r & 63) & 1)) {
        q->v[s].before = SHARD_BPE_NONE;
        q->head[r] = q->tail[r] = s;
        bpe_queue_mark(q, r);
        return;
    }
    t = q->tail[r];
    q->disorder |= t > s;
    q->v[s].before = t;
    q->v[t].after = s;
    q->tail[r] = s;
}

static inline void bpe_queue_remove(bpe_queue *q, uint32_t r, uint32_t s)
{
    uint32_t a = q->v[s].after, z = q->v[s].before;

    if (z == SHARD_BPE_NONE)
        q->head[r] = a;
    else
        q->v[z].after = a;
    if (a == SHARD_BPE_NONE)
        q->tail[r] = z;
    else
        q->v[a].before = z;
    if (q->head[r] == SHARD_BPE_NONE)
        bpe_queue_unmark(q, r);
}

/* The parts with the rank queue instead of the heap. */
typedef struct {
    bpe_parts t;
    bpe_queue q;
} bpe_ranked;

/* Recomputes pair[s] after a merge changed it, moving s between lists. */
static inline void bpe_ranked_pair(bpe_ranked *g, uint32_t s)
{
    uint32_t r = bpe_parts_pair_rank(&g->t, s);

    if (g->t.v[s].pair != SHARD_BPE_NONE)
        bpe_queue_remove(&g->q, g->t.v[s].pair, s);
    g->t.v[s].pair = r;
    if (r != SHARD_BPE_NONE)
        bpe_queue_add(&g->q, r, s);
}

/* Merges until no pair is a token.  Returns 0, or -1 when a list fell
 * out of start order. */
static int bpe_ranked_run(bpe_ranked *g)
{
    uint32_t r;

    while ((r = bpe_queue_min(&g->q)) != SHARD_BPE_NONE && !g->q.disorder) {
        uint32_t s = g->q.head[r], gone = g->t.v[s].next;

        bpe_queue_remove(&g->q, r, s);
        g->t.v[s].pair = SHARD_BPE_NONE;
        if (g->t.v[gone].pair != SHARD_BPE_NONE)
            bpe_queue_remove(&g->q, g->t.v[gone].pair, gone);

        bpe_parts_join(&g->t, s, r);
        bpe_ranked_pair(g, s);
        if (s > 0)
            bpe_ranked_pair(g, g->t.v[s].prev);
    }
    return g->q.disorder ? -1 : 0;
}

/* Allocates the arrays of a bpe_ranked for n bytes; 0 or -1. */
static int bpe_ranked_alloc(bpe_ranked *g, size_t n)
{
    size_t ranks = g->t.b->n_ranks, words = ranks, total = 0;
    uint64_t *bits;

    for (int k = 0; k < BPE_LEVELS; k++) {
        words = (words + 63) / 64;
        total += words;
    }
    bpe_node *mem = malloc(n * sizeof(*mem));

    g->q.head = malloc(2 * ranks * sizeof(*g->q.head));
    bits = calloc(total, sizeof(*bits));
    if (!mem || !g->q.head || !bits) {
        free(mem);
        free(g->q.head);
        free(bits);
        return -1;
    }
    bpe_parts_start(&g->t, mem);
    g->q.v = mem;
    g->q.tail = g->q.head + ranks;

    words = ranks;
    for (int k = 0; k < BPE_LEVELS; k++) {
        g->q.bits[k] = bits;
        words = (words + 63) / 64;
        bits += words;
    }
    return 0;
}

long shard_bpe_merge_queue(const shard_bpe *b, const unsigned char *p,
                           size_t n, uint32_t *out)
{
    bpe_ranked g = {.t = {.b = b, .p = p, .n = (uint32_t)n}};
    long got = -2;

    if (n >= UINT32_MAX || bpe_ranked_alloc(&g, n) != 0)
        return -1;
    for (uint32_t s = 0; s < g.t.n; s++)
        if (g.t.v[s].pair != SHARD_BPE_NONE)
            bpe_queue_add(&g.q, g.t.v[s].pair, s);

    if (bpe_ranked_run(&g) == 0)
        got = bpe_parts_emit(&g.t, out);
    free(g.t.v);
    free(g.q.head);
    free(g.q.bits[0]);
    return got;
}

/*
 * The tree merge, for chunks too long for the array loop's rescans and too
 * short to pay for the rank queue's tables.  The candidate pairs are the
 * leaves of a min-tree over start offsets, keyed rank << 32 | start, so
 * the root is the lowest-rank, leftmost pair; a merge changes three leaves
 * (the pair at s, the one before it, the absorbed one) in O(log n) each.
 */
#define BPE_KEY_NONE UINT64_MAX

static void bpe_tree_set(uint64_t *tree, size_t leaves, uint32_t s,
                         uint32_t rank)
{
    size_t i = leaves + s;

    tree[i] = rank == SHARD_BPE_NONE ? BPE_KEY_NONE
                                     : (uint64_t)rank << 32 | s;
    for (i /= 2; i > 0; i /= 2)
        tree[i] = tree[2 * i] < tree[2 * i + 1] ? tree[2 * i]
                                                : tree[2 * i + 1];
}

static long bpe_merge_tree(const shard_bpe *b, const unsigned char *p,
                           size_t n, uint32_t *out)
{
    bpe_parts g = {.b = b, .p = p, .n = (uint32_t)n};
    size_t leaves = 1;
    bpe_node *mem;
    uint64_t *tree;
    long got;

    while (leaves < n)
        leaves <<= 1;
    mem = malloc(n * sizeof(*mem));
    tree = malloc(2 * leaves * sizeof(*tree));
    if (!mem || !tree) {
        free(mem);
        free(tree);
        return -1;
    }
    bpe_parts_start(&g, mem);
    for (size_t i = 0; i < leaves; i++)
        tree[leaves + i] = i < n && g.v[i].pair != SHARD_BPE_NONE
                               ? (uint64_t)g.v[i].pair << 32 | i
                               : BPE_KEY_NONE;
    for (size_t i = leaves - 1; i > 0; i--)
        tree[i] = tree[2 * i] < tree[2 * i + 1] ? tree[2 * i]
                                                : tree[2 * i + 1];

    while (tree[1] != BPE_KEY_NONE) {
        uint32_t s = (uint32_t)tree[1], gone = g.v[s].next;

        bpe_parts_join(&g, s, (uint32_t)(tree[1] >> 32));
        bpe_tree_set(tree, leaves, gone, SHARD_BPE_NONE);
        g.v[s].pair = bpe_parts_pair_rank(&g, s);
        bpe_tree_set(tree, leaves, s, g.v[s].pair);
        if (s > 0) {
            uint32_t left = g.v[s].prev;

            g.v[left].pair = bpe_parts_pair_rank(&g, left);
            bpe_tree_set(tree, leaves, left, g.v[left].pair);
        }
    }
    got = bpe_parts_emit(&g, out);
    free(mem);
    free(tree);
    return got;
}

/*
 * The run merge (runs.h) under tiktoken's rule: joining parts of l1 and
 * l2 bytes has the rank of the byte repeated l1 + l2 times.  Ranks are
 * looked up once per length.
 */
typedef struct {
    const shard_bpe *b;
    unsigned char *bytes; /* the byte, max_len times */
    uint32_t *rank;       /* [max_len + 1], SHARD_BPE_RANK_LIMIT: unknown */
} bpe_run;

/* Rank of the part of l bytes, or SHARD_BPE_NONE. */
static uint32_t bpe_run_part(void *ctx, size_t l)
{
    bpe_run *r = ctx;

    if (l > r->b->max_len)
        return SHARD_BPE_NONE;
    if (r->rank[l] == SHARD_BPE_RANK_LIMIT)
        r->rank[l] = bpe_rank_merge(r->b, r->bytes, l);
    return r->rank[l];
}

static uint32_t bpe_run_pair(void *ctx, size_t l1, size_t l2)
{
    return bpe_run_part(ctx, l1 + l2);
}

/* Merges the n copies of p[0]; returns as shard_runs_merge() does, or -1
 * without memory. */
static long bpe_merge_run(const shard_bpe *b, const unsigned char *p,
                          size_t n, uint32_t *out)
{
    bpe_run r = {.b = b};
    shard_runs_rule rule = {bpe_run_pair, bpe_run_part, &r};
    long got = -1;

    r.bytes = malloc(b->max_len + 1);
    r.rank = malloc((b->max_len + 1) * sizeof(*r.rank));
    if (r.bytes && r.rank) {
        memset(r.bytes, p[0], b->max_len + 1);
        for (size_t l = 0; l <= b->max_len; l++)
            r.rank[l] = SHARD_BPE_RANK_LIMIT;
        got = shard_runs_merge(&rule, n, out);
    }
    free(r.bytes);
    free(r.rank);
    return got;
}

/* Chunks at least this long use the rank queue, shorter ones of at least
 * BPE_TREE_MIN bytes the tree (the queue's tables cost more to set up than
 * a small tree costs to run), shorter ones the array loop. */
#define BPE_QUEUE_MIN 2048
#define BPE_TREE_MIN 48

/* Merges one chunk (no whole-chunk shortcut: see shard_bpe_merge_large). */
static long bpe_merge_chunk(const shard_bpe *b, const unsigned char *p,
                            size_t n, uint32_t *out)
{
    long got;

    if (n < BPE_TREE_MIN)
        return shard_bpe_merge_small(b, p, n, out);
    if (n >= SHARD_RUNS_MIN && shard_runs_is_run(p, n) &&
        (got = bpe_merge_run(b, p, n, out)) != -2)
        return got;
    if (n < BPE_QUEUE_MIN)
        return bpe_merge_tree(b, p, n, out);
    got = shard_bpe_merge_queue(b, p, n, out);
    return got == -2 ? shard_bpe_merge_heap(b, p, n, out) : got;
}

/*
 * Whether no merge can ever join the bytes p[i-1] and p[i] (0 < i < n).
 *
 * Every part is a token whose bytes are the piece's bytes at its place.  A
 * merge across i would make a part [a, c) with a <= i-1 and c >= i+1: a
 * token of length 2 equal to p[i-1..i+1) when a == i-1 and c == i+1, and
 * otherwise a token holding p[i-2..i+1) (a <= i-2) or p[i-1..i+2)
 * (c >= i+2) as consecutive bytes.  When p[i-1..i+1) is not a token and
 * neither three-byte string occurs in any token, no such part exists.
 */
static int bpe_cut_ok(const shard_bpe *b, const unsigned char *p, size_t n,
                      size_t i)
{
    if (b->pair_rank[p[i - 1] | (unsigned)p[i] << 8] != SHARD_BPE_NONE)
        return 0;
    if (i >= 2 && bpe_has_trigram(b, p + i - 2))
        return 0;
    return i + 1 >= n || !bpe_has_trigram(b, p + i - 1);
}

/*
 * A long piece is cut where bpe_cut_ok() holds and each chunk is merged on
 * its own.  That gives the same ranks as merging the whole piece.  No pair
 * across a cut is ever a token, so a merge changes parts and pairs on its
 * own side only, and the candidates of one side at any moment are those
 * that side would have alone after the same merges of its own.  Each
 * merge of the whole piece takes the lowest-rank, leftmost candidate of
 * all, so in particular the lowest-rank, leftmost one of its side: the
 * merges that fall on one side are, in order, the merges that side makes
 * alone (a tie between sides goes left, which changes which side moves
 * first, never which pair a side takes next).  Both end when no candidate
 * is left.  A chunk that is a token as a whole is still merged pair by
 * pair, as it would be inside the whole piece.
 */
size_t shard_bpe_next_cut(const shard_bpe *b, const unsigned char *piece,
                          size_t n, size_t from)
{
    for (size_t i = from + 1; i < n; i++)
        if (bpe_cut_ok(b, piece, n, i))
            return i;
    return n;
}

long shard_bpe_merge_large(const shard_bpe *b, const unsigned char *piece,
                           size_t n, uint32_t *out)
{
    long got = 0, k;

    for (size_t start = 0, end; start < n; start = end) {
        end = shard_bpe_next_cut(b, piece, n, start);
        k = bpe_merge_chunk(b, piece + start, end - start, out + got);
        if (k < 0)
            return -1;
        got += k;
    }
    return got;
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
        return bpe_cached(b, piece, n, hash, bpe_merge_small_fn, b, out);
    return shard_bpe_merge_large(b, piece, n, out);
}
