/*
 * shard_reader.c - maps and checks one shard file (FORMAT.md).
 *
 * Every offset and count read from the file is bounded before use: open()
 * validates the header, the section table, the columns and the frame
 * tables, so that record access afterwards needs no further bounds checks
 * on them.  Frame contents are checked when first decoded.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "dataset_internal.h"
#include "format.h"
#include "internal.h"
#include "shard_reader.h"

#define MAX_KIND 32

/*
 * Most raw bytes one stored byte of zstd decodes to: a block yields at most
 * 128 KiB and takes at least 4 bytes (its header and one RLE byte).
 */
#define ZSTD_MAX_EXPANSION (128 * 1024 / 4)

/* Memory shared by record views: the mapping, or a decompressed frame. */
struct shard_buf {
    atomic_long refs;
    int mapped;
    void *base;
    size_t len;
};

static shard_buf *buf_ref(shard_buf *b)
{
    atomic_fetch_add(&b->refs, 1);
    return b;
}

static void buf_unref(shard_buf *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    if (b->mapped)
        munmap(b->base, b->len);
    else
        free(b->base);
    free(b);
}

void shard_record_release(shard_record *r)
{
    if (!r)
        return;
    buf_unref(r->ref);
    r->ref = NULL;
    r->tokens = NULL;
}

typedef struct {
    const unsigned char *p;
    uint64_t off, size, sum;
    int present;
} section;

/* A frame table: where each frame's stored bytes lie, and its records. */
typedef struct {
    const unsigned char *table;
    uint64_t n;
    const unsigned char *data; /* the data section */
    uint64_t data_size;
    const uint64_t *offsets;   /* record boundaries, in units */
    unsigned unit;             /* bytes per unit of `offsets` */
    int codec;
    const char *name;          /* "tokens" or "text" */
} frameset;

struct shard_reader {
    char path[4096];
    char err[SHARD_ERRMAX];
    shard_buf *map;
    const unsigned char *base;
    shard_info info;
    section sec[MAX_KIND];
    frameset tok, text;

    pthread_mutex_t lock;
    shard_buf **cache;        /* per token frame, NULL when not cached */
    uint64_t *last_use;       /* per token frame, for LRU eviction */
    uint64_t clock;
    uint64_t cached_bytes, cache_budget;
    atomic_ullong decoded;    /* token frames decoded, for statistics */
    atomic_uchar *checked;    /* per frame of codec none: 1 when verified */
    shard_buf *text_frame;    /* the text frame decoded last, or NULL */
    uint64_t text_k;          /* its number */
};

static uint64_t frame_field(const frameset *f, uint64_t k, int field)
{
    return shard_le64(f->table + k * SHARD_FRAME_ENTRY + field);
}

