/*
 * shard_reader_fuzzer.c - fuzzes the shard reader (shard_reader.h) on
 * hostile files.
 *
 * Each input is a shard file.  It is tried as it stands and, when that
 * differs, "sealed": its file size field, frame checksums, section
 * checksums, body and header checksums recomputed and its padding zeroed,
 * as a forger would, so that mutations reach the checks behind the
 * checksums.  For each file the harness checks, and aborts when one fails:
 *   1. A failed open leaves no handle, returns SHARD_ECORRUPT or
 *      SHARD_EFORMAT and a message naming the file; verify then reports a
 *      problem, and shard_dataset_open on the path fails the same way.
 *   2. A record read returns 0 or SHARD_ECORRUPT, and the same again from
 *      the cache, from a second reader without a cache reading backwards,
 *      and through shard_dataset_get.  A record read is whole: its tokens
 *      are aligned and readable to the last one, prompt_len <= n_tokens,
 *      label < 3, its fields equal the columns, and when every record
 *      reads, their token counts add up to the header's.
 *   3. Record views outlive their reader: the tokens read the same after
 *      shard_reader_close, until shard_record_release.
 *   4. Text reads give SHARD_ENOTFOUND without a text section, else 0 or
 *      SHARD_ECORRUPT; their messages are readable to the last byte.
 *   5. Every SHARD_COL_* column is present, N elements of its width.
 *   6. A record that fails to read means verify reports a problem.  (Text
 *      records are not parsed by verify, so a malformed one may pass it.)
 *   7. A sealed file whose every record and text reads verifies without a
 *      problem.  A file the writer made is sealed already, so the seeds
 *      check that verify accepts the writer's output.
 * Memory is plentiful for inputs this small, so SHARD_ENOMEM anywhere is a
 * finding: a bad file reported as a lack of memory, or a frame claiming
 * more memory than its stored bytes can fill.
 *
 * The corpus, fuzz/corpus/shard_reader: the golden shard and the files
 * fuzz/gen_shard_seeds.c writes, crash_* inputs that once broke the reader,
 * unused_tail_block (a writer's file with a block appended that no section
 * uses, sealed, then one byte of that block set, so that verify's check of
 * unused bytes has something to find), and fuzzed_* inputs libFuzzer found
 * that add coverage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "fuzz.h"
#include "format.h"
#include "shard_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frames that decode to more than this are left unsealed. */
#define SEAL_MAX_RAW (4u << 20)

/* ---- sealing ------------------------------------------------------- */

/* A section table entry, when it lies inside the file. */
static int entry_at(const unsigned char *b, size_t n, uint32_t i,
                    uint64_t *off, uint64_t *size)
{
    const unsigned char *e =
        b + SHARD_HEADER_FIXED + (size_t)i * SHARD_SECTION_ENTRY;

    *off = shard_le64(e + SEC_OFFSET);
    *size = shard_le64(e + SEC_SIZE);
    return *off <= n && *size <= n - *off;
}

/* The first section of `kind` inside the file, or -1. */
static long find_section(const unsigned char *b, size_t n, uint32_t count,
                         uint32_t kind)
{
    uint64_t off, size;

    for (uint32_t i = 0; i < count; i++)
        if (shard_le32(b + SHARD_HEADER_FIXED + (size_t)i *
                       SHARD_SECTION_ENTRY + SEC_KIND) == kind &&
            entry_at(b, n, i, &off, &size))
            return (long)i;
    return -1;
}

/*
 * Zeroes what verify calls padding: the bytes from each section's end to
 * the next multiple of SHARD_ALIGN, and every block past the header that
 * no section touches.  Returns 0 when a section lies outside the file.
 */
static int seal_padding(unsigned char *b, size_t n, uint32_t hsize,
                        uint32_t count)
{
    unsigned char *used = calloc(n / SHARD_ALIGN + 1, 1);
    uint64_t off, size;
    int inside = 1;

    REQUIRE(used != NULL);
    for (uint32_t i = 0; i < count; i++) {
        if (!entry_at(b, n, i, &off, &size)) {
            inside = 0;
            continue;
        }
        for (uint64_t k = off / SHARD_ALIGN; k * SHARD_ALIGN < off + size;
             k++)
            used[k] = 1;
        for (uint64_t q = off + size; q % SHARD_ALIGN && q < n; q++)
            b[q] = 0;
    }
    for (uint64_t k = hsize / SHARD_ALIGN; k * SHARD_ALIGN < n; k++)
        if (!used[k])
            memset(b + k * SHARD_ALIGN, 0,
                   n - k * SHARD_ALIGN < SHARD_ALIGN ? n - k * SHARD_ALIGN
                                                     : SHARD_ALIGN);
    free(used);
    return inside;
}

