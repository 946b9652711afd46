/*
 * bench_compile_tok.c - tokenizer-only work of a compile, for
 * `make bench-compile`.
 *
 *   bench_compile_tok SPEC FILE...
 *       Encodes each document of each FILE (documents ended by NUL bytes,
 *       as bench_compile_node.mjs `texts` writes them: the texts the
 *       compiler encodes) with shard_tokenizer_encode(), one call per
 *       document, one pass, reading the files in blocks so memory stays
 *       flat, and prints one line:
 *           tokenize BYTES DOCUMENTS TOKENS
 *       The caller times the process (wall clock, peak memory).
 *
 * Exits 1 with a one-line message on any failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard_tokenizer.h"

#define BLOCK (16u << 20)

typedef struct {
    shard_tokenizer *tok;
    shard_tokens out;
    size_t bytes, docs, tokens;
} tok_count;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_compile_tok: %s: %s\n", what, why);
    exit(1);
}

/* Encodes the NUL-ended documents of buf[0..n); returns the bytes used
 * (up to and including the last NUL). */
static size_t encode_docs(tok_count *c, const char *buf, size_t n)
{
    const char *s = buf, *end = buf + n, *z;

    while (s < end && (z = memchr(s, '\0', (size_t)(end - s)))) {
        size_t len = (size_t)(z - s);

        c->out.len = 0;
        if (len && shard_tokenizer_encode(c->tok, s, len, &c->out) != 0)
            die("encode", shard_last_error());
        c->bytes += len;
        c->docs += len > 0;
        c->tokens += c->out.len;
        s = z + 1;
    }
    return (size_t)(s - buf);
}

/* Streams one file through encode_docs(); a last document without its
 * NUL is encoded too. */
static void encode_file(tok_count *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t cap = BLOCK, have = 0, got, used;
    char *buf = malloc(cap + 1);

    if (!f)
        die(path, strerror(errno));
    if (!buf)
        die(path, "out of memory");
    while ((got = fread(buf + have, 1, cap - have, f)) > 0) {
        have += got;
        used = encode_docs(c, buf, have);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (have == cap && !(buf = realloc(buf, (cap *= 2) + 1)))
            die(path, "out of memory");
    }
    if (ferror(f))
        die(path, "read failed");
    buf[have] = '\0';
    encode_docs(c, buf, have + (have > 0));
    fclose(f);
    free(buf);
}

int main(int argc, char **argv)
{
    tok_count c = {0};

    if (argc < 3) {
        fprintf(stderr, "usage: bench_compile_tok SPEC FILE...\n");
        return 2;
    }
    if (shard_tokenizer_open(&c.tok, argv[1]) != 0)
        die(argv[1], shard_last_error());
    for (int i = 2; i < argc; i++)
        encode_file(&c, argv[i]);
    printf("tokenize %zu %zu %zu\n", c.bytes, c.docs, c.tokens);
    shard_tokens_free(&c.out);
    shard_tokenizer_close(c.tok);
    return 0;
}