/* Frame holding record i: the last frame whose first record is <= i. */
static uint64_t frame_of(const frameset *f, uint64_t i)
{
    uint64_t lo = 0, hi = f->n;

    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;

        if (frame_field(f, mid, FRM_FIRST) <= i)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Decodes frame k of f into a new 64-byte aligned buffer and checks its
 * checksum.  Returns 0 and *out, or SHARD_ECORRUPT / SHARD_ENOMEM with a
 * message in err.
 */
static int frame_decode(const char *path, const frameset *f, uint64_t k,
                        char *err, shard_buf **out)
{
    uint64_t off = frame_field(f, k, FRM_OFFSET);
    uint64_t stored = frame_field(f, k, FRM_STORED);
    uint64_t raw = frame_field(f, k, FRM_RAW);
    shard_buf *b = calloc(1, sizeof(*b));
    void *mem = NULL;

    *out = NULL;
    if (!b || posix_memalign(&mem, SHARD_ALIGN, raw ? raw : 1) != 0) {
        free(b);
        return shard_errf(err, SHARD_ENOMEM, "%s: out of memory", path);
    }
    atomic_init(&b->refs, 1);
    b->base = mem;
    b->len = raw;

    if (f->codec == 1) {
        size_t got = ZSTD_decompress(mem, raw, f->data + off, stored);

        if (ZSTD_isError(got) || got != raw) {
            buf_unref(b);
            return shard_errf(err, SHARD_ECORRUPT,
                              "%s: %s: frame %llu: %s", path, f->name,
                              (unsigned long long)k,
                              ZSTD_isError(got) ? ZSTD_getErrorName(got)
                                                : "wrong decoded size");
        }
    } else {
        memcpy(mem, f->data + off, raw);
    }
    if (XXH64(mem, raw, 0) != frame_field(f, k, FRM_SUM)) {
        buf_unref(b);
        return shard_errf(err, SHARD_ECORRUPT,
                          "%s: %s: frame %llu: checksum mismatch", path,
                          f->name, (unsigned long long)k);
    }
    *out = b;
    return 0;
}

/* Evicts least recently used frames until the cache fits its budget. */
static void cache_trim(shard_reader *r)
{
    while (r->cached_bytes > r->cache_budget) {
        uint64_t victim = UINT64_MAX, oldest = UINT64_MAX;

        for (uint64_t k = 0; k < r->tok.n; k++)
            if (r->cache[k] && r->last_use[k] < oldest) {
                oldest = r->last_use[k];
                victim = k;
            }
        if (victim == UINT64_MAX)
            return;
        r->cached_bytes -= r->cache[victim]->len;
        buf_unref(r->cache[victim]);
        r->cache[victim] = NULL;
    }
}

/* Returns a new reference to token frame k, decoding it if needed. */
static int frame_get(shard_reader *r, uint64_t k, shard_buf **out)
{
    shard_buf *b;
    int rc;

    pthread_mutex_lock(&r->lock);
    if (r->cache[k]) {
        r->last_use[k] = ++r->clock;
        *out = buf_ref(r->cache[k]);
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    pthread_mutex_unlock(&r->lock);

    char err[SHARD_ERRMAX];
    atomic_fetch_add(&r->decoded, 1);
    if ((rc = frame_decode(r->path, &r->tok, k, err, &b)) < 0) {
        pthread_mutex_lock(&r->lock);
        memcpy(r->err, err, SHARD_ERRMAX);
        pthread_mutex_unlock(&r->lock);
        return rc;
    }

    pthread_mutex_lock(&r->lock);
    if (r->cache[k]) { /* another thread decoded it meanwhile */
        buf_unref(b);
    } else {
        r->cache[k] = b;
        r->cached_bytes += b->len;
    }
    r->last_use[k] = ++r->clock;
    *out = buf_ref(r->cache[k]);
    cache_trim(r);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* For codec none: checks frame k's checksum once, then trusts it. */
static int frame_check_raw(shard_reader *r, uint64_t k)
{
    const frameset *f = &r->tok;
    uint64_t off = frame_field(f, k, FRM_OFFSET);
    uint64_t raw = frame_field(f, k, FRM_RAW);

    if (atomic_load(&r->checked[k]))
        return 0;
    if (XXH64(f->data + off, raw, 0) != frame_field(f, k, FRM_SUM)) {
        pthread_mutex_lock(&r->lock);
        shard_errf(r->err, SHARD_ECORRUPT,
                   "%s: tokens: frame %llu: checksum mismatch", r->path,
                   (unsigned long long)k);
        pthread_mutex_unlock(&r->lock);
        return SHARD_ECORRUPT;
    }
    atomic_store(&r->checked[k], 1);
    return 0;
}

#define COL(r, kind, type) ((const type *)(r)->sec[kind].p)

static void fill_columns(const shard_reader *r, uint64_t i, shard_record *rec)
{
    const uint64_t *off = COL(r, SHARD_SEC_TOKEN_OFFSETS, uint64_t);

    rec->index = i;
    rec->n_tokens = (size_t)(off[i + 1] - off[i]);
    rec->dtype = r->info.dtype;
    rec->prompt_len = COL(r, SHARD_SEC_PROMPT_LEN, uint32_t)[i];
    rec->label = COL(r, SHARD_SEC_LABEL, uint8_t)[i];
    memcpy(&rec->reward, r->sec[SHARD_SEC_REWARD].p + i * 8, 8);
    rec->prompt_id = COL(r, SHARD_SEC_PROMPT_ID, uint64_t)[i];
    rec->pair_id = COL(r, SHARD_SEC_PAIR_ID, uint64_t)[i];
    rec->record_id = COL(r, SHARD_SEC_RECORD_ID, uint64_t)[i];
    rec->source_file = COL(r, SHARD_SEC_SOURCE_FILE, uint32_t)[i];
    rec->source_line = COL(r, SHARD_SEC_SOURCE_LINE, uint64_t)[i];
    rec->flags = COL(r, SHARD_SEC_FLAGS, uint32_t)[i];
}

uint64_t shard_reader_frames(const shard_reader *r)
{
    return r->tok.n;
}

void shard_reader_frame_span(const shard_reader *r, uint64_t k,
                             uint64_t *first, uint64_t *count)
{
    *first = frame_field(&r->tok, k, FRM_FIRST);
    *count = frame_field(&r->tok, k, FRM_COUNT);
}

uint64_t shard_reader_frames_decoded(const shard_reader *r)
{
    return atomic_load(&((shard_reader *)r)->decoded);
}

uint64_t shard_reader_frame_of(const shard_reader *r, uint64_t i)
{
    return frame_of(&r->tok, i);
}

int shard_reader_frame(shard_reader *r, uint64_t k, shard_frame *out)
{
    const frameset *f = &r->tok;
    shard_buf *b;
    int rc;

    memset(out, 0, sizeof(*out));
    if (k >= f->n)
        return shard_errf(r->err, SHARD_EINVAL,
                          "%s: frame %llu out of range (%llu frames)",
                          r->path, (unsigned long long)k,
                          (unsigned long long)f->n);
    if (f->codec == 0) {
        if ((rc = frame_check_raw(r, k)) < 0)
            return rc;
        out->data = f->data + frame_field(f, k, FRM_OFFSET);
        out->ref = buf_ref(r->map);
    } else {
        if ((rc = frame_get(r, k, &b)) < 0)
            return rc;
        out->data = b->base;
        out->ref = b;
    }
    out->index = k;
    shard_reader_frame_span(r, k, &out->first, &out->count);
    return 0;
}

int shard_reader_frame_record(const shard_reader *r, const shard_frame *fr,
                              uint64_t i, shard_record *rec)
{
    const frameset *f = &r->tok;

    memset(rec, 0, sizeof(*rec));
    if (!fr->ref || i < fr->first || i - fr->first >= fr->count)
        return SHARD_EINVAL;
    fill_columns(r, i, rec);
    rec->tokens = fr->data + (f->offsets[i] - f->offsets[fr->first]) *
                                 f->unit;
    rec->ref = buf_ref(fr->ref);
    return 0;
}

void shard_reader_frame_peek(const shard_reader *r, const shard_frame *fr,
                             uint64_t i, shard_record *rec)
{
    const uint64_t *off = r->tok.offsets;

    rec->index = i;
    rec->tokens = fr->data + (off[i] - off[fr->first]) * r->tok.unit;
    rec->n_tokens = (size_t)(off[i + 1] - off[i]);
    rec->dtype = r->info.dtype;
    rec->prompt_len = COL(r, SHARD_SEC_PROMPT_LEN, uint32_t)[i];
    rec->label = COL(r, SHARD_SEC_LABEL, uint8_t)[i];
    rec->ref = NULL;
}

void shard_frame_release(shard_frame *f)
{
    if (!f)
        return;
    buf_unref(f->ref);
    f->ref = NULL;
    f->data = NULL;
}

int shard_reader_get(shard_reader *r, uint64_t i, shard_record *rec)
{
    shard_frame fr;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (i >= r->info.records)
        return shard_errf(r->err, SHARD_EINVAL,
                          "%s: record %llu out of range (%llu records)",
                          r->path, (unsigned long long)i,
                          (unsigned long long)r->info.records);
    if ((rc = shard_reader_frame(r, frame_of(&r->tok, i), &fr)) < 0)
        return rc;
    rc = shard_reader_frame_record(r, &fr, i, rec);
    shard_frame_release(&fr);
    return rc;
}

/* ---- opening and validation ---------------------------------------- */

static const struct known_section {
    int kind;
    const char *name;
    unsigned width; /* per record; 0 for data and frame tables */
    int plus_one;   /* offsets columns hold N+1 entries */
} known[] = {
    {SHARD_SEC_TOKEN_OFFSETS, "token offsets", 8, 1},
    {SHARD_SEC_PROMPT_LEN, "prompt length", 4, 0},
    {SHARD_SEC_LABEL, "label", 1, 0},
    {SHARD_SEC_REWARD, "reward", 8, 0},
    {SHARD_SEC_PROMPT_ID, "prompt id", 8, 0},
    {SHARD_SEC_PAIR_ID, "pair id", 8, 0},
    {SHARD_SEC_RECORD_ID, "record id", 8, 0},
    {SHARD_SEC_SOURCE_FILE, "source file", 4, 0},
    {SHARD_SEC_SOURCE_LINE, "source line", 8, 0},
    {SHARD_SEC_FLAGS, "flags", 4, 0},
    {SHARD_SEC_TOKEN_FRAMES, "token frames", 0, 0},
    {SHARD_SEC_TOKENS, "tokens", 0, 0},
    {SHARD_SEC_TEXT_OFFSETS, "text offsets", 8, 1},
    {SHARD_SEC_TEXT_FRAMES, "text frames", 0, 0},
    {SHARD_SEC_TEXT, "text", 0, 0},
};
#define N_KNOWN (sizeof(known) / sizeof(known[0]))

static const struct known_section *known_kind(uint32_t kind)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if ((uint32_t)known[i].kind == kind)
            return &known[i];
    return NULL;
}

const char *shard_section_name(uint32_t kind);
const char *shard_section_name(uint32_t kind)
{
    const struct known_section *k = known_kind(kind);

    return k ? k->name : "unknown section";
}

/*
 * Checks the fixed header: magic, version, sizes, checksum.  `len` is the
 * file's real size; nothing at or past it is read.
 */
static int check_header(const char *path, const unsigned char *h,
                        uint64_t len, char *err)
{
    uint32_t hsize, count;
    unsigned char tmp[8];
    uint64_t sum;

    if (len < SHARD_HEADER_FIXED)
        return shard_errf(err, SHARD_ECORRUPT,
                          "%s: header: file too short (%llu bytes)", path,
                          (unsigned long long)len);
    if (memcmp(h, SHARD_MAGIC, SHARD_MAGIC_LEN) != 0)
        return shard_errf(err, SHARD_ECORRUPT,
                          "%s: header: not a shard file (bad magic)", path);
    if (shard_le16(h + HDR_MAJOR) != SHARD_FORMAT_MAJOR)
        return shard_errf(err, SHARD_EFORMAT,
                          "%s: header: format version %u not supported",
                          path, shard_le16(h + HDR_MAJOR));
    hsize = shard_le32(h + HDR_HEADER_SIZE);
    count = shard_le32(h + HDR_SECTION_COUNT);
    if (hsize < SHARD_HEADER_FIXED || hsize % SHARD_ALIGN || hsize > len ||
        count > (hsize - SHARD_HEADER_FIXED) / SHARD_SECTION_ENTRY)
        return shard_errf(err, SHARD_ECORRUPT,
                          "%s: header: bad header size %u for %u sections",
                          path, hsize, count);
    if (shard_le64(h + HDR_FILE_SIZE) != len)
        return shard_errf(err, SHARD_ECORRUPT,
                          "%s: header: file is %llu bytes, header says "
                          "%llu (truncated or extended)",
                          path, (unsigned long long)len,
                          (unsigned long long)shard_le64(h + HDR_FILE_SIZE));

    /* The checksum is computed with its own field zeroed. */
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return shard_errf(err, SHARD_ENOMEM, "%s: out of memory", path);
    memset(tmp, 0, sizeof(tmp));
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, h, HDR_HEADER_SUM);
    XXH3_64bits_update(st, tmp, 8);
    XXH3_64bits_update(st, h + HDR_HEADER_SUM + 8,
                       hsize - HDR_HEADER_SUM - 8);
    sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    if (sum != shard_le64(h + HDR_HEADER_SUM))
        return shard_errf(err, SHARD_ECORRUPT,
                          "%s: header: checksum mismatch", path);
    if (shard_le64(h + HDR_FLAGS) & SHARD_FLAGS_INCOMPAT_MASK &
        ~SHARD_FLAGS_KNOWN)
        return shard_errf(err, SHARD_EFORMAT,
                          "%s: header: unknown required feature flags",
                          path);
    return 0;
}

static void read_info(shard_info *in, const unsigned char *h)
{
    memset(in, 0, sizeof(*in));
    in->major = shard_le16(h + HDR_MAJOR);
    in->minor = shard_le16(h + HDR_MINOR);
    in->records = shard_le64(h + HDR_RECORDS);
    in->tokens = shard_le64(h + HDR_TOKENS);
    in->file_size = shard_le64(h + HDR_FILE_SIZE);
    in->shard_seq = shard_le64(h + HDR_SHARD_SEQ);
    in->label = h[HDR_LABEL];
    in->dtype = h[HDR_DTYPE];
    in->codec = h[HDR_CODEC];
    in->has_text = (shard_le64(h + HDR_FLAGS) & SHARD_FLAG_TEXT) != 0;
    in->checksum = shard_le64(h + HDR_HEADER_SUM);
    memcpy(in->tokenizer, h + HDR_TOK_NAME, SHARD_TOK_NAME_MAX);
    memcpy(in->template_name, h + HDR_TEMPLATE, SHARD_TEMPLATE_MAX);
    in->tokenizer_hash = shard_le64(h + HDR_TOK_HASH);
    in->vocab_size = shard_le32(h + HDR_TOK_VOCAB);
    in->bos_id = shard_le32(h + HDR_TOK_BOS);
    in->eos_id = shard_le32(h + HDR_TOK_EOS);
    in->pad_id = shard_le32(h + HDR_TOK_PAD);
}

/*
 * Reads the section table into sec[]: every section inside the file,
 * aligned, after the header, each kind at most once; unknown kinds are
 * skipped unless flagged required.
 */
static int read_sections(const char *path, const unsigned char *base,
                         section *sec, char *err)
{
    uint32_t hsize = shard_le32(base + HDR_HEADER_SIZE);
    uint32_t count = shard_le32(base + HDR_SECTION_COUNT);
    uint64_t len = shard_le64(base + HDR_FILE_SIZE);

    memset(sec, 0, MAX_KIND * sizeof(*sec));
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *e =
            base + SHARD_HEADER_FIXED + (size_t)i * SHARD_SECTION_ENTRY;
        uint32_t kind = shard_le32(e + SEC_KIND);
        uint64_t off = shard_le64(e + SEC_OFFSET);
        uint64_t size = shard_le64(e + SEC_SIZE);

        if (!known_kind(kind)) {
            if (shard_le32(e + SEC_FLAGS) & SHARD_SECTION_REQUIRED)
                return shard_errf(err, SHARD_EFORMAT,
                                  "%s: section %u: unknown required kind %u",
                                  path, i, kind);
            continue;
        }
        if (off < hsize || off % SHARD_ALIGN || off > len ||
            size > len - off)
            return shard_errf(err, SHARD_ECORRUPT,
                              "%s: %s: outside the file", path,
                              shard_section_name(kind));
        if (sec[kind].present)
            return shard_errf(err, SHARD_ECORRUPT,
                              "%s: %s: listed twice", path,
                              shard_section_name(kind));
        sec[kind] = (section){base + off, off, size,
                              shard_le64(e + SEC_SUM), 1};
    }
    return 0;
}

