/*
 * merges.h - byte-pair merges keyed by pair, as Hugging Face BPE runs them
 * (internal to libshard).
 *
 * A `tokenizer.json` lists merges: pairs of tokens whose priority is their
 * place in the list.  Two adjacent parts may merge only when their pair is
 * listed, even when their concatenation is a token some other merge makes;
 * that is where this differs from tiktoken's rule in bpe.h, which merges
 * any adjacent pair whose concatenation is a token.  Within one piece the
 * listed pair of lowest priority merges first, the leftmost on a tie, until
 * no adjacent pair is listed.
 *
 * A built table is read-only, so any number of threads may use it at once.
 */
#ifndef SHARD_MERGES_H
#define SHARD_MERGES_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t pair;     /* left id << 32 | right id; UINT64_MAX when empty */
    uint32_t priority; /* place in the merge list */
    uint32_t merged;   /* id of the token the pair becomes */
} shard_merge_slot;

typedef struct {
    shard_merge_slot *slots; /* mask + 1 slots, at most half full */
    uint64_t mask;
    size_t count;
    uint32_t priorities;     /* largest priority listed, plus one */
} shard_merges;

/* Sizes an empty table for up to `n` merges.  Returns 0 or SHARD_ENOMEM. */
int shard_merges_init(shard_merges *m, size_t n);

/* Frees the table.  Safe on a zeroed table. */
void shard_merges_free(shard_merges *m);

/*
 * Lists the pair (left, right) with its priority and result.  Returns 0,
 * or 1 when the pair is listed already (the first listing stays, as the
 * earlier merge always wins), or SHARD_EINVAL when the table is full.
 */
int shard_merges_add(shard_merges *m, uint32_t left, uint32_t right,
                     uint32_t priority, uint32_t merged);

/* The listing of (left, right), or NULL.  Cannot fail. */
const shard_merge_slot *shard_merges_find(const shard_merges *m,
                                          uint32_t left, uint32_t right);

/*
 * Merges the parts ids[0..n) (n >= 1), in place, and returns how many
 * remain, or -1 when memory for a long piece cannot be had.  Pieces of up
 * to SHARD_MERGES_SHORT parts are merged by rescanning an array, longer
 * ones through a heap in O(n log n), and those of SHARD_MERGES_QUEUE
 * parts or more through lists per priority in O(n); SHARD_RUNS_MIN parts
 * or more of one id (one byte repeated) as groups of equal parts.
 */
#define SHARD_MERGES_SHORT 64
#define SHARD_MERGES_QUEUE 2048
long shard_merges_apply(const shard_merges *m, uint32_t *ids, size_t n);

/* The heap loop alone, for tests that compare it with the others. */
long shard_merges_apply_heap(const shard_merges *m, uint32_t *ids,
                             size_t n);

#endif
