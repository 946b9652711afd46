/*
 * tokenizer.c - the encoding table, the rank-file loader and the public
 * encode/decode API.
 *
 * Each encoding pairs a rank file with the split pattern and special
 * tokens that tiktoken keeps in code.  The patterns split text exactly as
 * the ones tiktoken's Rust core runs; they differ in spelling only: `\s`
 * and `\S` become the Unicode White_Space class, because PCRE2's `\s`
 * also matches U+180E, which is no longer white space; and some
 * quantifiers are possessive, which PCRE2 runs faster (see below).
 *
 * A rank file must be the published one for its name (its XXH3-64 is
 * pinned here, next to the pattern it goes with), so that a name always
 * means the same ids.
 *
 * Thread safety: a tokenizer is never written after shard_tokenizer_open()
 * returns.  Encoding allocates its matcher state, its repaired copy of an
 * invalid text and the work arrays of long pieces per call, so concurrent
 * calls share nothing mutable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "bpe.h"
#include "internal.h"
#include "pretok.h"
#include "shard_tokenizer.h"

/* Unicode White_Space, as a character-class body. */
#define WS "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}" \
           "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Shared tail of every pattern: white-space runs.  A run that a
 * non-space follows gives up its last character to the next piece. */
#define WS_TAIL "|[" WS "]+(?![^" WS "])|[" WS "]+"

/*
 * Contractions.  tiktoken writes them (?i:'s|'t|'re|'ve|'m|'ll|'d); the
 * alternatives start with different letters under case folding, so at
 * most one can match and factoring out the apostrophe changes nothing.
 * Case folding makes 's also match 'S and the long s, 'ſ.
 */
#define CONTRACTION "'(?i:[sdmt]|ll|ve|re)"

/*
 * The patterns.  A quantifier is made possessive (`++`, `?+`) only where
 * what follows it either always succeeds or can never match the text it
 * would give back, so that backtracking into it could not change a match.
 */
/* GPT-2's contractions are case-sensitive. */
static const char pat_gpt2[] =
    "'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^" WS "\\p{L}\\p{N}]++"
    WS_TAIL;

static const char pat_cl100k[] =
    CONTRACTION "|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+"
    "| ?[^" WS "\\p{L}\\p{N}]++[\\r\\n]*+|[" WS "]*[\\r\\n]+" WS_TAIL;

/* Upper- and lower-case classes share Lm, Lo and M, so the letter runs
 * need backtracking and stay greedy. */
#define O200K_UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define O200K_LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"

static const char pat_o200k[] =
    "[^\\r\\n\\p{L}\\p{N}]?" O200K_UPPER "*" O200K_LOWER "+"
    "(?:" CONTRACTION ")?"
    "|[^\\r\\n\\p{L}\\p{N}]?" O200K_UPPER "+" O200K_LOWER "*"
    "(?:" CONTRACTION ")?"
    "|\\p{N}{1,3}+| ?[^" WS "\\p{L}\\p{N}]++[\\r\\n/]*+"
    "|[" WS "]*[\\r\\n]+" WS_TAIL;

typedef struct {
    const char *text;
    uint32_t id;
} tok_special;

static const tok_special specials_gpt2[] = {{"<|endoftext|>", 50256}};

static const tok_special specials_cl100k[] = {
    {"<|endoftext|>", 100257},   {"<|fim_prefix|>", 100258},
    {"<|fim_middle|>", 100259},  {"<|fim_suffix|>", 100260},
    {"<|endofprompt|>", 100276},
};

static const tok_special specials_o200k[] = {
    {"<|endoftext|>", 199999},
    {"<|endofprompt|>", 200018},
};

typedef struct {
    const char *name;  /* canonical; also the rank file's base name */
    const char *alias; /* another name accepted by open, or NULL */
    const char *pattern;
    const tok_special *specials;
    size_t n_specials;
    uint64_t pin; /* XXH3-64 of the published rank file */
} tok_encoding;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const tok_encoding encodings[] = {
    {"cl100k_base", NULL, pat_cl100k, specials_cl100k,
     COUNT(specials_cl100k), 0xaa5d7bf38900641aull},
    {"o200k_base", NULL, pat_o200k, specials_o200k, COUNT(specials_o200k),
     0x72a095e82ca109d6ull},
    {"r50k_base", "gpt2", pat_gpt2, specials_gpt2, COUNT(specials_gpt2),
     0x3cb2fbe95939bd2dull},
    {"p50k_base", NULL, pat_gpt2, specials_gpt2, COUNT(specials_gpt2),
     0xf2d3fa62565e6e17ull},
};

