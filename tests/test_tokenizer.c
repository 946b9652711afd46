/*
 * test_tokenizer.c - the tokenizer against known ids, round trips, error
 * paths, and token-for-token against tiktoken's Rust core (the npm package
 * tiktoken, run by tests/tokenizer_ref.mjs).
 *
 * Needs the rank files in the cache (make vocab), the reference package
 * (make testdeps), node, and ../shared/data (or $SHARED_DATA).  Run from
 * the repository root.  A missing piece fails the case that needs it, with
 * the reason.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "bpe.h"
#include "pretok.h"
#include "shard_tokenizer.h"
#include "test.h"
#include "tokenizer_internal.h"

static const char *const all_encodings[] = {"cl100k_base", "o200k_base",
                                            "r50k_base", "p50k_base"};

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v && *v ? v : dflt;
}

static shard_tokenizer *open_or_fail(const char *spec)
{
    shard_tokenizer *t = NULL;
    int rc = shard_tokenizer_open(&t, spec);

    if (rc != 0)
        FAILF("open %s: %s (%s); run make vocab", spec, shard_last_error(),
              shard_strerror(rc));
    return t;
}

/* Encodes a NUL-terminated string into a fresh list. */
static shard_tokens encode_str(shard_tokenizer *t, const char *s)
{
    shard_tokens out = {0};

    if (shard_tokenizer_encode(t, s, strlen(s), &out) != 0)
        FAILF("encode \"%s\" failed", s);
    return out;
}

static void check_ids(shard_tokenizer *t, const char *s,
                      const uint32_t *want, size_t n)
{
    shard_tokens got = encode_str(t, s);
    int same = got.len == n;

    for (size_t i = 0; same && i < n; i++)
        same = got.ids[i] == want[i];
    shard_tokens_free(&got);
    if (!same)
        FAILF("%s: \"%s\" does not give the expected ids",
              shard_tokenizer_name(t), s);
}

TEST(known_ids)
{
    static const uint32_t cl[] = {15339, 1917}, o2[] = {24912, 2375},
                          g2[] = {31373, 995};
    static const uint32_t eot_cl[] = {27, 91, 8862, 728, 428, 91, 29};
    shard_tokenizer *t = open_or_fail("cl100k_base");

    check_ids(t, "hello world", cl, 2);
    check_ids(t, "<|endoftext|>", eot_cl, 7);
    shard_tokenizer_close(t);

    t = open_or_fail("o200k_base");
    check_ids(t, "hello world", o2, 2);
    shard_tokenizer_close(t);

    t = open_or_fail("gpt2");
    check_ids(t, "hello world", g2, 2);
    shard_tokenizer_close(t);
}

TEST(metadata)
{
    static const uint32_t sizes[] = {100277, 200019, 50257, 50281};
    shard_tokenizer *t;

    for (int i = 0; i < 4; i++) {
        t = open_or_fail(all_encodings[i]);
        CHECK_EQ_STR(shard_tokenizer_name(t), all_encodings[i]);
        CHECK_EQ_INT(shard_tokenizer_vocab_size(t), sizes[i]);
        CHECK(shard_tokenizer_hash(t) != 0);
        shard_tokenizer_close(t);
    }

    t = open_or_fail("gpt2");
    CHECK_EQ_STR(shard_tokenizer_name(t), "r50k_base");
    CHECK_EQ_INT(shard_tokenizer_special(t, "<|endoftext|>"), 50256);
    shard_tokenizer_close(t);

    t = open_or_fail("cl100k_base");
    CHECK_EQ_INT(shard_tokenizer_hash(t), 0xaa5d7bf38900641aull);
    CHECK_EQ_INT(shard_tokenizer_special(t, "<|endoftext|>"), 100257);
    CHECK_EQ_INT(shard_tokenizer_special(t, "<|endofprompt|>"), 100276);
    CHECK_EQ_INT(shard_tokenizer_special(t, "<|im_start|>"), -1);
    CHECK_EQ_INT(shard_tokenizer_special(t, "hello"), -1);
    shard_tokenizer_close(t);

    t = open_or_fail("o200k_base");
    CHECK_EQ_INT(shard_tokenizer_special(t, "<|endoftext|>"), 199999);
    CHECK_EQ_INT(shard_tokenizer_special(t, "<|endofprompt|>"), 200018);
    shard_tokenizer_close(t);
}

TEST(open_by_path)
{
    char dir[1024], path[1200];
    shard_tokenizer *a = open_or_fail("cl100k_base"), *b;

    CHECK_EQ_INT(shard_tokenizer_cache_dir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/tokenizers/cl100k_base.tiktoken", dir);
    b = open_or_fail(path);
    CHECK_EQ_STR(shard_tokenizer_name(b), "cl100k_base");
    CHECK_EQ_INT(shard_tokenizer_hash(b), shard_tokenizer_hash(a));
    shard_tokenizer_close(a);
    shard_tokenizer_close(b);
}

/* Special-token strings in the text are ordinary text (encode_ordinary),
 * while the special ids still decode to their strings. */
TEST(specials_are_text)
{
    const char *s = "a<|endoftext|>b<|fim_prefix|><|endofprompt|>";
    shard_tokenizer *t = open_or_fail("cl100k_base");
    shard_tokens got = encode_str(t, s);
    uint32_t ids[2] = {100257, 100276};
    char *buf = NULL;
    size_t len = 0, cap = 0;

    for (size_t i = 0; i < got.len; i++)
        CHECK(got.ids[i] < 100256);
    CHECK_EQ_INT(shard_tokenizer_decode(t, got.ids, got.len, &buf, &len,
                                        &cap), 0);
    CHECK(len == strlen(s) && memcmp(buf, s, len) == 0);

    len = 0;
    CHECK_EQ_INT(shard_tokenizer_decode(t, ids, 2, &buf, &len, &cap), 0);
    CHECK(len == 28 && memcmp(buf, "<|endoftext|><|endofprompt|>", 28) == 0);
    free(buf);
    shard_tokens_free(&got);
    shard_tokenizer_close(t);
}

TEST(decode_unknown_id)
{
    shard_tokenizer *t = open_or_fail("cl100k_base");
    uint32_t ids[3] = {15339, 100256, 1917};
    char *buf = NULL;
    size_t len = 0, cap = 0;

    CHECK_EQ_INT(shard_tokenizer_decode(t, ids, 3, &buf, &len, &cap),
                 SHARD_EINVAL);
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0);

    ids[1] = 100277;
    len = 0;
    CHECK_EQ_INT(shard_tokenizer_decode(t, ids, 3, &buf, &len, &cap),
                 SHARD_EINVAL);
    free(buf);
    shard_tokenizer_close(t);
}

