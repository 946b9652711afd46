/*
 * tokenizer_fuzzer.c - fuzzes encoding and decoding (shard_tokenizer.h).
 *
 * The first input byte picks a tokenizer (cl100k_base, o200k_base, Llama-3
 * or Qwen3, loaded by name from the vocabulary cache once) and whether
 * added-token strings become tokens; the rest is the text, any bytes.
 * For each input the harness checks, and aborts when one fails:
 *   1. Encoding succeeds (or runs out of memory) and every id is below the
 *      vocabulary size.
 *   2. Decoding the ids gives the text back, with invalid UTF-8 replaced
 *      by U+FFFD (and, for Qwen, normalised to NFC, when added tokens are
 *      text): byte-level BPE loses nothing else.
 *   3. The number of replacements reported is the number of U+FFFD the
 *      repair wrote.
 *   4. Encoding is a function: the same text gives the same ids again,
 *      appended after what the buffer already held.
 *   5. The text's bytes taken as one piece merge to the same ids by the
 *      cuts and the tree, queue or run merge as by the plain heap: ranks
 *      for the tiktoken encodings, listed merges for the tokenizer.json
 *      files.
 *   6. cl100k's, Qwen's and o200k's patterns, split by hand on ASCII, cut
 *      the repaired text into the pieces PCRE2 cuts it into.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "bpe.h"
#include "fuzz.h"
#include "merges.h"
#include "pretok.h"
#include "shard_tokenizer.h"
#include "tokenizer_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *const names[] = {"cl100k_base", "o200k_base", "llama3",
                                    "qwen3"};
#define N_TOKENIZERS (sizeof(names) / sizeof(names[0]))
static shard_tokenizer *toks[N_TOKENIZERS];

static const struct {
    const char *pattern, *numbers;
} patterns[] = {{shard_pattern_cl100k, shard_numbers_tiktoken},
                {shard_pattern_qwen, shard_numbers_hf},
                {shard_pattern_o200k, shard_numbers_tiktoken}};
#define N_PATTERNS (sizeof(patterns) / sizeof(patterns[0]))
static shard_pretok *by_hand[N_PATTERNS], *by_pcre2[N_PATTERNS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (size_t i = 0; i < N_TOKENIZERS; i++) {
        if (shard_tokenizer_open(&toks[i], names[i]) != 0) {
            fprintf(stderr, "tokenizer_fuzzer: %s (run make vocab)\n",
                    shard_last_error());
            exit(1);
        }
    }
    for (size_t i = 0; i < N_PATTERNS; i++) {
        char err[SHARD_ERRMAX];

        if (shard_tok_compile_pattern(&by_hand[i], patterns[i].pattern,
                                      patterns[i].numbers, err) != 0 ||
            shard_tok_compile_pattern(&by_pcre2[i], patterns[i].pattern,
                                      patterns[i].numbers, err) != 0) {
            fprintf(stderr, "tokenizer_fuzzer: %s\n", err);
            exit(1);
        }
        shard_pretok_split_ascii(by_pcre2[i], SHARD_ASCII_NONE);
    }
    return 0;
}

/* What decoding must give: the repaired text, NFC for Qwen.  Returns a
 * malloc'd buffer and its length in *n, or NULL without memory. */