/* Checks presence, size and checksum of every metadata section. */
static int check_meta_sections(shard_reader *r)
{
    uint64_t n = r->info.records;

    for (size_t i = 0; i < N_KNOWN; i++) {
        const struct known_section *k = &known[i];
        const section *s = &r->sec[k->kind];
        int text_part = k->kind >= SHARD_SEC_TEXT_OFFSETS;

        if (!s->present) {
            if (text_part && !r->info.has_text)
                continue;
            return shard_errf(r->err, SHARD_ECORRUPT, "%s: %s: missing",
                              r->path, k->name);
        }
        if (k->kind == SHARD_SEC_TOKENS || k->kind == SHARD_SEC_TEXT)
            continue; /* checked frame by frame */
        if (k->width && s->size != (n + k->plus_one) * k->width)
            return shard_errf(r->err, SHARD_ECORRUPT,
                              "%s: %s: %llu bytes for %llu records",
                              r->path, k->name,
                              (unsigned long long)s->size,
                              (unsigned long long)n);
        if (XXH3_64bits(s->p, s->size) != s->sum)
            return shard_errf(r->err, SHARD_ECORRUPT,
                              "%s: %s: checksum mismatch", r->path, k->name);
    }
    return 0;
}

/* Offsets must start at 0, never decrease, and end at `total`. */
static int check_offsets(shard_reader *r, const uint64_t *off, uint64_t n,
                         uint64_t total, const char *what)
{
    if (off[0] != 0 || off[n] != total)
        return shard_errf(r->err, SHARD_ECORRUPT,
                          "%s: %s: do not span the data", r->path, what);
    for (uint64_t i = 0; i < n; i++)
        if (off[i + 1] < off[i])
            return shard_errf(r->err, SHARD_ECORRUPT,
                              "%s: %s: record %llu ends before it starts",
                              r->path, what, (unsigned long long)i);
    return 0;
}

