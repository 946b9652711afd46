/*
 * shard_compile.h - compiling feedback logs into a dataset (compiler side).
 *
 * shard_compile() reads every input in order, maps each row through an
 * input schema into records, tokenizes them with a chat template and
 * writes them into one shard stream per label under the output directory:
 *
 *     DIR/pos/00000.shard ...   DIR/neg/...   DIR/unl/...   DIR/manifest.json
 *
 * manifest.json is written last, atomically; its presence marks a complete
 * dataset.  Every row read ends in exactly one place: it is invalid (with a
 * reason), or it is kept and yields records (none, for a row holding no
 * rated response), each of which is kept or dropped; the accounting below
 * holds the counts, per input and in total.  Comparisons between records
 * go to the pairs table DIR/pairs/00000.pairs (shard_pairs.h).
 */
#ifndef SHARD_COMPILE_H
#define SHARD_COMPILE_H

#include <stdio.h>

#include "shard_common.h"
#include "shard_writer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHARD_REASONS 7

typedef struct {
    uint64_t rows_read;    /* non-blank lines or array elements read */
    uint64_t rows_invalid; /* rows rejected; by reason below */
    uint64_t invalid_by_reason[SHARD_REASONS];
    uint64_t records;      /* records produced by valid rows */
    uint64_t kept;         /* records written */
    uint64_t duplicate;
    uint64_t near_duplicate;
    uint64_t conflict;
    uint64_t kept_by_label[SHARD_LABEL_COUNT];
    uint64_t tokens_by_label[SHARD_LABEL_COUNT];
    uint64_t pairs;        /* chosen/rejected pairs with both kept */
    uint64_t replaced_utf8; /* invalid UTF-8 sequences replaced */
    uint64_t special_text;  /* records with special-token strings in text */
    uint64_t inputs_failed; /* unreadable or cut short (--keep-going) */
    uint64_t pairs_duplicate; /* same (prompt, chosen, rejected) before */
    uint64_t pairs_dropped;   /* a side dropped as conflict or near dup */
    uint64_t near_candidates; /* record pairs sharing an LSH band */
} shard_accounting;

/* Name of reason i ("bad_json", "missing_field", ...). */
const char *shard_reason_label(int i);

typedef enum {
    SHARD_MSG_ERROR,   /* the run fails */
    SHARD_MSG_WARNING, /* a bad row: `file:line: what` */
    SHARD_MSG_INFO,    /* what auto-detection chose, and the like */
    SHARD_MSG_DETAIL   /* bad rows past the first few of their reason */
} shard_msg_level;

typedef void (*shard_log_fn)(void *ctx, shard_msg_level level,
                             const char *message);

/*
 * Where a compile stands, given to the progress callback after each batch
 * of rows committed, from the calling thread.  The figures count from the
 * start of the sweep (1: dedup keys, 2: writing; sweep 1 starts again
 * when the dedup table goes to disk).  in_done counts the bytes of the
 * input files read up to the rows committed, as stored (compressed bytes
 * of a compressed file): it never decreases within a sweep and ends at
 * in_total, the sum of the files' sizes.  in_total is 0 when a size is
 * unknown: standard input, or an input that is not a regular file.
 */
typedef struct {
    int sweep;
    uint64_t rows, bytes;      /* rows and their bytes of JSON */
    uint64_t tokens, kept, dropped;
    uint64_t in_done, in_total;
} shard_progress;

typedef void (*shard_progress_fn)(void *ctx, const shard_progress *p);

typedef struct {
    int version;               /* SHARD_COMPILE_OPTIONS_VERSION */
    const char *format;        /* schema name or "auto" */
    const char *tokenizer;     /* name or path; "cl100k_base" */
    const char *template_name; /* chat template; "none" */
    shard_codec codec;
    int zstd_level;
    uint64_t shard_size;
    uint64_t frame_size;
    int with_text;
    size_t max_line;           /* longer rows are over_limit */
    int strict;                /* any invalid row fails the run */
    int force;                 /* replace an existing dataset */
    shard_log_fn log;          /* may be NULL */
    void *log_ctx;
    int keep_going;            /* an unreadable input is reported, skipped */
    const char *field_map;     /* format map: "prompt=q,response=a,..." */
    const char *label_rule;    /* score to label: "score>=7[;score<=3]" */
    int hf_added_tokens;       /* added-token strings in text become
                                  tokens, as HF does; default: text */
    int normalize;             /* dedup key text: shard_normalize (ws) */
    int conflicts;             /* key with several labels: shard_conflicts
                                  (drop) */
    uint64_t mem_limit;        /* dedup table bytes before disk (1G) */
    double near_dup;           /* MinHash Jaccard threshold; 0: off */
    int near_dup_scope;        /* 0: within label and prompt, 1: stream */
    uint64_t near_dup_seed;    /* MinHash seed */
    int append;                /* add to the dataset in outdir */
    int threads;               /* worker threads; 0: one per core.  The
                                  output does not depend on it */
    shard_progress_fn progress; /* may be NULL */
    void *progress_ctx;
    int resume;                /* continue the compile interrupted in
                                  outdir, from its journal */
    int mpi;                   /* one rank of an MPI job (compile --mpi,
                                  docs/DISTRIBUTED.md) */
} shard_compile_options;