TEST(encode_appends)
{
    shard_tokenizer *t = open_or_fail("cl100k_base");
    shard_tokens out = {0};

    CHECK_EQ_INT(shard_tokenizer_encode(t, "hello", 5, &out), 0);
    CHECK_EQ_INT(shard_tokenizer_encode(t, " world!", 6, &out), 0);
    CHECK_EQ_INT(shard_tokenizer_encode(t, "", 0, &out), 0);
    CHECK_EQ_INT(out.len, 2);
    CHECK_EQ_INT(out.ids[0], 15339);
    CHECK_EQ_INT(out.ids[1], 1917);
    CHECK_EQ_INT(out.replaced, 0);
    shard_tokens_free(&out);
    CHECK(out.ids == NULL && out.len == 0 && out.cap == 0);
    shard_tokenizer_close(t);
}

/* A random code point: mostly ASCII, then the BMP outside surrogates,
 * then the supplementary planes. */
static uint32_t random_code_point(uint64_t *state)
{
    uint32_t r, cp;

    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    r = (uint32_t)(*state >> 33);
    switch (r % 4) {
    case 0:
    case 1:
        return 0x20 + r / 4 % 0x5f;
    case 2:
        cp = r / 4 % 0xfff0;
        return cp >= 0xd800 && cp < 0xe000 ? cp - 0x800 : cp;
    default:
        return 0x10000 + r / 4 % 0x100000;
    }
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* decode(encode(x)) == x for any valid UTF-8 x. */
static void check_round_trip(shard_tokenizer *t, const char *s, size_t n)
{
    shard_tokens got = {0};
    char *buf = NULL;
    size_t len = 0, cap = 0;

    CHECK_EQ_INT(shard_tokenizer_encode(t, s, n, &got), 0);
    CHECK_EQ_INT(got.replaced, 0);
    CHECK_EQ_INT(shard_tokenizer_decode(t, got.ids, got.len, &buf, &len,
                                        &cap), 0);
    if (len != n || (n > 0 && memcmp(buf, s, n) != 0))
        FAILF("%s: round trip of a %zu-byte text differs",
              shard_tokenizer_name(t), n);
    free(buf);
    shard_tokens_free(&got);
}

TEST(round_trip_random_text)
{
    static char text[4096];
    uint64_t state = 12345;

    for (int e = 0; e < 4; e++) {
        shard_tokenizer *t = open_or_fail(all_encodings[e]);

        for (int k = 0; k < 300; k++) {
            size_t n = 0, want = (size_t)(k * 7 % 1000);

            while (n + 4 < want)
                n += put_utf8(text + n, random_code_point(&state));
            check_round_trip(t, text, n);
        }
        shard_tokenizer_close(t);
    }
}

/* Encodes bytes s[0..n), checks the replacement count and that the ids
 * decode to `want`. */
static void check_repair(shard_tokenizer *t, const char *s, size_t n,
                         size_t replaced, const char *want)
{
    shard_tokens got = {0};
    char *buf = NULL;
    size_t len = 0, cap = 0;

    CHECK_EQ_INT(shard_tokenizer_encode(t, s, n, &got), 0);
    CHECK_EQ_INT(shard_tokenizer_decode(t, got.ids, got.len, &buf, &len,
                                        &cap), 0);
    if (got.replaced != replaced || len != strlen(want) ||
        memcmp(buf, want, len) != 0)
        FAILF("repair of \"%.*s\": %zu replacements, \"%.*s\"", (int)n, s,
              got.replaced, (int)len, buf);
    free(buf);
    shard_tokens_free(&got);
}

#define FFFD "\xef\xbf\xbd"

TEST(invalid_utf8_replaced)
{
    shard_tokenizer *t = open_or_fail("cl100k_base");
    shard_tokens acc = {0};

    check_repair(t, "\xff", 1, 1, FFFD);
    check_repair(t, "a\xe2\x82" "b", 4, 1, "a" FFFD "b");
    check_repair(t, "\xe0\x80\x80", 3, 3, FFFD FFFD FFFD);
    check_repair(t, "\xed\xa0\x80", 3, 3, FFFD FFFD FFFD);
    check_repair(t, "\xf4\x90\x80\x80", 4, 4, FFFD FFFD FFFD FFFD);
    check_repair(t, "\xc0\xaf", 2, 2, FFFD FFFD);
    check_repair(t, "a\xf0\x9f\x98", 4, 1, "a" FFFD);
    check_repair(t, "\xf0\x9f\x98\x80\xff", 5, 1, "\xf0\x9f\x98\x80" FFFD);
    check_repair(t, "x\xc2", 2, 1, "x" FFFD);
    check_repair(t, "ok \xe2\x82\xac", 6, 0, "ok \xe2\x82\xac");

    /* Counts add up across calls on one list. */
    CHECK_EQ_INT(shard_tokenizer_encode(t, "\xff\xfe", 2, &acc), 0);
    CHECK_EQ_INT(shard_tokenizer_encode(t, "a\x80", 2, &acc), 0);
    CHECK_EQ_INT(acc.replaced, 3);
    shard_tokens_free(&acc);
    shard_tokenizer_close(t);
}

/* Expects open(spec) to fail with `code` and a message containing
 * `part`. */
static void check_refused(const char *spec, int code, const char *part)
{
    shard_tokenizer *t = (shard_tokenizer *)&t;
    int rc = shard_tokenizer_open(&t, spec);

    if (rc == 0)
        FAILF("%s: opened, expected a failure", spec);
    CHECK(t == NULL);
    if (rc != code || !strstr(shard_last_error(), part))
        FAILF("%s: got %d \"%s\", expected %d with \"%s\"", spec, rc,
              shard_last_error(), code, part);
}

TEST(unknown_encoding_refused)
{
    check_refused("cl200k_base", SHARD_ENOTFOUND,
                  "unknown tokenizer 'cl200k_base'");
    check_refused("", SHARD_ENOTFOUND, "unknown tokenizer ''");
    check_refused("some/dir/foo.tiktoken", SHARD_ENOTFOUND,
                  "names no known encoding");
    check_refused("/nonexistent/cl100k_base.tiktoken", SHARD_ENOTFOUND,
                  "/nonexistent/cl100k_base.tiktoken");
}

/* Writes `text` to <dir>/cl100k_base.tiktoken and expects it refused. */
static void check_bad_file(const char *dir, const char *text, size_t n,
                           const char *part)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/cl100k_base.tiktoken", dir);
    f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0)
        FAILF("cannot write %.300s: %s", path, strerror(errno));
    check_refused(path, SHARD_EINPUT, part);
}

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the 256 single bytes with ranks 0..255 (skipping byte `skip`,
 * -1 for none) as rank-file lines into buf. */