static char *expected_text(const char *text, size_t len, int nfc,
                           size_t *n, size_t *replaced)
{
    char *fixed = malloc(3 * len + 1);
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t got;

    if (!fixed)
        return NULL;
    *replaced = 0;
    *n = shard_utf8_repair(fixed, text, len, replaced);
    if (!nfc || *n == 0)
        return fixed;
    got = utf8proc_map((const utf8proc_uint8_t *)fixed,
                       (utf8proc_ssize_t)*n, &norm,
                       UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    free(fixed);
    if (got < 0)
        return NULL;
    *n = (size_t)got;
    return (char *)norm;
}

/* Check 5 for s[0..n) as one piece (n >= 1). */
static void check_strategies(const shard_tokenizer *t, const char *s,
                             size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t *a = malloc(n * sizeof(*a)), *b = malloc(n * sizeof(*b));
    long na, nb;

    if (!a || !b)
        goto out;
    if (t->kind == TOK_MERGES) {
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = t->bpe.byte_rank[p[i]];
        na = shard_merges_apply(&t->merges, a, n);
        nb = shard_merges_apply_heap(&t->merges, b, n);
    } else {
        na = shard_bpe_merge_large(&t->bpe, p, n, a);
        nb = shard_bpe_merge_heap(&t->bpe, p, n, b);
    }
    if (na >= 0 && nb >= 0)
        REQUIRE(na == nb && memcmp(a, b, (size_t)na * sizeof(*a)) == 0);
out:
    free(a);
    free(b);
}

/* Check 6 for valid UTF-8 s[0..n). */
static void check_splits(const char *s, size_t n)
{
    for (size_t i = 0; i < N_PATTERNS; i++) {
        shard_pretok_scan fast, slow;
        size_t a1 = 0, b1 = 0, a2 = 0, b2 = 0;
        int r1, r2;

        if (shard_pretok_scan_init(&fast, by_hand[i], s, n) != 0)
            return;
        if (shard_pretok_scan_init(&slow, by_pcre2[i], s, n) != 0) {
            shard_pretok_scan_end(&fast);
            return;
        }
        do {
            r1 = shard_pretok_scan_next(&fast, &a1, &b1);
            r2 = shard_pretok_scan_next(&slow, &a2, &b2);
            if (r1 == SHARD_ENOMEM || r2 == SHARD_ENOMEM)
                break;
            REQUIRE(r1 == r2 && (r1 != 1 || (a1 == a2 && b1 == b2)));
        } while (r1 == 1);
        shard_pretok_scan_end(&fast);
        shard_pretok_scan_end(&slow);
    }
}

static int encode(const shard_tokenizer *t, int added, const char *s,
                  size_t n, shard_tokens *out)
{
    return added ? shard_tokenizer_encode_added(t, s, n, out)
                 : shard_tokenizer_encode(t, s, n, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const shard_tokenizer *t;
    const char *text = (const char *)data + 1;
    shard_tokens ids = {0};
    char *want, *got = NULL;
    size_t len, want_len, got_len = 0, got_cap = 0, replaced, first;
    int added, nfc, rc;

    if (size == 0 || !toks[0])
        return 0;
    t = toks[data[0] % N_TOKENIZERS];
    added = data[0] / N_TOKENIZERS % 2;
    nfc = data[0] % N_TOKENIZERS == 3;
    len = size - 1;

    rc = encode(t, added, text, len, &ids);
    if (rc == SHARD_ENOMEM)
        goto out;
    REQUIRE(rc == 0);
    for (size_t i = 0; i < ids.len; i++)
        REQUIRE(ids.ids[i] < shard_tokenizer_vocab_size(t));

    want = expected_text(text, len, nfc, &want_len, &replaced);
    if (!want)
        goto out;
    REQUIRE(ids.replaced == replaced);
    rc = shard_tokenizer_decode(t, ids.ids, ids.len, &got, &got_len,
                                &got_cap);
    REQUIRE(rc == 0 || rc == SHARD_ENOMEM);
    /* Added tokens are cut out before normalising, so NFC does not
     * compose across them (as in HF): the whole text's NFC is no guide. */
    if (rc == 0 && !(nfc && added))
        REQUIRE(got_len == want_len &&
                (want_len == 0 || memcmp(got, want, want_len) == 0));
    free(want);

    first = ids.len;
    rc = encode(t, added, text, len, &ids);
    REQUIRE(rc == 0 || rc == SHARD_ENOMEM);
    if (rc == 0)
        REQUIRE(ids.len == 2 * first &&
                (first == 0 || memcmp(ids.ids, ids.ids + first,
                                      first * sizeof(*ids.ids)) == 0));
    if (len > 0)
        check_strategies(t, text, len);
    if ((want = expected_text(text, len, 0, &want_len, &replaced))) {
        check_splits(want, want_len);
        free(want);
    }
out:
    free(got);
    shard_tokens_free(&ids);
    return 0;
}