/* The most worker threads a compile starts. */
#define SHARD_MAX_THREADS 256

#define SHARD_COMPILE_OPTIONS_VERSION 1
#define SHARD_COMPILE_OPTIONS_INIT                                          \
    {SHARD_COMPILE_OPTIONS_VERSION, "auto", "cl100k_base", "none",          \
     SHARD_CODEC_ZSTD, 3, 256ull << 20, 512ull << 10, 1, 64ull << 20, 0,    \
     0, NULL, NULL, 0, NULL, NULL, 0, 0, 0, 1ull << 30, 0.0, 0, 1, 0, 0,    \
     NULL, NULL, 0, 0}

/*
 * Compiles inputs[0..n) into `outdir`.  Returns 0 on success, SHARD_EINPUT
 * when `strict` is set and a row was invalid, or another negative code;
 * the accounting is filled in either case (as far as the run got).  On
 * failure no manifest is written.
 */
int shard_compile(const char *const *inputs, size_t n, const char *outdir,
                  const shard_compile_options *opts, shard_accounting *acct);

/*
 * This process's rank in the last `mpi` compile (0 writes the manifest
 * and, on failure, should be the one to report it); 0 when none ran.
 * Cannot fail.
 */
int shard_compile_rank(void);

/* Chat templates known to the compiler, NULL-terminated. */
extern const char *const shard_template_names[];

/* Writes s[0..n) as a JSON string literal, quotes included. */
void shard_json_write_string(FILE *f, const char *s, size_t n);

/*
 * The summary of a compiled dataset, read back from its manifest.json.
 * Free with shard_manifest_free().
 */
typedef struct {
    char path[256];
    int label;
    uint64_t records, tokens, bytes, checksum;
} shard_manifest_shard;

/* One input as the manifest accounts for it. */
typedef struct {
    char path[1024];
    char format[32];
    char error[SHARD_ERRMAX]; /* why it stopped early (--keep-going), or "" */
    uint64_t rows_read, rows_kept, rows_invalid, records, kept;
} shard_manifest_input;

/*
 * What `shard merge` did (the manifest's "merge" object): records it
 * tombstoned as duplicates or conflicts of another input's, records an
 * input counted as conflicts that the merge counts as duplicates, pairs
 * rows it left out, comparisons an input counted as dropped that the
 * merge counts as duplicates, and shard files hard-linked or copied into
 * OUT.
 */
typedef struct {
    uint64_t datasets;
    int dedup;
    uint64_t duplicate, conflict, recounted;
    uint64_t pairs_duplicate, pairs_dropped, pairs_recounted;
    uint64_t linked, copied;
} shard_merge_stats;

typedef struct {
    char tokenizer[64];
    char template_name[32];
    char schema[64];
    uint64_t tokenizer_hash;
    uint32_t vocab_size;
    shard_accounting acct;
    shard_manifest_shard *shards;
    size_t n_shards;
    shard_manifest_input *inputs;
    size_t n_inputs;
    int format_version;
    uint32_t bos_id, eos_id;   /* SHARD_NO_TOKEN when absent */
    shard_compile_options opt; /* "options" and added_tokens; the string
                                  fields keep their defaults */
    char (*rules)[256];        /* "label_rules" */
    size_t n_rules;
    int merged;                /* has a "merge" object, read into merge */
    shard_merge_stats merge;
    char (*merge_paths)[1024]; /* merge.datasets[].path, merge.datasets */
    uint64_t *merge_first;     /* merge.datasets[].first_input */
} shard_manifest;

int shard_manifest_read(const char *dir, shard_manifest *m);
void shard_manifest_free(shard_manifest *m);

#ifdef __cplusplus
}
#endif

#endif