/* Bound on what `stored` bytes of a codec can decode to; saturates. */
static uint64_t raw_bound(int codec, uint64_t stored)
{
    if (codec == 0)
        return stored;
    return stored > UINT64_MAX / ZSTD_MAX_EXPANSION
               ? UINT64_MAX
               : stored * ZSTD_MAX_EXPANSION;
}

/*
 * Frames must cover records 0..n in order, lie inside their data section
 * (in order, without overlap), and have raw sizes matching the offsets
 * that their stored bytes can decode to, so that no frame makes the
 * reader reserve more memory than its bytes could fill.
 */
static int check_frames(shard_reader *r, const frameset *f, uint64_t n)
{
    uint64_t next_rec = 0, next_off = 0;

    for (uint64_t k = 0; k < f->n; k++) {
        uint64_t off = frame_field(f, k, FRM_OFFSET);
        uint64_t stored = frame_field(f, k, FRM_STORED);
        uint64_t raw = frame_field(f, k, FRM_RAW);
        uint64_t first = frame_field(f, k, FRM_FIRST);
        uint64_t count = frame_field(f, k, FRM_COUNT);

        if (first != next_rec || count == 0 || count > n - first ||
            off != next_off || stored > f->data_size - off ||
            raw != (f->offsets[first + count] - f->offsets[first]) *
                       f->unit ||
            raw > raw_bound(f->codec, stored) ||
            (f->codec == 0 && stored != raw))
            return shard_errf(r->err, SHARD_ECORRUPT,
                              "%s: %s frames: frame %llu inconsistent",
                              r->path, f->name, (unsigned long long)k);
        next_rec = first + count;
        next_off = off + stored;
    }
    if (next_rec != n)
        return shard_errf(r->err, SHARD_ECORRUPT,
                          "%s: %s frames: cover %llu of %llu records",
                          r->path, f->name, (unsigned long long)next_rec,
                          (unsigned long long)n);
    return 0;
}

