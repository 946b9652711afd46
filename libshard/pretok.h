/*
 * pretok.h - splitting text into pieces before BPE (internal to libshard).
 *
 * A splitter is a compiled pattern (PCRE2, UTF + UCP, JIT when the host
 * has it).  Splitting follows tiktoken's regex find_iter: the leftmost
 * match from the current position is a piece, text between matches would
 * be dropped (the built-in patterns cover every character, so none is).
 *
 * A splitter is read-only after creation and may be shared by threads; the
 * per-call state lives in a shard_pretok_scan, which one thread owns.
 *
 * Text given to a scan must be valid UTF-8: it is matched without PCRE2's
 * own check, which would otherwise rescan the rest of the text at every
 * piece.  shard_utf8_valid() and shard_utf8_repair() produce such text.
 */
#ifndef SHARD_PRETOK_H
#define SHARD_PRETOK_H

#include <stddef.h>
#include <stdint.h>

typedef struct shard_pretok shard_pretok;

/*
 * Compiles `pattern`.  Returns 0, SHARD_ENOMEM, or SHARD_EINVAL when the
 * pattern does not compile (the PCRE2 message and offset go to `err`,
 * SHARD_ERRMAX bytes).
 */
int shard_pretok_new(shard_pretok **out, const char *pattern, char *err);

void shard_pretok_free(shard_pretok *p);

/* The patterns a splitter can follow by hand on ASCII. */
typedef enum {
    SHARD_ASCII_NONE = 0, /* PCRE2 finds every piece */
    SHARD_ASCII_CL100K,   /* shard_pattern_cl100k */
    SHARD_ASCII_QWEN,     /* shard_pattern_qwen: digits one at a time */
    SHARD_ASCII_O200K     /* shard_pattern_o200k */
} shard_ascii_split;

/*
 * Declares that p was compiled from the pattern `kind` names: pieces that
 * ASCII bytes settle are then split by hand, without PCRE2, into exactly
 * the pieces the pattern gives; a piece whose bounds depend on a byte at
 * or above 0x80 still goes through PCRE2.  Cannot fail.
 */
void shard_pretok_split_ascii(shard_pretok *p, shard_ascii_split kind);

/* Per-call matching state.  Fields are private to pretok.c. */
typedef struct {
    const shard_pretok *p;
    void *match;
    const unsigned char *text;
    size_t len;
    size_t pos;
} shard_pretok_scan;

/* Starts a scan of text[0..len).  Returns 0 or SHARD_ENOMEM. */
int shard_pretok_scan_init(shard_pretok_scan *s, const shard_pretok *p,
                           const char *text, size_t len);

/*
 * Finds the next piece, text[*start..*end).  Returns 1 for a piece, 0 at
 * the end of the text, or SHARD_ENOMEM when the matcher ran out of memory
 * (the scan cannot go on).
 */
int shard_pretok_scan_next(shard_pretok_scan *s, size_t *start,
                           size_t *end);

/*
 * Finds up to max pieces, text[start[i]..end[i]), as that many calls of
 * shard_pretok_scan_next() would, in one call.  Returns how many (0 at the
 * end of the text) or SHARD_ENOMEM.
 */
int shard_pretok_scan_many(shard_pretok_scan *s, size_t *start, size_t *end,
                           int max);

void shard_pretok_scan_end(shard_pretok_scan *s);

/* Length of the longest valid UTF-8 prefix of s[0..n).  Cannot fail. */
size_t shard_utf8_valid(const char *s, size_t n);

/*
 * Copies s[0..n) to dst, replacing each maximal invalid subpart (Unicode
 * 3.9, "U+FFFD substitution of maximal subparts") with U+FFFD.  dst must
 * hold 3 * n bytes.  Returns the bytes written and adds the number of
 * replacements to *replaced.  Cannot fail.
 */
size_t shard_utf8_repair(char *dst, const char *s, size_t n,
                         size_t *replaced);

#endif
