/*
 * shard_tokenizer.h - byte-level BPE tokenizers, exact against tiktoken and
 * Hugging Face `tokenizers`.
 *
 * Two kinds of vocabulary file load:
 *
 *   1. A tiktoken rank file (`.tiktoken`: one line per token, base64 of the
 *      token bytes, a space, the decimal rank).  The rank file carries
 *      neither the split pattern nor the special tokens; both come from a
 *      built-in table keyed by the encoding name (cl100k_base, o200k_base,
 *      r50k_base/gpt2, p50k_base).  Any adjacent pair whose concatenation
 *      is a token may merge, the lowest rank first.
 *   2. A Hugging Face `tokenizer.json` with a byte-level BPE model (GPT-2,
 *      Llama-3, Qwen2/2.5/3, o200k-style files): vocabulary, merges in the
 *      "a b" or ["a", "b"] form, `ignore_merges`, an NFC normaliser or
 *      none, a pre-tokeniser that is ByteLevel alone or a Split on one of
 *      the known patterns followed by ByteLevel, and the added tokens.
 *      Only listed pairs merge, the earliest listed first.  Anything else
 *      (WordPiece, Unigram, SentencePiece-style BPE, other normalisers or
 *      split patterns, dropout) is refused at load time with a message
 *      that names it.
 *
 * Encoding follows tiktoken's encode_ordinary() and HF's encode() with
 * add_special_tokens=false, except that special and added token strings
 * that occur in the text are ordinary text: content never becomes a
 * control token.  shard_tokenizer_encode_added() gives HF's behaviour
 * instead.  Invalid UTF-8 in the input is replaced by U+FFFD, one
 * replacement per maximal invalid subpart (the Unicode "substitution of
 * maximal subparts" practice), before anything else; the number of
 * replacements is added to shard_tokens.replaced.
 *
 * A loaded tokenizer is immutable: any number of threads may encode and
 * decode with one handle at the same time.
 */
#ifndef SHARD_TOKENIZER_H
#define SHARD_TOKENIZER_H

#include "shard_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shard_tokenizer shard_tokenizer;

/* A growable array of token ids.  Zero-initialise before first use. */
typedef struct {
    uint32_t *ids;
    size_t len;
    size_t cap;
    size_t replaced; /* invalid UTF-8 sequences replaced so far */
} shard_tokens;

void shard_tokens_free(shard_tokens *t);

/*
 * Directory that holds vocabulary files: $SHARD_CACHE_DIR when set, else
 * $XDG_CACHE_HOME/shard, else $HOME/.cache/shard.  Rank files live in its
 * `tokenizers/` subdirectory as `<name>.tiktoken`.  Writes at most `cap`
 * bytes into `buf` and returns 0, SHARD_EINVAL when it does not fit, or
 * SHARD_ENOTFOUND when none of the three variables is set.
 */
int shard_tokenizer_cache_dir(char *buf, size_t cap);

/*
 * Loads a tokenizer.  `spec` is a name or a path.  A name is looked up in
 * the cache directory: a tiktoken encoding name (cl100k_base, o200k_base,
 * r50k_base or its alias gpt2, p50k_base) as `tokenizers/<name>.tiktoken`,
 * any other name as `tokenizers/<name>.json` (cmd/fetch-vocab.sh puts
 * llama3, qwen3 and gpt4o there).  A spec with a slash, or ending in
 * `.tiktoken` or `.json`, is a path: a `.tiktoken` file whose base name
 * less the extension is a known encoding name, a `tokenizer.json` file, or
 * a directory holding one.  Nothing is fetched.  On failure returns a
 * negative code, sets *out to NULL and leaves a message in
 * shard_last_error().
 */
int shard_tokenizer_open(shard_tokenizer **out, const char *spec);

void shard_tokenizer_close(shard_tokenizer *t);

/* Canonical encoding name ("cl100k_base"), the cache name of a
 * tokenizer.json ("llama3"), or the path it was opened by. */
const char *shard_tokenizer_name(const shard_tokenizer *t);

/* One more than the largest id the tokenizer can produce, specials included. */
uint32_t shard_tokenizer_vocab_size(const shard_tokenizer *t);

/* XXH3-64 of the vocabulary file's bytes: identifies it exactly. */
uint64_t shard_tokenizer_hash(const shard_tokenizer *t);

/* Id of a special or added token such as "<|endoftext|>" or
 * "<|im_start|>", or -1 if it has none. */
int64_t shard_tokenizer_special(const shard_tokenizer *t, const char *text);

/*
 * Number of special or added token strings in text[0..len), counted from
 * left to right without overlaps (the longest at each place).  Tells which
 * records hold text that HF would turn into control tokens.  Cannot fail.
 */
size_t shard_tokenizer_count_added(const shard_tokenizer *t,
                                   const char *text, size_t len);

/*
 * Appends the ids of `text` (len bytes, need not be NUL-terminated) to
 * `out`.  Returns 0, or SHARD_ENOMEM (out keeps what it held before).
 */
int shard_tokenizer_encode(const shard_tokenizer *t, const char *text,
                           size_t len, shard_tokens *out);

/*
 * Like shard_tokenizer_encode(), but a special or added token string in
 * the text becomes that token, as HF `tokenizers` does even with
 * add_special_tokens=false; the text between them is encoded alone.
 */
int shard_tokenizer_encode_added(const shard_tokenizer *t, const char *text,
                                 size_t len, shard_tokens *out);

/*
 * Appends the bytes of ids[0..n) to the buffer *buf of *len bytes and
 * capacity *cap (realloc'd as needed; *buf may start NULL).  A special id
 * decodes to its string.  Returns 0, SHARD_EINVAL for an id that has no
 * token (the buffer then holds the bytes of the ids before it), or
 * SHARD_ENOMEM.
 */
int shard_tokenizer_decode(const shard_tokenizer *t, const uint32_t *ids,
                           size_t n, char **buf, size_t *len, size_t *cap);

#ifdef __cplusplus
}
#endif

#endif