struct shard_tokenizer {
    const tok_encoding *enc;
    shard_bpe bpe;
    shard_pretok *split;
    uint64_t hash;
    uint32_t vocab_size;
};

/* Largest rank file accepted; the published ones are under 4 MB. */
#define TOK_FILE_MAX (64u << 20)

void shard_tokens_free(shard_tokens *t)
{
    free(t->ids);
    memset(t, 0, sizeof(*t));
}

static const tok_encoding *tok_find(const char *name, size_t len)
{
    for (size_t i = 0; i < COUNT(encodings); i++) {
        const tok_encoding *e = &encodings[i];

        if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
            return e;
        if (e->alias && strlen(e->alias) == len &&
            memcmp(e->alias, name, len) == 0)
            return e;
    }
    return NULL;
}

int shard_tokenizer_cache_dir(char *buf, size_t cap)
{
    const char *v;
    int n;

    if ((v = getenv("SHARD_CACHE_DIR")) && *v)
        n = snprintf(buf, cap, "%s", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v)
        n = snprintf(buf, cap, "%s/shard", v);
    else if ((v = getenv("HOME")) && *v)
        n = snprintf(buf, cap, "%s/.cache/shard", v);
    else
        return SHARD_ENOTFOUND;
    return n >= 0 && (size_t)n < cap ? 0 : SHARD_EINVAL;
}

/*
 * Reads the whole of `path` into *data (NUL-terminated, for the parser's
 * sake).  `label` names the file in messages.
 */
static int tok_read_file(const char *path, const char *label, char **data,
                         size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    int rc = SHARD_EIO;

    if (!f)
        return shard_set_last_error(errno == ENOENT ? SHARD_ENOTFOUND
                                                    : SHARD_EIO,
                                    "%s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        shard_set_last_error(rc, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((unsigned long)n > TOK_FILE_MAX) {
        rc = shard_set_last_error(SHARD_EINPUT, "%s: too large (%ld bytes)",
                                  label, n);
        goto out;
    }

    buf = malloc((size_t)n + 1);
    if (!buf) {
        rc = shard_set_last_error(SHARD_ENOMEM, "%s: out of memory", label);
        goto out;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        shard_set_last_error(rc, "%s: read failed", path);
        goto out;
    }
    buf[n] = '\0';
    *data = buf;
    *size = (size_t)n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* Value of a base64 digit, or -1. */
static int tok_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Decodes standard padded base64 s[0..n) into dst.  Returns the number of
 * bytes, or -1 when the text is not padded base64 of at least one byte.
 */
static long tok_b64_decode(unsigned char *dst, const char *s, size_t n)
{
    size_t o = 0;

    if (n == 0 || n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;

        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];

            v[k] = tok_b64_value(c);
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (v[k] < 0 || pad > 0) {
                return -1;
            }
        }

        uint32_t w = (uint32_t)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);

        dst[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            dst[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            dst[o++] = (unsigned char)w;
    }
    return (long)o;
}

/* Parses a decimal rank s[0..n) into *rank.  Returns 0 or -1. */
static int tok_parse_rank(const char *s, size_t n, uint32_t *rank)
{
    uint64_t v = 0;

    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *rank = (uint32_t)v;
    return 0;
}

/* A rank file being parsed: the entries, the arena their bytes go to, and
 * the line each entry came from (for messages). */
typedef struct {
    const char *label;
    shard_bpe_entry *e;
    uint32_t *line;
    size_t n;
    unsigned char *arena;
    uint32_t used;
} tok_parse;

