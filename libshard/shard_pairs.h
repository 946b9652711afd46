/*
 * shard_pairs.h - the pairs table of a dataset (reader side).
 *
 * A comparison (this response was preferred to that one, for this prompt)
 * is kept as a row of DIR/pairs/00000.pairs: the prompt's id, the chosen
 * and the rejected record's ids, and the pair id that both records carry
 * in their pair_id column.  Records live in the label streams; the table
 * refers to them by record_id only, so comparisons can be rebuilt after
 * records were deduplicated or filtered, and a record may take part in
 * several comparisons (OASST ranks give one reply many).  docs/FORMAT.md
 * ("The pairs table") gives the bytes.
 *
 * This header and pair_table.c depend on libc and xxHash alone.
 */
#ifndef SHARD_PAIRS_H
#define SHARD_PAIRS_H

#include "shard_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One row of the table, exactly as stored (32 bytes, little-endian). */
typedef struct {
    uint64_t prompt_id;
    uint64_t chosen;   /* record_id of the preferred record */
    uint64_t rejected; /* record_id of the other */
    uint64_t pair_id;
} shard_pair;

/* Path of the table inside a dataset directory. */
#define SHARD_PAIRS_PATH "pairs/00000.pairs"

typedef struct shard_pairs shard_pairs;

/*
 * Opens and checks a table (magic, version, sizes, both checksums); the
 * rows are then read in place.  Returns 0, SHARD_ENOTFOUND, SHARD_EIO,
 * SHARD_ECORRUPT or SHARD_EFORMAT (message in shard_last_error()).
 */
int shard_pairs_open(shard_pairs **out, const char *path);
uint64_t shard_pairs_count(const shard_pairs *t);

/* The rows, 8-byte aligned, valid until the table is closed. */
const shard_pair *shard_pairs_rows(const shard_pairs *t);

/* XXH3-64 of the header, as the manifest records it. */
uint64_t shard_pairs_checksum(const shard_pairs *t);
void shard_pairs_close(shard_pairs *t);

/*
 * Writing: rows are streamed to DIR/pairs/.00000.pairs.tmp and the file is
 * renamed into place by finish, after fsync.  Memory does not grow with
 * the number of rows.
 */
typedef struct shard_pairs_writer shard_pairs_writer;

int shard_pairs_writer_open(shard_pairs_writer **out, const char *dir);
int shard_pairs_writer_add(shard_pairs_writer *w, const shard_pair *row);

/* Completes the file; *count, *bytes and *checksum describe it. */
int shard_pairs_writer_finish(shard_pairs_writer *w, uint64_t *count,
                              uint64_t *bytes, uint64_t *checksum);
const char *shard_pairs_writer_errmsg(const shard_pairs_writer *w);

/* Frees the writer; an unfinished temporary file is removed. */
void shard_pairs_writer_free(shard_pairs_writer *w);

#ifdef __cplusplus
}
#endif

#endif
