/*
 * tokenizer.c - the encoding table, the rank-file loader, the lookup of
 * names and paths, and the public encode/decode API.
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

#include <pthread.h>
#include <sys/stat.h>

#include <utf8proc.h>

#include "internal.h"
#include "json.h"
#include "tokenizer_internal.h"

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
const char shard_pattern_gpt2[] =
    "'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^" WS "\\p{L}\\p{N}]++"
    WS_TAIL;

const char shard_pattern_cl100k[] =
    CONTRACTION "|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+"
    "| ?[^" WS "\\p{L}\\p{N}]++[\\r\\n]*+|[" WS "]*[\\r\\n]+" WS_TAIL;

/* Qwen2 and later: cl100k's pattern with digits one at a time. */
const char shard_pattern_qwen[] =
    CONTRACTION "|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}"
    "| ?[^" WS "\\p{L}\\p{N}]++[\\r\\n]*+|[" WS "]*[\\r\\n]+" WS_TAIL;

/* Upper- and lower-case classes share Lm, Lo and M, so the letter runs
 * need backtracking and stay greedy. */
#define O200K_UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define O200K_LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"

const char shard_pattern_o200k[] =
    "[^\\r\\n\\p{L}\\p{N}]?" O200K_UPPER "*" O200K_LOWER "+"
    "(?:" CONTRACTION ")?"
    "|[^\\r\\n\\p{L}\\p{N}]?" O200K_UPPER "+" O200K_LOWER "*"
    "(?:" CONTRACTION ")?"
    "|\\p{N}{1,3}+| ?[^" WS "\\p{L}\\p{N}]++[\\r\\n/]*+"
    "|[" WS "]*[\\r\\n]+" WS_TAIL;

/*
 * Numbers that PCRE2 10.42 (Unicode 14) does not know as \p{N} but the
 * references do.  tiktoken's core (npm tiktoken 1.0.22) knows Unicode 15's
 * Kaktovik numerals; HF tokenizers' Oniguruma knows Unicode 16, which adds
 * the digits of Garay, Myanmar Extended-C, Sunuwar, Kawi, Gurung Khema,
 * Kirat Rai, Nag Mundari, Ol Onal and the outlined digits.  Found by
 * tokenizing every letter, number and mark code point of Unicode 17 in
 * four contexts with ours and the references; letters added after Unicode
 * 14 gave the same ids either way.
 */
const char shard_numbers_tiktoken[] = "\\x{1D2C0}-\\x{1D2D3}";
const char shard_numbers_hf[] =
    "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}"
    "\\x{11F50}-\\x{11F59}\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}"
    "\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}\\x{1E4F0}-\\x{1E4F9}"
    "\\x{1E5F1}-\\x{1E5FA}";

int shard_tok_compile_pattern(shard_pretok **out, const char *pattern,
                              const char *numbers, char *err)
{
    static const char pn[] = "\\p{N}";
    size_t n = strlen(pattern), extra = strlen(numbers), o = 0;
    int in_class = 0, rc;
    char *p;

    /* Each \p{N} grows by the extra ranges and at most two brackets. */
    if (!(p = malloc(n + (n / 5 + 1) * (extra + 2) + 1)))
        return SHARD_ENOMEM;
    for (size_t i = 0; i < n;) {
        if (strncmp(pattern + i, pn, 5) == 0) {
            o += (size_t)sprintf(p + o, in_class ? "%s%s" : "[%s%s]", pn,
                                 numbers);
            i += 5;
            continue;
        }
        if (pattern[i] == '\\' && i + 1 < n) {
            p[o++] = pattern[i++];
        } else if (pattern[i] == '[' && !in_class) {
            in_class = 1;
        } else if (pattern[i] == ']' && in_class &&
                   !(pattern[i - 1] == '[' ||
                     (pattern[i - 1] == '^' && pattern[i - 2] == '['))) {
            in_class = 0;
        }
        p[o++] = pattern[i++];
    }
    p[o] = '\0';
    rc = shard_pretok_new(out, p, err);
    free(p);
    if (rc == 0 && pattern == shard_pattern_cl100k)
        shard_pretok_split_ascii(*out, SHARD_ASCII_CL100K);
    if (rc == 0 && pattern == shard_pattern_qwen)
        shard_pretok_split_ascii(*out, SHARD_ASCII_QWEN);
    if (rc == 0 && pattern == shard_pattern_o200k)
        shard_pretok_split_ascii(*out, SHARD_ASCII_O200K);
    return rc;
}

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
    {"cl100k_base", NULL, shard_pattern_cl100k, specials_cl100k,
     COUNT(specials_cl100k), 0xaa5d7bf38900641aull},
    {"o200k_base", NULL, shard_pattern_o200k, specials_o200k,
     COUNT(specials_o200k), 0x72a095e82ca109d6ull},
    {"r50k_base", "gpt2", shard_pattern_gpt2, specials_gpt2,
     COUNT(specials_gpt2), 0x3cb2fbe95939bd2dull},
    {"p50k_base", NULL, shard_pattern_gpt2, specials_gpt2,
     COUNT(specials_gpt2), 0xf2d3fa62565e6e17ull},
};

