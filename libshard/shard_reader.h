/*
 * shard_reader.h - reading shard files and datasets (reader side).
 *
 * Links with libc, zstd and xxHash only, so a trainer can use it without
 * the compiler side.
 *
 * A shard_reader maps one shard file.  Opening checks, before touching any
 * mapped byte past them, that the file is as long as its header says; then
 * the header checksum, the section table bounds, and the checksums of every
 * metadata section (record columns and frame tables).  The token and text
 * frames are checked at first use: a frame whose checksum fails makes every
 * record in it unreadable, never wrong.
 *
 * Zero copy.  With codec none, a record's tokens point into the mapping.
 * With zstd, they point into a 64-byte aligned buffer holding the
 * decompressed frame, shared through a reference count by every record
 * view of that frame and by the reader's frame cache.  In both cases a
 * shard_record holds a reference that keeps its tokens valid, even after
 * shard_reader_close(), until shard_record_release().
 *
 * A reader may be used from several threads at once.
 */
#ifndef SHARD_READER_H
#define SHARD_READER_H

#include "shard_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shard_reader shard_reader;
typedef struct shard_buf shard_buf;

/* A record view.  Release it with shard_record_release(). */
typedef struct {
    uint64_t index;      /* within its shard */
    const void *tokens;  /* n_tokens ids of `dtype` bytes each */
    size_t n_tokens;
    unsigned dtype;      /* 2 (uint16) or 4 (uint32) */
    uint32_t prompt_len; /* tokens before the response */
    int label;           /* shard_label */
    double reward;       /* NaN when the input had none */
    uint64_t prompt_id;
    uint64_t pair_id;
    uint64_t record_id;
    uint32_t source_file;
    uint64_t source_line;
    uint32_t flags;
    shard_buf *ref;      /* keeps `tokens` alive */
} shard_record;

/* Token i of a record, whatever the dtype.  Cannot fail. */
static inline uint32_t shard_record_token(const shard_record *r, size_t i)
{
    return r->dtype == 2 ? ((const uint16_t *)r->tokens)[i]
                         : ((const uint32_t *)r->tokens)[i];
}

/* Drops the record's reference.  Safe on a zeroed or released record. */
void shard_record_release(shard_record *r);

typedef struct {
    int version;             /* SHARD_READER_OPTIONS_VERSION */
    uint64_t cache_bytes;    /* decompressed frames kept; 64 MiB */
} shard_reader_options;

#define SHARD_READER_OPTIONS_VERSION 1
#define SHARD_READER_OPTIONS_INIT {SHARD_READER_OPTIONS_VERSION, 64ull << 20}

/* Header facts of an open shard. */
typedef struct {
    uint16_t major, minor;
    uint64_t records;
    uint64_t tokens;
    uint64_t file_size;
    uint64_t shard_seq;
    int label;           /* 255 for a mixed shard */
    unsigned dtype;
    int codec;           /* 0 none, 1 zstd */
    int has_text;
    uint64_t frames;     /* token frames */
    uint64_t checksum;   /* header checksum: identifies the whole file */
    char tokenizer[33];
    char template_name[17];
    uint64_t tokenizer_hash;
    uint32_t vocab_size;
    uint32_t bos_id, eos_id, pad_id;
} shard_info;

/*
 * Opens and checks a shard file; `opts` may be NULL.  On failure *out is
 * NULL and shard_last_error() names the file and what failed.
 */
int shard_reader_open(shard_reader **out, const char *path,
                      const shard_reader_options *opts);

/* Drops the reader; records still held keep their own references. */
void shard_reader_close(shard_reader *r);

const shard_info *shard_reader_info(const shard_reader *r);
uint64_t shard_reader_count(const shard_reader *r);
const char *shard_reader_path(const shard_reader *r);
const char *shard_reader_errmsg(const shard_reader *r);

/*
 * Fills *rec with record i.  Returns 0, SHARD_EINVAL (i out of range) or
 * SHARD_ECORRUPT (its frame failed to decode or its checksum) with the
 * message naming the shard, section and frame.
 */
int shard_reader_get(shard_reader *r, uint64_t i, shard_record *rec);

/*
 * A column as an array of `count` elements of `width` bytes, pointing into
 * the mapping (valid while the reader is open).  `kind` is a section kind
 * of docs/FORMAT.md (SHARD_COL_*).  Returns NULL when the shard lacks it.
 */
#define SHARD_COL_PROMPT_LEN 2
#define SHARD_COL_LABEL 3
#define SHARD_COL_REWARD 4
#define SHARD_COL_PROMPT_ID 5
#define SHARD_COL_PAIR_ID 6
#define SHARD_COL_RECORD_ID 7
const void *shard_reader_column(const shard_reader *r, int kind,
                                size_t *count, size_t *width);

/* A record's text: messages of the context, then the response. */
typedef struct {
    const char *role;
    size_t role_len;
    const char *content;
    size_t content_len;
} shard_text_message;

typedef struct {
    shard_text_message *messages;
    size_t n_messages;
    void *storage;
} shard_text;

/*
 * Decodes record i's text section entry into *out (free with
 * shard_text_free).  SHARD_ENOTFOUND when the shard has no text section.
 */
int shard_reader_text(shard_reader *r, uint64_t i, shard_text *out);
void shard_text_free(shard_text *t);

/*
 * Checks every byte of the file at `path`: header, body checksum, every
 * section checksum, every frame, and the padding.  Calls report() once per
 * problem with a one-line message naming the file and the section; returns
 * the number of problems (0 when the shard is sound) or a negative code
 * when the file cannot be read at all.
 */
typedef void (*shard_report_fn)(void *ctx, const char *message);
int shard_verify_file(const char *path, shard_report_fn report, void *ctx);

/*
 * A dataset: the directory a compile writes (pos/, neg/, unl/ shard
 * streams and manifest.json, whose presence marks a complete dataset), or
 * a single shard file.  Records are numbered across shards: pos first,
 * then neg, then unl, each stream in file order.
 */
typedef struct shard_dataset shard_dataset;

/* Opens a dataset; `label` limits it to one stream (-1 for all). */
int shard_dataset_open(shard_dataset **out, const char *path, int label,
                       const shard_reader_options *opts);
void shard_dataset_close(shard_dataset *d);
uint64_t shard_dataset_count(const shard_dataset *d);
size_t shard_dataset_shards(const shard_dataset *d);
shard_reader *shard_dataset_shard(const shard_dataset *d, size_t k);
const char *shard_dataset_errmsg(const shard_dataset *d);

/* Record i of the dataset; see shard_reader_get. */
int shard_dataset_get(shard_dataset *d, uint64_t i, shard_record *rec);

#ifdef __cplusplus
}
#endif

#endif
