/*
 * gen_shard_seeds.c - writes the seed corpus of shard_reader_fuzzer.
 *
 *     gen_shard_seeds OUTDIR
 *
 * Every seed but the empty ones comes from the writer (shard_writer.h), so
 * the corpus starts from files the reader must accept and verify must
 * pass; between them they hold both codecs, both token widths, shards with
 * and without text, single frames and many, records without tokens or
 * messages, every label, and a zstd shard holding more tokens than bytes.
 * The writer never makes a file without records, so the three empty
 * shards (N = 0: codec none, zstd, zstd with text) are laid out here from
 * docs/FORMAT.md.  Each seed is read back and verified before it is kept;
 * the program exits 1 when one fails.  Not built by the Makefile:
 *
 *     cc -std=c11 -D_GNU_SOURCE -Ilibshard -o gen fuzz/gen_shard_seeds.c \
 *         build/libshard.a -lzstd -lxxhash -lpthread -lm
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "format.h"
#include "shard_reader.h"
#include "shard_writer.h"

#define MAX_TOKENS 70000

/* What varies between seeds. */
struct seed {
    const char *name;
    shard_codec codec;
    uint32_t vocab;      /* decides the token width: u16 up to 65536 */
    int with_text;
    int label;           /* of the stream; 255 for mixed */
    uint64_t frame_size; /* raw bytes per frame */
    unsigned records;
    int repetitive;      /* long runs of one token: compresses far */
};

static const struct seed seeds[] = {
    {"none_u16_text_1", SHARD_CODEC_NONE, 1000, 1, 1, 4096, 1, 0},
    {"none_u16_text_few", SHARD_CODEC_NONE, 65536, 1, 255, 24, 6, 0},
    {"none_u32_notext_few", SHARD_CODEC_NONE, 100277, 0, 2, 40, 5, 0},
    {"none_u32_notext_0tok", SHARD_CODEC_NONE, 100277, 0, 0, 64, 1, 0},
    {"zstd_u16_notext_few", SHARD_CODEC_ZSTD, 50000, 0, 0, 30, 7, 0},
    {"zstd_u16_text_0tok", SHARD_CODEC_ZSTD, 50000, 1, 1, 64, 1, 0},
    {"zstd_u32_text_1", SHARD_CODEC_ZSTD, 200019, 1, 2, 4096, 1, 0},
    {"zstd_u32_text_few", SHARD_CODEC_ZSTD, 100277, 1, 255, 48, 8, 0},
    {"zstd_u32_notext_repeat", SHARD_CODEC_ZSTD, 100277, 0, 1, 1 << 20, 3,
     1},
};

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/*
 * Fills record i of seed s.  In a seed of several records the first has no
 * tokens, the second no messages, every third an empty response and the
 * fourth a role longer than 255 bytes; the mixed shards cycle the labels.
 */