/* Largest vocabulary file accepted; the published rank files are under
 * 4 MB, the largest tokenizer.json files in use about 30 MB. */
#define TOK_FILE_MAX (256u << 20)

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

int shard_tok_read_file(const char *path, const char *label, char **data,
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

    buf = malloc((size_t)n + 1 + SHARD_JSON_PADDING);
    if (!buf) {
        rc = shard_set_last_error(SHARD_ENOMEM, "%s: out of memory", label);
        goto out;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        shard_set_last_error(rc, "%s: read failed", path);
        goto out;
    }
    memset(buf + n, 0, 1 + SHARD_JSON_PADDING);
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

int shard_tok_add_special(shard_tokenizer *t, const char *text, size_t len,
                          uint32_t id)
{
    tok_added *a;
    char *copy;

    a = realloc(t->added, (t->n_added + 1) * sizeof(*a));
    if (!a)
        return SHARD_ENOMEM;
    t->added = a;
    copy = malloc(len + 1);
    if (!copy)
        return SHARD_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    t->added[t->n_added++] = (tok_added){copy, len, id};
    return 0;
}

static int tok_added_cmp(const void *pa, const void *pb)
{
    const tok_added *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->text, b->text, n);

    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

int shard_tok_finish_added(shard_tokenizer *t, const char *label)
{
    const shard_bpe *b = &t->bpe;

    t->vocab_size = b->n_ranks;
    qsort(t->added, t->n_added, sizeof(*t->added), tok_added_cmp);
    t->added_lead = -1;
    for (size_t i = 0; i < t->n_added; i++) {
        unsigned char c = (unsigned char)t->added[i].text[0];

        t->added_first[c] = 1;
        t->added_lead = i == 0 || t->added_lead == c ? c : -2;
    }
    for (size_t i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];

        /* An added token may also be in the vocabulary (GPT-2's
         * <|endoftext|>), but then as the same bytes. */
        if (a->id < b->n_ranks && b->tok_len[a->id] != 0 &&
            (b->tok_len[a->id] != a->len ||
             memcmp(b->arena + b->tok_off[a->id], a->text, a->len) != 0))
            return shard_set_last_error(SHARD_EINPUT,
                                        "%s: id %u is both a token and "
                                        "special %s", label, a->id,
                                        a->text);
        if (a->len == 0)
            return shard_set_last_error(SHARD_EINPUT,
                                        "%s: empty added token (id %u)",
                                        label, a->id);
        if (a->id + 1 > t->vocab_size)
            t->vocab_size = a->id + 1;
    }
    return 0;
}