/* Sets each frame's checksum to that of its bytes, once decoded. */
static void seal_frames(unsigned char *b, size_t n, uint32_t count,
                        uint32_t table_kind, uint32_t data_kind, int codec)
{
    long t = find_section(b, n, count, table_kind);
    long d = find_section(b, n, count, data_kind);
    uint64_t toff, tsize, doff, dsize;

    if (t < 0 || d < 0)
        return;
    entry_at(b, n, (uint32_t)t, &toff, &tsize);
    entry_at(b, n, (uint32_t)d, &doff, &dsize);
    for (uint64_t k = 0; k < tsize / SHARD_FRAME_ENTRY; k++) {
        unsigned char *e = b + toff + k * SHARD_FRAME_ENTRY;
        uint64_t off = shard_le64(e + FRM_OFFSET);
        uint64_t stored = shard_le64(e + FRM_STORED);
        uint64_t raw = shard_le64(e + FRM_RAW);
        const unsigned char *src;
        void *dst;

        if (off > dsize || stored > dsize - off)
            continue;
        src = b + doff + off;
        if (codec == 0) {
            if (raw == stored)
                shard_put64(e + FRM_SUM, XXH64(src, raw, 0));
            continue;
        }
        if (raw > SEAL_MAX_RAW || !(dst = malloc(raw ? raw : 1)))
            continue;
        if (ZSTD_decompress(dst, raw, src, stored) == raw)
            shard_put64(e + FRM_SUM, XXH64(dst, raw, 0));
        free(dst);
    }
}

/*
 * Makes every checksum of the file in `b` hold and zeroes its padding.
 * Returns 1 when verify could then pass it: the header is readable and
 * every section lies inside the file.
 */
static int seal(unsigned char *b, size_t n)
{
    uint32_t hsize, count;
    uint64_t off, size;
    int inside;

    if (n < SHARD_HEADER_FIXED || memcmp(b, SHARD_MAGIC, SHARD_MAGIC_LEN))
        return 0;
    shard_put64(b + HDR_FILE_SIZE, n);
    hsize = shard_le32(b + HDR_HEADER_SIZE);
    count = shard_le32(b + HDR_SECTION_COUNT);
    if (hsize < SHARD_HEADER_FIXED || hsize % SHARD_ALIGN || hsize > n ||
        count > (hsize - SHARD_HEADER_FIXED) / SHARD_SECTION_ENTRY)
        return 0;

    inside = seal_padding(b, n, hsize, count);
    seal_frames(b, n, count, SHARD_SEC_TOKEN_FRAMES, SHARD_SEC_TOKENS,
                b[HDR_CODEC]);
    seal_frames(b, n, count, SHARD_SEC_TEXT_FRAMES, SHARD_SEC_TEXT, 1);
    for (uint32_t i = 0; i < count; i++) {
        unsigned char *e =
            b + SHARD_HEADER_FIXED + (size_t)i * SHARD_SECTION_ENTRY;

        if (entry_at(b, n, i, &off, &size))
            shard_put64(e + SEC_SUM, XXH3_64bits(b + off, size));
    }
    shard_put64(b + HDR_BODY_SUM, XXH3_64bits(b + hsize, n - hsize));
    shard_put64(b + HDR_HEADER_SUM, 0);
    shard_put64(b + HDR_HEADER_SUM, XXH3_64bits(b, hsize));
    return inside;
}

/* ---- reading ------------------------------------------------------- */

/* What a read of one record gave: its code and a hash of the view. */
typedef struct {
    int rc;
    uint64_t hash;
} outcome;

typedef struct {
    const char *path;
    int problems;
} verify_ctx;

static void on_problem(void *ctx, const char *msg)
{
    verify_ctx *v = ctx;

    REQUIRE(msg[0] != '\0' && strchr(msg, '\n') == NULL);
    REQUIRE(strstr(msg, v->path) != NULL);
    v->problems++;
}