static void make_record(const struct seed *s, unsigned i, uint32_t *tokens,
                        shard_message *msg, shard_record_in *in)
{
    static char long_role[300], content[2][64];
    size_t n = s->repetitive ? MAX_TOKENS - i : rng() % 40 + 1;

    if ((s->records > 1 && i == 0) || strstr(s->name, "0tok"))
        n = 0;
    for (size_t k = 0; k < n; k++)
        tokens[k] = s->repetitive ? 7 : rng() % s->vocab;
    if (n > 0)
        tokens[n - 1] = s->vocab - 1;

    snprintf(content[0], sizeof(content[0]), "question %u", i);
    snprintf(content[1], sizeof(content[1]), "answer %u", rng() % 1000);
    msg[0] = (shard_message){"user", 4, content[0], strlen(content[0])};
    msg[1] = (shard_message){"assistant", 9, content[1],
                             i % 3 == 2 ? 0 : strlen(content[1])};
    if (i == 3) { /* a role the writer cuts at 255 bytes */
        memset(long_role, 'r', sizeof(long_role));
        msg[0] = (shard_message){long_role, sizeof(long_role), "", 0};
    }

    *in = (shard_record_in){
        .tokens = tokens, .n_tokens = n, .prompt_len = (uint32_t)(n / 3),
        .label = s->label == 255 ? (int)(i % 3) : s->label,
        .reward = i % 2 ? NAN : -1.5 + i, .prompt_id = 0x1234567ull * i,
        .pair_id = i / 2, .record_id = ~(uint64_t)i, .source_file = i % 2,
        .source_line = i + 1, .flags = 0, .messages = msg,
        .n_messages = s->records > 1 && i == 1 ? 0 : 2};
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[1 << 14];
    size_t n;
    int bad = !in || !out;

    while (!bad && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        bad = fwrite(buf, 1, n, out) != n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        bad = 1;
    return bad ? -1 : 0;
}

/* Writes seed s through a stream in tmp and copies its only shard out. */
static int write_seed(const struct seed *s, const char *tmp,
                      const char *outdir)
{
    static uint32_t tokens[MAX_TOKENS];
    shard_writer_options o = SHARD_WRITER_OPTIONS_INIT;
    char dir[4200], from[4300], to[4300];
    shard_message msg[2];
    shard_record_in in;
    shard_stream *st;
    size_t files;

    o.codec = s->codec;
    o.frame_size = s->frame_size;
    o.with_text = s->with_text;
    o.label = s->label;
    o.tokenizer.vocab_size = s->vocab;
    o.tokenizer.eos_id = s->vocab - 1;
    o.tokenizer.hash = 0x5eed0000u + s->vocab;
    snprintf(o.tokenizer.name, sizeof(o.tokenizer.name), "seed_tok");
    snprintf(dir, sizeof(dir), "%s/%s", tmp, s->name);
    if (shard_stream_open(&st, dir, &o) != 0) {
        fprintf(stderr, "%s: %s\n", s->name, shard_last_error());
        return -1;
    }
    rng_state = 42;
    for (unsigned i = 0; i < s->records; i++) {
        make_record(s, i, tokens, msg, &in);
        if (shard_stream_add(st, &in) != 0) {
            fprintf(stderr, "%s: %s\n", s->name, shard_stream_errmsg(st));
            shard_stream_free(st);
            return -1;
        }
    }
    if (shard_stream_finish(st) != 0 ||
        (shard_stream_files(st, &files), files != 1)) {
        fprintf(stderr, "%s: finish: %s\n", s->name,
                shard_stream_errmsg(st));
        shard_stream_free(st);
        return -1;
    }
    shard_stream_free(st);
    snprintf(from, sizeof(from), "%s/00000.shard", dir);
    snprintf(to, sizeof(to), "%s/%s.shard", outdir, s->name);
    if (copy_file(from, to) != 0) {
        fprintf(stderr, "%s: cannot copy to %s\n", s->name, to);
        return -1;
    }
    unlink(from);
    rmdir(dir);
    return 0;
}

/* Appends one section, padded to SHARD_ALIGN, to the file in `buf`. */
static void put_section(unsigned char *buf, size_t *len, unsigned *count,
                        int kind, const void *p, size_t n)
{
    unsigned char *e =
        buf + SHARD_HEADER_FIXED + *count * SHARD_SECTION_ENTRY;

    if (n > 0)
        memcpy(buf + *len, p, n);
    shard_put32(e + SEC_KIND, (uint32_t)kind);
    shard_put32(e + SEC_FLAGS, SHARD_SECTION_REQUIRED);
    shard_put64(e + SEC_OFFSET, *len);
    shard_put64(e + SEC_SIZE, n);
    shard_put64(e + SEC_SUM, XXH3_64bits(p, n));
    *len = (*len + n + SHARD_ALIGN - 1) / SHARD_ALIGN * SHARD_ALIGN;
    (*count)++;
}

/*
 * Lays out a shard of no records: one zero in each offsets column, every
 * other column and frame table empty, and a zstd data section holding
 * only the seek table of zero frames.
 */
static int write_empty(const char *outdir, shard_codec codec, int with_text)
{
    static const int empty_kinds[] = {
        SHARD_SEC_PROMPT_LEN, SHARD_SEC_LABEL, SHARD_SEC_REWARD,
        SHARD_SEC_PROMPT_ID, SHARD_SEC_PAIR_ID, SHARD_SEC_RECORD_ID,
        SHARD_SEC_SOURCE_FILE, SHARD_SEC_SOURCE_LINE, SHARD_SEC_FLAGS,
        SHARD_SEC_TOKEN_FRAMES};
    unsigned char buf[4096], seek[17];
    unsigned hsize = SHARD_HEADER_FIXED + 8 * SHARD_ALIGN, count = 0;
    uint64_t zero = 0;
    size_t len = hsize;
    char path[4200];
    FILE *f;

    memset(buf, 0, sizeof(buf));
    shard_put32(seek, SHARD_SEEK_SKIPPABLE_MAGIC);
    shard_put32(seek + 4, 9);
    shard_put32(seek + 8, 0);
    seek[12] = SHARD_SEEK_CHECKSUM_FLAG;
    shard_put32(seek + 13, SHARD_SEEK_FOOTER_MAGIC);
    put_section(buf, &len, &count, SHARD_SEC_TOKENS, seek,
                codec == SHARD_CODEC_ZSTD ? sizeof(seek) : 0);
    if (with_text) {
        put_section(buf, &len, &count, SHARD_SEC_TEXT, seek, sizeof(seek));
        put_section(buf, &len, &count, SHARD_SEC_TEXT_OFFSETS, &zero, 8);
        put_section(buf, &len, &count, SHARD_SEC_TEXT_FRAMES, NULL, 0);
    }
    put_section(buf, &len, &count, SHARD_SEC_TOKEN_OFFSETS, &zero, 8);
    for (size_t i = 0; i < sizeof(empty_kinds) / sizeof(int); i++)
        put_section(buf, &len, &count, empty_kinds[i], NULL, 0);

    memcpy(buf + HDR_MAGIC, SHARD_MAGIC, SHARD_MAGIC_LEN);
    shard_put16(buf + HDR_MAJOR, SHARD_FORMAT_MAJOR);
    shard_put16(buf + HDR_MINOR, SHARD_FORMAT_MINOR);
    shard_put32(buf + HDR_HEADER_SIZE, hsize);
    shard_put64(buf + HDR_FLAGS, with_text ? SHARD_FLAG_TEXT : 0);
    shard_put64(buf + HDR_FILE_SIZE, len);
    buf[HDR_LABEL] = SHARD_LABEL_UNL;
    buf[HDR_DTYPE] = 2;
    buf[HDR_CODEC] = (unsigned char)codec;
    shard_put32(buf + HDR_SECTION_COUNT, count);
    shard_put32(buf + HDR_TOK_VOCAB, 1000);
    memset(buf + HDR_TOK_BOS, 0xff, 12);
    memcpy(buf + HDR_TOK_NAME, "seed_tok", 8);
    memcpy(buf + HDR_TEMPLATE, "none", 4);
    shard_put64(buf + HDR_FRAME_TARGET, 4096);
    shard_put64(buf + HDR_BODY_SUM, XXH3_64bits(buf + hsize, len - hsize));
    shard_put64(buf + HDR_HEADER_SUM, XXH3_64bits(buf, hsize));

    snprintf(path, sizeof(path), "%s/empty_%s%s.shard", outdir,
             codec == SHARD_CODEC_ZSTD ? "zstd" : "none",
             with_text ? "_text" : "");
    if (!(f = fopen(path, "wb")) || fwrite(buf, 1, len, f) != len ||
        fclose(f) != 0) {
        fprintf(stderr, "%s: cannot write\n", path);
        return -1;
    }
    return 0;
}

static void print_problem(void *ctx, const char *msg)
{
    fprintf(stderr, "%s: %s\n", (const char *)ctx, msg);
}

/* Opens, reads and verifies a seed; returns its record count or -1. */
static long check_seed(const char *path)
{
    shard_reader *r;
    shard_record rec;
    shard_text t;
    long n;

    if (shard_reader_open(&r, path, NULL) != 0) {
        fprintf(stderr, "%s\n", shard_last_error());
        return -1;
    }
    n = (long)shard_reader_count(r);
    for (uint64_t i = 0; i < shard_reader_count(r); i++) {
        if (shard_reader_get(r, i, &rec) != 0 ||
            (shard_reader_info(r)->has_text &&
             shard_reader_text(r, i, &t) != 0)) {
            fprintf(stderr, "%s\n", shard_reader_errmsg(r));
            n = -1;
            break;
        }
        shard_record_release(&rec);
        if (shard_reader_info(r)->has_text)
            shard_text_free(&t);
    }
    shard_reader_close(r);
    if (n >= 0 && shard_verify_file(path, print_problem, (void *)path))
        n = -1;
    return n;
}

int main(int argc, char **argv)
{
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char tmp[4096], path[4200];
    int failed = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    snprintf(tmp, sizeof(tmp), "%s/gen_shard_seeds.XXXXXX", tmpdir);
    if (!mkdtemp(tmp)) {
        perror(tmp);
        return 1;
    }
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        long n;

        snprintf(path, sizeof(path), "%s/%s.shard", argv[1], seeds[i].name);
        if (write_seed(&seeds[i], tmp, argv[1]) != 0 ||
            (n = check_seed(path)) < 0) {
            failed = 1;
            continue;
        }
        printf("%s: %ld records\n", path, n);
    }
    rmdir(tmp);
    for (int codec = 0; codec < 2; codec++)
        for (int text = 0; text <= codec; text++) {
            snprintf(path, sizeof(path), "%s/empty_%s%s.shard", argv[1],
                     codec ? "zstd" : "none", text ? "_text" : "");
            if (write_empty(argv[1], (shard_codec)codec, text) != 0 ||
                check_seed(path) != 0) {
                failed = 1;
                continue;
            }
            printf("%s: 0 records\n", path);
        }
    return failed;
}