/* Loads the rank file at `path` for the encoding `enc` into t. */
static int tok_load_tiktoken(shard_tokenizer *t, const tok_encoding *enc,
                             const char *path, const char *label)
{
    tok_parse tp = {.label = label};
    char err[SHARD_ERRMAX];
    char *data = NULL;
    size_t size = 0;
    int rc;

    rc = shard_tok_read_file(path, tp.label, &data, &size);
    if (rc != 0)
        return rc;
    t->kind = TOK_RANKS;
    t->whole_piece = 1;
    t->hash = XXH3_64bits(data, size);
    snprintf(t->name, sizeof(t->name), "%s", enc->name);

    rc = tok_parse_file(&tp, data, size);
    if (rc == 0)
        rc = tok_build(t, &tp);
    if (rc == 0 && t->hash != enc->pin)
        rc = shard_set_last_error(SHARD_EINPUT,
                                  "%s: not the published %s rank file "
                                  "(xxh3 %016llx)",
                                  tp.label, enc->name,
                                  (unsigned long long)t->hash);
    for (size_t i = 0; rc == 0 && i < enc->n_specials; i++)
        rc = shard_tok_add_special(t, enc->specials[i].text,
                                   strlen(enc->specials[i].text),
                                   enc->specials[i].id);
    if (rc == 0)
        rc = shard_tok_finish_added(t, tp.label);
    if (rc == 0 && (rc = shard_tok_compile_pattern(&t->split, enc->pattern,
                                                   shard_numbers_tiktoken,
                                                   err)))
        shard_set_last_error(rc, "%s: %s", enc->name, err);

    free(tp.e);
    free(tp.line);
    free(tp.arena);
    free(data);
    return rc;
}

static int tok_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Opens a spec that is a path: a rank file, a tokenizer.json or a
 * directory holding one. */
static int tok_open_path(shard_tokenizer *t, const char *spec)
{
    const char *slash = strrchr(spec, '/');
    const char *base = slash ? slash + 1 : spec;
    char path[4200];
    struct stat st;

    snprintf(t->name, sizeof(t->name), "%s", spec);
    if (tok_ends_with(base, ".tiktoken")) {
        const tok_encoding *enc =
            tok_find(base, strlen(base) - strlen(".tiktoken"));

        if (!enc)
            return shard_set_last_error(SHARD_ENOTFOUND,
                                        "%s: file name names no known "
                                        "encoding", spec);
        return tok_load_tiktoken(t, enc, spec, base);
    }
    if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) {
        if ((size_t)snprintf(path, sizeof(path), "%s/tokenizer.json",
                             spec) >= sizeof(path))
            return shard_set_last_error(SHARD_EINVAL, "%s: path too long",
                                        spec);
        return shard_tok_load_hf(t, path, spec);
    }
    return shard_tok_load_hf(t, spec, base);
}

/* Opens a spec that is a name, from the cache directory. */
static int tok_open_name(shard_tokenizer *t, const char *spec)
{
    const tok_encoding *enc = tok_find(spec, strlen(spec));
    char dir[4096], path[4200];
    int rc;

    if (shard_tokenizer_cache_dir(dir, sizeof(dir)) != 0)
        return shard_set_last_error(SHARD_ENOTFOUND,
                                    "%s: no cache directory (set "
                                    "SHARD_CACHE_DIR or HOME)", spec);
    if ((size_t)snprintf(path, sizeof(path), "%s/tokenizers/%s.%s", dir,
                         enc ? enc->name : spec,
                         enc ? "tiktoken" : "json") >= sizeof(path))
        return shard_set_last_error(SHARD_EINVAL, "%s: path too long", dir);

    rc = enc ? tok_load_tiktoken(t, enc, path, enc->name)
             : shard_tok_load_hf(t, path, spec);
    if (rc == SHARD_ENOTFOUND)
        shard_set_last_error(rc, "unknown tokenizer '%s': %s not found "
                                 "(known names: cl100k_base, o200k_base, "
                                 "r50k_base, gpt2, p50k_base, and llama3, "
                                 "qwen3, gpt4o once fetched; fetch with "
                                 "cmd/fetch-vocab.sh %s, or give a path)",
                             spec, path, enc ? enc->name : spec);
    if (rc == 0)
        snprintf(t->name, sizeof(t->name), "%s", enc ? enc->name : spec);
    return rc;
}

