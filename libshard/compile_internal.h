/*
 * compile_internal.h - pieces of the compiler shared between its files.
 */
#ifndef SHARD_COMPILE_INTERNAL_H
#define SHARD_COMPILE_INTERNAL_H

#include "shard_compile.h"
#include "shard_tokenizer.h"
#include "shard_writer.h"

/* A growable character buffer. */
typedef struct {
    char *p;
    size_t len, cap;
} shard_strbuf;

int shard_strbuf_append(shard_strbuf *b, const char *s, size_t n);
void shard_strbuf_free(shard_strbuf *b);

/*
 * A chat template bound to a tokenizer (template.c).  Opening resolves
 * the template's structural tokens; the names of those the tokenizer
 * lacks, which are then rendered as text, go to `missing` (`cap` bytes,
 * empty when none).  Returns 0, SHARD_ENOTFOUND for an unknown name, or
 * SHARD_ENOMEM.
 */
typedef struct shard_template shard_template;

int shard_template_open(shard_template **out, const char *name,
                        const shard_tokenizer *tok, char *missing,
                        size_t cap);
void shard_template_close(shard_template *t);

/* Ids of the token the template begins a record with and ends a response
 * with, or -1 when it has none or the tokenizer lacks it. */
int64_t shard_template_begin(const shard_template *t);
int64_t shard_template_end(const shard_template *t);

/*
 * Renders messages (context, then the response last) into the text before
 * the response and the response's own text, with structural tokens as
 * markers.  The two are tokenized separately so that the boundary is
 * exact.  Returns 0 or SHARD_ENOMEM.
 */
int shard_template_render(const shard_template *t, const shard_message *m,
                          size_t n, shard_strbuf *prompt,
                          shard_strbuf *response);

/*
 * Appends the ids of a rendering to `out`: its text runs through the
 * tokenizer (with HF's added-token matching when `added`), its markers as
 * their ids.  Returns 0, SHARD_ENOMEM or SHARD_EINVAL for a damaged
 * marker.
 */
int shard_template_encode(const shard_tokenizer *tok, const char *s,
                          size_t n, int added, shard_tokens *out);

/*
 * Record identity after key normalisation (trim each message, fold runs of
 * whitespace to one space).  prompt_id hashes the context, record_id the
 * context and response; neither is ever 0.  These define the ids message
 * by message; the compiler takes them from folded bytes (the _folded
 * pair below), which tests/test_dedup.c holds equal.
 */
uint64_t shard_prompt_id(const shard_message *m, size_t n_context);
uint64_t shard_record_id(const shard_message *m, size_t n);
uint64_t shard_pair_id(uint64_t prompt_id, uint64_t chosen,
                       uint64_t rejected);

/*
 * The same ids from a record's folded messages (shard_fold_messages in
 * dedup.h): the prompt id from the context's bytes, the first
 * context_len, the record id from all n.  One hash call each.
 */
uint64_t shard_prompt_id_folded(const char *folded, size_t context_len);
uint64_t shard_record_id_folded(const char *folded, size_t n);

/* Per-input figures kept for the manifest. */
typedef struct {
    char path[1024];
    char format[32];
    uint64_t rows_read, rows_invalid, records, kept;
    char error[SHARD_ERRMAX]; /* why the input stopped early, or "" */
} shard_input_stats;

/* Distinct label rules met during a compile, for the manifest. */
#define SHARD_MAX_RULES 32

/* First offenders per reason, kept for the manifest. */
#define SHARD_EXAMPLES_PER_REASON 5
typedef struct {
    char text[SHARD_REASONS][SHARD_EXAMPLES_PER_REASON][SHARD_ERRMAX];
    unsigned count[SHARD_REASONS];
} shard_examples;

typedef struct {
    const shard_compile_options *opt;
    const char *schema;
    const shard_tokenizer_info *tokenizer;
    const shard_accounting *acct;
    const shard_examples *examples;
    const shard_input_stats *inputs;
    size_t n_inputs;
    const shard_file_info *files[SHARD_LABEL_COUNT];
    size_t n_files[SHARD_LABEL_COUNT];
    const char *const *rules;
    size_t n_rules;
    uint64_t pairs_bytes, pairs_checksum; /* DIR/pairs/00000.pairs */
    const shard_merge_stats *merge; /* shard merge only, else NULL: the
                                       datasets joined (merge->datasets
                                       paths) and their first inputs */
    const char *const *merge_paths;
    const uint64_t *merge_first_input;
} shard_manifest_data;

/* Writes DIR/manifest.json atomically (temporary file, fsync, rename). */
int shard_manifest_write(const char *dir, const shard_manifest_data *d,
                         char *err);

#endif