/* Hashes every field and every token of a record view. */
static uint64_t record_hash(const shard_record *rec)
{
    uint64_t h = 0xcbf29ce484222325ull;

    h = mix_u64(h, rec->n_tokens);
    h = mix_u64(h, rec->prompt_len);
    h = mix_u64(h, (uint64_t)rec->label);
    h = mix(h, &rec->reward, sizeof(rec->reward));
    h = mix_u64(h, rec->prompt_id);
    h = mix_u64(h, rec->pair_id);
    h = mix_u64(h, rec->record_id);
    h = mix_u64(h, rec->source_file);
    h = mix_u64(h, rec->source_line);
    h = mix_u64(h, rec->flags);
    for (size_t k = 0; k < rec->n_tokens; k++)
        h = mix_u64(h, shard_record_token(rec, k));
    return h;
}

/* The columns a record view must agree with. */
typedef struct {
    const uint32_t *prompt_len;
    const uint8_t *label;
    const unsigned char *reward;
    const uint64_t *prompt_id, *pair_id, *record_id;
} columns;

/* Where column bytes are summed, so that reading them is not elided. */
static volatile uint64_t column_sink;

static const void *column(const shard_reader *r, int kind, size_t want)
{
    size_t count = 0, width = 0;
    const void *p = shard_reader_column(r, kind, &count, &width);

    REQUIRE(p != NULL && count == shard_reader_count(r) && width == want);
    column_sink = mix(column_sink, p, count * width);
    return p;
}

static columns check_columns(const shard_reader *r)
{
    static const int absent[] = {-1, 0, SHARD_SEC_TOKEN_FRAMES,
                                 SHARD_SEC_TOKENS, SHARD_SEC_TEXT, 31, 32,
                                 1 << 20};
    columns c;
    size_t count, width;

    c.prompt_len = column(r, SHARD_COL_PROMPT_LEN, 4);
    c.label = column(r, SHARD_COL_LABEL, 1);
    c.reward = column(r, SHARD_COL_REWARD, 8);
    c.prompt_id = column(r, SHARD_COL_PROMPT_ID, 8);
    c.pair_id = column(r, SHARD_COL_PAIR_ID, 8);
    c.record_id = column(r, SHARD_COL_RECORD_ID, 8);
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        REQUIRE(shard_reader_column(r, absent[i], &count, &width) == NULL);
    return c;
}

/* Checks a successful read of record i and returns its hash. */
static uint64_t check_record(const shard_reader *r, const columns *c,
                             uint64_t i, const shard_record *rec)
{
    const shard_info *in = shard_reader_info(r);

    REQUIRE(rec->index == i && rec->dtype == in->dtype);
    REQUIRE(rec->ref != NULL && rec->tokens != NULL);
    REQUIRE((uintptr_t)rec->tokens % rec->dtype == 0);
    REQUIRE(rec->n_tokens <= in->tokens);
    REQUIRE(rec->prompt_len <= rec->n_tokens);
    REQUIRE(rec->label >= 0 && rec->label < SHARD_LABEL_COUNT);
    REQUIRE(rec->prompt_len == c->prompt_len[i]);
    REQUIRE(rec->label == c->label[i]);
    REQUIRE(memcmp(&rec->reward, c->reward + i * 8, 8) == 0);
    REQUIRE(rec->prompt_id == c->prompt_id[i]);
    REQUIRE(rec->pair_id == c->pair_id[i]);
    REQUIRE(rec->record_id == c->record_id[i]);
    return record_hash(rec);
}

/* A failed read: a corrupt frame, named in the message, and no view. */
static void check_failed_get(const shard_reader *r, const shard_record *rec,
                             int rc)
{
    REQUIRE(rc == SHARD_ECORRUPT);
    REQUIRE(rec->ref == NULL && rec->tokens == NULL);
    REQUIRE(strstr(shard_reader_errmsg(r), shard_reader_path(r)));
}

