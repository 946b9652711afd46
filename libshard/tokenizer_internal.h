/*
 * tokenizer_internal.h - the tokenizer handle, shared by the tiktoken
 * loader (tokenizer.c) and the tokenizer.json loader (tokenizer_hf.c).
 */
#ifndef SHARD_TOKENIZER_INTERNAL_H
#define SHARD_TOKENIZER_INTERNAL_H

#include "bpe.h"
#include "merges.h"
#include "pretok.h"
#include "shard_tokenizer.h"

/* How adjacent parts merge: tiktoken's rule (bpe.h) or listed pairs
 * (merges.h). */
typedef enum { TOK_RANKS, TOK_MERGES } tok_kind;

/* A special or added token: a string that maps to one id as a whole. */
typedef struct {
    char *text;
    size_t len;
    uint32_t id;
} tok_added;

struct shard_tokenizer {
    tok_kind kind;
    char name[256];
    shard_bpe bpe;         /* token bytes <-> id for both kinds */
    shard_merges merges;   /* TOK_MERGES only */
    shard_pretok *split;
    tok_added *added;      /* sorted by text, longest first on a prefix */
    size_t n_added;
    unsigned char added_first[256]; /* 1 for a byte an added token
                                       starts with */
    int added_lead;        /* the one such byte, or -1 */
    int whole_piece;       /* a piece that is a token is emitted as is */
    int nfc;               /* normalise to NFC before splitting */
    int prefix_space;      /* ByteLevel add_prefix_space */
    uint64_t hash;
    uint32_t vocab_size;
};

/* Split patterns known by name, spelled for PCRE2 (see tokenizer.c). */
extern const char shard_pattern_gpt2[];
extern const char shard_pattern_cl100k[];
extern const char shard_pattern_qwen[];
extern const char shard_pattern_o200k[];

/* Code point ranges, in PCRE2 class syntax, to count as \p{N}. */
extern const char shard_numbers_tiktoken[];
extern const char shard_numbers_hf[];

/*
 * Compiles a split pattern with `numbers` added wherever it says \p{N}
 * (inside a class, or as a class of its own).  shard_pattern_cl100k,
 * shard_pattern_qwen and shard_pattern_o200k (the very arrays, not
 * copies) split ASCII by hand (shard_pretok_split_ascii).  Returns what shard_pretok_new() returns.
 */
int shard_tok_compile_pattern(shard_pretok **out, const char *pattern,
                              const char *numbers, char *err);

/* Reads a whole file into a NUL-terminated buffer of *size bytes, then
 * SHARD_JSON_PADDING more; `label` names the file in messages. */
int shard_tok_read_file(const char *path, const char *label, char **data,
                        size_t *size);

/* Adds a special or added token (copies the text).  Returns 0 or
 * SHARD_ENOMEM. */
int shard_tok_add_special(shard_tokenizer *t, const char *text, size_t len,
                          uint32_t id);

/* Sorts the added tokens and finishes the vocabulary size; returns 0 or
 * SHARD_EINPUT (message set) when an added id collides with a token. */
int shard_tok_finish_added(shard_tokenizer *t, const char *label);

/* Loads a tokenizer.json file into t (tokenizer_hf.c).  `label` names
 * the file in messages. */
int shard_tok_load_hf(shard_tokenizer *t, const char *path,
                      const char *label);

#endif
