/*
 * pretok.c - pre-splitting with PCRE2, and UTF-8 checking and repair.
 *
 * Match data is allocated per scan rather than kept per thread: a scan
 * covers one text, the allocation is small next to the work, and nothing
 * is left behind when a thread ends.  Patterns have no capturing groups,
 * so one ovector pair is enough for any of them.
 */
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "internal.h"
#include "pretok.h"

struct shard_pretok {
    pcre2_code *code;
    pcre2_match_context *limits; /* read-only once made */
    int jit;                     /* pcre2_jit_compile() succeeded */
    shard_ascii_split ascii;     /* shard_pretok_split_ascii() */
};

/*
 * PCRE2's default match limit (ten million steps) stops a match inside a
 * white-space run of a few megabytes, where `\s*[\r\n]` gives back the
 * run one character at a time.  The built-in patterns backtrack at most
 * across the run they are in, so the work stays linear and the limit only
 * gets in the way: lift it.
 */
static pcre2_match_context *pretok_limits(void)
{
    pcre2_match_context *mc = pcre2_match_context_create(NULL);

    if (mc) {
        pcre2_set_match_limit(mc, UINT32_MAX);
        pcre2_set_depth_limit(mc, UINT32_MAX);
    }
    return mc;
}

int shard_pretok_new(shard_pretok **out, const char *pattern, char *err)
{
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY;
    shard_pretok *p;
    int code;
    PCRE2_SIZE at;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return shard_errf(err, SHARD_ENOMEM, "out of memory");

    p->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                            opts, &code, &at, NULL);
    if (!p->code) {
        PCRE2_UCHAR msg[256];

        pcre2_get_error_message(code, msg, sizeof(msg));
        free(p);
        return shard_errf(err, SHARD_EINVAL,
                          "split pattern: %s at offset %zu", (char *)msg,
                          (size_t)at);
    }

    p->limits = pretok_limits();
    if (!p->limits) {
        shard_pretok_free(p);
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    }

    /* Without JIT the interpreter gives the same pieces, only slower. */
    p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
    *out = p;
    return 0;
}

void shard_pretok_free(shard_pretok *p)
{
    if (!p)
        return;
    pcre2_code_free(p->code);
    pcre2_match_context_free(p->limits);
    free(p);
}

void shard_pretok_split_ascii(shard_pretok *p, shard_ascii_split kind)
{
    p->ascii = kind;
}

/* ---- cl100k's, Qwen's and o200k's patterns on ASCII, by hand ------------ */

