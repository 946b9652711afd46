/*
 * record_keys.h - the dedup key of every record of a dataset, computed
 * again from its text section (compiler side, internal).
 *
 * A key table (dedup.keys) lists keys, and a pairs table names records by
 * record_id; neither says which key a record_id has.  `shard merge
 * --dedup` needs that to find the comparison a pairs row is (its key is
 * made of its records' keys) and to find a record its key table does not
 * place.  This reads every record's text once and keeps, per record_id,
 * its key and labels, and per key and label, the first stream position.
 * Memory: about 80 bytes per record.
 */
#ifndef SHARD_RECORD_KEYS_H
#define SHARD_RECORD_KEYS_H

#include <stdint.h>

#include "dedup.h"

typedef struct shard_record_keys shard_record_keys;

/*
 * Reads the dataset at `dir` (through its manifest) and computes each
 * record's key under `normalize`.  Returns 0, SHARD_ENOTFOUND when a
 * shard has no text section (compiled with --no-text), or another
 * negative code, with the message in err (SHARD_ERRMAX bytes).
 */
int shard_record_keys_open(shard_record_keys **out, const char *dir,
                           int normalize, char *err);
void shard_record_keys_free(shard_record_keys *t);

/*
 * The key of the records with this id and the bits (1 << label) of the
 * labels they have; 0 when no record has the id.  With `--normalize none`
 * records differing in white space only share an id but not a key: the
 * first one's is given.  Cannot fail.
 */
unsigned shard_record_keys_by_id(const shard_record_keys *t, uint64_t id,
                                 shard_key *key);

/* Stream position of the first record of `label` with `key`, or -1. */
int64_t shard_record_keys_position(const shard_record_keys *t,
                                   const shard_key *key, int label);

#endif
