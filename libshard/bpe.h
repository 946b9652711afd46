/*
 * bpe.h - rank table and byte-pair merge (internal to libshard).
 *
 * A rank table maps token bytes to ranks, which are also the token ids.
 * Merging follows tiktoken: a piece starts as single bytes; the adjacent
 * pair whose concatenation has the lowest rank is merged, the leftmost one
 * on a tie, until no adjacent concatenation is a token.  Merge priority is
 * the rank of the merged bytes; there is no separate merge list.
 *
 * A built table is read-only, so any number of threads may use it at once.
 */
#ifndef SHARD_BPE_H
#define SHARD_BPE_H

#include <stddef.h>
#include <stdint.h>

/* Returned by shard_bpe_rank() for bytes that are not a token. */
#define SHARD_BPE_NONE UINT32_MAX

/* Ranks must stay below this; it leaves room to pack a rank and a byte
 * offset into one 64-bit heap key. */
#define SHARD_BPE_RANK_LIMIT (1u << 24)

/* Pieces of at least this many bytes go to shard_bpe_merge_large() (cut
 * where no merge can cross, then merged chunk by chunk); shorter ones to
 * tiktoken's array loop. */
#define SHARD_BPE_LARGE 100

/* One token of a rank file, as handed to shard_bpe_build(). */
typedef struct {
    uint32_t off;  /* start of the bytes in the arena */
    uint32_t len;  /* at least 1 */
    uint32_t rank;
} shard_bpe_entry;

/* One slot of the open-addressing table.  The first bytes of the token
 * sit in the slot, so that most probes touch no other memory. */
typedef struct {
    uint32_t rank; /* SHARD_BPE_NONE when empty */
    uint32_t len;
    uint64_t head; /* first 8 bytes, little-endian, zero-padded */
} shard_bpe_slot;

typedef struct {
    unsigned char *arena;  /* token bytes, owned */
    uint32_t *tok_off;     /* [n_ranks]: arena offset of each rank */
    uint32_t *tok_len;     /* [n_ranks]: 0 for a rank with no token */
    uint32_t n_ranks;      /* largest rank + 1 */
    uint32_t max_len;      /* longest token, in bytes */
    shard_bpe_slot *slots; /* mask + 1 slots, at most half full */
    uint64_t mask;
    uint32_t byte_rank[256];
    uint32_t *pair_rank;   /* [65536]: rank of each 2-byte string */
    uint64_t *trigram;     /* [1 << 18]: bit x | y << 8 | z << 16 is set
                              when the bytes x y z occur in some token */
    uint64_t *filter;      /* [1 << 14]: one bit per token of 3 bytes or
                              more, chosen by its hash (see bpe.c) */
    uint64_t *short_slots; /* short_mask + 1 slots: the tokens of 3 and 4
                              bytes, packed (see bpe.c) */
    uint64_t short_mask;
    uint32_t serial;       /* names the table in the piece caches */
} shard_bpe;

/*
 * Builds the table from `n` entries whose bytes lie in `arena`; the table
 * takes ownership of `arena` whether or not it succeeds.  Returns 0;
 * SHARD_ENOMEM; or SHARD_EINPUT when two entries share a rank or bytes
 * (*bad is then the index of the second one), when a rank reaches
 * SHARD_BPE_RANK_LIMIT (*bad is its index), or when one of the 256 single
 * bytes has no rank (*bad is then n).  On failure the table is left empty.
 */
int shard_bpe_build(shard_bpe *b, unsigned char *arena,
                    const shard_bpe_entry *e, size_t n, size_t *bad);

/* Frees what shard_bpe_build() allocated.  Safe on a zeroed table. */
void shard_bpe_free(shard_bpe *b);

/* Rank of the bytes s[0..len), or SHARD_BPE_NONE.  Cannot fail. */
uint32_t shard_bpe_rank(const shard_bpe *b, const unsigned char *s,
                        size_t len);

/*
 * Hashes s[0..len) and asks the CPU to start loading the slot where its
 * lookup begins.  Returns the hash for shard_bpe_encode().  Cannot fail.
 * Callers that find pieces ahead of encoding them hide most of the cache
 * misses of the (several megabyte) table this way.
 */
