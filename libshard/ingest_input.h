/*
 * ingest_input.h - input files as a stream of rows (internal).
 *
 * An input is a path or "-" for standard input.  Compression (gzip, zstd,
 * xz, bzip2, lz4) and archives (tar, zip) are recognised from the bytes by
 * libarchive (but for a gzip file that is not a pipe, which gunzip.h
 * inflates before libarchive reads it), and recursively so: a member of an archive is itself opened
 * the same way, so a tar holding .gz and .zst files, or a tar inside a
 * tar, yields the rows of every regular file inside (up to
 * SHARD_INPUT_MAX_NESTING levels).  Each file or member is either
 *
 *   1. JSON lines: one row per line; "\n" or "\r\n" ends a line; or
 *   2. a JSON array, when its first byte other than white space (and a
 *      leading UTF-8 byte order mark) is '[': one row per element, split
 *      without parsing the elements and without holding the whole array.
 *
 * A UTF-8 byte order mark at the start of a file or member is dropped.
 * Memory is bounded by the longest row kept plus libarchive's buffers.
 */
#ifndef SHARD_INGEST_INPUT_H
#define SHARD_INGEST_INPUT_H

#include "shard_common.h"

#define SHARD_INPUT_MAX_NESTING 4

typedef struct shard_input shard_input;

/*
 * A row as handed out: valid until the next call on the input.  For JSON
 * lines `row` equals `lineno`; for an array `row` is the element's 1-based
 * index and `lineno` the line where the element starts.  When `problem`
 * is set the row is broken at the splitting level (too long, an empty
 * array element, text after the array's end, an array cut short) and
 * `text` is not to be parsed; `overlong` says it was the first kind.
 */
typedef struct {
    const char *text;    /* followed by SHARD_JSON_PADDING readable bytes */
    size_t len;
    uint64_t lineno;     /* 1-based, within the file or member */
    uint64_t row;        /* 1-based, within the file or member */
    const char *where;   /* "path" or "path:member", for messages */
    uint32_t member;     /* counts files and members of this input, from 1 */
    int overlong;        /* longer than max_row bytes and not kept */
    const char *problem; /* why the row is unusable, or NULL */
} shard_line;

/* Rows longer than max_row bytes are skipped and flagged overlong. */
int shard_input_open(shard_input **out, const char *path, size_t max_row);

/*
 * 1 and *line, 0 at the end, or a negative code (errmsg names the file or
 * member and says why: unreadable, truncated or corrupt stream).  After a
 * failure inside an archive member only that member is lost: the next
 * call goes on with the next member.  After a failure of the file itself
 * shard_input_dead() is true and every call fails.
 */
int shard_input_next(shard_input *in, shard_line *line);
int shard_input_dead(const shard_input *in);

/* Bytes read from the file so far (compressed size, for progress). */
uint64_t shard_input_bytes(const shard_input *in);

const char *shard_input_errmsg(const shard_input *in);
void shard_input_close(shard_input *in);

#endif
