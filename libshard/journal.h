/*
 * journal.h - the record of a compile's committed shards (compiler side).
 *
 * A compile writes `DIR/journal` before its first shard and appends one
 * line each time a shard file is complete, renamed and synced: the shard
 * (its stream, number, size and checksum) and the resume mark, which says
 * from which input row on the records that are not yet in a committed
 * shard come, with the token counts of the records written before that
 * row.  The line goes to disk before the compile goes on.  The manifest,
 * written last, makes the dataset; the journal is then removed.
 *
 * So a compile killed at any moment leaves either no journal (it had not
 * begun, or it had finished) or a journal whose every line names a shard
 * that is whole on disk.  `compile --resume` reads it back, removes what
 * it does not list, and carries on (compile.c says how).
 *
 * The first lines are the compile's fingerprint: the options that shape
 * the output and every input's path, size and modification time.  A
 * resume with another fingerprint is refused, naming the first line that
 * differs.
 *
 * Lines are text; each ends with the XXH3 of what precedes it on the
 * line, so a line torn by the kill is recognised and ignored.
 */
#ifndef SHARD_JOURNAL_H
#define SHARD_JOURNAL_H

#include <stdint.h>

#include "shard_compile.h"
#include "shard_writer.h"

#define SHARD_JOURNAL_PATH "journal"

/* Where a compile can resume: row `row` of the second sweep (counting
 * every line of every input), with the totals of what was written
 * before it. */
typedef struct {
    uint64_t row;
    uint64_t tokens_by_label[SHARD_LABEL_COUNT];
    uint64_t replaced_utf8;
    uint64_t special_text;
} shard_journal_mark;

/* What a journal read back holds. */
typedef struct {
    shard_file_info *files[SHARD_LABEL_COUNT]; /* committed, in order */
    size_t n_files[SHARD_LABEL_COUNT];
    size_t cap_files[SHARD_LABEL_COUNT];
    uint64_t records[SHARD_LABEL_COUNT];       /* in those files */
    shard_journal_mark mark;                   /* of the last line */
} shard_journal_state;

typedef struct shard_journal shard_journal;

/*
 * Starts the journal of a new compile in `dir` with `fingerprint` (lines
 * of text, each ending in '\n'), synced.  Returns 0, SHARD_ENOMEM or
 * SHARD_EIO (message in err, SHARD_ERRMAX bytes).
 */
int shard_journal_create(shard_journal **out, const char *dir,
                         const char *fingerprint, char *err);

/*
 * Reads the journal in `dir` into *st and opens it for more lines; a
 * torn last line is cut off.  SHARD_ENOTFOUND when there is none,
 * SHARD_EINVAL when its fingerprint is not `fingerprint` (err names the
 * first line that differs), SHARD_ECORRUPT, SHARD_ENOMEM or SHARD_EIO.
 */
int shard_journal_resume(shard_journal **out, const char *dir,
                         const char *fingerprint, shard_journal_state *st,
                         char *err);

/* Appends the commit of shard `f` of stream `label`, and the mark, and
 * syncs.  Returns 0 or SHARD_EIO (message in err). */
int shard_journal_commit(shard_journal *j, int label,
                         const shard_file_info *f,
                         const shard_journal_mark *mark, char *err);

/* Closes the journal and, when `remove` is set, deletes it (the manifest
 * is written).  Returns 0 or SHARD_EIO. */
int shard_journal_close(shard_journal *j, int remove);

void shard_journal_state_free(shard_journal_state *st);

/*
 * The fingerprint of a compile: the options that shape its output (not
 * -j, --mem-limit or the progress and log callbacks), the tokenizer's
 * hash, and each input's path, size and modification time.  Returns a
 * string to free, or NULL when out of memory.
 */
char *shard_journal_fingerprint(const shard_compile_options *o,
                                uint64_t tokenizer_hash,
                                char *const *paths, size_t n);

/*
 * Before a resume: checks that every shard the journal lists is on disk
 * as committed (size and header checksum), and removes the shards,
 * pairs tables and temporary files of `dir` it does not list.  Returns 0,
 * SHARD_ECORRUPT or SHARD_EIO (message in err).
 */
int shard_journal_tidy(const char *dir, const shard_journal_state *st,
                       char *err);

#endif
