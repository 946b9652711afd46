/*
 * dedup.h - exact deduplication and label conflicts (compiler side).
 *
 * A record's key is a 128-bit XXH3 of its messages (roles, context and
 * response) after normalisation; a pair's key hashes the keys of its two
 * records.  The stored text never changes, only the key.
 *
 * Deciding needs the whole stream: under `--conflicts drop` the first
 * record of a key is dropped when a later record of the same key has
 * another label.  So the compiler makes two sweeps over its inputs in the
 * same order: the first notes every key with its label
 * (shard_dedup_note), the second asks for each record's fate
 * (shard_dedup_decide), which depends only on what the first sweep saw
 * and on the records before it.  Hence the result does not depend on how
 * the inputs are split into files.
 *
 * Memory: the table holds one 24-byte entry per distinct key.  When it
 * would grow past `mem_limit`, the table switches to partitions on disk:
 * the first sweep must then be run again (shard_dedup_note returns
 * SHARD_DEDUP_RESTART once), writing each note to the partition of its
 * hash range; shard_dedup_resolve decides one partition at a time, each
 * small enough for the limit (a partition too large is split again by
 * the next hash bits), and keeps two bits per record for the second
 * sweep.  The decisions are the same either way.
 */
#ifndef SHARD_DEDUP_H
#define SHARD_DEDUP_H

#include <stdint.h>
#include <stdio.h>

#include "shard_writer.h"

/* Normalisation of the text behind a key (--normalize). */
typedef enum {
    SHARD_NORM_WS = 0,   /* trim, fold white-space runs to one space */
    SHARD_NORM_NONE = 1, /* bytes as they are */
    SHARD_NORM_NFKC = 2  /* ws, then Unicode NFKC and case folding */
} shard_normalize;

/* What happens to the records of a key seen with several labels. */
typedef enum {
    SHARD_CONFLICTS_DROP = 0, /* every record of the key is dropped */
    SHARD_CONFLICTS_KEEP = 1, /* the first of each label kept, flagged */
    SHARD_CONFLICTS_NEG = 2,  /* the negative kept, the others dropped */
    SHARD_CONFLICTS_POS = 3   /* the positive kept, the others dropped */
} shard_conflicts;

/* Parse "ws"/"none"/"nfkc" and "drop"/"keep"/"neg"/"pos"; -1 if unknown. */
int shard_normalize_parse(const char *name);
int shard_conflicts_parse(const char *name);
const char *shard_normalize_name(int norm);
const char *shard_conflicts_name(int policy);

typedef struct {
    uint64_t lo, hi;
} shard_key;

/*
 * The key of a record (messages m[0..n), the response last) under `norm`.
 * Never the all-zero key.  Returns 0 or SHARD_ENOMEM.
 */
int shard_key_record(shard_key *out, const shard_message *m, size_t n,
                     int norm);

/*
 * The next word of s[0..n) at or after *at: a run of bytes other than
 * ASCII white space.  Sets *start, moves *at past it and returns its
 * length, or 0 when no word is left.  Cannot fail.
 */
size_t shard_word_next(const char *s, size_t n, size_t *at, size_t *start);

/*
 * Passes s[0..n) with its ends trimmed and each inner run of ASCII white
 * space folded to one space (the `ws` normalisation) to emit(), in pieces
 * of a few kilobytes, so that a streaming hash sees the folded text in
 * few calls.  Cannot fail.
 */
typedef void (*shard_fold_fn)(void *ctx, const char *p, size_t n);
void shard_fold_ws(const char *s, size_t n, shard_fold_fn emit, void *ctx);

/*
 * The bytes a record's ids and its `ws` key hash, for messages m[0..n):
 * each message's role, 0x1f, its content folded as shard_fold_ws()
 * folds it, 0x1e.  Appended at buf[*len], which grows (*cap) as needed.
 * Returns 0 or SHARD_ENOMEM.
 */
int shard_fold_messages(char **buf, size_t *len, size_t *cap,
                        const shard_message *m, size_t n);

/*
 * The key of a record under `ws` from its folded messages (all of them,
 * shard_fold_messages): what shard_key_record() gives for SHARD_NORM_WS,
 * in one pass over the bytes.  Cannot fail.
 */
shard_key shard_key_folded(const char *folded, size_t n);

/* The key of a pair from the keys of its chosen and rejected records. */
shard_key shard_key_pair(const shard_key *chosen, const shard_key *rejected);

/* The fate of one record (or pair). */
typedef enum {
    SHARD_FATE_KEEP = 0,
    SHARD_FATE_KEEP_FLAGGED = 1, /* kept under --conflicts keep */
    SHARD_FATE_DUPLICATE = 2,    /* same key and label as an earlier one */
    SHARD_FATE_CONFLICT = 3      /* dropped: its key has another label */
} shard_fate;