int shard_tokenizer_open(shard_tokenizer **out, const char *spec)
{
    shard_tokenizer *t;
    int rc;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return shard_set_last_error(SHARD_ENOMEM, "%s: out of memory",
                                    spec);
    if (strchr(spec, '/') || tok_ends_with(spec, ".tiktoken") ||
        tok_ends_with(spec, ".json"))
        rc = tok_open_path(t, spec);
    else
        rc = tok_open_name(t, spec);
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
    shard_merges_free(&t->merges);
    shard_pretok_free(t->split);
    for (size_t i = 0; i < t->n_added; i++)
        free(t->added[i].text);
    free(t->added);
    free(t);
}

const char *shard_tokenizer_name(const shard_tokenizer *t)
{
    return t->name;
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
    size_t n = strlen(text);

    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->added[i].text, text, n) == 0)
            return t->added[i].id;
    return -1;
}

/*
 * The longest added token that starts at s[0..n), or NULL.  Added tokens
 * are sorted by text, so every one that could match lies between the
 * first that starts with s[0] and the first that sorts after s[0].
 */
static const tok_added *tok_added_at(const shard_tokenizer *t,
                                     const char *s, size_t n)
{
    const tok_added *best = NULL;
    size_t lo = 0, hi = t->n_added;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if ((unsigned char)t->added[mid].text[0] < (unsigned char)s[0])
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < t->n_added && t->added[i].text[0] == s[0];
         i++) {
        const tok_added *a = &t->added[i];

        if (a->len <= n && memcmp(a->text, s, a->len) == 0 &&
            (!best || a->len > best->len))
            best = a;
    }
    return best;
}

/* The next added token in s[0..n), at or after the start; *at is its
 * offset.  NULL when there is none. */
static const tok_added *tok_next_added(const shard_tokenizer *t,
                                       const char *s, size_t n, size_t *at)
{
    size_t i = 0;

    while (t->n_added > 0 && i < n) {
        const tok_added *a;

        /* Most vocabularies' added tokens all start with '<'. */
        if (t->added_lead >= 0) {
            const char *p = memchr(s + i, t->added_lead, n - i);

            if (!p)
                return NULL;
            i = (size_t)(p - s);
        } else if (!t->added_first[(unsigned char)s[i]]) {
            i++;
            continue;
        }
        if ((a = tok_added_at(t, s + i, n - i)) != NULL) {
            *at = i;
            return a;
        }
        i++;
    }
    return NULL;
}

size_t shard_tokenizer_count_added(const shard_tokenizer *t,
                                   const char *text, size_t len)
{
    const tok_added *a;
    size_t count = 0, at;

    while ((a = tok_next_added(t, text, len, &at)) != NULL) {
        count++;
        text += at + a->len;
        len -= at + a->len;
    }
    return count;
}

/* Makes room for `more` ids after out->len.  Returns 0 or SHARD_ENOMEM. */
static int tok_reserve(shard_tokens *out, size_t more)
{
    return shard_grow((void **)&out->ids, &out->cap, out->len + more,
                      sizeof(*out->ids))
               ? SHARD_ENOMEM
               : 0;
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
    size_t a[TOK_AHEAD], b[TOK_AHEAD];
    int n = shard_pretok_scan_many(scan, a, b, TOK_AHEAD);

    *bytes = 0;
    for (int i = 0; i < n; i++) {
        ahead[i].start = a[i];
        ahead[i].len = b[i] - a[i];
        ahead[i].hash = shard_bpe_prefetch(&t->bpe, s + a[i], b[i] - a[i]);
        *bytes += b[i] - a[i];
    }
    return n;
}

/*
 * Merges one piece by listed merges (a shard_bpe_merge_fn over the
 * tokenizer); see merges.h.  A long piece is cut where no merge can
 * cross (shard_bpe_next_cut) and each chunk is merged alone, byte by
 * byte even when the chunk is a token, as the whole piece would be.
 */