uint64_t shard_bpe_prefetch(const shard_bpe *b, const unsigned char *s,
                            size_t len);

/* shard_bpe_rank() of a piece whose hash shard_bpe_prefetch() gave. */
uint32_t shard_bpe_rank_hashed(const shard_bpe *b, const unsigned char *s,
                               size_t len, uint64_t hash);

/*
 * Byte-pair merges `piece` (n >= 1 bytes) and writes the resulting ranks,
 * left to right, to out[], which must hold n entries.  `hash` is what
 * shard_bpe_prefetch() returned for the piece.  Returns the number of
 * ranks written, or -1 when memory for a large piece cannot be had.
 * Uses the whole-piece shortcut, then the calling thread's piece cache
 * (see bpe.c) and the array loop, or merge_large, by size.  Safe to call
 * from several threads on one table.
 */
long shard_bpe_encode(const shard_bpe *b, const unsigned char *piece,
                      size_t n, uint64_t hash, uint32_t *out);

/* A way of merging a piece into ranks, with what it needs in ctx. */
typedef long (*shard_bpe_merge_fn)(const void *ctx,
                                   const unsigned char *piece, size_t n,
                                   uint32_t *out);

/*
 * merge(ctx, piece, n, out) through the calling thread's piece cache
 * (see bpe.c), for encoders whose merges are not the table's ranks (the
 * listed merges of tokenizer.json files).  Entries belong to table b:
 * one table must always be used with the same merge() and ctx, and the
 * result must depend on the piece's bytes alone.  `hash` is what
 * shard_bpe_prefetch() returned for the piece; pieces longer than the
 * cache's entries, or with hash 0, go straight to merge().  Returns what
 * merge() returns.
 */
long shard_bpe_cached(const shard_bpe *b, const unsigned char *piece,
                      size_t n, uint64_t hash, shard_bpe_merge_fn merge,
                      const void *ctx, uint32_t *out);

/*
 * The merge strategies alone, for tests that compare them; none applies
 * the whole-piece shortcut.  merge_small is tiktoken's array loop,
 * O(n * parts); merge_heap keeps candidate pairs in a binary heap,
 * O(n log n); merge_large, used for pieces of SHARD_BPE_LARGE bytes and
 * more, cuts the piece where no merge can cross (see bpe.c) and merges
 * the chunks with the array loop, a min-tree or a queue bucketed by rank
 * (a chunk of one byte repeated as groups of equal parts).
 * Each returns the number of ranks written to out[] (n entries), or -1
 * without memory.
 */
long shard_bpe_merge_small(const shard_bpe *b, const unsigned char *piece,
                           size_t n, uint32_t *out);
long shard_bpe_merge_heap(const shard_bpe *b, const unsigned char *piece,
                          size_t n, uint32_t *out);
long shard_bpe_merge_large(const shard_bpe *b, const unsigned char *piece,
                           size_t n, uint32_t *out);

/*
 * The first place after `from` (0 <= from < n) where piece[0..n) may be
 * cut: no token holds the two bytes around it with the byte before or
 * after them, so no merge can join across it, and the ranks of the piece
 * are the ranks of the two sides merged apart (the proof is in bpe.c).
 * Returns n when there is none.  The argument holds for any merge rule
 * whose parts are always tokens of the table and that picks the lowest
 * priority, leftmost first: tiktoken's ranks or listed merges alike.
 */
size_t shard_bpe_next_cut(const shard_bpe *b, const unsigned char *piece,
                          size_t n, size_t from);

/*
 * The rank-queue merge of a whole piece, without cuts: merge_large's
 * strategy for long chunks.  Returns as the others do, or -2 when its
 * lists fell out of order (see bpe.c; merge_large then falls back to
 * merge_heap).
 */
long shard_bpe_merge_queue(const shard_bpe *b, const unsigned char *piece,
                           size_t n, uint32_t *out);

/* The rank table of a loaded tokenizer (defined in tokenizer.c), so that
 * tests can drive the merge strategies directly. */
struct shard_tokenizer;
const shard_bpe *shard_tokenizer_ranks(const struct shard_tokenizer *t);

#endif
