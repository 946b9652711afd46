/*
 * shard_tombstones.h - records removed from a dataset after they were
 * written (reader side).
 *
 * `shard compile --append` may learn that a record written by an earlier
 * compile must go (its key now has another label: a conflict).  Shard
 * files are never rewritten; the record is listed instead in
 * DIR/tombstones, by its label and its position in that label's stream
 * (records numbered from 0 across the stream's shards in manifest
 * order).  Readers skip listed records when they iterate
 * (shard_dataset_tombstoned, the loader).  docs/FORMAT.md ("Tombstones")
 * gives the bytes.
 *
 * This header and tombstones.c depend on libc and xxHash alone.
 */
#ifndef SHARD_TOMBSTONES_H
#define SHARD_TOMBSTONES_H

#include "shard_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHARD_TOMBSTONES_PATH "tombstones"

/* An entry: the label in the top 8 bits, the stream position below. */
static inline uint64_t shard_tombstone(int label, uint64_t position)
{
    return (uint64_t)label << 56 | position;
}

/*
 * Reads DIR/tombstones into *v (sorted, free() it), *n entries; a
 * dataset without the file has none.  Returns 0, SHARD_EIO,
 * SHARD_ECORRUPT or SHARD_ENOMEM (message in shard_last_error()).
 */
int shard_tombstones_read(const char *dir, uint64_t **v, size_t *n);

/* 1 when `entry` is among v[0..n) (sorted).  Cannot fail. */
int shard_tombstones_has(const uint64_t *v, size_t n, uint64_t entry);

/*
 * Writes v[0..n) (sorted, unique) as DIR/tombstones: temporary file,
 * fsync, rename.  Returns 0 or SHARD_EIO.
 */
int shard_tombstones_write(const char *dir, const uint64_t *v, size_t n);

#ifdef __cplusplus
}
#endif

#endif