static int setup_frameset(shard_reader *r, frameset *f, int table_kind,
                          int data_kind, int offsets_kind, unsigned unit,
                          int codec, const char *name)
{
    const section *t = &r->sec[table_kind];
    const uint64_t *off = (const uint64_t *)r->sec[offsets_kind].p;
    uint64_t n = r->info.records;
    uint64_t total;
    int rc;

    if (t->size % SHARD_FRAME_ENTRY)
        return shard_errf(r->err, SHARD_ECORRUPT, "%s: %s frames: bad size",
                          r->path, name);
    *f = (frameset){t->p, t->size / SHARD_FRAME_ENTRY, r->sec[data_kind].p,
                    r->sec[data_kind].size, off, unit, codec, name};
    total = off[n];
    if (data_kind == SHARD_SEC_TOKENS && total != r->info.tokens)
        return shard_errf(r->err, SHARD_ECORRUPT,
                          "%s: token offsets: end at %llu, header says "
                          "%llu tokens", r->path,
                          (unsigned long long)total,
                          (unsigned long long)r->info.tokens);
    if ((rc = check_offsets(r, off, n, total, name)) < 0)
        return rc;
    return check_frames(r, f, n);
}

static int check_records(shard_reader *r)
{
    const uint64_t *off = COL(r, SHARD_SEC_TOKEN_OFFSETS, uint64_t);
    const uint32_t *plen = COL(r, SHARD_SEC_PROMPT_LEN, uint32_t);
    const uint8_t *label = COL(r, SHARD_SEC_LABEL, uint8_t);

    for (uint64_t i = 0; i < r->info.records; i++)
        if (label[i] >= SHARD_LABEL_COUNT || plen[i] > off[i + 1] - off[i])
            return shard_errf(r->err, SHARD_ECORRUPT,
                              "%s: record %llu: bad label or prompt length",
                              r->path, (unsigned long long)i);
    return 0;
}