static long tok_merge_listed(const void *ctx, const unsigned char *s,
                             size_t n, uint32_t *out)
{
    const shard_tokenizer *t = ctx;
    size_t start = 0, got = 0;

    while (start < n) {
        size_t end = n > SHARD_MERGES_SHORT
                         ? shard_bpe_next_cut(&t->bpe, s, n, start)
                         : n;
        long k;

        for (size_t i = start; i < end; i++)
            out[got + i - start] = t->bpe.byte_rank[s[i]];
        k = shard_merges_apply(&t->merges, out + got, end - start);
        if (k < 0)
            return -1;
        got += (size_t)k;
        start = end;
    }
    return (long)got;
}

/*
 * Encodes one piece of a tokenizer.json model: the whole piece when it
 * is a token and the model says so (ignore_merges), else its listed
 * merges through the piece cache; `hash` is the piece's from
 * shard_bpe_prefetch().
 */
static long tok_merge_piece(const shard_tokenizer *t, const unsigned char *s,
                            size_t n, uint64_t hash, uint32_t *out)
{
    uint32_t id;

    if (t->whole_piece &&
        (id = shard_bpe_rank_hashed(&t->bpe, s, n, hash)) !=
            SHARD_BPE_NONE) {
        out[0] = id;
        return 1;
    }
    return shard_bpe_cached(&t->bpe, s, n, hash, tok_merge_listed, t, out);
}

/* Encodes valid (and normalised) UTF-8 text[0..len), piece by piece. */
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
            const unsigned char *p = s + ahead[i].start;
            long got = t->kind == TOK_RANKS
                           ? shard_bpe_encode(&t->bpe, p, ahead[i].len,
                                              ahead[i].hash,
                                              out->ids + out->len)
                           : tok_merge_piece(t, p, ahead[i].len,
                                             ahead[i].hash,
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

/*
 * Code points that NFC can change or combine with what precedes them: a
 * non-zero combining class, a character NFC maps to something else alone
 * (singletons, exclusions), and the last character of any canonical
 * decomposition (it may compose with the one before), Hangul vowel and
 * trailing jamo included.  A text
 * without any of them is its own NFC, which spares most non-Latin text
 * the normaliser.  Nothing composes above U+2FFFF.
 */
#define TOK_NFC_SPAN 0x30000
static uint64_t tok_nfc_unstable[TOK_NFC_SPAN / 64];
static pthread_once_t tok_nfc_once = PTHREAD_ONCE_INIT;

static void tok_nfc_mark(utf8proc_int32_t cp)
{
    if (cp >= 0 && cp < TOK_NFC_SPAN)
        tok_nfc_unstable[cp / 64] |= 1ull << (cp % 64);
}

/* Whether NFC leaves the lone character cp as it is. */
static int tok_nfc_keeps(utf8proc_int32_t cp)
{
    utf8proc_uint8_t one[4], *out = NULL;
    utf8proc_ssize_t n = utf8proc_encode_char(cp, one), k;
    int same;

    k = utf8proc_map(one, n, &out, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    same = k == n && memcmp(out, one, (size_t)n) == 0;
    free(out);
    return same;
}

static void tok_nfc_init(void)
{
    utf8proc_int32_t d[8];

    for (utf8proc_int32_t cp = 0x80; cp < TOK_NFC_SPAN; cp++) {
        utf8proc_ssize_t n;

        if (utf8proc_get_property(cp)->combining_class != 0)
            tok_nfc_mark(cp);
        n = utf8proc_decompose_char(cp, d, 8, UTF8PROC_DECOMPOSE, NULL);
        if (n < 1 || (n == 1 && d[0] == cp))
            continue;
        tok_nfc_mark(d[n - 1]);
        if (!tok_nfc_keeps(cp))
            tok_nfc_mark(cp);
    }
    for (utf8proc_int32_t cp = 0x1160; cp < 0x1200; cp++)
        tok_nfc_mark(cp);
}

/* Whether NFC leaves valid UTF-8 s[0..n) as it is; may say no in doubt. */
static int tok_nfc_stable(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k;

        if (p[i] < 0x80) {
            i++;
            continue;
        }
        k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k < 1)
            return 0;
        if (cp < TOK_NFC_SPAN &&
            (tok_nfc_unstable[cp / 64] >> (cp % 64) & 1))
            return 0;
        i += (size_t)k;
    }
    return 1;
}

