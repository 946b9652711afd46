/*
 * test_shard.c - the shard writer and reader: round trips, rollover,
 * codecs, zero copy lifetime, the golden file, and damage detection.
 */
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "shard_reader.h"
#include "shard_writer.h"
#include "test.h"

#define GOLDEN "tests/golden/small.shard"

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static char tmpdir[256];

static const char *scratch(const char *name)
{
    static char path[512];

    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "%s/test_shard.XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(tmpdir))
            FAILF("mkdtemp failed");
    }
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

/* The deterministic record i of a test stream. */
typedef struct {
    uint32_t tokens[600];
    size_t n;
    char context[64], response[64];
    shard_message msg[2];
    shard_record_in in;
} gen_record;

static void gen(gen_record *g, uint64_t i, uint32_t vocab, int label)
{
    rng_state = i * 7919 + 1;
    g->n = rng() % 600;
    for (size_t k = 0; k < g->n; k++)
        g->tokens[k] = rng() % vocab;
    snprintf(g->context, sizeof(g->context), "question %llu",
             (unsigned long long)i);
    snprintf(g->response, sizeof(g->response), "answer %u", rng());
    g->msg[0] = (shard_message){"user", 4, g->context, strlen(g->context)};
    g->msg[1] = (shard_message){"assistant", 9, g->response,
                                strlen(g->response)};
    g->in = (shard_record_in){
        .tokens = g->tokens, .n_tokens = g->n,
        .prompt_len = (uint32_t)(g->n / 2), .label = label,
        .reward = i % 3 ? (double)i / 4 : NAN, .prompt_id = i * 31,
        .pair_id = i / 2, .record_id = i * 1000003, .source_file = 1,
        .source_line = i + 1, .flags = (uint32_t)(i & 1),
        .messages = g->msg, .n_messages = 2};
}

static size_t write_stream(const char *dir, shard_codec codec,
                           uint32_t vocab, uint64_t n, uint64_t shard_size,
                           uint64_t frame_size)
{
    shard_writer_options o = SHARD_WRITER_OPTIONS_INIT;
    shard_stream *s;
    gen_record g;
    size_t count;

    o.codec = codec;
    o.shard_size = shard_size;
    o.frame_size = frame_size;
    o.label = SHARD_LABEL_NEG;
    o.tokenizer.vocab_size = vocab;
    snprintf(o.tokenizer.name, sizeof(o.tokenizer.name), "test");
    if (shard_stream_open(&s, dir, &o) != 0)
        FAILF("open %s: %s", dir, shard_last_error());
    for (uint64_t i = 0; i < n; i++) {
        gen(&g, i, vocab, SHARD_LABEL_NEG);
        if (shard_stream_add(s, &g.in) != 0)
            FAILF("add: %s", shard_stream_errmsg(s));
    }
    if (shard_stream_finish(s) != 0)
        FAILF("finish: %s", shard_stream_errmsg(s));
    shard_stream_files(s, &count);
    shard_stream_free(s);
    return count;
}

static void check_record(const shard_record *r, uint64_t i, uint32_t vocab)
{
    gen_record g;

    gen(&g, i, vocab, SHARD_LABEL_NEG);
    CHECK_EQ_INT(r->n_tokens, g.n);
    for (size_t k = 0; k < g.n; k++)
        if (shard_record_token(r, k) != g.tokens[k])
            FAILF("record %llu token %zu differs", (unsigned long long)i,
                  k);
    CHECK_EQ_INT(r->prompt_len, g.n / 2);
    CHECK_EQ_INT(r->label, SHARD_LABEL_NEG);
    CHECK(isnan(g.in.reward) ? isnan(r->reward)
                             : r->reward == g.in.reward);
    CHECK(r->prompt_id == g.in.prompt_id && r->pair_id == g.in.pair_id);
    CHECK(r->record_id == g.in.record_id && r->source_line == i + 1);
    CHECK_EQ_INT(r->flags, i & 1);
}

static void read_all(const char *dir, uint64_t n, uint32_t vocab)
{
    shard_dataset *d;
    shard_record r;

    if (shard_dataset_open(&d, dir, -1, NULL) != 0)
        FAILF("dataset open: %s", shard_last_error());
    CHECK_EQ_INT(shard_dataset_count(d), n);
    for (uint64_t i = 0; i < n; i++) {
        if (shard_dataset_get(d, i, &r) != 0)
            FAILF("get %llu: %s", (unsigned long long)i,
                  shard_dataset_errmsg(d));
        check_record(&r, i, vocab);
        shard_record_release(&r);
    }
    CHECK(shard_dataset_get(d, n, &r) == SHARD_EINVAL);
    shard_dataset_close(d);
}