static int a_letter(unsigned char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

static int a_digit(unsigned char c)
{
    return (unsigned char)(c - '0') < 10;
}

/*
 * The end of the run of bytes from s[j] whose value, ORed with `fold`,
 * lies in [lo, hi] (hi < 0x80): the first index at or after j that is not
 * one, or n.  Eight bytes are tested at once, so a word costs one branch
 * on its length instead of one a byte; a byte at or above 0x80 always
 * ends the run.
 */
static inline size_t a_run_end(const unsigned char *s, size_t n, size_t j,
                               unsigned fold, unsigned lo, unsigned hi)
{
    const uint64_t ones = 0x0101010101010101ull, high = ones * 0x80;

    for (; n - j >= 8; j += 8) {
        uint64_t w, y, in;

        memcpy(&w, s + j, 8); /* the first byte lowest (internal.h) */
        y = (w | ones * fold) & ~high;
        /* Seven-bit bytes plus at most 0x80 carry into no neighbour. */
        in = (y + ones * (0x80 - lo)) & ~(y + ones * (0x7F - hi)) & ~w;
        if ((in & high) != high)
            return j + (size_t)__builtin_ctzll(~in & high) / 8;
    }
    while (j < n && s[j] < 0x80 && (unsigned)((s[j] | fold) - lo) <= hi - lo)
        j++;
    return j;
}

/* White space as the pattern's WS class has it, in ASCII. */
static int a_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int a_newline(unsigned char c)
{
    return c == '\r' || c == '\n';
}

/* Neither white space, letter nor number: [^WS\p{L}\p{N}] in ASCII. */
static int a_other(unsigned char c)
{
    return c < 0x80 && !a_space(c) && !a_letter(c) && !a_digit(c);
}

/*
 * The alternatives of shard_pattern_cl100k in their order, at s[i]:
 * 1 and the piece's end when ASCII bytes settle it, 0 when a byte at or
 * above 0x80 could change it (PCRE2 decides those).  Qwen's pattern is
 * the same with `digits` 1.
 *
 *   '(?i:[sdmt]|ll|ve|re)        a contraction
 *   [^\r\n\p{L}\p{N}]?+\p{L}++    letters, after one other character
 *   \p{N}{1,3}+                  one to `digits` digits
 *    ?[^WS\p{L}\p{N}]++[\r\n]*+    symbols, after a space, then newlines
 *   [WS]*[\r\n]+                 white space up to its last newline
 *   [WS]+(?![^WS])|[WS]+          white space, but the last character
 *                                of a run that a non-space follows
 *
 * shard_pattern_o200k has no contraction of its own, splits letter runs
 * by case (o200k_letters) and takes slashes after symbols, [\r\n/]*+;
 * the rest is the same with `digits` 3.
 */
static int cl100k_contraction(const unsigned char *s, size_t n, size_t i,
                              size_t *end)
{
    unsigned char a, b;

    if (i + 1 >= n)
        return 0;
    if ((a = s[i + 1]) >= 0x80) /* 'ſ matches 's */
        return -1;
    a |= 0x20;
    if (a_letter(s[i + 1]) && (a == 's' || a == 'd' || a == 'm' ||
                               a == 't')) {
        *end = i + 2;
        return 1;
    }
    if (i + 2 >= n)
        return 0;
    if ((b = s[i + 2]) >= 0x80)
        return -1;
    b |= 0x20;
    if (a_letter(s[i + 1]) && a_letter(s[i + 2]) &&
        ((a == 'l' && b == 'l') || (a == 'v' && b == 'e') ||
         (a == 'r' && b == 'e'))) {
        *end = i + 3;
        return 1;
    }
    return 0;
}

static int cl100k_space(const unsigned char *s, size_t n, size_t i,
                        size_t *end)
{
    size_t j = i, last_nl = 0;
    int nl = 0;

    while (j < n && a_space(s[j])) {
        if (a_newline(s[j])) {
            last_nl = j;
            nl = 1;
        }
        j++;
    }
    if (j < n && s[j] >= 0x80) /* the run may go on: U+00A0, U+3000 */
        return 0;
    if (nl)
        *end = last_nl + 1;
    else
        *end = j == n || j - i == 1 ? j : j - 1;
    return 1;
}

/*
 * o200k's letters from s[j], an ASCII letter: capitals then small
 * letters, [UPPER]*[LOWER]+, or else capitals alone, [UPPER]+[LOWER]*;
 * either with a contraction after it.  In ASCII the classes are A-Z and
 * a-z; the marks and other letters both classes hold are all above 0x80,
 * so a byte there where a run stops leaves the piece to PCRE2.
 */
static int o200k_letters(const unsigned char *s, size_t n, size_t j,
                         size_t *end)
{
    size_t u, m;
    int rc;

    u = a_run_end(s, n, j, 0, 'A', 'Z');
    m = a_run_end(s, n, u, 0, 'a', 'z');
    if (m < n && s[m] >= 0x80)
        return 0;
    if (m < n && s[m] == '\'' && (rc = cl100k_contraction(s, n, m, end)))
        return rc > 0;
    *end = m;
    return 1;
}

static int split_ascii(const unsigned char *s, size_t n, size_t i,
                       size_t *end, size_t digits, int o200k)
{
    unsigned char c = s[i];
    size_t j;
    int rc;

    if (c >= 0x80)
        return 0;
    if (!o200k && c == '\'' &&
        (rc = cl100k_contraction(s, n, i, end)) != 0)
        return rc > 0;

    j = a_letter(c) || a_digit(c) || a_newline(c) ? i : i + 1;
    if (j < n && s[j] >= 0x80)
        return 0;
    if (j < n && a_letter(s[j]) && o200k)
        return o200k_letters(s, n, j, end);
    if (j < n && a_letter(s[j])) {
        j = a_run_end(s, n, j, 0x20, 'a', 'z');
        *end = j;
        return j == n || s[j] < 0x80;
    }

    if (a_digit(c)) {
        for (j = i + 1; j < n && j - i < digits && a_digit(s[j]); j++)
            ;
        *end = j;
        return j - i == digits || j == n || s[j] < 0x80;
    }

    j = c == ' ' ? i + 1 : i;
    if (j < n && s[j] >= 0x80)
        return 0;
    if (j < n && a_other(s[j])) {
        while (j < n && a_other(s[j]))
            j++;
        if (j < n && s[j] >= 0x80)
            return 0;
        while (j < n && (a_newline(s[j]) || (o200k && s[j] == '/')))
            j++;
        *end = j;
        return 1;
    }
    return a_space(c) ? cl100k_space(s, n, i, end) : 0;
}

int shard_pretok_scan_init(shard_pretok_scan *s, const shard_pretok *p,
                           const char *text, size_t len)
{
    s->p = p;
    s->text = (const unsigned char *)text;
    s->len = len;
    s->pos = 0;
    s->match = pcre2_match_data_create(1, NULL);
    return s->match ? 0 : SHARD_ENOMEM;
}

void shard_pretok_scan_end(shard_pretok_scan *s)
{
    pcre2_match_data_free(s->match);
    s->match = NULL;
}

/* Length of the UTF-8 sequence whose lead byte is c (c must be a lead). */
static size_t utf8_lead_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* The next piece by the pattern, PCRE2's JIT or, past its stack, the
 * interpreter: 1, 0 at the end of the text, or SHARD_ENOMEM. */
static int scan_pcre2(shard_pretok_scan *s, size_t *start, size_t *end)
{
    pcre2_match_data *md = s->match;
    PCRE2_SIZE *ov;
    int rc = PCRE2_ERROR_JIT_STACKLIMIT;

    if (s->p->jit)
        rc = pcre2_jit_match(s->p->code, s->text, s->len, s->pos, 0, md,
                             s->p->limits);

    /* The interpreter keeps its backtracking frames on the heap, so it
     * also covers a match too deep for the default JIT stack. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(s->p->code, s->text, s->len, s->pos,
                         PCRE2_NO_UTF_CHECK, md, s->p->limits);
    if (rc == PCRE2_ERROR_NOMATCH) {
        s->pos = s->len;
        return 0;
    }
    if (rc < 0)
        return SHARD_ENOMEM;

    ov = pcre2_get_ovector_pointer(md);
    *start = ov[0];
    *end = ov[1];

    /* The built-in patterns never match empty; step over one character
     * anyway so that no pattern can stall the scan. */
    if (*end == *start)
        s->pos = *end + utf8_lead_len(s->text[*end]);
    else
        s->pos = *end;
    return 1;
}

int shard_pretok_scan_many(shard_pretok_scan *s, size_t *start, size_t *end,
                           int max)
{
    const unsigned char *text = s->text;
    size_t len = s->len, pos = s->pos;
    shard_ascii_split kind = s->p->ascii;
    size_t digits = kind == SHARD_ASCII_QWEN ? 1 : 3;
    int o200k = kind == SHARD_ASCII_O200K, n = 0, rc;

    /* The text and position stay in registers while ASCII settles the
     * pieces; s is brought up to date before PCRE2 runs. */
    while (n < max && pos < len) {
        if (kind && split_ascii(text, len, pos, &end[n], digits, o200k)) {
            start[n] = pos;
            pos = end[n++];
            continue;
        }
        s->pos = pos;
        rc = scan_pcre2(s, &start[n], &end[n]);
        pos = s->pos;
        if (rc < 0)
            return rc;
        n += rc;
    }
    s->pos = pos;
    return n;
}

int shard_pretok_scan_next(shard_pretok_scan *s, size_t *start,
                           size_t *end)
{
    return shard_pretok_scan_many(s, start, end, 1);
}

/*
 * Checks the sequence at s[0..n), n >= 1.  Returns its length when it is
 * well formed; otherwise returns 0 and sets *bad to the length of its
 * maximal invalid subpart (at least 1).
 */
static size_t utf8_check(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;

    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4) {
        *bad = 1;
        return 0;
    }

    need = utf8_lead_len(c);
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;

    for (size_t i = 1; i < need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need;
}

size_t shard_utf8_valid(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, bad;

    while (i < n) {
        uint64_t w;

        if (i + 8 <= n) {
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }

        size_t got = utf8_check(s + i, n - i, &bad);

        if (got == 0)
            return i;
        i += got;
    }
    return n;
}

size_t shard_utf8_repair(char *dst, const char *text, size_t n,
                         size_t *replaced)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, o = 0, bad = 0;

    while (i < n) {
        size_t got = utf8_check(s + i, n - i, &bad);

        if (got > 0) {
            memcpy(dst + o, s + i, got);
            o += got;
            i += got;
            continue;
        }

        memcpy(dst + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += bad;
        (*replaced)++;
    }
    return o;
}
