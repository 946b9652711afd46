/*
 * shard_merge.h - joining datasets compiled separately (compiler side).
 *
 * shard_merge() writes a new dataset directory OUT over the shards of
 * datasets DIR... without rewriting any of them: each shard file is
 * hard-linked into OUT (copied when a link is impossible: another file
 * system), renumbered so that every stream of OUT is the concatenation of
 * the inputs' streams in input order.  The inputs are never modified.
 *
 * The inputs must share the dataset format version, the tokenizer (name,
 * hash, vocabulary size, added_tokens) and the chat template.  With
 * `dedup`, also the key normalisation and the conflict policy: the
 * records that a single compile over every input's rows in order would
 * have dropped (a later input's repeat of a key and label, or a record
 * whose key the inputs together give several labels) are listed in
 * OUT/tombstones, and the merged key table OUT/dedup.keys lets OUT be
 * appended to and merged again.  This is decided from the inputs' key
 * tables; the pairs rows, and records a table does not place, are told
 * by their records' keys, computed again from the text of every input
 * but the first (record_keys.h).  Without `dedup` OUT holds every record
 * of every input, and no key table.
 *
 * docs/FORMAT.md ("Merged datasets") describes what OUT holds.
 */
#ifndef SHARD_MERGE_H
#define SHARD_MERGE_H

#include "shard_compile.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int version;         /* SHARD_MERGE_OPTIONS_VERSION */
    int dedup;           /* apply the dedup semantics across the inputs */
    int conflicts;       /* shard_conflicts the inputs must have been
                            compiled with; -1: theirs */
    shard_log_fn log;    /* may be NULL */
    void *log_ctx;
} shard_merge_options;

#define SHARD_MERGE_OPTIONS_VERSION 1
#define SHARD_MERGE_OPTIONS_INIT                                            \
    {SHARD_MERGE_OPTIONS_VERSION, 0, -1, NULL, NULL}

/*
 * Merges dirs[0..n) into `out`, which must not exist or be an empty
 * directory.  Fills *acct with OUT's accounting and *stats with what the
 * merge did.  Returns 0, or a negative code with a one-line message in
 * shard_last_error(): SHARD_ENOTFOUND (an input without manifest.json),
 * SHARD_EINVAL (the inputs differ, or OUT is not empty), SHARD_ECORRUPT,
 * SHARD_EIO or SHARD_ENOMEM.  On failure OUT has no manifest.
 */
int shard_merge(const char *const *dirs, size_t n, const char *out,
                const shard_merge_options *opts, shard_accounting *acct,
                shard_merge_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