/* Parses one line (without its newline) into the next entry. */
static int tok_parse_line(tok_parse *tp, const char *s, size_t n,
                          uint32_t lineno)
{
    const char *sp = memchr(s, ' ', n);
    long got;

    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (!sp || sp >= s + n)
        return shard_set_last_error(SHARD_EINPUT,
                                    "%s:%u: expected '<base64> <rank>'",
                                    tp->label, lineno);

    got = tok_b64_decode(tp->arena + tp->used, s, (size_t)(sp - s));
    if (got < 0)
        return shard_set_last_error(SHARD_EINPUT, "%s:%u: bad base64",
                                    tp->label, lineno);

    shard_bpe_entry *e = &tp->e[tp->n];
    const char *num = sp + 1;
    int k = (int)(s + n - num);

    if (tok_parse_rank(num, (size_t)k, &e->rank) != 0)
        return shard_set_last_error(SHARD_EINPUT, "%s:%u: bad rank '%.*s'",
                                    tp->label, lineno, k > 20 ? 20 : k,
                                    num);
    e->off = tp->used;
    e->len = (uint32_t)got;
    tp->used += (uint32_t)got;
    tp->line[tp->n++] = lineno;
    return 0;
}

/* Splits the file into lines and parses each non-empty one. */
static int tok_parse_file(tok_parse *tp, const char *data, size_t size)
{
    size_t lines = 1;
    uint32_t lineno = 0;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    tp->e = malloc(lines * sizeof(*tp->e));
    tp->line = malloc(lines * sizeof(*tp->line));
    tp->arena = malloc(size + 1);
    if (!tp->e || !tp->line || !tp->arena)
        return shard_set_last_error(SHARD_ENOMEM, "%s: out of memory",
                                    tp->label);

    for (const char *s = data, *end = data + size; s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        int rc;

        lineno++;
        if (n > 0 && !(n == 1 && s[0] == '\r')) {
            rc = tok_parse_line(tp, s, n, lineno);
            if (rc != 0)
                return rc;
        }
        s += n + 1;
    }
    return 0;
}

/* Builds the rank table from the parsed entries; takes the arena. */
static int tok_build(shard_tokenizer *t, tok_parse *tp)
{
    size_t bad = 0;
    int rc = shard_bpe_build(&t->bpe, tp->arena, tp->e, tp->n, &bad);

    tp->arena = NULL;
    if (rc == SHARD_ENOMEM)
        return shard_set_last_error(rc, "%s: out of memory", tp->label);
    if (rc != 0 && bad == tp->n)
        return shard_set_last_error(rc, "%s: a single byte has no rank",
                                    tp->label);
    if (rc != 0 && tp->e[bad].rank >= SHARD_BPE_RANK_LIMIT)
        return shard_set_last_error(rc, "%s:%u: rank %u too large",
                                    tp->label, tp->line[bad],
                                    tp->e[bad].rank);
    if (rc != 0)
        return shard_set_last_error(rc, "%s:%u: duplicate rank or token",
                                    tp->label, tp->line[bad]);
    return 0;
}

/*
 * Checks the specials against the ranks, sets the vocabulary size and
 * compiles the split pattern.
 */
static int tok_finish(shard_tokenizer *t, const char *label)
{
    const tok_encoding *enc = t->enc;
    char err[SHARD_ERRMAX];
    int rc;

    t->vocab_size = t->bpe.n_ranks;
    for (size_t i = 0; i < enc->n_specials; i++) {
        uint32_t id = enc->specials[i].id;

        if (id < t->bpe.n_ranks && t->bpe.tok_len[id] != 0)
            return shard_set_last_error(SHARD_EINPUT,
                                        "%s: rank %u is also special %s",
                                        label, id, enc->specials[i].text);
        if (id + 1 > t->vocab_size)
            t->vocab_size = id + 1;
    }

    rc = shard_pretok_new(&t->split, enc->pattern, err);
    if (rc != 0)
        return shard_set_last_error(rc, "%s: %s", enc->name, err);
    return 0;
}

/* Loads the rank file at `path` for the encoding t->enc into t. */
static int tok_load(shard_tokenizer *t, const char *path)
{
    const char *slash = strrchr(path, '/');
    tok_parse tp = {.label = slash ? slash + 1 : path};
    char *data = NULL;
    size_t size = 0;
    int rc;

    rc = tok_read_file(path, tp.label, &data, &size);
    if (rc != 0)
        return rc;
    t->hash = XXH3_64bits(data, size);

    rc = tok_parse_file(&tp, data, size);
    if (rc == 0)
        rc = tok_build(t, &tp);
    if (rc == 0 && t->hash != t->enc->pin)
        rc = shard_set_last_error(SHARD_EINPUT,
                                  "%s: not the published %s rank file "
                                  "(xxh3 %016llx)",
                                  tp.label, t->enc->name,
                                  (unsigned long long)t->hash);
    if (rc == 0)
        rc = tok_finish(t, tp.label);

    free(tp.e);
    free(tp.line);
    free(tp.arena);
    free(data);
    return rc;
}