static size_t single_byte_lines(char *buf, int skip)
{
    size_t n = 0;

    for (int b = 0; b < 256; b++) {
        if (b == skip)
            continue;
        n += (size_t)sprintf(buf + n, "%c%c== %d\n", b64_digits[b >> 2],
                             b64_digits[(b & 3) << 4], b);
    }
    return n;
}

TEST(bad_rank_file_refused)
{
    const char *dir = env_or("BUILD", "build");
    char tmp[512], lines[4096];
    size_t n;

    snprintf(tmp, sizeof(tmp), "%s/test_tokenizer_tmp", dir);
    mkdir(tmp, 0777);

    check_bad_file(tmp, "IQ== 0\n!!!! 1\n", 14,
                   "cl100k_base.tiktoken:2: bad base64");
    check_bad_file(tmp, "IQ== 0\nIg== x\n", 14,
                   "cl100k_base.tiktoken:2: bad rank 'x'");
    check_bad_file(tmp, "IQ== 0\n\nIg 1\n", 13,
                   "cl100k_base.tiktoken:3: bad base64");
    check_bad_file(tmp, "IQ==\n", 5, "cl100k_base.tiktoken:1: expected");
    check_bad_file(tmp, "IQ== 0\nIg== 0\n", 14,
                   "cl100k_base.tiktoken:2: duplicate rank or token");
    check_bad_file(tmp, "IQ== 0\nIQ== 1\n", 14,
                   "cl100k_base.tiktoken:2: duplicate rank or token");
    check_bad_file(tmp, "IQ== 99999999\n", 14,
                   "cl100k_base.tiktoken:1: rank 99999999 too large");
    check_bad_file(tmp, "", 0, "a single byte has no rank");

    n = single_byte_lines(lines, 'a');
    check_bad_file(tmp, lines, n, "a single byte has no rank");
    n = single_byte_lines(lines, -1);
    check_bad_file(tmp, lines, n, "not the published cl100k_base");
}

/* Runs fn with one environment variable set (or unset for NULL). */
static int with_env(const char *name, const char *value, char *buf,
                    size_t cap)
{
    char *old = getenv(name) ? strdup(getenv(name)) : NULL;
    int rc;

    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    rc = shard_tokenizer_cache_dir(buf, cap);
    if (old)
        setenv(name, old, 1);
    else
        unsetenv(name);
    free(old);
    return rc;
}

TEST(cache_dir_rule)
{
    char buf[256], *xdg, *cache;

    xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : 0;
    cache = getenv("SHARD_CACHE_DIR") ? strdup(getenv("SHARD_CACHE_DIR"))
                                      : NULL;
    unsetenv("XDG_CACHE_HOME");
    unsetenv("SHARD_CACHE_DIR");

    CHECK_EQ_INT(with_env("HOME", "/h", buf, sizeof(buf)), 0);
    CHECK_EQ_STR(buf, "/h/.cache/shard");
    setenv("XDG_CACHE_HOME", "/x", 1);
    CHECK_EQ_INT(with_env("HOME", "/h", buf, sizeof(buf)), 0);
    CHECK_EQ_STR(buf, "/x/shard");
    CHECK_EQ_INT(with_env("SHARD_CACHE_DIR", "/s", buf, sizeof(buf)), 0);
    CHECK_EQ_STR(buf, "/s");
    CHECK_EQ_INT(with_env("SHARD_CACHE_DIR", "/long/dir", buf, 5),
                 SHARD_EINVAL);

    unsetenv("XDG_CACHE_HOME");
    if (xdg)
        setenv("XDG_CACHE_HOME", xdg, 1);
    if (cache)
        setenv("SHARD_CACHE_DIR", cache, 1);
    free(xdg);
    free(cache);
}

TEST(missing_vocab_refused)
{
    char *old = getenv("SHARD_CACHE_DIR") ? strdup(getenv("SHARD_CACHE_DIR"))
                                          : NULL;

    setenv("SHARD_CACHE_DIR", "/nonexistent-shard-cache", 1);
    check_refused("o200k_base", SHARD_ENOTFOUND,
                  "fetch-vocab.sh o200k_base");
    if (old)
        setenv("SHARD_CACHE_DIR", old, 1);
    else
        unsetenv("SHARD_CACHE_DIR");
    free(old);
}

/* Compares the two merge strategies on one piece. */
static void check_strategies(const shard_bpe *b, const unsigned char *p,
                             size_t n, uint32_t *x, uint32_t *y)
{
    long a = shard_bpe_merge_small(b, p, n, x);
    long c = shard_bpe_merge_large(b, p, n, y);

    CHECK(a > 0);
    if (a != c || memcmp(x, y, (size_t)a * sizeof(*x)) != 0)
        FAILF("heap merge differs from array merge on a %zu-byte piece",
              n);
}

/* The heap merge must pick exactly the merges of the array loop. */
TEST(heap_merge_equals_array_merge)
{
    static unsigned char p[3000];
    static uint32_t x[3000], y[3000];
    static const char *const alphabets[] = {
        "abcdefghijklmnopqrstuvwxyz", "ae", " ", "0123456789+/ABCDEFabc",
        "a\xcc\x81 \xe4\xb8\xad"};
    uint64_t state = 99;

    for (int e = 0; e < 4; e++) {
        shard_tokenizer *t = open_or_fail(all_encodings[e]);
        const shard_bpe *b = shard_tokenizer_ranks(t);

        for (int k = 0; k < 200; k++) {
            const char *alpha = alphabets[k % 6 == 5 ? 0 : k % 6];
            size_t n = 1 + (size_t)(k * 37 % 2999), m = strlen(alpha);

            for (size_t i = 0; i < n; i++) {
                state = state * 6364136223846793005ull + 1;
                p[i] = k % 6 == 5 ? (unsigned char)(state >> 56)
                                  : (unsigned char)alpha[(state >> 33) % m];
            }
            check_strategies(b, p, n, x, y);
        }
        shard_tokenizer_close(t);
    }
}

