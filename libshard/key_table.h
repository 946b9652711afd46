/*
 * key_table.h - a dataset's key table (DIR/dedup.keys) as an array of
 * entries, for `shard merge --dedup` (compiler side, internal).
 *
 * dedup.c reads and writes the same file through its own table; these
 * functions give the raw entries instead, so that the tables of several
 * datasets can be joined.  docs/FORMAT.md ("The key table") gives the
 * bytes.
 */
#ifndef SHARD_KEY_TABLE_H
#define SHARD_KEY_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* One entry, exactly as stored (24 bytes, little-endian). */
typedef struct {
    uint64_t lo, hi;
    uint32_t position; /* of the record written for the key, in its
                          label's stream */
    uint8_t labels;    /* 1 << label per label seen, SHARD_KEY_PAIR,
                          SHARD_KEY_WRITTEN */
    uint8_t reserved[3];
} shard_key_entry;

#define SHARD_KEY_PAIR 0x08u
#define SHARD_KEY_WRITTEN 0x80u

/*
 * Reads the table at `path`: its entries into *out (free() it), *n of
 * them, and the normalisation and conflict policy it was built with.
 * Returns 0, SHARD_ENOTFOUND, SHARD_EIO, SHARD_ECORRUPT, SHARD_EFORMAT
 * (another major version) or SHARD_ENOMEM, with the message in err
 * (SHARD_ERRMAX bytes).
 */
int shard_keys_read(const char *path, shard_key_entry **out, size_t *n,
                    int *normalize, int *policy, char *err);

/*
 * Writes v[0..n) as a table at `path` (temporary file, fsync, rename).
 * Returns 0 or SHARD_EIO (message in err).
 */
int shard_keys_write(const char *path, const shard_key_entry *v, size_t n,
                     int normalize, int policy, char *err);

#endif