/*
 * Encodes text[0..len) with no regard to added tokens: repairs invalid
 * UTF-8, applies the normaliser and the prefix space, then splits and
 * merges.  On failure `out` keeps what it held.
 */
static int tok_encode_text(const shard_tokenizer *t, const char *text,
                           size_t len, shard_tokens *out)
{
    size_t old_len = out->len, old_replaced = out->replaced;
    char *fixed = NULL, *spaced = NULL;
    utf8proc_uint8_t *nfc = NULL;
    int rc = SHARD_ENOMEM;

    if (len == 0)
        return 0;
    if (shard_utf8_valid(text, len) < len) {
        fixed = len <= SIZE_MAX / 3 ? malloc(3 * len) : NULL;
        if (!fixed)
            goto out;
        len = shard_utf8_repair(fixed, text, len, &out->replaced);
        text = fixed;
    }
    if (t->nfc && (pthread_once(&tok_nfc_once, tok_nfc_init),
                   !tok_nfc_stable(text, len))) {
        utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text,
                                          (utf8proc_ssize_t)len, &nfc,
                                          UTF8PROC_STABLE |
                                              UTF8PROC_COMPOSE);

        if (n < 0)
            goto out;
        text = (const char *)nfc;
        len = (size_t)n;
    }
    if (t->prefix_space && text[0] != ' ') {
        if (!(spaced = malloc(len + 1)))
            goto out;
        spaced[0] = ' ';
        memcpy(spaced + 1, text, len);
        text = spaced;
        len++;
    }

    rc = tok_encode_valid(t, text, len, out);
out:
    if (rc != 0) {
        out->len = old_len;
        out->replaced = old_replaced;
    }
    free(fixed);
    free(nfc);
    free(spaced);
    return rc;
}

int shard_tokenizer_encode(const shard_tokenizer *t, const char *text,
                           size_t len, shard_tokens *out)
{
    return tok_encode_text(t, text, len, out);
}

int shard_tokenizer_encode_added(const shard_tokenizer *t, const char *text,
                                 size_t len, shard_tokens *out)
{
    size_t old_len = out->len, old_replaced = out->replaced, at;
    const tok_added *a;
    int rc = 0;

    while (rc == 0 && (a = tok_next_added(t, text, len, &at)) != NULL) {
        rc = tok_encode_text(t, text, at, out);
        if (rc == 0 && (rc = tok_reserve(out, 1)) == 0)
            out->ids[out->len++] = a->id;
        text += at + a->len;
        len -= at + a->len;
    }
    if (rc == 0)
        rc = tok_encode_text(t, text, len, out);
    if (rc != 0) {
        out->len = old_len;
        out->replaced = old_replaced;
    }
    return rc;
}

/* Bytes of one id: a token's bytes or an added token's text; NULL if
 * none. */
static const void *tok_bytes(const shard_tokenizer *t, uint32_t id,
                             size_t *n)
{
    const shard_bpe *b = &t->bpe;

    if (id < b->n_ranks && b->tok_len[id] != 0) {
        *n = b->tok_len[id];
        return b->arena + b->tok_off[id];
    }
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].id == id) {
            *n = t->added[i].len;
            return t->added[i].text;
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
        if (shard_grow((void **)buf, cap, *len + k + 1, 1))
            return SHARD_ENOMEM;
        memcpy(*buf + *len, src, k);
        *len += k;
    }
    return 0;
}