/* ---- long pieces: every merge strategy gives the same ranks ---------- */

/* Adversarial shapes of one long piece, built deterministically. */
static const char *const long_shapes[] = {
    "letter", "letters", "base64", "punct", "space", "cjk", "digits",
    "bytes", "period3", "words"};

/* Fills p[0..n) with the named shape (whole characters; the tail of a
 * multi-byte shape is padded with 'x'). */
static void fill_shape(unsigned char *p, size_t n, int shape, uint64_t seed)
{
    static const char *const words[] = {"the", "quick", "brown", "fox",
                                        "jumps", "over", "lazy", "dog"};
    uint64_t state = seed;
    size_t i = 0;

    while (i < n) {
        uint32_t r;

        state = state * 6364136223846793005ull + 1442695040888963407ull;
        r = (uint32_t)(state >> 33);
        switch (shape) {
        case 0: p[i++] = 'a'; break;
        case 1: p[i++] = (unsigned char)('a' + r % 26); break;
        case 2: p[i++] = (unsigned char)b64_digits[r % 64]; break;
        case 3: p[i++] = '!'; break;
        case 4: p[i++] = ' '; break;
        case 5:
            if (n - i >= 3)
                i += put_utf8((char *)p + i, 0x4e00 + r % 0x5200);
            else
                p[i++] = 'x';
            break;
        case 6: p[i++] = (unsigned char)('0' + r % 10); break;
        case 7: p[i++] = (unsigned char)(r >> 8); break;
        case 8: p[i] = (unsigned char)"xyz"[i % 3]; i++; break;
        default: {
            const char *w = words[r % 8];

            for (size_t k = 0; w[k] && i < n; k++)
                p[i++] = (unsigned char)w[k];
        }
        }
    }
}

/* Runs two strategies on p[0..n) and fails when they differ. */
static void check_same_ranks(const shard_bpe *b, const unsigned char *p,
                             size_t n, const char *what, long a, long c,
                             const uint32_t *x, const uint32_t *y)
{
    if (a <= 0 || c <= 0)
        FAILF("%s: a strategy failed on a %zu-byte piece (%ld, %ld)", what,
              n, a, c);
    if (a != c || memcmp(x, y, (size_t)a * sizeof(*x)) != 0)
        FAILF("%s: ranks differ on a %zu-byte piece", what, n);
}

/* A piece and three rank arrays of `cap` entries each. */
typedef struct {
    unsigned char *p;
    uint32_t *x, *y, *z;
} long_work;

static long_work long_work_new(size_t cap)
{
    long_work w = {malloc(cap), malloc(cap * 4), malloc(cap * 4),
                   malloc(cap * 4)};

    CHECK(w.p && w.x && w.y && w.z);
    return w;
}

static void long_work_free(long_work *w)
{
    free(w->p);
    free(w->x);
    free(w->y);
    free(w->z);
}

/*
 * For each of the first `encodings` encodings and each shape, runs the
 * oracle (the array loop, or the heap when `heap` is set) and checks that
 * merge_large and merge_queue give its ranks.  Pieces are 2-12 KB for the
 * array loop, which is quadratic; 256 KB (1 MB for the first two shapes)
 * for the heap, which is O(n log n) and keeps its candidates apart from
 * the cuts and the rank queue.
 */
static void check_long_strategies(int encodings, int heap)
{
    size_t cap = heap ? 1u << 20 : 12000;
    long_work w = long_work_new(cap);

    for (int e = 0; e < encodings; e++) {
        shard_tokenizer *t = open_or_fail(all_encodings[e]);
        const shard_bpe *b = shard_tokenizer_ranks(t);

        for (int s = 0; s < 10; s++) {
            size_t n = !heap ? 2100 + (size_t)(s * 997 + e * 3001) % 9900
                       : s < 2 ? cap : (256u << 10) - (size_t)s;
            long a, q;

            fill_shape(w.p, n, s, (uint64_t)(5 + s + 10 * e + 70 * !heap));
            a = heap ? shard_bpe_merge_heap(b, w.p, n, w.x)
                     : shard_bpe_merge_small(b, w.p, n, w.x);
            check_same_ranks(b, w.p, n, long_shapes[s], a,
                             shard_bpe_merge_large(b, w.p, n, w.y), w.x,
                             w.y);
            q = shard_bpe_merge_queue(b, w.p, n, w.z);
            check_same_ranks(b, w.p, n, long_shapes[s], a, q, w.x, w.z);
        }
        shard_tokenizer_close(t);
    }
    long_work_free(&w);
}

TEST(long_piece_strategies_equal_array_merge)
{
    check_long_strategies(3, 0);
}

TEST(long_piece_strategies_equal_heap_merge)
{
    check_long_strategies(4, 1);
}

/* Every cut shard_bpe_next_cut() finds is crossed by no token at all:
 * checked by looking up every substring across it. */
TEST(cuts_are_crossed_by_no_token)
{
    static unsigned char p[3000];
    size_t cuts = 0;

    for (int e = 0; e < 3; e++) {
        shard_tokenizer *t = open_or_fail(all_encodings[e]);
        const shard_bpe *b = shard_tokenizer_ranks(t);

        for (int s = 0; s < 10; s++) {
            size_t n = sizeof(p), c = 0;

            fill_shape(p, n, s, (uint64_t)(300 + s + 10 * e));
            while ((c = shard_bpe_next_cut(b, p, n, c)) < n) {
                size_t lo = c > b->max_len ? c - b->max_len : 0;

                cuts++;
                for (size_t a = lo; a < c; a++)
                    for (size_t z = c + 1; z <= n && z - a <= b->max_len;
                         z++)
                        if (shard_bpe_rank(b, p + a, z - a) !=
                            SHARD_BPE_NONE)
                            FAILF("%s %s: a token spans the cut at %zu",
                                  all_encodings[e], long_shapes[s], c);
            }
        }
        shard_tokenizer_close(t);
    }
    CHECK(cuts > 1000);
    CHECK_EQ_INT(shard_bpe_next_cut(NULL, p, 1, 0), 1);
}