/* Reads record i's text; returns 0 or the code, hashing it into *h. */
static int check_text(shard_reader *r, uint64_t i, uint64_t *h)
{
    shard_text t;
    int rc = shard_reader_text(r, i, &t);

    if (!shard_reader_info(r)->has_text) {
        REQUIRE(rc == SHARD_ENOTFOUND && t.messages == NULL);
        return rc;
    }
    if (i >= shard_reader_count(r)) {
        REQUIRE(rc == SHARD_EINVAL && t.messages == NULL);
        return rc;
    }
    if (rc < 0) {
        REQUIRE(rc == SHARD_ECORRUPT);
        REQUIRE(strstr(shard_reader_errmsg(r), shard_reader_path(r)));
        REQUIRE(t.messages == NULL && t.storage == NULL);
        shard_text_free(&t);
        return rc;
    }
    REQUIRE(t.messages != NULL && t.storage != NULL);
    *h = mix_u64(*h, t.n_messages);
    for (size_t k = 0; k < t.n_messages; k++) {
        const shard_text_message *m = &t.messages[k];

        REQUIRE(m->role_len <= 255);
        *h = mix(*h, m->role, m->role_len);
        *h = mix_u64(*h, m->content_len);
        *h = mix(*h, m->content, m->content_len);
    }
    shard_text_free(&t);
    REQUIRE(t.messages == NULL && t.storage == NULL);
    return 0;
}

static void check_info(const shard_reader *r, const char *path, size_t n)
{
    const shard_info *in = shard_reader_info(r);
    uint64_t count = shard_reader_count(r);

    REQUIRE(strcmp(shard_reader_path(r), path) == 0);
    REQUIRE(in->records == count && in->file_size == n);
    REQUIRE(in->major == SHARD_FORMAT_MAJOR);
    REQUIRE(in->dtype == 2 || in->dtype == 4);
    REQUIRE(in->codec == 0 || in->codec == 1);
    REQUIRE(in->has_text == 0 || in->has_text == 1);
    REQUIRE(in->frames <= count && (count == 0) == (in->frames == 0));
    REQUIRE(strlen(in->tokenizer) <= SHARD_TOK_NAME_MAX);
    REQUIRE(strlen(in->template_name) <= SHARD_TEMPLATE_MAX);
}

/* Results of reading a whole shard once, compared between readers. */
typedef struct {
    uint64_t count;
    outcome *get;  /* per record */
    outcome *text; /* per record */
    int get_failed, text_failed;
} reading;

/*
 * Reads every record, its text and the columns with a default reader,
 * holding every view past shard_reader_close.  Fills *out.
 */
static void read_first(shard_reader *r, const char *path, size_t n,
                       reading *out)
{
    uint64_t count = shard_reader_count(r), tokens = 0;
    shard_record *held = calloc(count + 1, sizeof(*held));
    columns c;
    shard_record extra;

    check_info(r, path, n);
    c = check_columns(r);
    out->count = count;
    out->get = calloc(count + 1, sizeof(*out->get));
    out->text = calloc(count + 1, sizeof(*out->text));
    REQUIRE(held && out->get && out->text);

    for (uint64_t i = 0; i < count; i++) {
        outcome *o = &out->get[i];

        if ((o->rc = shard_reader_get(r, i, &held[i])) < 0) {
            check_failed_get(r, &held[i], o->rc);
            out->get_failed = 1;
            continue;
        }
        o->hash = check_record(r, &c, i, &held[i]);
        tokens += held[i].n_tokens;
    }
    REQUIRE(out->get_failed || tokens == shard_reader_info(r)->tokens);

    /* Again, now that the frames are cached (or known bad). */
    for (uint64_t i = 0; i < count; i++) {
        REQUIRE(shard_reader_get(r, i, &extra) == out->get[i].rc);
        REQUIRE(extra.ref == NULL ||
                check_record(r, &c, i, &extra) == out->get[i].hash);
        shard_record_release(&extra);
    }
    REQUIRE(shard_reader_get(r, count, &extra) == SHARD_EINVAL);
    REQUIRE(shard_reader_get(r, UINT64_MAX, &extra) == SHARD_EINVAL);
    REQUIRE(extra.ref == NULL);

    for (uint64_t i = 0; i < count; i++)
        if ((out->text[i].rc = check_text(r, i, &out->text[i].hash)) < 0 &&
            out->text[i].rc != SHARD_ENOTFOUND)
            out->text_failed = 1;
    REQUIRE(check_text(r, count, &out->text[count].hash) < 0);

    shard_reader_close(r);
    for (uint64_t i = 0; i < count; i++) {
        REQUIRE(held[i].ref == NULL ||
                record_hash(&held[i]) == out->get[i].hash);
        shard_record_release(&held[i]);
        shard_record_release(&held[i]);
    }
    free(held);
}