/* The record flag that marks a record kept in a conflict (keep). */
#define SHARD_RECORD_FLAG_CONFLICT 1u

/* Label bit a pair key is noted with (records use 1 << label). */
#define SHARD_DEDUP_PAIR SHARD_LABEL_COUNT

typedef struct shard_dedup shard_dedup;

/*
 * Opens a table.  `mem_limit` bounds the table's bytes (0: no limit);
 * partitions go to temporary files under `tmpdir`.  Returns 0 or
 * SHARD_ENOMEM.
 */
int shard_dedup_open(shard_dedup **out, uint64_t mem_limit, int policy,
                     const char *tmpdir);
void shard_dedup_free(shard_dedup *d);

/* Codes of shard_dedup_note: the first sweep must start again; the key
 * was noted before with the same label. */
#define SHARD_DEDUP_RESTART 1
#define SHARD_DEDUP_REPEAT 2

/*
 * First sweep: notes a record's key with its label (0..2), or a pair's
 * key with SHARD_DEDUP_PAIR.  Returns 0, SHARD_DEDUP_REPEAT (noted; an
 * earlier note, or the key table loaded, had the same key and label, so
 * the second sweep will decide this one a duplicate), SHARD_DEDUP_RESTART
 * (the table went to disk: run the first sweep again from its start; this
 * happens at most once), SHARD_ENOMEM or SHARD_EIO.  A table on disk never
 * answers SHARD_DEDUP_REPEAT.
 */
int shard_dedup_note(shard_dedup *d, const shard_key *k, int label);

/* Ends the first sweep; decides partitions on disk.  0 or negative. */
int shard_dedup_resolve(shard_dedup *d);

/*
 * Second sweep, with the same notes in the same order: the fate of this
 * one.  `position` is where a kept record lands in its label stream
 * (kept in the key table for --append); pairs pass 0.  Returns a
 * shard_fate, or SHARD_EINVAL when the sweeps differ.
 */
int shard_dedup_decide(shard_dedup *d, const shard_key *k, int label,
                       uint32_t position);

/*
 * Between the sweeps or during the second: 1 when every record of key k
 * with this label will be dropped as a conflict, whatever comes before
 * it; 0 when not, for pairs, and when the table is on disk.  Other
 * threads may ask while the second sweep decides: it reads only what the
 * first sweep wrote.
 */
int shard_dedup_conflicted(const shard_dedup *d, const shard_key *k,
                           int label);

/*
 * The record just kept for key k was dropped after all (a near
 * duplicate): no record of the key is written.  Cannot fail.
 */
void shard_dedup_unwrite(shard_dedup *d, const shard_key *k);

/*
 * The fate of the first record (or pair) of `label` under a key met with
 * the label bits `labels` (1 << label, SHARD_DEDUP_PAIR's bit for pairs)
 * in the whole stream; later ones of the label are duplicates.  Cannot
 * fail.
 */
int shard_dedup_first_fate(unsigned labels, int label, int policy);

/* 1 when the table went to disk partitions. */
int shard_dedup_spilled(const shard_dedup *d);

/* Peak bytes of the in-memory table (entries and decisions). */
uint64_t shard_dedup_peak_bytes(const shard_dedup *d);

const char *shard_dedup_errmsg(const shard_dedup *d);

/*
 * The key table kept with a dataset for `compile --append`
 * (docs/FORMAT.md, "The key table"): every key with its labels and the
 * stream position of the record written for it.
 */
#define SHARD_KEYS_PATH "dedup.keys"

/*
 * Writes the table to `path` (temporary file, fsync, rename), after the
 * second sweep, from memory or from the files of a table on disk.
 * Returns 0 or SHARD_EIO.
 */
int shard_dedup_save(shard_dedup *d, const char *path, int normalize);

/*
 * Before the first sweep: loads a saved table, whose keys then count as
 * met before every note.  The normalisation and the conflict policy must
 * be those it was saved with.  Returns 0, SHARD_ENOTFOUND, SHARD_ECORRUPT,
 * SHARD_EFORMAT (another normalisation or policy) or SHARD_ENOMEM; the
 * table must not have a memory limit.
 */
int shard_dedup_load(shard_dedup *d, const char *path, int normalize);

/*
 * After the first sweep over appended inputs: calls fn for each record
 * written before (by its label and stream position) that its key's new
 * labels now drop as a conflict.  Cannot fail.
 */
void shard_dedup_superseded(shard_dedup *d,
                            void (*fn)(void *ctx, int label, uint32_t pos),
                            void *ctx);

#endif