/*
 * Resolves `spec` to an encoding and a rank-file path (written to path,
 * `cap` bytes).  *by_name tells whether the path came from the cache.
 */
static int tok_resolve(const char *spec, const tok_encoding **enc,
                       char *path, size_t cap, int *by_name)
{
    const char *base = strrchr(spec, '/');
    size_t n = strlen(spec), ext = strlen(".tiktoken");
    char dir[4096];

    *by_name = 0;
    if (base || (n > ext && strcmp(spec + n - ext, ".tiktoken") == 0)) {
        base = base ? base + 1 : spec;
        n = strlen(base);
        if (n > ext && strcmp(base + n - ext, ".tiktoken") == 0)
            n -= ext;
        *enc = tok_find(base, n);
        if (!*enc)
            return shard_set_last_error(SHARD_ENOTFOUND,
                                        "%s: file name names no known "
                                        "encoding", spec);
        if ((size_t)snprintf(path, cap, "%s", spec) >= cap)
            return shard_set_last_error(SHARD_EINVAL, "%s: path too long",
                                        spec);
        return 0;
    }

    *enc = tok_find(spec, n);
    if (!*enc)
        return shard_set_last_error(SHARD_ENOTFOUND,
                                    "unknown encoding '%s' (known: "
                                    "cl100k_base, o200k_base, r50k_base, "
                                    "gpt2, p50k_base)", spec);
    *by_name = 1;
    if (shard_tokenizer_cache_dir(dir, sizeof(dir)) != 0)
        return shard_set_last_error(SHARD_ENOTFOUND,
                                    "%s: no cache directory (set "
                                    "SHARD_CACHE_DIR or HOME)", spec);
    if ((size_t)snprintf(path, cap, "%s/tokenizers/%s.tiktoken", dir,
                         (*enc)->name) >= cap)
        return shard_set_last_error(SHARD_EINVAL, "%s: path too long",
                                    dir);
    return 0;
}