/* Publishes the neg stream's files as a dataset (FORMAT.md). */
static void touch_manifest(const char *dir)
{
    char p[600];
    FILE *f;

    snprintf(p, sizeof(p), "%s/manifest.json", dir);
    f = fopen(p, "w");
    CHECK(f != NULL);
    fputs("{\"shards\": [", f);
    for (unsigned seq = 0;; seq++) {
        shard_reader *r;

        snprintf(p, sizeof(p), "%s/neg/%05u.shard", dir, seq);
        if (shard_reader_open(&r, p, NULL) != 0)
            break;
        fprintf(f, "%s{\"path\": \"neg/%05u.shard\", \"label\": \"neg\", "
                "\"records\": %llu, \"checksum\": \"%016llx\"}",
                seq ? ", " : "", seq,
                (unsigned long long)shard_reader_count(r),
                (unsigned long long)shard_reader_info(r)->checksum);
        shard_reader_close(r);
    }
    fputs("]}\n", f);
    fclose(f);
}

TEST(roundtrip_zstd_rollover)
{
    const char *root = scratch("zstd");
    char dir[600];
    size_t files;

    snprintf(dir, sizeof(dir), "%s/neg", root);
    files = write_stream(dir, SHARD_CODEC_ZSTD, 100277, 3000, 1 << 20,
                         4096);
    CHECK(files >= 3); /* about 3.6 MB of tokens in 1 MB shards */
    touch_manifest(root);
    read_all(root, 3000, 100277);
}

TEST(roundtrip_none_u16)
{
    const char *root = scratch("none");
    char dir[600];

    snprintf(dir, sizeof(dir), "%s/neg", root);
    write_stream(dir, SHARD_CODEC_NONE, 50000, 500, 1 << 30, 1000);
    touch_manifest(root);
    read_all(root, 500, 50000);
}

TEST(raw_tokens_are_aligned_pointers_into_the_file)
{
    const char *root = scratch("none");
    char path[600];
    shard_reader *r;
    shard_record rec;

    snprintf(path, sizeof(path), "%s/neg/00000.shard", root);
    CHECK(shard_reader_open(&r, path, NULL) == 0);
    CHECK_EQ_INT(shard_reader_info(r)->dtype, 2);
    CHECK(shard_reader_get(r, 7, &rec) == 0);
    CHECK((uintptr_t)rec.tokens % 2 == 0);
    shard_reader_close(r); /* the view keeps the mapping alive */
    check_record(&rec, 7, 50000);
    shard_record_release(&rec);
}

TEST(record_outlives_reader_and_cache)
{
    const char *root = scratch("zstd");
    char path[600];
    shard_reader_options o = SHARD_READER_OPTIONS_INIT;
    shard_record a, b;
    shard_reader *r;

    o.cache_bytes = 1; /* evict every frame as soon as possible */
    snprintf(path, sizeof(path), "%s/neg/00000.shard", root);
    CHECK(shard_reader_open(&r, path, &o) == 0);
    CHECK(shard_reader_get(r, 3, &a) == 0);
    CHECK(shard_reader_get(r, 400, &b) == 0);
    CHECK((uintptr_t)a.tokens % 4 == 0);
    shard_reader_close(r);
    check_record(&a, 3, 100277);
    check_record(&b, 400, 100277);
    shard_record_release(&a);
    shard_record_release(&b);
}

TEST(text_section_roundtrip)
{
    const char *root = scratch("zstd");
    char path[600];
    shard_reader *r;
    shard_text t;
    gen_record g;

    snprintf(path, sizeof(path), "%s/neg/00000.shard", root);
    CHECK(shard_reader_open(&r, path, NULL) == 0);
    for (uint64_t i = 0; i < 50; i++) {
        CHECK(shard_reader_text(r, i, &t) == 0);
        gen(&g, i, 100277, SHARD_LABEL_NEG);
        CHECK_EQ_INT(t.n_messages, 2);
        CHECK(t.messages[1].content_len == strlen(g.response));
        CHECK(memcmp(t.messages[1].content, g.response,
                     strlen(g.response)) == 0);
        CHECK(memcmp(t.messages[0].role, "user", 4) == 0);
        shard_text_free(&t);
    }
    shard_reader_close(r);
}

static long read_file(const char *path, unsigned char **out)
{
    FILE *f = fopen(path, "rb");
    long n;

    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc((size_t)n);
    if (fread(*out, 1, (size_t)n, f) != (size_t)n)
        n = -1;
    fclose(f);
    return n;
}