/* Builds a table of the 256 bytes and `extra` random strings over "abc"
 * (2 to 7 bytes), all at shuffled ranks, so that merges come in orders no
 * published vocabulary has. */
static void random_vocabulary(shard_bpe *b, uint64_t *state, int extra)
{
    size_t n = 0, used = 0, bad = 0;
    unsigned char *arena = malloc(256 + 8 * (size_t)extra);
    shard_bpe_entry *e = malloc((256 + (size_t)extra) * sizeof(*e));
    uint32_t *rank = malloc((256 + (size_t)extra) * sizeof(*rank));

    CHECK(arena && e && rank);
    for (int i = 0; i < 256; i++) {
        arena[used] = (unsigned char)i;
        e[n++] = (shard_bpe_entry){(uint32_t)used++, 1, 0};
    }
    for (int k = 0; k < extra; k++) {
        uint32_t len, r;

        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        r = (uint32_t)(*state >> 33);
        len = 2 + r % 6;
        for (uint32_t i = 0; i < len; i++)
            arena[used + i] = (unsigned char)"abc"[(r >> (3 + 2 * i)) % 3];
        /* Skip strings already present. */
        int dup = 0;

        for (size_t j = 256; j < n && !dup; j++)
            dup = e[j].len == len &&
                  memcmp(arena + e[j].off, arena + used, len) == 0;
        if (!dup) {
            e[n++] = (shard_bpe_entry){(uint32_t)used, len, 0};
            used += len;
        }
    }
    for (size_t i = 0; i < n; i++)
        rank[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j;
        uint32_t tmp;

        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        j = (size_t)(*state >> 33) % (i + 1);
        tmp = rank[i];
        rank[i] = rank[j];
        rank[j] = tmp;
    }
    for (size_t i = 0; i < n; i++)
        e[i].rank = rank[i];
    CHECK_EQ_INT(shard_bpe_build(b, arena, e, n, &bad), 0);
    free(e);
    free(rank);
}

/* Random vocabularies with ranks in no particular order, random texts
 * over their alphabet: every strategy gives the array loop's ranks. */
TEST(random_vocabularies_all_strategies_agree)
{
    static unsigned char p[6000];
    static uint32_t x[6000], y[6000];
    uint64_t state = 2026;

    for (int v = 0; v < 60; v++) {
        shard_bpe b;

        random_vocabulary(&b, &state, 10 + v);
        for (int k = 0; k < 12; k++) {
            size_t n = 1 + (size_t)(state >> 40) % (k < 6 ? 300 : 6000);
            long a;

            for (size_t i = 0; i < n; i++) {
                state = state * 6364136223846793005ull + 1;
                p[i] = (unsigned char)"abc"[(state >> 33) % (k % 3 ? 3 : 2)];
            }
            a = shard_bpe_merge_small(&b, p, n, x);
            check_same_ranks(&b, p, n, "heap", a,
                             shard_bpe_merge_heap(&b, p, n, y), x, y);
            check_same_ranks(&b, p, n, "queue", a,
                             shard_bpe_merge_queue(&b, p, n, y), x, y);
            check_same_ranks(&b, p, n, "large", a,
                             shard_bpe_merge_large(&b, p, n, y), x, y);
        }
        shard_bpe_free(&b);
    }
}

/*
 * Runs of one byte take the run merge (bpe.c), which merges groups of
 * equal parts at once: for every byte and many lengths, in every
 * encoding, it gives the heap's ranks.  The lengths cover both parities
 * at each power of two, where the groups of a run split.
 */
TEST(byte_runs_equal_heap_merge)
{
    long_work w = long_work_new(70000);
    static const size_t big[] = {1023, 1024, 1025, 4095, 4097, 65536, 69999};

    for (int e = 0; e < 4; e++) {
        shard_tokenizer *t = open_or_fail(all_encodings[e]);
        const shard_bpe *b = shard_tokenizer_ranks(t);

        for (int c = 0; c < 256; c++) {
            memset(w.p, c, 70000);
            for (size_t n = 60; n < 420; n += 1 + (size_t)(c + n) % 5)
                check_same_ranks(b, w.p, n, "run", shard_bpe_merge_heap(
                                     b, w.p, n, w.x),
                                 shard_bpe_merge_large(b, w.p, n, w.y), w.x,
                                 w.y);
            if (c % 17 == 'a' % 17)
                for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
                    check_same_ranks(b, w.p, big[i], "long run",
                                     shard_bpe_merge_heap(b, w.p, big[i],
                                                          w.x),
                                     shard_bpe_merge_large(b, w.p, big[i],
                                                           w.y),
                                     w.x, w.y);
        }
        shard_tokenizer_close(t);
    }
    long_work_free(&w);
}

/* Builds a table of the 256 bytes and runs of `a` of 2 to 40 bytes (each
 * present with odds 3 in 4) at shuffled ranks: merges of runs in orders
 * no published vocabulary has, where the run merge must often take one
 * pair at a time or give the chunk back. */
static void random_run_vocabulary(shard_bpe *b, uint64_t *state)
{
    unsigned char *arena = malloc(256 + 41 * 40);
    shard_bpe_entry e[256 + 40];
    size_t n = 0, used = 0, bad = 0;

    CHECK(arena != NULL);
    for (int i = 0; i < 256; i++) {
        arena[used] = (unsigned char)i;
        e[n++] = (shard_bpe_entry){(uint32_t)used++, 1, 0};
    }
    for (uint32_t len = 2; len <= 40; len++) {
        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        if ((*state >> 33) % 4 == 0)
            continue;
        memset(arena + used, 'a', len);
        e[n++] = (shard_bpe_entry){(uint32_t)used, len, 0};
        used += len;
    }
    for (size_t i = 0; i < n; i++)
        e[i].rank = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j;
        uint32_t tmp;

        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        j = (size_t)(*state >> 33) % (i + 1);
        tmp = e[i].rank;
        e[i].rank = e[j].rank;
        e[j].rank = tmp;
    }
    CHECK_EQ_INT(shard_bpe_build(b, arena, e, n, &bad), 0);
}

