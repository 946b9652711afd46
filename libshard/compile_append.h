/*
 * compile_append.h - `shard compile --append DIR`: what the compiler
 * needs from the dataset already in DIR (compiler side, internal).
 *
 * The new records go to new shard files after the old ones of each
 * stream; the key table (dedup.h) says which new records repeat or
 * contradict old ones; an old record that a new label makes a conflict
 * is listed in DIR/tombstones (shard_tombstones.h) and its counts move
 * from kept to conflict; the pairs table is rewritten, old rows first,
 * without those whose record was removed; and the manifest that replaces
 * the old one (atomically, last) lists the old shards and inputs, then
 * the new, with the accounting of both.
 */
#ifndef SHARD_COMPILE_APPEND_H
#define SHARD_COMPILE_APPEND_H

#include "compile_internal.h"
#include "shard_pairs.h"

typedef struct shard_append shard_append;

/*
 * Reads DIR's manifest and tombstones; the tokenizer and template must
 * be the dataset's.  Returns 0, or a negative code with the message in
 * err (SHARD_ERRMAX bytes).
 */
int shard_append_open(shard_append **out, const char *dir,
                      const shard_tokenizer_info *tok, char *err);
void shard_append_free(shard_append *a);

/* Shard files of a label already in DIR; records in them. */
uint64_t shard_append_first_seq(const shard_append *a, int label);
uint64_t shard_append_base(const shard_append *a, int label);

/* Inputs the dataset already lists (new ones are numbered after). */
uint32_t shard_append_inputs(const shard_append *a);

/* Collects an old record to remove (shard_dedup_superseded's callback;
 * `a` is the shard_append).  Cannot fail: a failed allocation is
 * reported by shard_append_apply. */
void shard_append_remove(void *a, int label, uint32_t position);

/*
 * Before new records are written: reads the ids and token counts of the
 * records to remove, and copies DIR's pairs rows that keep both their
 * records into `pairs`.  0 or a negative code (message in err).
 */
int shard_append_apply(shard_append *a, shard_pairs_writer *pairs,
                       char *err);

/*
 * After the new records: adds the old accounting and the removals to
 * *acct, puts the old shards and inputs before the new ones in *d, and
 * writes DIR/tombstones.  *d points into `a` until it is freed.  0 or a
 * negative code (message in err).
 */
int shard_append_finish(shard_append *a, shard_manifest_data *d,
                        shard_accounting *acct, char *err);

#endif