int shard_tokenizer_open(shard_tokenizer **out, const char *spec)
{
    const tok_encoding *enc = NULL;
    char path[4200];
    shard_tokenizer *t;
    int rc, by_name;

    *out = NULL;
    rc = tok_resolve(spec, &enc, path, sizeof(path), &by_name);
    if (rc != 0)
        return rc;

    t = calloc(1, sizeof(*t));
    if (!t)
        return shard_set_last_error(SHARD_ENOMEM, "%s: out of memory",
                                    spec);
    t->enc = enc;

    rc = tok_load(t, path);
    if (rc == SHARD_ENOTFOUND && by_name)
        shard_set_last_error(rc, "%s: %s not found (fetch it with "
                                 "cmd/fetch-vocab.sh %s)",
                             spec, path, enc->name);
    if (rc != 0) {
        shard_tokenizer_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

void shard_tokenizer_close(shard_tokenizer *t)
{
    if (!t)
        return;
    shard_bpe_free(&t->bpe);
    shard_pretok_free(t->split);
    free(t);
}

const char *shard_tokenizer_name(const shard_tokenizer *t)
{
    return t->enc->name;
}

uint32_t shard_tokenizer_vocab_size(const shard_tokenizer *t)
{
    return t->vocab_size;
}

uint64_t shard_tokenizer_hash(const shard_tokenizer *t)
{
    return t->hash;
}

const shard_bpe *shard_tokenizer_ranks(const shard_tokenizer *t)
{
    return &t->bpe;
}

int64_t shard_tokenizer_special(const shard_tokenizer *t, const char *text)
{
    for (size_t i = 0; i < t->enc->n_specials; i++)
        if (strcmp(t->enc->specials[i].text, text) == 0)
            return t->enc->specials[i].id;
    return -1;
}

/* Makes room for `more` ids after out->len.  Returns 0 or SHARD_ENOMEM. */
static int tok_reserve(shard_tokens *out, size_t more)
{
    size_t need = out->len + more, cap = out->cap ? out->cap : 256;
    uint32_t *ids;

    if (need <= out->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    ids = realloc(out->ids, cap * sizeof(*ids));
    if (!ids)
        return SHARD_ENOMEM;
    out->ids = ids;
    out->cap = cap;
    return 0;
}

/* Pieces found ahead of encoding, with their hashes; see
 * shard_bpe_prefetch(). */
#define TOK_AHEAD 16

typedef struct {
    size_t start, len;
    uint64_t hash;
} tok_piece;

/* Finds up to TOK_AHEAD pieces.  Returns how many (0 at the end), or
 * SHARD_ENOMEM. */
static int tok_find_pieces(const shard_tokenizer *t, shard_pretok_scan *scan,
                           const unsigned char *s, tok_piece *ahead,
                           size_t *bytes)
{
    int n = 0, rc = 1;
    size_t a, b;

    *bytes = 0;
    while (n < TOK_AHEAD && (rc = shard_pretok_scan_next(scan, &a, &b)) == 1) {
        ahead[n].start = a;
        ahead[n].len = b - a;
        ahead[n].hash = shard_bpe_prefetch(&t->bpe, s + a, b - a);
        *bytes += b - a;
        n++;
    }
    return rc < 0 ? rc : n;
}

/* Encodes valid UTF-8 text[0..len), piece by piece. */
static int tok_encode_valid(const shard_tokenizer *t, const char *text,
                            size_t len, shard_tokens *out)
{
    const unsigned char *s = (const unsigned char *)text;
    tok_piece ahead[TOK_AHEAD];
    shard_pretok_scan scan;
    size_t bytes;
    int n = 0, rc;

    rc = shard_pretok_scan_init(&scan, t->split, text, len);
    while (rc == 0 && (n = tok_find_pieces(t, &scan, s, ahead, &bytes)) > 0) {
        /* A piece never gives more ids than it has bytes. */
        rc = tok_reserve(out, bytes);
        for (int i = 0; rc == 0 && i < n; i++) {
            long got = shard_bpe_encode(&t->bpe, s + ahead[i].start,
                                        ahead[i].len, ahead[i].hash,
                                        out->ids + out->len);

            if (got < 0)
                rc = SHARD_ENOMEM;
            else
                out->len += (size_t)got;
        }
    }
    if (rc == 0 && n < 0)
        rc = n;
    shard_pretok_scan_end(&scan);
    return rc;
}

int shard_tokenizer_encode(const shard_tokenizer *t, const char *text,
                           size_t len, shard_tokens *out)
{
    size_t old_len = out->len, old_replaced = out->replaced;
    char *fixed = NULL;
    int rc;

    if (len == 0)
        return 0;
    if (shard_utf8_valid(text, len) < len) {
        fixed = len <= SIZE_MAX / 3 ? malloc(3 * len) : NULL;
        if (!fixed)
            return SHARD_ENOMEM;
        len = shard_utf8_repair(fixed, text, len, &out->replaced);
        text = fixed;
    }

    rc = tok_encode_valid(t, text, len, out);
    if (rc != 0) {
        out->len = old_len;
        out->replaced = old_replaced;
    }
    free(fixed);
    return rc;
}

/* Bytes of one id: a rank's token or a special's text; NULL if none. */
static const void *tok_bytes(const shard_tokenizer *t, uint32_t id,
                             size_t *n)
{
    const shard_bpe *b = &t->bpe;

    if (id < b->n_ranks && b->tok_len[id] != 0) {
        *n = b->tok_len[id];
        return b->arena + b->tok_off[id];
    }
    for (size_t i = 0; i < t->enc->n_specials; i++) {
        if (t->enc->specials[i].id == id) {
            *n = strlen(t->enc->specials[i].text);
            return t->enc->specials[i].text;
        }
    }
    return NULL;
}

int shard_tokenizer_decode(const shard_tokenizer *t, const uint32_t *ids,
                           size_t n, char **buf, size_t *len, size_t *cap)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        const void *src = tok_bytes(t, ids[i], &k);

        if (!src)
            return SHARD_EINVAL;
        if (*len + k > *cap || !*buf) {
            size_t c = *cap ? *cap : 256;
            char *p;

            while (c < *len + k)
                c *= 2;
            p = realloc(*buf, c);
            if (!p)
                return SHARD_ENOMEM;
            *buf = p;
            *cap = c;
        }
        memcpy(*buf + *len, src, k);
        *len += k;
    }
    return 0;
}
