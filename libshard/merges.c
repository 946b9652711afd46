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
 * merge the lowest priority first and the leftmost on a tie.  The longest
 * pieces keep, instead of the heap, one list of positions per priority
 * and a bitmap of the non-empty ones (see merges_queue).  A long piece of
 * one byte repeated merges as groups of equal parts (runs.h).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "merges.h"
#include "runs.h"

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
            if (priority >= m->priorities)
                m->priorities = priority + 1;
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

long shard_merges_apply_heap(const shard_merges *m, uint32_t *ids,
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

/*
 * The queue: each position whose pair is listed sits in the list of that
 * pair's priority, so no entry is ever stale, and the lowest non-empty
 * priority is found through a bitmap of four levels (64 priorities per
 * word at the bottom, a bit per non-zero word of the level below above
 * it).  Lists must stay in position order for the leftmost-first rule:
 * positions are appended, and one that would land before its list's
 * tail sets `disorder`; the piece is then merged by the heap instead.
 * head[] and tail[] of a priority are read only while its bit is set.
 */
#define MQ_LEVELS 4

typedef struct {
    uint64_t *bits[MQ_LEVELS];
    uint32_t *head, *tail;         /* [priorities] */
    uint32_t *next, *prev;         /* the parts, by position */
    uint32_t *after, *before;      /* the lists, by position */
    uint32_t *prio;                /* priority of the pair at a position */
    int disorder;
} merges_queue;

static void mq_mark(merges_queue *q, uint32_t p, int on)
{
    for (int k = 0; k < MQ_LEVELS; k++, p >>= 6) {
        uint64_t old = q->bits[k][p >> 6], now;

        now = on ? old | 1ull << (p & 63) : old & ~(1ull << (p & 63));
        q->bits[k][p >> 6] = now;
        if (on ? old != 0 : now != 0)
            break;
    }
}

static uint32_t mq_min(const merges_queue *q)
{
    uint32_t i = 0;

    if (q->bits[MQ_LEVELS - 1][0] == 0)
        return MERGES_NONE;
    for (int k = MQ_LEVELS - 1; k >= 0; k--)
        i = i << 6 | (uint32_t)__builtin_ctzll(q->bits[k][i]);
    return i;
}

static void mq_add(merges_queue *q, uint32_t p, uint32_t s)
{
    q->prio[s] = p;
    q->after[s] = MERGES_NONE;
    if (!(q->bits[0][p >> 6] >> (p & 63) & 1)) {
        q->before[s] = MERGES_NONE;
        q->head[p] = q->tail[p] = s;
        mq_mark(q, p, 1);
        return;
    }
    q->disorder |= q->tail[p] > s;
    q->before[s] = q->tail[p];
    q->after[q->tail[p]] = s;
    q->tail[p] = s;
}

static void mq_remove(merges_queue *q, uint32_t s)
{
    uint32_t p = q->prio[s], a = q->after[s], z = q->before[s];

    if (p == MERGES_NONE)
        return;
    q->prio[s] = MERGES_NONE;
    if (z == MERGES_NONE)
        q->head[p] = a;
    else
        q->after[z] = a;
    if (a == MERGES_NONE)
        q->tail[p] = z;
    else
        q->before[a] = z;
    if (q->head[p] == MERGES_NONE)
        mq_mark(q, p, 0);
}

/* Lists the pair that starts at part s, if any, after unlisting the old
 * one. */
static void mq_offer(merges_queue *q, const shard_merges *m,
                     const uint32_t *ids, uint32_t s)
{
    uint32_t p;

    mq_remove(q, s);
    if (q->next[s] == MERGES_NONE)
        return;
    p = merges_priority(m, ids[s], ids[q->next[s]]);
    if (p != MERGES_NONE)
        mq_add(q, p, s);
}

static void mq_free(merges_queue *q)
{
    for (int k = 0; k < MQ_LEVELS; k++)
        free(q->bits[k]);
    free(q->head);
    free(q->tail);
    free(q->next);
    free(q->prev);
    free(q->after);
    free(q->before);
    free(q->prio);
}

static int mq_init(merges_queue *q, const shard_merges *m, size_t n)
{
    size_t words = (size_t)m->priorities / 64 + 1;

    memset(q, 0, sizeof(*q));
    for (int k = 0; k < MQ_LEVELS; k++, words = words / 64 + 1)
        if (!(q->bits[k] = calloc(words, sizeof(uint64_t))))
            return -1;
    q->head = malloc((m->priorities + 1) * sizeof(uint32_t));
    q->tail = malloc((m->priorities + 1) * sizeof(uint32_t));
    q->next = malloc(n * sizeof(uint32_t));
    q->prev = malloc(n * sizeof(uint32_t));
    q->after = malloc(n * sizeof(uint32_t));
    q->before = malloc(n * sizeof(uint32_t));
    q->prio = malloc(n * sizeof(uint32_t));
    return q->head && q->tail && q->next && q->prev && q->after &&
                   q->before && q->prio
               ? 0
               : -1;
}

/* Returns the parts left, -1 without memory, -2 on disorder. */
static long merges_apply_queue(const shard_merges *m, uint32_t *ids,
                               size_t n)
{
    merges_queue q;
    uint32_t p;
    long out = -1;

    memset(&q, 0, sizeof(q));
    if (n >= MERGES_NONE || m->priorities >= 1u << 24 ||
        mq_init(&q, m, n) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        q.next[i] = i + 1 < n ? (uint32_t)i + 1 : MERGES_NONE;
        q.prev[i] = i > 0 ? (uint32_t)i - 1 : MERGES_NONE;
        q.prio[i] = MERGES_NONE;
    }
    for (uint32_t i = 0; i + 1 < n; i++)
        mq_offer(&q, m, ids, i);

    while ((p = mq_min(&q)) != MERGES_NONE && !q.disorder) {
        uint32_t s = q.head[p], j = q.next[s];

        mq_remove(&q, s);
        mq_remove(&q, j);
        ids[s] = shard_merges_find(m, ids[s], ids[j])->merged;
        q.next[s] = q.next[j];
        if (q.next[j] != MERGES_NONE)
            q.prev[q.next[j]] = s;
        if (q.prev[s] != MERGES_NONE)
            mq_offer(&q, m, ids, q.prev[s]);
        mq_offer(&q, m, ids, s);
    }
    out = -2;
    if (!q.disorder) {
        out = 0;
        for (uint32_t i = 0; i != MERGES_NONE; i = q.next[i])
            ids[out++] = ids[i];
    }
done:
    mq_free(&q);
    return out;
}

/*
 * The run merge (runs.h) under listed merges: parts of l1 and l2 bytes
 * join with the priority of their ids' pair.  A part's id is learnt from
 * the merge that makes it; every length has one id, the token of the byte
 * repeated that often, and a table that says otherwise, or a part longer
 * than the ids kept here, makes the run go the usual way.
 */
#define MERGES_RUN_LONGEST 1024

typedef struct {
    const shard_merges *m;
    uint32_t id[MERGES_RUN_LONGEST + 1]; /* MERGES_NONE: not made yet */
    int lost;
} merges_run;

static uint32_t merges_run_part(void *ctx, size_t l)
{
    return ((const merges_run *)ctx)->id[l];
}

static uint32_t merges_run_pair(void *ctx, size_t l1, size_t l2)
{
    merges_run *r = ctx;
    const shard_merge_slot *s;

    if (l1 + l2 > MERGES_RUN_LONGEST) {
        r->lost = 1;
        return MERGES_NONE;
    }
    s = shard_merges_find(r->m, r->id[l1], r->id[l2]);
    if (!s)
        return MERGES_NONE;
    if (r->id[l1 + l2] == MERGES_NONE)
        r->id[l1 + l2] = s->merged;
    r->lost |= r->id[l1 + l2] != s->merged;
    return s->priority;
}

/* Merges ids[0..n), all equal, in place; -2 to go the usual way. */
static long merges_apply_run(const shard_merges *m, uint32_t *ids, size_t n)
{
    merges_run r = {.m = m};
    shard_runs_rule rule = {merges_run_pair, merges_run_part, &r};
    long got;

    for (size_t l = 0; l <= MERGES_RUN_LONGEST; l++)
        r.id[l] = MERGES_NONE;
    r.id[1] = ids[0];
    got = shard_runs_merge(&rule, n, ids);
    if (got >= 0 && r.lost)
        for (size_t i = 0; i < n; i++)
            ids[i] = r.id[1];
    return r.lost ? -2 : got;
}

/* Whether ids[0..n) are all one id. */
static int merges_is_run(const uint32_t *ids, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[0])
            return 0;
    return 1;
}

long shard_merges_apply(const shard_merges *m, uint32_t *ids, size_t n)
{
    uint32_t *copy;
    long got;

    if (n >= SHARD_RUNS_MIN && merges_is_run(ids, n) &&
        (got = merges_apply_run(m, ids, n)) != -2)
        return got;
    if (n <= SHARD_MERGES_SHORT)
        return merges_apply_short(m, ids, n);
    if (n < SHARD_MERGES_QUEUE)
        return shard_merges_apply_heap(m, ids, n);

    /* The queue works in place; keep the parts for the heap should the
     * lists fall out of order. */
    if (!(copy = malloc(n * sizeof(*copy))))
        return -1;
    memcpy(copy, ids, n * sizeof(*copy));
    got = merges_apply_queue(m, ids, n);
    if (got == -2) {
        memcpy(ids, copy, n * sizeof(*copy));
        got = shard_merges_apply_heap(m, ids, n);
    }
    free(copy);
    return got;
}