static int validate(shard_reader *r)
{
    const shard_info *in = &r->info;
    int rc;

    if (in->dtype != 2 && in->dtype != 4)
        return shard_errf(r->err, SHARD_ECORRUPT,
                          "%s: header: bad token width %u", r->path,
                          in->dtype);
    if (in->codec != 0 && in->codec != 1)
        return shard_errf(r->err, SHARD_EFORMAT,
                          "%s: header: unknown codec %d", r->path,
                          in->codec);
    /* Bounds every token offset, so offset differences times the width
     * cannot overflow; zstd lets a file hold more tokens than bytes. */
    if (in->records > in->file_size ||
        in->tokens > raw_bound(in->codec, in->file_size) / in->dtype)
        return shard_errf(r->err, SHARD_ECORRUPT,
                          "%s: header: impossible record or token count",
                          r->path);
    if ((rc = read_sections(r->path, r->base, r->sec, r->err)) < 0 ||
        (rc = check_meta_sections(r)) < 0 || (rc = check_records(r)) < 0)
        return rc;
    if (in->codec == 0 && r->sec[SHARD_SEC_TOKENS].off % in->dtype)
        return shard_errf(r->err, SHARD_ECORRUPT,
                          "%s: tokens: misaligned", r->path);
    if ((rc = setup_frameset(r, &r->tok, SHARD_SEC_TOKEN_FRAMES,
                             SHARD_SEC_TOKENS, SHARD_SEC_TOKEN_OFFSETS,
                             in->dtype, in->codec, "tokens")) < 0)
        return rc;
    if (in->has_text &&
        (rc = setup_frameset(r, &r->text, SHARD_SEC_TEXT_FRAMES,
                             SHARD_SEC_TEXT, SHARD_SEC_TEXT_OFFSETS, 1, 1,
                             "text")) < 0)
        return rc;
    r->info.frames = r->tok.n;
    return 0;
}

