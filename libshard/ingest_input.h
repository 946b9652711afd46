/*
 * ingest_input.h - input files as a stream of lines (internal).
 *
 * An input is a path or "-" for standard input.  Compression (gzip, zstd,
 * xz, bzip2, lz4) and archives (tar, zip) are recognised from the bytes by
 * libarchive; an archive yields the lines of each regular member in turn.
 * Lines lose their "\n" or "\r\n"; a UTF-8 byte order mark at the start of
 * a file or member is dropped.  Memory is bounded by the longest line kept.
 */
#ifndef SHARD_INGEST_INPUT_H
#define SHARD_INGEST_INPUT_H

#include "shard_common.h"

typedef struct shard_input shard_input;

/* A line as handed out: valid until the next call on the input. */
typedef struct {
    const char *text;  /* followed by SHARD_JSON_PADDING readable bytes */
    size_t len;
    uint64_t lineno;   /* 1-based, within the file or member */
    const char *where; /* "path" or "path:member", for messages */
    int overlong;      /* the line passed max_line and was not kept */
} shard_line;

/* Lines longer than max_line bytes are skipped and flagged overlong. */
int shard_input_open(shard_input **out, const char *path, size_t max_line);

/* 1 and *line, 0 at the end, or a negative code (errmsg says why). */
int shard_input_next(shard_input *in, shard_line *line);

/* Bytes read from the file so far (compressed size, for progress). */
uint64_t shard_input_bytes(const shard_input *in);

const char *shard_input_errmsg(const shard_input *in);
void shard_input_close(shard_input *in);

#endif