/* A reader that caches nothing, reading backwards, must agree. */
static void read_uncached(const char *path, const reading *first)
{
    shard_reader_options o = SHARD_READER_OPTIONS_INIT;
    shard_reader *r;
    shard_record rec;
    columns c;

    o.cache_bytes = 0;
    REQUIRE(shard_reader_open(&r, path, &o) == 0);
    c = check_columns(r);
    for (uint64_t i = first->count; i-- > 0;) {
        uint64_t h = 0;

        REQUIRE(shard_reader_get(r, i, &rec) == first->get[i].rc);
        REQUIRE(rec.ref == NULL ||
                check_record(r, &c, i, &rec) == first->get[i].hash);
        shard_record_release(&rec);
        REQUIRE(check_text(r, i, &h) == first->text[i].rc);
        REQUIRE(h == first->text[i].hash);
    }
    shard_reader_close(r);
}

/* The file opened as a dataset is the same records. */
static void read_dataset(const char *path, const reading *first)
{
    shard_dataset *d;
    shard_record rec;

    REQUIRE(shard_dataset_open(&d, path, SHARD_LABEL_POS, NULL) == 0);
    REQUIRE(shard_dataset_count(d) == first->count);
    shard_dataset_close(d);

    REQUIRE(shard_dataset_open(&d, path, -1, NULL) == 0);
    REQUIRE(shard_dataset_shards(d) == 1);
    REQUIRE(shard_dataset_shard(d, 0) != NULL);
    REQUIRE(shard_dataset_shard(d, 1) == NULL);
    REQUIRE(shard_dataset_count(d) == first->count);
    for (uint64_t i = 0; i < first->count; i++) {
        REQUIRE(shard_dataset_get(d, i, &rec) == first->get[i].rc);
        REQUIRE(rec.ref == NULL || record_hash(&rec) == first->get[i].hash);
        REQUIRE(rec.ref != NULL || shard_dataset_errmsg(d)[0] != '\0');
        shard_record_release(&rec);
    }
    REQUIRE(shard_dataset_get(d, first->count, &rec) == SHARD_EINVAL);
    shard_dataset_close(d);
}

/* Returns the path of a file holding exactly the n bytes at p. */
static const char *put_file(const unsigned char *p, size_t n)
{
    static char path[64];
    static int fd = -1;
    size_t done = 0;

    if (fd < 0) {
        fd = memfd_create("shard_reader_fuzzer", MFD_CLOEXEC);
        REQUIRE(fd >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    REQUIRE(ftruncate(fd, 0) == 0);
    while (done < n) {
        ssize_t w = pwrite(fd, p + done, n - done, (off_t)done);

        REQUIRE(w > 0);
        done += (size_t)w;
    }
    return path;
}

/* Runs every check on one file; `sealed` as returned by seal(). */
static void check_file(const unsigned char *p, size_t n, int sealed)
{
    const char *path = put_file(p, n);
    verify_ctx v = {path, 0};
    int problems = shard_verify_file(path, on_problem, &v);
    shard_reader *r = NULL;
    shard_dataset *d = NULL;
    reading first = {0, NULL, NULL, 0, 0};
    int rc;

    REQUIRE(problems >= 0 && problems == v.problems);
    rc = shard_reader_open(&r, path, NULL);
    if (rc < 0) {
        REQUIRE(r == NULL && problems > 0);
        REQUIRE(rc == SHARD_ECORRUPT || rc == SHARD_EFORMAT);
        REQUIRE(strstr(shard_last_error(), path) != NULL);
        REQUIRE(shard_dataset_open(&d, path, -1, NULL) == rc);
        REQUIRE(d == NULL);
        return;
    }

    read_first(r, path, n, &first);
    read_uncached(path, &first);
    read_dataset(path, &first);
    REQUIRE(!first.get_failed || problems > 0);
    REQUIRE(!sealed || first.get_failed || first.text_failed ||
            problems == 0);
    free(first.get);
    free(first.text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *sealed = malloc(size ? size : 1);
    unsigned char *again = malloc(size ? size : 1);
    int ok;

    REQUIRE(sealed && again);
    memcpy(sealed, data, size);
    ok = seal(sealed, size);
    if (memcmp(sealed, data, size) == 0) {
        check_file(data, size, ok);
    } else {
        check_file(data, size, 0);

        /* Sealing twice changes nothing unless sections overlap. */
        memcpy(again, sealed, size);
        ok = seal(again, size) && memcmp(again, sealed, size) == 0;
        check_file(sealed, size, ok);
    }
    free(sealed);
    free(again);
    return 0;
}
