/*
 * bench_tokenizer.c - single-thread encoding speed of our tokenizer.
 *
 *   bench_tokenizer corpus SPEC FILE [IDS]
 *       Encodes each document of FILE (documents separated by NUL bytes,
 *       valid UTF-8, one encode call per document), best of three rounds,
 *       and prints one line:
 *           ours NAME mixed BYTES TOKENS SECONDS MB/s
 *       where NAME is the tokenizer's name.
 *       With IDS, also writes the ids: per document a little-endian u32
 *       count and the u32 ids (the format tests/bench/bench_ref.mjs writes).
 *
 *   bench_tokenizer pieces SPEC FILE SHAPE...
 *       Builds one piece of 1 MiB of each named shape (letter, letters,
 *       base64, punct, space, digits, cjk; deterministic), then times the
 *       whole corpus and each piece in turns, five rounds, and prints the
 *       best of each:
 *           ours NAME mixed BYTES TOKENS SECONDS MB/s
 *           ours NAME long:SHAPE BYTES TOKENS SECONDS MB/s
 *
 * Times are thread CPU time, single thread.
 * Exits 1 with a one-line message on any failure.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shard_tokenizer.h"

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_tokenizer: %s: %s\n", what, why);
    exit(1);
}

/* Thread CPU time: the machine is shared, and time spent descheduled is
 * not the tokenizer's. */
static double seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        die(path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        die(path, strerror(errno));
    buf = malloc((size_t)n + 1);
    if (!buf)
        die(path, "out of memory");
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        die(path, "read failed");
    fclose(f);
    buf[n] = '\0';
    *size = (size_t)n;
    return buf;
}

/* A document of the corpus: text[0..len). */
typedef struct {
    const char *text;
    size_t len;
} bench_doc;

static bench_doc *split_docs(const char *data, size_t size, size_t *count)
{
    bench_doc *docs = NULL;
    size_t n = 0, cap = 0;

    for (const char *s = data, *end = data + size; s < end;) {
        const char *z = memchr(s, '\0', (size_t)(end - s));
        size_t len = z ? (size_t)(z - s) : (size_t)(end - s);

        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            docs = realloc(docs, cap * sizeof(*docs));
            if (!docs)
                die("corpus", "out of memory");
        }
        if (len > 0)
            docs[n++] = (bench_doc){s, len};
        s += len + 1;
    }
    *count = n;
    return docs;
}

static shard_tokenizer *open_tokenizer(const char *spec)
{
    shard_tokenizer *t = NULL;

    if (shard_tokenizer_open(&t, spec) != 0)
        die(spec, shard_last_error());
    return t;
}

/* Encodes every document once; returns the seconds of thread CPU time
 * and the token count through *tokens.  Writes the ids to `ids` when it is
 * not NULL. */
static double encode_once(shard_tokenizer *t, const bench_doc *docs,
                          size_t n, FILE *ids, size_t *tokens)
{
    shard_tokens out = {0};
    double t0 = seconds();

    *tokens = 0;
    for (size_t i = 0; i < n; i++) {
        out.len = 0;
        if (shard_tokenizer_encode(t, docs[i].text, docs[i].len, &out) != 0)
            die("encode", shard_last_error());
        *tokens += out.len;
        if (ids) {
            uint32_t k = (uint32_t)out.len;

            if (fwrite(&k, 4, 1, ids) != 1 ||
                fwrite(out.ids, 4, out.len, ids) != out.len)
                die("ids", "write failed");
        }
    }
    t0 = seconds() - t0;
    shard_tokens_free(&out);
    return t0;
}

static void report(const shard_tokenizer *t, const char *what,
                   size_t bytes, size_t tokens, double s)
{
    printf("ours %s %s %zu %zu %.4f %.2f\n", shard_tokenizer_name(t), what,
           bytes, tokens, s, (double)bytes / s / 1e6);
}

static int run_corpus(const char *spec, const char *path,
                      const char *ids_path)
{
    size_t size, n, tokens, bytes = 0;
    char *data = read_all(path, &size);
    bench_doc *docs = split_docs(data, size, &n);
    shard_tokenizer *t = open_tokenizer(spec);
    FILE *ids = NULL;
    double s;

    if (ids_path && !(ids = fopen(ids_path, "wb")))
        die(ids_path, strerror(errno));
    for (size_t i = 0; i < n; i++)
        bytes += docs[i].len;
    s = encode_once(t, docs, n, NULL, &tokens);
    for (int round = 1; round < 3; round++) {
        double r = encode_once(t, docs, n, round == 2 ? ids : NULL, &tokens);

        s = r < s ? r : s;
    }
    if (ids && fclose(ids) != 0)
        die(ids_path, "write failed");
    report(t, "mixed", bytes, tokens, s);
    shard_tokenizer_close(t);
    free(docs);
    free(data);
    return 0;
}