TEST(random_run_vocabularies_equal_array_merge)
{
    static unsigned char p[5000];
    static uint32_t x[5000], y[5000];
    uint64_t state = 1204;

    memset(p, 'a', sizeof(p));
    for (int v = 0; v < 200; v++) {
        shard_bpe b;

        random_run_vocabulary(&b, &state);
        for (int k = 0; k < 8; k++) {
            size_t n = 48 + (size_t)(state >> 41) % (k < 6 ? 400 : 4900);

            state = state * 6364136223846793005ull + 1;
            check_same_ranks(&b, p, n, "random run",
                             shard_bpe_merge_small(&b, p, n, x),
                             shard_bpe_merge_large(&b, p, n, y), x, y);
        }
        shard_bpe_free(&b);
    }
}

/* What shard_bpe_encode() must give: the whole piece when it is a token,
 * else the array loop's merge. */
static void check_encode(const shard_bpe *b, const unsigned char *p,
                         size_t n)
{
    uint32_t x[32], y[32];
    uint32_t whole = shard_bpe_rank(b, p, n);
    long want = whole != SHARD_BPE_NONE ? 1
                                        : shard_bpe_merge_small(b, p, n, y);
    long got = shard_bpe_encode(b, p, n, shard_bpe_prefetch(b, p, n), x);

    if (whole != SHARD_BPE_NONE)
        y[0] = whole;
    CHECK_EQ_INT(got, want);
    for (long i = 0; i < got && i < want; i++)
        CHECK_EQ_INT(x[i], y[i]);
}

/* The piece cache: pieces repeat, across two tables used in turn by one
 * thread and tables freed and built again at the same address, and every
 * encode gives the merge of that table. */
TEST(piece_cache_keeps_tables_apart)
{
    unsigned char pool[64][8];
    size_t len[64];
    uint64_t state = 77;

    for (int i = 0; i < 64; i++) {
        state = state * 6364136223846793005ull + 1;
        len[i] = 3 + (state >> 33) % 5;
        for (size_t k = 0; k < len[i]; k++)
            pool[i][k] = (unsigned char)"abc"[(state >> (35 + 2 * k)) % 3];
    }
    for (int v = 0; v < 30; v++) {
        shard_bpe one, two;

        random_vocabulary(&one, &state, 20 + v);
        random_vocabulary(&two, &state, 40 + v);
        for (int k = 0; k < 2000; k++) {
            int i = (int)((state = state * 6364136223846793005ull + 1) >>
                          33) % 64;

            check_encode(k % 2 ? &one : &two, pool[i], len[i]);
        }
        shard_bpe_free(&one);
        shard_bpe_free(&two);
    }
}

/* One piece of about 1 MB in a few shapes: finishes and round-trips. */
TEST(megabyte_pieces_round_trip)
{
    size_t n = 1 << 20;
    char *s = malloc(n);
    shard_tokenizer *t = open_or_fail("cl100k_base");
    uint64_t state = 5;

    CHECK(s != NULL);
    memset(s, 'a', n);
    check_round_trip(t, s, n);
    memset(s, ' ', n);
    check_round_trip(t, s, n);
    for (size_t i = 0; i < n; i++) {
        state = state * 6364136223846793005ull + 1;
        s[i] = b64_digits[(state >> 33) % 64];
    }
    check_round_trip(t, s, n);
    for (size_t i = 0; i < n; i++)
        s[i] = "xyz"[i % 3];
    check_round_trip(t, s, n);
    free(s);
    shard_tokenizer_close(t);
}

/* A white-space run past PCRE2's default match limit (ten million
 * steps) still splits: the splitter lifts the limit. */
TEST(long_white_space_run_splits)
{
    size_t n = 12u << 20, a = 1, b = 1;
    char *s = malloc(n), err[SHARD_ERRMAX];
    shard_pretok *p = NULL;
    shard_pretok_scan scan;

    CHECK(s != NULL);
    memset(s, ' ', n);
    CHECK_EQ_INT(shard_pretok_new(&p, "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", err),
                 0);
    CHECK_EQ_INT(shard_pretok_scan_init(&scan, p, s, n), 0);
    CHECK_EQ_INT(shard_pretok_scan_next(&scan, &a, &b), 1);
    CHECK_EQ_INT(a, 0);
    CHECK_EQ_INT(b, n);
    CHECK_EQ_INT(shard_pretok_scan_next(&scan, &a, &b), 0);
    shard_pretok_scan_end(&scan);
    shard_pretok_free(p);
    free(s);
}

/*
 * A pattern split by hand on ASCII gives the pieces PCRE2 gives, on
 * random text of ASCII classes mixed with letters, numbers, spaces and
 * symbols above 0x80 at every place: after a prefix, in letter, digit,
 * symbol and white-space runs, after an apostrophe.  Letter runs reach
 * past the eight bytes shard_pretok_scan_many() tests at once.
 */
static void check_ascii_split(const char *pattern, const char *numbers,
                              shard_ascii_split kind)
{
    static const char *const atoms[] = {
        /* ASCII */
        "a", "Z", "q", "7", "0", " ", "  ", "\t", "\n", "\r\n", "\v",
        "\f", "'", "'s", "'S", "'ll", "'LL", "'Ve", "'re", "'d", "'m", "'t",
        "'x", ".", ",", "!?", "(", "\x01", "\x7f", "_", "-", "$", "/",
        "Ab", "CD", "eF", "123", "4567", "@", "[", "`", "{",
        "wordsofnine", "UPPERlowerMIXed", /* past 8 bytes, and the
                                           * neighbours of A-Z and a-z */
        /* above 0x80: letters of both cases, marks, Lm, spaces, digits */
        "\xc3\xa9", "\xc3\x89", "\xc5\xbf", "\xc2\xa0", "\xe3\x80\x80",
        "\xd9\xa3", "\xe2\x82\xac", "\xe2\x80\xa8", "\xc2\x85",
        "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xcc\x81", "\xca\xb0",
        "\xe2\x84\xaa", /* the Kelvin sign folds to k */
        "\xf0\x9d\x8b\x80" /* U+1D2C0, a number to both references */};
    size_t n_atoms = sizeof(atoms) / sizeof(atoms[0]), n_ascii = 44;
    shard_pretok *slow = NULL, *fast = NULL;
    char err[SHARD_ERRMAX], text[512];
    uint64_t seed = 11;

    CHECK_EQ_INT(shard_tok_compile_pattern(&slow, pattern, numbers, err),
                 0);
    CHECK_EQ_INT(shard_tok_compile_pattern(&fast, pattern, numbers, err),
                 0);
    CHECK((unsigned char)atoms[n_ascii - 1][0] < 0x80 &&
          (unsigned char)atoms[n_ascii][0] >= 0x80);
    shard_pretok_split_ascii(slow, SHARD_ASCII_NONE);
    shard_pretok_split_ascii(fast, kind);
    for (int round = 0; round < 20000; round++) {
        size_t len = 0, a1, b1, a2, b2;
        shard_pretok_scan s1, s2;
        int r1, r2;

        for (int k = 0; k < 1 + round % 24; k++) {
            const char *atom;

            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            /* ASCII most of the time, as in the corpora */
            atom = atoms[(seed >> 33) %
                         ((seed >> 20) % 4 ? n_ascii : n_atoms)];
            memcpy(text + len, atom, strlen(atom));
            len += strlen(atom);
        }
        CHECK_EQ_INT(shard_pretok_scan_init(&s1, slow, text, len), 0);
        CHECK_EQ_INT(shard_pretok_scan_init(&s2, fast, text, len), 0);
        do {
            r1 = shard_pretok_scan_next(&s1, &a1, &b1);
            r2 = shard_pretok_scan_next(&s2, &a2, &b2);
            if (r1 != r2 || (r1 == 1 && (a1 != a2 || b1 != b2)))
                FAILF("split %d, \"%.*s\": PCRE2 %d [%zu, %zu), by hand "
                      "%d [%zu, %zu)", (int)kind, (int)len, text, r1, a1,
                      b1, r2, a2, b2);
        } while (r1 == 1);
        shard_pretok_scan_end(&s1);
        shard_pretok_scan_end(&s2);
    }
    shard_pretok_free(slow);
    shard_pretok_free(fast);
}