static void write_file(const char *path, const unsigned char *p, long n)
{
    FILE *f = fopen(path, "wb");

    CHECK(f != NULL);
    CHECK(fwrite(p, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
}

/* The writer's bytes are pinned: any format change shows up here. */
TEST(golden_file_bytes)
{
    const char *dir = scratch("golden");
    char path[600];
    unsigned char *got, *want;
    long ng, nw;

    write_stream(dir, SHARD_CODEC_ZSTD, 100277, 40, 1 << 30, 2048);
    snprintf(path, sizeof(path), "%s/00000.shard", dir);
    ng = read_file(path, &got);
    if (getenv("SHARD_UPDATE_GOLDEN"))
        write_file(GOLDEN, got, ng);
    nw = read_file(GOLDEN, &want);
    CHECK(nw > 0);
    CHECK_EQ_INT(ng, nw);
    CHECK(memcmp(got, want, (size_t)ng) == 0);
    free(got);
    free(want);
}

static void count_report(void *ctx, const char *msg)
{
    (*(int *)ctx)++;
    if (!strstr(msg, ".shard"))
        FAILF("message does not name the shard: %s", msg);
}

TEST(verify_accepts_sound_shard)
{
    int n = 0;

    CHECK_EQ_INT(shard_verify_file(GOLDEN, count_report, &n), 0);
    CHECK_EQ_INT(n, 0);
}

/*
 * Flips every byte of the golden shard in turn: verify must report it, and
 * every record must read back either exactly or with an error.
 */
TEST(every_flipped_byte_is_detected)
{
    const char *path = scratch("flipped.shard");
    unsigned char *orig;
    long n = read_file(GOLDEN, &orig);
    long undetected = 0;

    CHECK(n > 0);
    for (long at = 0; at < n; at++) {
        shard_reader *r;
        int problems = 0;

        orig[at] ^= 0x20;
        write_file(path, orig, n);
        orig[at] ^= 0x20;
        if (shard_verify_file(path, count_report, &problems) <= 0)
            undetected++;
        if (shard_reader_open(&r, path, NULL) != 0)
            continue;
        for (uint64_t i = 0; i < shard_reader_count(r); i++) {
            shard_record rec;

            if (shard_reader_get(r, i, &rec) != 0)
                continue;
            check_record(&rec, i, 100277);
            shard_record_release(&rec);
        }
        shard_reader_close(r);
    }
    free(orig);
    if (undetected)
        FAILF("%ld of %ld flipped bytes went undetected", undetected, n);
}

TEST(truncated_file_is_refused_with_its_name)
{
    const char *path = scratch("short.shard");
    unsigned char *orig;
    long n = read_file(GOLDEN, &orig);
    shard_reader *r;

    for (long len = 0; len < n; len += n / 7 + 1) {
        write_file(path, orig, len);
        CHECK(shard_reader_open(&r, path, NULL) == SHARD_ECORRUPT);
        CHECK(strstr(shard_last_error(), "short.shard") != NULL);
    }
    free(orig);
}

/* The token section alone is a valid zstd seekable stream. */
TEST(token_section_decodes_with_stock_zstd)
{
    const char *sec_path = scratch("tokens.zst");
    char cmd[1400], raw_path[600];
    unsigned char *file, *raw;
    long n = read_file(GOLDEN, &file), nr;
    uint32_t count = shard_le32(file + HDR_SECTION_COUNT);

    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *e = file + SHARD_HEADER_FIXED + i * 32;

        if (shard_le32(e) != SHARD_SEC_TOKENS)
            continue;
        write_file(sec_path, file + shard_le64(e + 8),
                   (long)shard_le64(e + 16));
    }
    snprintf(raw_path, sizeof(raw_path), "%s.raw", sec_path);
    snprintf(cmd, sizeof(cmd), "zstd -q -d -f -o %s %s", raw_path,
             sec_path);
    CHECK(n > 0 && system(cmd) == 0);
    nr = read_file(raw_path, &raw);

    /* The decoded bytes are the records' tokens, in order. */
    long at = 0;
    for (uint64_t i = 0; i < 40; i++) {
        gen_record g;

        gen(&g, i, 100277, SHARD_LABEL_NEG);
        CHECK(at + (long)g.n * 4 <= nr);
        CHECK(memcmp(raw + at, g.tokens, g.n * 4) == 0);
        at += (long)g.n * 4;
    }
    CHECK_EQ_INT(at, nr);
    free(file);
    free(raw);
}

TEST(writer_refuses_a_dir_with_shards_and_bad_tokens)
{
    const char *root = scratch("zstd");
    char dir[600];
    shard_writer_options o = SHARD_WRITER_OPTIONS_INIT;
    shard_stream *s;
    uint32_t bad = 100;

    snprintf(dir, sizeof(dir), "%s/neg", root);
    CHECK(shard_stream_open(&s, dir, &o) == SHARD_EINVAL);
    o.tokenizer.vocab_size = 100;
    CHECK(shard_stream_open(&s, scratch("fresh"), &o) == 0);
    shard_record_in in = {.tokens = &bad, .n_tokens = 1, .label = 1};
    CHECK(shard_stream_add(s, &in) == SHARD_EINVAL);
    CHECK(strstr(shard_stream_errmsg(s), "vocabulary") != NULL);
    shard_stream_free(s);
}

TEST_MAIN()
