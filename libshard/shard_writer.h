/*
 * shard_writer.h - writing shard files (compiler side).
 *
 * A shard_stream writes the records of one label into numbered shard files
 * `DIR/00000.shard`, `DIR/00001.shard`, ... (after the prefix of the
 * options, if any), starting a new file once the
 * current one reaches the size target.  Each file is written under a
 * temporary name, fsync'ed and renamed into place when it is complete, so a
 * file with a final name is always whole.  Memory is bounded by the size of
 * one shard's record columns plus one frame.
 */
#ifndef SHARD_WRITER_H
#define SHARD_WRITER_H

#include "shard_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SHARD_CODEC_NONE = 0, SHARD_CODEC_ZSTD = 1 } shard_codec;

/* Identity of the tokenizer, stored in every shard header. */
typedef struct {
    char name[32];     /* e.g. "cl100k_base" */
    char template[16]; /* chat template name, e.g. "none" */
    uint64_t hash;     /* hash of the vocabulary file */
    uint32_t vocab_size;
    uint32_t bos_id, eos_id, pad_id; /* SHARD_NO_TOKEN when absent */
} shard_tokenizer_info;

#define SHARD_NO_TOKEN 0xffffffffu

typedef struct {
    int version;          /* SHARD_WRITER_OPTIONS_VERSION */
    shard_codec codec;    /* SHARD_CODEC_ZSTD */
    int zstd_level;       /* 3 */
    uint64_t shard_size;  /* start a new file past this many bytes */
    uint64_t frame_size;  /* raw token bytes per frame (target) */
    int with_text;        /* store the text section */
    int label;            /* the stream's label; 255 for mixed */
    shard_tokenizer_info tokenizer;
    uint64_t first_seq;   /* number of the first file (compile --append) */
    int threads;          /* threads compressing zstd frames; 0: the
                             caller's.  The bytes written are the same */
    const char *prefix;   /* file names begin with it, e.g. "r0003-" for
                             rank 3 of compile --mpi; NULL: none.  Kept
                             by pointer: it must outlive the stream */
} shard_writer_options;

#define SHARD_WRITER_OPTIONS_VERSION 1
#define SHARD_WRITER_OPTIONS_INIT                                           \
    {SHARD_WRITER_OPTIONS_VERSION, SHARD_CODEC_ZSTD, 3,                     \
     256ull << 20, 512ull << 10, 1, 255,                                    \
     {"", "none", 0, 0, SHARD_NO_TOKEN, SHARD_NO_TOKEN, SHARD_NO_TOKEN},  \
     0, 0, NULL}

/* One message of a record's text: role and content, not NUL-terminated. */
typedef struct {
    const char *role;
    size_t role_len;
    const char *content;
    size_t content_len;
} shard_message;

/* A record to write.  Nothing is retained after shard_stream_add returns. */
typedef struct {
    const uint32_t *tokens;
    size_t n_tokens;
    uint32_t prompt_len;
    int label;
    double reward; /* NaN when the input had none */
    uint64_t prompt_id;
    uint64_t pair_id;
    uint64_t record_id;
    uint32_t source_file;
    uint64_t source_line;
    uint32_t flags;
    const shard_message *messages; /* context, then the response last */
    size_t n_messages;
} shard_record_in;

/* What a finished shard file holds, for the manifest. */
typedef struct {
    char path[256];     /* relative to the stream directory */
    uint64_t records;
    uint64_t tokens;
    uint64_t bytes;
    uint64_t checksum;  /* XXH3-64 of the whole file */
} shard_file_info;

typedef struct shard_stream shard_stream;

/*
 * Opens a stream writing into `dir` (created if missing), its files
 * numbered from opts->first_seq.  Fails with SHARD_EINVAL when `dir`
 * already holds a file of that number.
 */
int shard_stream_open(shard_stream **out, const char *dir,
                      const shard_writer_options *opts);

/* Appends a record.  A token id >= vocab_size is SHARD_EINVAL. */
int shard_stream_add(shard_stream *s, const shard_record_in *rec);

/*
 * Completes the current file.  After this, shard_stream_files() lists every
 * file written.  Returns 0 or a negative code (message in errmsg).
 */
int shard_stream_finish(shard_stream *s);

/*
 * Lists files[0..n) as completed before the stream opened, ahead of the
 * files it writes (a resumed compile; opts->first_seq numbers the next).
 * Returns 0 or SHARD_ENOMEM.
 */
int shard_stream_adopt(shard_stream *s, const shard_file_info *files,
                       size_t n);

/* Files completed so far, in order; valid until the stream is freed. */
const shard_file_info *shard_stream_files(const shard_stream *s,
                                          size_t *count);

const char *shard_stream_errmsg(const shard_stream *s);

/* Frees the stream; an unfinished shard's temporary file is removed. */
void shard_stream_free(shard_stream *s);

/* Serialises messages into the text-section record layout (FORMAT.md). */
size_t shard_text_encoded_size(const shard_message *m, size_t n);
void shard_text_encode(unsigned char *dst, const shard_message *m,
                       size_t n);

#ifdef __cplusplus
}
#endif

#endif