TEST(cl100k_ascii_split_matches_pcre2)
{
    check_ascii_split(shard_pattern_cl100k, shard_numbers_tiktoken,
                      SHARD_ASCII_CL100K);
    check_ascii_split(shard_pattern_cl100k, shard_numbers_hf,
                      SHARD_ASCII_CL100K);
}

/* Qwen's pattern (tokenizer.json files of Qwen2 and later) takes digits
 * one at a time; the hand split must follow it, not cl100k's. */
TEST(qwen_ascii_split_matches_pcre2)
{
    check_ascii_split(shard_pattern_qwen, shard_numbers_hf,
                      SHARD_ASCII_QWEN);
}

/* o200k's letter runs split by case and keep their contraction. */
TEST(o200k_ascii_split_matches_pcre2)
{
    check_ascii_split(shard_pattern_o200k, shard_numbers_tiktoken,
                      SHARD_ASCII_O200K);
    check_ascii_split(shard_pattern_o200k, shard_numbers_hf,
                      SHARD_ASCII_O200K);
}

/* ---- the reference comparison -------------------------------------- */

typedef struct {
    const char *label;
    int label_len;
    const char *text;
    uint32_t len;
    const uint32_t *ids;
    uint32_t n;
} ref_case;

typedef struct {
    char *data;
    size_t size;
    ref_case *cases;
    size_t n;
} ref_file;

static time_t mtime_of(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_mtime : 0;
}

/* Whether `out` exists and is newer than everything it is made from:
 * the script, the data and the reference package. */
static int reference_fresh(const char *out, const char *hh)
{
    char pkg[1100];
    time_t t = mtime_of(out);

    snprintf(pkg, sizeof(pkg), "%s/node_modules/tiktoken/package.json",
             env_or("SHARD_NPM_DIR", "build/npm"));
    return t != 0 && mtime_of(pkg) != 0 && t >= mtime_of(pkg) &&
           t >= mtime_of("tests/tokenizer_ref.mjs") && t >= mtime_of(hh);
}

/* Runs tests/tokenizer_ref.mjs unless `out` is fresh. */
static void make_reference(const char *enc, const char *out)
{
    const char *data = env_or("SHARED_DATA", "../shared/data");
    char log[1100], hh[1024], cmd[4400], line[300] = "";
    FILE *f;
    int rc;

    snprintf(hh, sizeof(hh), "%s/hh-rlhf/harmless-base-test.jsonl.gz",
             data);
    if (mtime_of(hh) == 0)
        FAILF("%.300s: %s", hh, strerror(errno));
    if (reference_fresh(out, hh))
        return;

    snprintf(log, sizeof(log), "%s.log", out);
    snprintf(cmd, sizeof(cmd),
             "node tests/tokenizer_ref.mjs '%s' '%s' '%s' 2>'%s'", enc, out,
             data, log);
    rc = system(cmd);
    if (rc == 0)
        return;

    f = fopen(log, "r");
    if (f && fgets(line, sizeof(line), f))
        line[strcspn(line, "\n")] = '\0';
    if (f)
        fclose(f);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 127)
        FAILF("no reference ids for %s: node not found (make testdeps "
              "installs it)", enc);
    FAILF("no reference ids for %s: tests/tokenizer_ref.mjs failed: %s",
          enc, line[0] ? line : "no message");
}

static int ref_u32(const ref_file *r, size_t *at, uint32_t *v)
{
    if (r->size - *at < 4)
        return -1;
    memcpy(v, r->data + *at, 4);
    *at += 4;
    return 0;
}

/* Takes a length-prefixed span of `unit`-byte items at *at. */
static int ref_span(const ref_file *r, size_t *at, uint32_t *count,
                    size_t unit, const char **p)
{
    if (ref_u32(r, at, count) != 0 ||
        (r->size - *at) / unit < (size_t)*count)
        return -1;
    *p = r->data + *at;
    *at += (size_t)*count * unit;
    return 0;
}

static void ref_parse(ref_file *r, const char *enc)
{
    size_t at = 8;
    uint32_t len, count;
    const char *p;

    if (r->size < 8 || memcmp(r->data, "SHTKREF1", 8) != 0 ||
        ref_span(r, &at, &len, 1, &p) != 0 || len != strlen(enc) ||
        memcmp(p, enc, len) != 0 || ref_u32(r, &at, &count) != 0)
        FAILF("reference file for %s: bad header", enc);

    r->cases = calloc(count, sizeof(*r->cases));
    CHECK(r->cases != NULL);
    for (r->n = 0; r->n < count; r->n++) {
        ref_case *c = &r->cases[r->n];
        uint32_t ll;

        if (ref_span(r, &at, &ll, 1, &c->label) != 0 ||
            ref_span(r, &at, &c->len, 1, &c->text) != 0 ||
            (at = (at + 3) & ~(size_t)3) > r->size ||
            ref_span(r, &at, &c->n, 4, (const char **)&c->ids) != 0)
            FAILF("reference file for %s: truncated at case %zu", enc,
                  r->n);
        c->label_len = (int)ll;
    }
}

