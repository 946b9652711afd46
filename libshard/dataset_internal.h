/*
 * dataset_internal.h - what the dataset reader files share; not installed.
 */
#ifndef SHARD_DATASET_INTERNAL_H
#define SHARD_DATASET_INTERNAL_H

#include "internal.h"
#include "shard_reader.h"

struct shard_dataset {
    shard_reader **shards;
    uint64_t *starts; /* first dataset index of each shard, plus total */
    size_t n, cap_shards, cap_starts;
    unsigned select;
    uint64_t (*pairs)[2]; /* (pos, neg) dataset indexes */
    uint64_t n_pairs;
    char err[SHARD_ERRMAX];
    uint64_t *tomb;      /* DIR/tombstones, sorted (shard_tombstones.h) */
    size_t n_tomb;
    uint64_t *dead;      /* dataset indexes of the selected tombstoned
                            records, sorted */
    size_t n_dead;
    uint64_t label_start[SHARD_LABEL_COUNT]; /* first index of a stream */
};

/* One entry of a manifest's "shards" list. */
typedef struct {
    char path[256]; /* relative to the dataset directory */
    int label;
    uint64_t records;
    uint64_t checksum;
} shard_manifest_entry;

/*
 * Parses manifest text (len bytes, no terminator needed) and returns its
 * "shards" list in *out (free() it).  Every path is relative, without
 * "..", and names a label stream.  Returns 0, SHARD_ECORRUPT (with "byte
 * N: why" in err) or SHARD_ENOMEM.
 */
int shard_manifest_parse(const char *text, size_t len,
                         shard_manifest_entry **out, size_t *n, char *err);

/*
 * Reads DIR/manifest.json and returns its "shards" list in *out (free()
 * it).  Every path is relative, without "..", and names a label stream.
 * Returns 0, SHARD_ENOTFOUND (no manifest), SHARD_ECORRUPT (it does not
 * parse, with the byte offset in err) or SHARD_ENOMEM.
 */
int shard_manifest_list(const char *dir, shard_manifest_entry **out,
                        size_t *n, char *err);

/*
 * Index of the last of a[0..n) that is <= x, for a non-decreasing a with
 * n > 0 and a[0] <= x.  Cannot fail.
 */
static inline size_t shard_last_at_most(const uint64_t *a, size_t n,
                                        uint64_t x)
{
    size_t lo = 0, hi = n;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (a[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/*
 * The loader's batch path: record i of the held frame f (i inside it)
 * with only index, tokens, n_tokens, dtype, prompt_len and label filled,
 * and no reference taken (ref is NULL): valid while f is held.
 */
void shard_reader_frame_peek(const shard_reader *r, const shard_frame *f,
                             uint64_t i, shard_record *rec);

/* Shard k holding dataset record i (i < count).  Cannot fail. */
size_t shard_dataset_locate(const shard_dataset *d, uint64_t i);

#endif