static int map_file(shard_reader *r)
{
    struct stat st;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    void *p;

    if (fd < 0)
        return shard_errf(r->err, errno == ENOENT ? SHARD_ENOTFOUND
                                                  : SHARD_EIO,
                          "%s: %s", r->path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return shard_errf(r->err, SHARD_EIO, "%s: not a regular file",
                          r->path);
    }
    if (st.st_size < SHARD_HEADER_FIXED) {
        close(fd);
        return shard_errf(r->err, SHARD_ECORRUPT,
                          "%s: header: file too short (%lld bytes)",
                          r->path, (long long)st.st_size);
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return shard_errf(r->err, SHARD_EIO, "%s: mmap: %s", r->path,
                          strerror(errno));
    if (!(r->map = calloc(1, sizeof(*r->map)))) {
        munmap(p, (size_t)st.st_size);
        return SHARD_ENOMEM;
    }
    atomic_init(&r->map->refs, 1);
    r->map->mapped = 1;
    r->map->base = p;
    r->map->len = (size_t)st.st_size;
    r->base = p;
    return check_header(r->path, r->base, (uint64_t)st.st_size, r->err);
}

int shard_reader_open(shard_reader **out, const char *path,
                      const shard_reader_options *opts)
{
    shard_reader_options def = SHARD_READER_OPTIONS_INIT;
    shard_reader *r;
    int rc;

    *out = NULL;
    if (!opts)
        opts = &def;
    if (opts->version != SHARD_READER_OPTIONS_VERSION)
        return shard_set_last_error(SHARD_EINVAL,
                                    "reader options: unknown version");
    if (!(r = calloc(1, sizeof(*r))))
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    snprintf(r->path, sizeof(r->path), "%s", path);
    pthread_mutex_init(&r->lock, NULL);
    r->cache_budget = opts->cache_bytes;

    if ((rc = map_file(r)) == 0) {
        read_info(&r->info, r->base);
        rc = validate(r);
    }
    if (rc == 0) {
        r->cache = calloc(r->tok.n + 1, sizeof(*r->cache));
        r->last_use = calloc(r->tok.n + 1, sizeof(*r->last_use));
        r->checked = calloc(r->tok.n + 1, sizeof(*r->checked));
        if (!r->cache || !r->last_use || !r->checked)
            rc = shard_errf(r->err, SHARD_ENOMEM, "%s: out of memory",
                            path);
    }
    if (rc < 0) {
        shard_copy_last_error(r->err[0] ? r->err : shard_strerror(rc));
        shard_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void shard_reader_close(shard_reader *r)
{
    if (!r)
        return;
    for (uint64_t k = 0; r->cache && k < r->tok.n; k++)
        buf_unref(r->cache[k]);
    free(r->cache);
    free(r->last_use);
    free((void *)r->checked);
    buf_unref(r->text_frame);
    buf_unref(r->map);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const shard_info *shard_reader_info(const shard_reader *r)
{
    return &r->info;
}

uint64_t shard_reader_count(const shard_reader *r)
{
    return r->info.records;
}

const char *shard_reader_path(const shard_reader *r)
{
    return r->path;
}

const char *shard_reader_errmsg(const shard_reader *r)
{
    return r->err;
}

const void *shard_reader_column(const shard_reader *r, int kind,
                                size_t *count, size_t *width)
{
    const struct known_section *k;

    if (kind < 0 || kind >= MAX_KIND || !r->sec[kind].present ||
        !(k = known_kind((uint32_t)kind)) || !k->width)
        return NULL;
    *count = (size_t)r->info.records;
    *width = k->width;
    return r->sec[kind].p;
}

/* ---- text ------------------------------------------------------------ */

/*
 * Parses one text record (FORMAT.md) of n bytes into out.  Returns 0,
 * SHARD_ECORRUPT when the bytes do not parse, or SHARD_ENOMEM.
 */
static int text_parse(const unsigned char *p, size_t n, shard_text *out)
{
    const unsigned char *end = p + n;
    uint32_t count;

    if (n < 4 || (count = shard_le32(p)) > (n - 4) / 5)
        return SHARD_ECORRUPT;
    p += 4;
    out->messages = calloc(count ? count : 1, sizeof(*out->messages));
    if (!out->messages)
        return SHARD_ENOMEM;
    out->n_messages = count;
    for (uint32_t i = 0; i < count; i++) {
        shard_text_message *m = &out->messages[i];

        if (end - p < 1 || end - p - 1 < p[0] + 4)
            return SHARD_ECORRUPT;
        m->role_len = p[0];
        m->role = (const char *)p + 1;
        p += 1 + m->role_len;
        m->content_len = shard_le32(p);
        p += 4;
        if ((size_t)(end - p) < m->content_len)
            return SHARD_ECORRUPT;
        m->content = (const char *)p;
        p += m->content_len;
    }
    return p == end ? 0 : SHARD_ECORRUPT;
}

/*
 * Text frame k, decoded, as a new reference.  The last one decoded is
 * kept, so that reading the records of a frame in order decodes it once.
 */
static int text_frame_get(shard_reader *r, uint64_t k, shard_buf **out)
{
    char err[SHARD_ERRMAX];
    int rc;

    pthread_mutex_lock(&r->lock);
    if (r->text_frame && r->text_k == k) {
        *out = buf_ref(r->text_frame);
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    pthread_mutex_unlock(&r->lock);
    if ((rc = frame_decode(r->path, &r->text, k, err, out)) < 0) {
        pthread_mutex_lock(&r->lock);
        memcpy(r->err, err, SHARD_ERRMAX);
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    pthread_mutex_lock(&r->lock);
    buf_unref(r->text_frame);
    r->text_frame = buf_ref(*out);
    r->text_k = k;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int shard_reader_text(shard_reader *r, uint64_t i, shard_text *out)
{
    const frameset *f = &r->text;
    uint64_t k, first, rel, len;
    shard_buf *b;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!r->info.has_text)
        return shard_errf(r->err, SHARD_ENOTFOUND,
                          "%s: no text section", r->path);
    if (i >= r->info.records)
        return shard_errf(r->err, SHARD_EINVAL, "%s: record %llu out of "
                          "range", r->path, (unsigned long long)i);
    k = frame_of(f, i);
    first = frame_field(f, k, FRM_FIRST);
    rel = f->offsets[i] - f->offsets[first];
    len = f->offsets[i + 1] - f->offsets[i];
    if ((rc = text_frame_get(r, k, &b)) < 0)
        return rc;

    /* Keep only this record's bytes; the frame buffer goes. */
    out->storage = malloc(len ? len : 1);
    if (!out->storage) {
        buf_unref(b);
        return SHARD_ENOMEM;
    }
    memcpy(out->storage, (unsigned char *)b->base + rel, len);
    buf_unref(b);
    rc = text_parse(out->storage, len, out);
    if (rc < 0) {
        shard_text_free(out);
        if (rc == SHARD_ENOMEM)
            return rc;
        return shard_errf(r->err, SHARD_ECORRUPT,
                          "%s: text: record %llu malformed", r->path,
                          (unsigned long long)i);
    }
    return 0;
}

void shard_text_free(shard_text *t)
{
    free(t->messages);
    free(t->storage);
    memset(t, 0, sizeof(*t));
}

/* ---- verification ---------------------------------------------------- */

typedef struct {
    shard_report_fn report;
    void *ctx;
    int problems;
} reporter;

static void report(reporter *rep, const char *msg)
{
    rep->problems++;
    if (rep->report)
        rep->report(rep->ctx, msg);
}

static void verify_frames(shard_reader *r, const frameset *f, reporter *rep)
{
    char err[SHARD_ERRMAX];

    for (uint64_t k = 0; k < f->n; k++) {
        shard_buf *b;

        if (frame_decode(r->path, f, k, err, &b) < 0) {
            report(rep, err);
            continue;
        }
        buf_unref(b);
    }
}

/* Every byte not inside a listed section (or the header) must be zero. */
static void verify_padding(shard_reader *r, reporter *rep)
{
    const unsigned char *p = r->base;
    uint64_t len = r->info.file_size;
    uint64_t hsize = shard_le32(p + HDR_HEADER_SIZE);
    uint32_t count = shard_le32(p + HDR_SECTION_COUNT);
    char err[SHARD_ERRMAX];
    unsigned char *used = calloc(len / SHARD_ALIGN + 1, 1);

    if (!used)
        return;
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *e =
            p + SHARD_HEADER_FIXED + (size_t)i * SHARD_SECTION_ENTRY;
        uint64_t off = shard_le64(e + SEC_OFFSET);
        uint64_t size = shard_le64(e + SEC_SIZE);
        uint64_t end = off + size;

        /* Open bounds only the kinds it knows; it skips the others. */
        if (off > len || size > len - off) {
            shard_errf(err, 0, "%s: section %u (%s): outside the file",
                       r->path, i,
                       shard_section_name(shard_le32(e + SEC_KIND)));
            report(rep, err);
            continue;
        }
        for (uint64_t b = off / SHARD_ALIGN; b * SHARD_ALIGN < end; b++)
            used[b] = 1;
        for (uint64_t q = end; q < shard_align_up(end, SHARD_ALIGN) &&
                               q < len; q++)
            if (p[q]) {
                shard_errf(err, 0, "%s: padding after %s: non-zero byte "
                           "at offset %llu", r->path,
                           shard_section_name(shard_le32(e + SEC_KIND)),
                           (unsigned long long)q);
                report(rep, err);
                break;
            }
    }
    for (uint64_t b = hsize / SHARD_ALIGN; b * SHARD_ALIGN < len; b++) {
        if (used[b])
            continue;
        for (uint64_t q = b * SHARD_ALIGN; q < (b + 1) * SHARD_ALIGN &&
                                           q < len; q++)
            if (p[q]) {
                shard_errf(err, 0, "%s: unused bytes at offset %llu are "
                           "not zero", r->path, (unsigned long long)q);
                report(rep, err);
                break;
            }
    }
    free(used);
}

static void verify_data_section(shard_reader *r, int kind, reporter *rep)
{
    const section *s = &r->sec[kind];
    char err[SHARD_ERRMAX];

    if (s->present && XXH3_64bits(s->p, s->size) != s->sum) {
        shard_errf(err, 0, "%s: %s: checksum mismatch", r->path,
                   shard_section_name((uint32_t)kind));
        report(rep, err);
    }
}

int shard_verify_file(const char *path, shard_report_fn fn, void *ctx)
{
    reporter rep = {fn, ctx, 0};
    shard_reader *r;
    uint64_t hsize;

    if (shard_reader_open(&r, path, NULL) < 0) {
        report(&rep, shard_last_error());
        return rep.problems;
    }
    hsize = shard_le32(r->base + HDR_HEADER_SIZE);
    if (XXH3_64bits(r->base + hsize, r->info.file_size - hsize) !=
        shard_le64(r->base + HDR_BODY_SUM)) {
        char err[SHARD_ERRMAX];

        shard_errf(err, 0, "%s: body checksum mismatch", path);
        report(&rep, err);
    }
    verify_data_section(r, SHARD_SEC_TOKENS, &rep);
    verify_data_section(r, SHARD_SEC_TEXT, &rep);
    verify_frames(r, &r->tok, &rep);
    if (r->info.has_text)
        verify_frames(r, &r->text, &rep);
    verify_padding(r, &rep);
    shard_reader_close(r);
    return rep.problems;
}