static void ref_load(ref_file *r, const char *enc)
{
    char out[1024];
    FILE *f;
    long n;

    snprintf(out, sizeof(out), "%s/tokenizer_ref", env_or("BUILD", "build"));
    mkdir(out, 0777);
    snprintf(out, sizeof(out), "%s/tokenizer_ref/%s.bin",
             env_or("BUILD", "build"), enc);
    make_reference(enc, out);

    f = fopen(out, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0)
        FAILF("%.300s: %s", out, strerror(errno));
    rewind(f);
    r->size = (size_t)n;
    r->data = malloc(r->size + 1);
    CHECK(r->data != NULL);
    CHECK(fread(r->data, 1, r->size, f) == r->size);
    fclose(f);
    ref_parse(r, enc);
}

static void ref_free(ref_file *r)
{
    free(r->data);
    free(r->cases);
}

/* Returns the index of the first id where got and c differ, or -1. */
static long first_difference(const shard_tokens *got, const ref_case *c)
{
    size_t n = got->len < c->n ? got->len : c->n;

    for (size_t i = 0; i < n; i++)
        if (got->ids[i] != c->ids[i])
            return (long)i;
    return got->len == c->n ? -1 : (long)n;
}

static void compare_case(shard_tokenizer *t, const ref_case *c,
                         shard_tokens *got)
{
    long at;

    got->len = 0;
    if (shard_tokenizer_encode(t, c->text, c->len, got) != 0)
        FAILF("%.*s: encode failed", c->label_len, c->label);
    at = first_difference(got, c);
    if (at >= 0)
        FAILF("%s %.*s: %zu ids, reference %u; first difference at id "
              "%ld: %u vs %u", shard_tokenizer_name(t), c->label_len,
              c->label, got->len, c->n, at,
              (size_t)at < got->len ? got->ids[at] : 0,
              (uint32_t)at < c->n ? c->ids[at] : 0);
}

static void check_reference(const char *enc)
{
    ref_file r = {0};
    shard_tokenizer *t = open_or_fail(enc);
    shard_tokens got = {0};
    size_t tokens = 0, hh = 0, big = 0, adversarial = 0;

    ref_load(&r, enc);
    for (size_t i = 0; i < r.n; i++) {
        const ref_case *c = &r.cases[i];

        compare_case(t, c, &got);
        tokens += c->n;
        hh += c->label_len > 8 && memcmp(c->label, "hh-rlhf:", 8) == 0;
        big += c->len >= 1000000;
        adversarial += c->label_len > 12 &&
                       memcmp(c->label, "adversarial:", 12) == 0;
        if (memcmp(c->label, "bytes:", 6) != 0)
            check_round_trip(t, c->text, c->len);
    }
    CHECK_EQ_INT(hh, 2 * 2312);
    CHECK_EQ_INT(big, 1);
    CHECK_EQ_INT(adversarial, 8);
    printf("# %s: %zu cases (%zu hh-rlhf texts, %zu adversarial 50 KB "
           "pieces, one 1 MB piece), %zu ids identical to tiktoken\n", enc,
           r.n, hh, adversarial, tokens);

    shard_tokens_free(&got);
    ref_free(&r);
    shard_tokenizer_close(t);
}

TEST(reference_cl100k_base)
{
    check_reference("cl100k_base");
}

TEST(reference_o200k_base)
{
    check_reference("o200k_base");
}

TEST(reference_r50k_base)
{
    check_reference("r50k_base");
}

TEST(reference_p50k_base)
{
    check_reference("p50k_base");
}

/* ---- one handle, two threads --------------------------------------- */

typedef struct {
    shard_tokenizer *t;
    const ref_file *r;
    size_t mismatches;
} thread_job;

static void *encode_all(void *arg)
{
    thread_job *job = arg;
    shard_tokens got = {0};

    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < job->r->n; i++) {
            const ref_case *c = &job->r->cases[i];

            got.len = 0;
            if (c->len >= 1000000)
                continue;
            if (shard_tokenizer_encode(job->t, c->text, c->len, &got) != 0 ||
                first_difference(&got, c) >= 0)
                job->mismatches++;
        }
    }
    shard_tokens_free(&got);
    return NULL;
}

TEST(threads_share_one_handle)
{
    ref_file r = {0};
    shard_tokenizer *t = open_or_fail("cl100k_base");
    thread_job jobs[2] = {{t, &r, 0}, {t, &r, 0}};
    pthread_t th[2];

    ref_load(&r, "cl100k_base");
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, encode_all, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(jobs[0].mismatches + jobs[1].mismatches, 0);
    ref_free(&r);
    shard_tokenizer_close(t);
}

/* ---- speed, reported and not asserted ------------------------------ */

static double seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best of three: one encode call per hh-rlhf text, single thread. */
static double hh_speed(shard_tokenizer *t, const ref_file *r, size_t *bytes)
{
    shard_tokens got = {0};
    double best = 1e9;

    for (int round = 0; round < 3; round++) {
        double t0 = seconds();

        *bytes = 0;
        for (size_t i = 0; i < r->n; i++) {
            const ref_case *c = &r->cases[i];

            if (memcmp(c->label, "hh-rlhf:", 8) != 0)
                continue;
            got.len = 0;
            CHECK_EQ_INT(shard_tokenizer_encode(t, c->text, c->len, &got),
                         0);
            *bytes += c->len;
        }
        if (seconds() - t0 < best)
            best = seconds() - t0;
    }
    shard_tokens_free(&got);
    return best;
}

TEST(speed_report)
{
    for (int e = 0; e < 2; e++) {
        ref_file r = {0};
        shard_tokenizer *t = open_or_fail(all_encodings[e]);
        size_t bytes = 0;
        double s;

        ref_load(&r, all_encodings[e]);
        s = hh_speed(t, &r, &bytes);
        printf("# %s: hh-rlhf %zu bytes in %.3f s: %.1f MB/s single "
               "thread\n", all_encodings[e], bytes, s, (double)bytes / s / 1e6);
        ref_free(&r);
        shard_tokenizer_close(t);
    }
}

TEST_MAIN()