/* A deterministic generator (64-bit LCG, high bits). */
static uint32_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes one character of the named shape at o; returns its bytes. */
static size_t shape_char(const char *shape, uint64_t *state, char *o)
{
    uint32_t r = next_random(state), cp;

    if (strcmp(shape, "letter") == 0)
        return (size_t)(o[0] = 'a', 1);
    if (strcmp(shape, "letters") == 0)
        return (size_t)(o[0] = (char)('a' + r % 26), 1);
    if (strcmp(shape, "base64") == 0)
        return (size_t)(o[0] = b64[r % 64], 1);
    if (strcmp(shape, "punct") == 0)
        return (size_t)(o[0] = '!', 1);
    if (strcmp(shape, "space") == 0)
        return (size_t)(o[0] = ' ', 1);
    if (strcmp(shape, "digits") == 0)
        return (size_t)(o[0] = (char)('0' + r % 10), 1);
    if (strcmp(shape, "cjk") == 0) {
        /* CJK Unified Ideographs U+4E00..U+9FFF, three bytes each. */
        cp = 0x4e00 + r % 0x5200;
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    die(shape, "unknown shape (letter, letters, base64, punct, space, "
               "digits, cjk)");
    return 0;
}

/* Builds about `bytes` bytes (whole characters only) of a shape. */
static char *make_shape(const char *shape, size_t bytes, size_t *len)
{
    char *s = malloc(bytes + 4);
    uint64_t state = 20260301;
    size_t n = 0;

    if (!s)
        die(shape, "out of memory");
    while (n < bytes)
        n += shape_char(shape, &state, s + n);
    *len = n;
    return s;
}

/*
 * The corpus and one piece of each shape, timed in turns (five rounds,
 * best of each), so that the ratios compare runs under the same load.
 */
static int run_pieces(const char *spec, const char *path, char **shapes,
                      int n_shapes)
{
    size_t size, n, bytes = 0;
    char *data = read_all(path, &size);
    bench_doc *docs = split_docs(data, size, &n);
    bench_doc *piece = calloc((size_t)n_shapes, sizeof(*piece));
    double *best = malloc(((size_t)n_shapes + 1) * sizeof(*best));
    size_t *count = malloc(((size_t)n_shapes + 1) * sizeof(*count));
    shard_tokenizer *t = open_tokenizer(spec);
    char what[64];

    if (!piece || !best || !count)
        die("pieces", "out of memory");
    for (size_t i = 0; i < n; i++)
        bytes += docs[i].len;
    for (int k = 0; k < n_shapes; k++)
        piece[k].text = make_shape(shapes[k], 1 << 20, &piece[k].len);
    for (int k = 0; k <= n_shapes; k++)
        best[k] = 1e30;

    for (int round = 0; round < 5; round++) {
        double s = encode_once(t, docs, n, NULL, &count[0]);

        best[0] = s < best[0] ? s : best[0];
        for (int k = 0; k < n_shapes; k++) {
            s = encode_once(t, &piece[k], 1, NULL, &count[k + 1]);
            best[k + 1] = s < best[k + 1] ? s : best[k + 1];
        }
    }

    report(t, "mixed", bytes, count[0], best[0]);
    for (int k = 0; k < n_shapes; k++) {
        snprintf(what, sizeof(what), "long:%s", shapes[k]);
        report(t, what, piece[k].len, count[k + 1], best[k + 1]);
        free((char *)piece[k].text);
    }
    shard_tokenizer_close(t);
    free(piece);
    free(best);
    free(count);
    free(docs);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && argc <= 5 && strcmp(argv[1], "corpus") == 0)
        return run_corpus(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
    if (argc >= 5 && strcmp(argv[1], "pieces") == 0)
        return run_pieces(argv[2], argv[3], argv + 4, argc - 4);
    fprintf(stderr, "usage: bench_tokenizer corpus SPEC FILE [IDS]\n"
                    "       bench_tokenizer pieces SPEC FILE SHAPE...\n");
    return 2;
}
