/*
 * gunzip.h - gzip files inflated with ISA-L's igzip (internal).
 *
 * ingest_input.c hands a top-level gzip file to this reader instead of
 * libarchive's gzip filter, which inflates with zlib at a quarter of the
 * speed; the inflated bytes then go to libarchive as the file's bytes, so
 * archives and further compression inside are still recognised.  Members
 * of archives and pipes keep libarchive's filter.
 *
 * A stream is one or more gzip members back to back (as `cat a.gz b.gz`
 * or bgzip write them), each checked against its CRC-32 and length.  What
 * follows the last member must be zero bytes (padding) or nothing; other
 * bytes there are an error, not skipped.
 */
#ifndef SHARD_GUNZIP_H
#define SHARD_GUNZIP_H

#include <stdint.h>

typedef struct shard_gunzip shard_gunzip;

/* Whether the bytes of fd at its current offset begin a gzip member
 * (deflate method).  The offset does not move; 0 for a pipe. */
int shard_gunzip_sniff(int fd);

/* A reader of fd from its current offset; fd stays the caller's.
 * 0 or SHARD_ENOMEM. */
int shard_gunzip_new(shard_gunzip **out, int fd);

/*
 * The next inflated bytes: their count with *buf set (valid until the
 * next call), 0 at the end of the stream, or -1 with a one-line reason in
 * err (SHARD_ERRMAX bytes): unreadable file, truncated stream, corrupt
 * data, checksum mismatch, trailing bytes.
 */
long shard_gunzip_read(shard_gunzip *g, const void **buf, char *err);

/* Bytes read from the file so far. */
uint64_t shard_gunzip_consumed(const shard_gunzip *g);

void shard_gunzip_free(shard_gunzip *g);

#endif
