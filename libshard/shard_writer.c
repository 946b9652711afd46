/*
 * shard_writer.c - streams records into shard files (FORMAT.md).
 *
 * Layout written, in file order: header and section table (filled in last),
 * the token section, the text section, the record columns, the frame
 * tables.  Everything after the header is produced sequentially, so the
 * body checksum and each section checksum are computed on the fly.  The
 * text section goes first to an unlinked temporary file and is copied in
 * when the shard completes; the columns stay in memory until then.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "format.h"
#include "internal.h"
#include "shard_writer.h"

/* A growable byte buffer. */
typedef struct {
    unsigned char *p;
    size_t len, cap;
} bytes;

static int bytes_reserve(bytes *b, size_t extra)
{
    return shard_grow((void **)&b->p, &b->cap, b->len + extra, 1);
}

static int bytes_append(bytes *b, const void *src, size_t n)
{
    if (bytes_reserve(b, n))
        return SHARD_ENOMEM;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

/* A file being written sequentially, with the checksums it feeds. */
typedef struct {
    int fd;
    uint64_t pos;
    XXH3_state_t *body; /* NULL when the file has no body checksum */
    const char *name;
} sink;

/*
 * A data section made of frames cut at record boundaries: raw bytes gather
 * in `raw` until they pass the frame target, then go out as one frame.
 */
typedef struct {
    shard_codec codec;
    bytes raw;
    bytes table; /* SHARD_FRAME_ENTRY bytes per frame */
    bytes z;
    uint64_t first;   /* first record of the pending frame */
    uint64_t pending; /* records in the pending frame */
    uint64_t size;    /* bytes written to the section so far */
    XXH3_state_t *sum;
} framed;

/*
 * A frame handed to the compression threads.  Jobs are numbered in the
 * order they were made; they are compressed in any order and written in
 * theirs, so the bytes are those of compressing in the caller.
 */
typedef struct {
    framed *f;
    sink *k;
    bytes raw, z;
    uint64_t first, count;
    size_t stored;  /* or a zstd error code */
    uint64_t sum;   /* XXH64 of raw */
    int nomem;      /* the thread ran out of memory */
    int done;
} frame_job;

/* Compression threads of one stream and their queue of jobs. */
typedef struct {
    pthread_t *threads;
    size_t n_threads;
    frame_job *jobs;            /* cap jobs, job i in slot i % cap */
    size_t cap;
    uint64_t added, taken, written;
    uint64_t bound;             /* compressBound of jobs not yet written */
    int level, stop;
    pthread_mutex_t mu;         /* guards added, taken, stop, job.done */
    pthread_cond_t work_cv, done_cv;
} frame_pool;

struct shard_stream {
    char dir[4096];
    shard_writer_options opt;
    unsigned dtype;
    ZSTD_CCtx *cctx;
    frame_pool pool;
    char err[SHARD_ERRMAX];

    /* The shard being written; open when `tmp_path[0]` is set. */
    char tmp_path[4200];
    sink out;
    int text_fd;
    sink text_out;
    framed tok, text;
    uint64_t records, tokens;
    bytes col[SHARD_SEC_TEXT + 1]; /* by section kind; columns only */
    bytes scratch; /* one record's narrowed tokens or encoded text */
    uint64_t seq;

    shard_file_info *files;
    size_t n_files, cap_files;
};

static int sink_write(shard_stream *s, sink *k, const void *buf, size_t n)
{
    const unsigned char *p = buf;

    if (k->body)
        XXH3_64bits_update(k->body, buf, n);
    while (n > 0) {
        ssize_t w = write(k->fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return shard_errf(s->err, SHARD_EIO, "%s: write: %s", k->name,
                              strerror(errno));
        p += w;
        n -= (size_t)w;
        k->pos += (uint64_t)w;
    }
    return 0;
}

static int sink_pad(shard_stream *s, sink *k)
{
    static const unsigned char zeros[SHARD_ALIGN];
    size_t n = (size_t)(shard_align_up(k->pos, SHARD_ALIGN) - k->pos);

    return n ? sink_write(s, k, zeros, n) : 0;
}

static void framed_reset(framed *f, shard_codec codec)
{
    f->codec = codec;
    f->raw.len = f->table.len = 0;
    f->first = f->pending = f->size = 0;
    XXH3_64bits_reset(f->sum);
}

static void framed_free(framed *f)
{
    free(f->raw.p);
    free(f->table.p);
    free(f->z.p);
    XXH3_freeState(f->sum);
}

/* Writes a frame (raw bytes compressed, or not, into `data`) to `k` and
 * records it in the table. */
static int frame_put(shard_stream *s, framed *f, sink *k, const void *data,
                     size_t stored, size_t raw_len, uint64_t first,
                     uint64_t count, uint64_t sum)
{
    unsigned char e[SHARD_FRAME_ENTRY];
    int rc;

    shard_put64(e + FRM_OFFSET, f->size);
    shard_put64(e + FRM_STORED, stored);
    shard_put64(e + FRM_RAW, raw_len);
    shard_put64(e + FRM_FIRST, first);
    shard_put64(e + FRM_COUNT, count);
    shard_put64(e + FRM_SUM, sum);
    if (bytes_append(&f->table, e, sizeof(e)))
        return SHARD_ENOMEM;

    XXH3_64bits_update(f->sum, data, stored);
    if ((rc = sink_write(s, k, data, stored)) < 0)
        return rc;
    f->size += stored;
    return 0;
}

static int frame_compress(ZSTD_CCtx *cctx, bytes *z, const bytes *raw,
                          size_t *stored)
{
    size_t bound = ZSTD_compressBound(raw->len);

    z->len = 0;
    if (bytes_reserve(z, bound))
        return SHARD_ENOMEM;
    *stored = ZSTD_compress2(cctx, z->p, bound, raw->p, raw->len);
    return 0;
}

/* Waits for the oldest job and writes it. */
static int frame_write_oldest(shard_stream *s)
{
    frame_pool *p = &s->pool;
    frame_job *j = &p->jobs[p->written % p->cap];
    int rc;

    pthread_mutex_lock(&p->mu);
    while (!j->done)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    p->written++;
    p->bound -= ZSTD_compressBound(j->raw.len);
    if (j->nomem)
        return SHARD_ENOMEM;
    if (ZSTD_isError(j->stored))
        return shard_errf(s->err, SHARD_EIO, "%s: zstd: %s", j->k->name,
                          ZSTD_getErrorName(j->stored));
    rc = frame_put(s, j->f, j->k, j->z.p, j->stored, j->raw.len, j->first,
                   j->count, j->sum);
    return rc;
}

/* Writes every job made so far. */
static int frames_drain(shard_stream *s)
{
    int rc;

    while (s->pool.written < s->pool.added)
        if ((rc = frame_write_oldest(s)) < 0)
            return rc;
    return 0;
}

/* Hands the pending frame to the compression threads; the frame's raw
 * buffer trades places with the job's. */
static int frame_submit(shard_stream *s, framed *f, sink *k)
{
    frame_pool *p = &s->pool;
    frame_job *j;
    bytes swap;
    int rc;

    if (p->added - p->written == p->cap && (rc = frame_write_oldest(s)) < 0)
        return rc;
    j = &p->jobs[p->added % p->cap];
    swap = j->raw;
    j->raw = f->raw;
    f->raw = swap;
    f->raw.len = 0;
    j->f = f;
    j->k = k;
    j->first = f->first;
    j->count = f->pending;
    j->done = 0;
    f->first += f->pending;
    f->pending = 0;
    p->bound += ZSTD_compressBound(j->raw.len);

    pthread_mutex_lock(&p->mu);
    p->added++;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static void *frame_thread(void *arg)
{
    frame_pool *p = arg;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    frame_job *j;

    if (cctx)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, p->level);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->taken == p->added && !p->stop)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->taken == p->added) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        j = &p->jobs[p->taken++ % p->cap];
        pthread_mutex_unlock(&p->mu);

        j->nomem = !cctx ||
                   frame_compress(cctx, &j->z, &j->raw, &j->stored) < 0;
        j->sum = XXH64(j->raw.p, j->raw.len, 0);

        pthread_mutex_lock(&p->mu);
        j->done = 1;
        pthread_cond_broadcast(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
    }
    ZSTD_freeCCtx(cctx);
    return NULL;
}

/* Starts n compression threads; with none started, frames are compressed
 * by the caller.  0 or SHARD_ENOMEM. */
static int frame_pool_start(frame_pool *p, int n, int level)
{
    p->level = level;
    p->cap = 2 * (size_t)n + 2;
    if (!(p->threads = calloc((size_t)n, sizeof(*p->threads))) ||
        !(p->jobs = calloc(p->cap, sizeof(*p->jobs))))
        return SHARD_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    while (p->n_threads < (size_t)n &&
           pthread_create(&p->threads[p->n_threads], NULL, frame_thread,
                          p) == 0)
        p->n_threads++;
    return 0;
}

static void frame_pool_stop(frame_pool *p)
{
    if (!p->jobs) {
        free(p->threads);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    for (size_t i = 0; i < p->cap; i++) {
        free(p->jobs[i].raw.p);
        free(p->jobs[i].z.p);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->jobs);
    free(p->threads);
}

/* Writes the pending frame, if any, to `k` and records it in the table;
 * a zstd frame goes to the compression threads when there are some. */
static int framed_flush(shard_stream *s, framed *f, sink *k)
{
    const void *data = f->raw.p;
    size_t stored = f->raw.len;
    int rc;

    if (f->pending == 0)
        return 0;
    if (f->raw.len > UINT32_MAX)
        return shard_errf(s->err, SHARD_EINVAL,
                          "%s: record %llu: frame over 4 GiB", k->name,
                          (unsigned long long)f->first);
    if (f->codec == SHARD_CODEC_ZSTD && s->pool.n_threads)
        return frame_submit(s, f, k);
    if (f->codec == SHARD_CODEC_ZSTD) {
        if (frame_compress(s->cctx, &f->z, &f->raw, &stored) < 0)
            return SHARD_ENOMEM;
        if (ZSTD_isError(stored))
            return shard_errf(s->err, SHARD_EIO, "%s: zstd: %s", k->name,
                              ZSTD_getErrorName(stored));
        data = f->z.p;
    }
    if ((rc = frame_put(s, f, k, data, stored, f->raw.len, f->first,
                        f->pending, XXH64(f->raw.p, f->raw.len, 0))) < 0)
        return rc;
    f->first += f->pending;
    f->pending = 0;
    f->raw.len = 0;
    return 0;
}

/*
 * Adds one record's raw bytes.  A record that alone reaches the frame
 * target gets a frame of its own.
 */
static int framed_add(shard_stream *s, framed *f, sink *k, const void *p,
                      size_t n)
{
    uint64_t target = s->opt.frame_size;
    int rc;

    if (n >= target && f->pending > 0 && (rc = framed_flush(s, f, k)) < 0)
        return rc;
    if (bytes_append(&f->raw, p, n))
        return SHARD_ENOMEM;
    f->pending++;
    if (f->raw.len >= target)
        return framed_flush(s, f, k);
    return 0;
}

/*
 * Ends a zstd data section with the seekable-format seek table, a
 * skippable frame that stock zstd ignores when decompressing.
 */
static int framed_seek_table(shard_stream *s, framed *f, sink *k)
{
    size_t n, body;
    bytes t = {0};
    unsigned char *p;
    int rc;

    if ((rc = frames_drain(s)) < 0)
        return rc;
    n = f->table.len / SHARD_FRAME_ENTRY;
    body = n * 12 + 9;
    if (bytes_reserve(&t, 8 + body))
        return SHARD_ENOMEM;
    p = t.p;
    shard_put32(p, SHARD_SEEK_SKIPPABLE_MAGIC);
    shard_put32(p + 4, (uint32_t)body);
    p += 8;
    for (size_t i = 0; i < n; i++, p += 12) {
        const unsigned char *e = f->table.p + i * SHARD_FRAME_ENTRY;

        shard_put32(p, (uint32_t)shard_le64(e + FRM_STORED));
        shard_put32(p + 4, (uint32_t)shard_le64(e + FRM_RAW));
        shard_put32(p + 8, (uint32_t)shard_le64(e + FRM_SUM));
    }
    shard_put32(p, (uint32_t)n);
    p[4] = SHARD_SEEK_CHECKSUM_FLAG;
    shard_put32(p + 5, SHARD_SEEK_FOOTER_MAGIC);

    XXH3_64bits_update(f->sum, t.p, 8 + body);
    rc = sink_write(s, k, t.p, 8 + body);
    f->size += 8 + body;
    free(t.p);
    return rc;
}

static const struct column {
    int kind;
    unsigned width;
} columns[] = {
    {SHARD_SEC_TOKEN_OFFSETS, 8}, {SHARD_SEC_PROMPT_LEN, 4},
    {SHARD_SEC_LABEL, 1},         {SHARD_SEC_REWARD, 8},
    {SHARD_SEC_PROMPT_ID, 8},     {SHARD_SEC_PAIR_ID, 8},
    {SHARD_SEC_RECORD_ID, 8},     {SHARD_SEC_SOURCE_FILE, 4},
    {SHARD_SEC_SOURCE_LINE, 8},   {SHARD_SEC_FLAGS, 4},
    {SHARD_SEC_TEXT_OFFSETS, 8},
};
#define N_COLUMNS (sizeof(columns) / sizeof(columns[0]))

/* The section table being built for the header. */
typedef struct {
    unsigned char e[24][SHARD_SECTION_ENTRY];
    unsigned n;
} section_table;

static void section_add(section_table *t, int kind, uint64_t off,
                        uint64_t size, uint64_t sum)
{
    unsigned char *e = t->e[t->n++];

    memset(e, 0, SHARD_SECTION_ENTRY);
    shard_put32(e + SEC_KIND, (uint32_t)kind);
    shard_put32(e + SEC_FLAGS, SHARD_SECTION_REQUIRED);
    shard_put64(e + SEC_OFFSET, off);
    shard_put64(e + SEC_SIZE, size);
    shard_put64(e + SEC_SUM, sum);
}

/* Writes a whole in-memory section, padded, and adds it to the table. */
static int write_section(shard_stream *s, section_table *t, int kind,
                         const void *p, size_t n)
{
    uint64_t off = s->out.pos;
    int rc;

    if ((rc = sink_write(s, &s->out, p, n)) < 0)
        return rc;
    section_add(t, kind, off, n, XXH3_64bits(p, n));
    return sink_pad(s, &s->out);
}

static unsigned header_size(const shard_stream *s)
{
    /* The columns but text offsets, the token frames and data, and with
     * text its offsets, frames and data. */
    unsigned n = (unsigned)N_COLUMNS - 1 + 2 + (s->opt.with_text ? 3 : 0);

    return (unsigned)shard_align_up(
        SHARD_HEADER_FIXED + (uint64_t)n * SHARD_SECTION_ENTRY, SHARD_ALIGN);
}

static const char *prefix_of(const shard_writer_options *o)
{
    return o->prefix ? o->prefix : "";
}

static int shard_open_file(shard_stream *s)
{
    static const unsigned char zeros[SHARD_HEADER_FIXED];
    unsigned hsize = header_size(s);
    int rc;

    snprintf(s->tmp_path, sizeof(s->tmp_path), "%s/.%s%05llu.shard.tmp",
             s->dir, prefix_of(&s->opt), (unsigned long long)s->seq);
    s->out.fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                     0644);
    if (s->out.fd < 0) {
        rc = shard_errf(s->err, SHARD_EIO, "%s: %s", s->tmp_path,
                        strerror(errno));
        s->tmp_path[0] = '\0';
        return rc;
    }
    s->out.name = s->tmp_path;
    s->out.pos = 0;
    s->out.body = NULL;

    /* The header is rewritten at the end; reserve its bytes now. */
    for (unsigned done = 0; done < hsize; done += SHARD_HEADER_FIXED) {
        unsigned n = hsize - done < SHARD_HEADER_FIXED
                         ? hsize - done : SHARD_HEADER_FIXED;

        if ((rc = sink_write(s, &s->out, zeros, n)) < 0)
            return rc;
    }
    s->out.body = XXH3_createState();
    if (!s->out.body)
        return SHARD_ENOMEM;
    XXH3_64bits_reset(s->out.body);

    if (s->opt.with_text) {
        s->text_fd = open(s->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (s->text_fd < 0)
            return shard_errf(s->err, SHARD_EIO, "%s: temporary file: %s",
                              s->dir, strerror(errno));
        s->text_out = (sink){s->text_fd, 0, NULL, s->tmp_path};
    }

    framed_reset(&s->tok, s->opt.codec);
    framed_reset(&s->text, SHARD_CODEC_ZSTD);
    for (size_t i = 0; i < N_COLUMNS; i++)
        s->col[columns[i].kind].len = 0;
    s->records = s->tokens = 0;

    /* Both offset columns start with a 0. */
    uint64_t zero = 0;
    if (bytes_append(&s->col[SHARD_SEC_TOKEN_OFFSETS], &zero, 8) ||
        bytes_append(&s->col[SHARD_SEC_TEXT_OFFSETS], &zero, 8))
        return SHARD_ENOMEM;
    return 0;
}

/* Closes the current file's descriptors and frees its checksum state. */
static void release_file(shard_stream *s)
{
    if (s->out.fd >= 0)
        close(s->out.fd);
    if (s->text_fd >= 0)
        close(s->text_fd);
    s->out.fd = s->text_fd = -1;
    XXH3_freeState(s->out.body);
    s->out.body = NULL;
}

static void shard_discard_file(shard_stream *s)
{
    if (!s->tmp_path[0])
        return;
    release_file(s);
    unlink(s->tmp_path);
    s->tmp_path[0] = '\0';
}

/* Copies the finished text section from its temporary file. */
static int copy_text_section(shard_stream *s)
{
    unsigned char buf[1 << 16];
    uint64_t left = s->text_out.pos;
    off_t at = 0;
    int rc;

    while (left > 0) {
        ssize_t r = pread(s->text_fd, buf,
                          left < sizeof(buf) ? left : sizeof(buf), at);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return shard_errf(s->err, SHARD_EIO,
                              "%s: reading text section back: %s",
                              s->tmp_path, r < 0 ? strerror(errno)
                                                 : "short read");
        if ((rc = sink_write(s, &s->out, buf, (size_t)r)) < 0)
            return rc;
        at += r;
        left -= (uint64_t)r;
    }
    return 0;
}

static int write_data_sections(shard_stream *s, section_table *t)
{
    unsigned hsize = header_size(s);
    int rc;

    /* Token section: it starts right after the header. */
    if ((rc = framed_flush(s, &s->tok, &s->out)) < 0)
        return rc;
    if (s->opt.codec == SHARD_CODEC_ZSTD &&
        (rc = framed_seek_table(s, &s->tok, &s->out)) < 0)
        return rc;
    section_add(t, SHARD_SEC_TOKENS, hsize, s->tok.size,
                XXH3_64bits_digest(s->tok.sum));
    if ((rc = sink_pad(s, &s->out)) < 0)
        return rc;

    if (!s->opt.with_text)
        return 0;
    if ((rc = framed_flush(s, &s->text, &s->text_out)) < 0 ||
        (rc = framed_seek_table(s, &s->text, &s->text_out)) < 0)
        return rc;
    uint64_t off = s->out.pos;
    if ((rc = copy_text_section(s)) < 0)
        return rc;
    section_add(t, SHARD_SEC_TEXT, off, s->text.size,
                XXH3_64bits_digest(s->text.sum));
    return sink_pad(s, &s->out);
}

static int write_meta_sections(shard_stream *s, section_table *t)
{
    int rc;

    for (size_t i = 0; i < N_COLUMNS; i++) {
        const bytes *c = &s->col[columns[i].kind];

        if (columns[i].kind == SHARD_SEC_TEXT_OFFSETS && !s->opt.with_text)
            continue;
        if ((rc = write_section(s, t, columns[i].kind, c->p, c->len)) < 0)
            return rc;
    }
    if ((rc = write_section(s, t, SHARD_SEC_TOKEN_FRAMES, s->tok.table.p,
                            s->tok.table.len)) < 0)
        return rc;
    if (s->opt.with_text &&
        (rc = write_section(s, t, SHARD_SEC_TEXT_FRAMES, s->text.table.p,
                            s->text.table.len)) < 0)
        return rc;
    return 0;
}

static void fill_header(shard_stream *s, unsigned char *h, unsigned hsize,
                        const section_table *t)
{
    const shard_tokenizer_info *tk = &s->opt.tokenizer;

    memset(h, 0, hsize);
    memcpy(h + HDR_MAGIC, SHARD_MAGIC, SHARD_MAGIC_LEN);
    shard_put16(h + HDR_MAJOR, SHARD_FORMAT_MAJOR);
    shard_put16(h + HDR_MINOR, SHARD_FORMAT_MINOR);
    shard_put32(h + HDR_HEADER_SIZE, hsize);
    shard_put64(h + HDR_FLAGS, s->opt.with_text ? SHARD_FLAG_TEXT : 0);
    shard_put64(h + HDR_FILE_SIZE, s->out.pos);
    shard_put64(h + HDR_RECORDS, s->records);
    shard_put64(h + HDR_TOKENS, s->tokens);
    shard_put64(h + HDR_SHARD_SEQ, s->seq);
    h[HDR_LABEL] = (unsigned char)s->opt.label;
    h[HDR_DTYPE] = (unsigned char)s->dtype;
    h[HDR_CODEC] = (unsigned char)s->opt.codec;
    shard_put32(h + HDR_SECTION_COUNT, t->n);
    shard_put64(h + HDR_TOK_HASH, tk->hash);
    shard_put32(h + HDR_TOK_VOCAB, tk->vocab_size);
    shard_put32(h + HDR_TOK_BOS, tk->bos_id);
    shard_put32(h + HDR_TOK_EOS, tk->eos_id);
    shard_put32(h + HDR_TOK_PAD, tk->pad_id);
    memcpy(h + HDR_TOK_NAME, tk->name,
           strnlen(tk->name, SHARD_TOK_NAME_MAX));
    memcpy(h + HDR_TEMPLATE, tk->template,
           strnlen(tk->template, SHARD_TEMPLATE_MAX));
    shard_put64(h + HDR_FRAME_TARGET, s->opt.frame_size);
    shard_put64(h + HDR_BODY_SUM, XXH3_64bits_digest(s->out.body));
    for (unsigned i = 0; i < t->n; i++)
        memcpy(h + SHARD_HEADER_FIXED + i * SHARD_SECTION_ENTRY, t->e[i],
               SHARD_SECTION_ENTRY);
    shard_put64(h + HDR_HEADER_SUM, XXH3_64bits(h, hsize));
}

static int sync_dir(shard_stream *s)
{
    if (shard_sync_dir(s->dir) != 0)
        return shard_errf(s->err, SHARD_EIO, "%s: fsync: %s", s->dir,
                          strerror(errno));
    return 0;
}

/* Writes a shard's trailing sections and header, then publishes it. */
static int shard_close_file(shard_stream *s)
{
    unsigned hsize = header_size(s);
    unsigned char h[SHARD_HEADER_FIXED + 24 * SHARD_SECTION_ENTRY];
    section_table t = {.n = 0};
    shard_file_info info;
    char final[4200];
    int rc;

    if ((rc = write_data_sections(s, &t)) < 0 ||
        (rc = write_meta_sections(s, &t)) < 0)
        return rc;
    fill_header(s, h, hsize, &t);
    if (pwrite(s->out.fd, h, hsize, 0) != (ssize_t)hsize ||
        fsync(s->out.fd) != 0)
        return shard_errf(s->err, SHARD_EIO, "%s: %s", s->tmp_path,
                          strerror(errno ? errno : EIO));

    snprintf(final, sizeof(final), "%s/%s%05llu.shard", s->dir,
             prefix_of(&s->opt), (unsigned long long)s->seq);
    if (rename(s->tmp_path, final) != 0)
        return shard_errf(s->err, SHARD_EIO, "%s: rename: %s", final,
                          strerror(errno));
    s->tmp_path[0] = '\0';
    release_file(s);
    if ((rc = sync_dir(s)) < 0)
        return rc;

    memset(&info, 0, sizeof(info));
    snprintf(info.path, sizeof(info.path), "%s%05llu.shard",
             prefix_of(&s->opt), (unsigned long long)s->seq);
    info.records = s->records;
    info.tokens = s->tokens;
    info.bytes = s->out.pos;
    info.checksum = shard_le64(h + HDR_HEADER_SUM);
    if (shard_grow((void **)&s->files, &s->cap_files, s->n_files + 1,
                   sizeof(*s->files)))
        return SHARD_ENOMEM;
    s->files[s->n_files++] = info;
    s->seq++;
    return 0;
}

static int dir_has_shards(const char *dir, const char *prefix, uint64_t seq)
{
    char p[4200];

    snprintf(p, sizeof(p), "%s/%s%05llu.shard", dir, prefix,
             (unsigned long long)seq);
    return access(p, F_OK) == 0;
}

static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int shard_stream_open(shard_stream **out, const char *dir,
                      const shard_writer_options *opts)
{
    shard_stream *s;

    *out = NULL;
    if (!opts || opts->version != SHARD_WRITER_OPTIONS_VERSION)
        return shard_set_last_error(SHARD_EINVAL,
                                    "writer options: unknown version");
    if (opts->frame_size == 0 || opts->shard_size == 0)
        return shard_set_last_error(SHARD_EINVAL,
                                    "writer options: zero size target");
    if (strlen(dir) >= sizeof(s->dir))
        return shard_set_last_error(SHARD_EINVAL, "%s: path too long", dir);
    if (!(s = calloc(1, sizeof(*s))))
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->opt = *opts;
    s->out.fd = s->text_fd = -1;
    s->dtype = opts->tokenizer.vocab_size > 0 &&
                       opts->tokenizer.vocab_size <= 65536 ? 2 : 4;

    if (make_dirs(s->dir) != 0) {
        shard_set_last_error(SHARD_EIO, "%s: %s", dir, strerror(errno));
        free(s);
        return SHARD_EIO;
    }
    s->seq = opts->first_seq;
    if (dir_has_shards(s->dir, prefix_of(opts), s->seq)) {
        shard_set_last_error(SHARD_EINVAL, "%s: already holds shards", dir);
        free(s);
        return SHARD_EINVAL;
    }
    s->cctx = ZSTD_createCCtx();
    s->tok.sum = XXH3_createState();
    s->text.sum = XXH3_createState();
    if (!s->cctx || !s->tok.sum || !s->text.sum) {
        shard_stream_free(s);
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    }
    ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel,
                           opts->zstd_level);
    if (opts->threads > 0 &&
        frame_pool_start(&s->pool, opts->threads, opts->zstd_level) < 0) {
        shard_stream_free(s);
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

static uint64_t shard_estimate(const shard_stream *s)
{
    return s->out.pos + s->tok.raw.len + s->text_out.pos + s->text.raw.len +
           s->records * 80;
}

/*
 * Whether the shard has reached its size: shard_estimate once every frame
 * is written.  Frames still compressing count at their bound, so they are
 * waited for only when the bound reaches the size.  1, 0 or negative.
 */
static int shard_full(shard_stream *s)
{
    int rc;

    if (shard_estimate(s) + s->pool.bound < s->opt.shard_size)
        return 0;
    if ((rc = frames_drain(s)) < 0)
        return rc;
    return shard_estimate(s) >= s->opt.shard_size;
}

static int check_record(shard_stream *s, const shard_record_in *r)
{
    uint32_t vocab = s->opt.tokenizer.vocab_size;

    if (r->label < 0 || r->label >= SHARD_LABEL_COUNT)
        return shard_errf(s->err, SHARD_EINVAL, "record: bad label %d",
                          r->label);
    if (r->prompt_len > r->n_tokens)
        return shard_errf(s->err, SHARD_EINVAL,
                          "record: prompt_len %u over %zu tokens",
                          r->prompt_len, r->n_tokens);
    for (size_t i = 0; vocab && i < r->n_tokens; i++)
        if (r->tokens[i] >= vocab)
            return shard_errf(s->err, SHARD_EINVAL,
                              "record: token %u outside vocabulary of %u",
                              r->tokens[i], vocab);
    return 0;
}

static int add_tokens(shard_stream *s, const shard_record_in *r)
{
    uint16_t *narrow;

    if (s->dtype == 4)
        return framed_add(s, &s->tok, &s->out, r->tokens, r->n_tokens * 4);
    s->scratch.len = 0;
    if (bytes_reserve(&s->scratch, r->n_tokens * 2 + 2)) /* never NULL */
        return SHARD_ENOMEM;
    narrow = (uint16_t *)s->scratch.p;
    for (size_t i = 0; i < r->n_tokens; i++)
        narrow[i] = (uint16_t)r->tokens[i];
    return framed_add(s, &s->tok, &s->out, narrow, r->n_tokens * 2);
}

static int add_text(shard_stream *s, const shard_record_in *r)
{
    size_t n = shard_text_encoded_size(r->messages, r->n_messages);
    bytes *c = &s->col[SHARD_SEC_TEXT_OFFSETS];
    uint64_t end;
    int rc;

    s->scratch.len = 0;
    if (bytes_reserve(&s->scratch, n))
        return SHARD_ENOMEM;
    shard_text_encode(s->scratch.p, r->messages, r->n_messages);
    if ((rc = framed_add(s, &s->text, &s->text_out, s->scratch.p, n)) < 0)
        return rc;
    end = shard_le64(c->p + c->len - 8) + n;
    return bytes_append(c, &end, 8);
}

static int add_columns(shard_stream *s, const shard_record_in *r)
{
    uint64_t end = s->tokens + r->n_tokens;
    uint8_t label = (uint8_t)r->label;
    int bad = 0;

    bad |= bytes_append(&s->col[SHARD_SEC_TOKEN_OFFSETS], &end, 8);
    bad |= bytes_append(&s->col[SHARD_SEC_PROMPT_LEN], &r->prompt_len, 4);
    bad |= bytes_append(&s->col[SHARD_SEC_LABEL], &label, 1);
    bad |= bytes_append(&s->col[SHARD_SEC_REWARD], &r->reward, 8);
    bad |= bytes_append(&s->col[SHARD_SEC_PROMPT_ID], &r->prompt_id, 8);
    bad |= bytes_append(&s->col[SHARD_SEC_PAIR_ID], &r->pair_id, 8);
    bad |= bytes_append(&s->col[SHARD_SEC_RECORD_ID], &r->record_id, 8);
    bad |= bytes_append(&s->col[SHARD_SEC_SOURCE_FILE], &r->source_file, 4);
    bad |= bytes_append(&s->col[SHARD_SEC_SOURCE_LINE], &r->source_line, 8);
    bad |= bytes_append(&s->col[SHARD_SEC_FLAGS], &r->flags, 4);
    return bad ? SHARD_ENOMEM : 0;
}

int shard_stream_add(shard_stream *s, const shard_record_in *r)
{
    int rc;

    if ((rc = check_record(s, r)) < 0)
        return rc;
    if (s->tmp_path[0] && s->records > 0 && (rc = shard_full(s)) != 0 &&
        (rc < 0 || (rc = shard_close_file(s)) < 0))
        return rc;
    if (!s->tmp_path[0] && (rc = shard_open_file(s)) < 0)
        return rc;

    if ((rc = add_tokens(s, r)) < 0)
        return rc;
    if (s->opt.with_text && (rc = add_text(s, r)) < 0)
        return rc;
    if ((rc = add_columns(s, r)) < 0)
        return rc;
    s->records++;
    s->tokens += r->n_tokens;
    return 0;
}

int shard_stream_finish(shard_stream *s)
{
    if (!s->tmp_path[0])
        return 0;
    return shard_close_file(s);
}

int shard_stream_adopt(shard_stream *s, const shard_file_info *files,
                       size_t n)
{
    if (shard_grow((void **)&s->files, &s->cap_files, s->n_files + n,
                   sizeof(*s->files)))
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        s->files[s->n_files++] = files[i];
    return 0;
}

const shard_file_info *shard_stream_files(const shard_stream *s,
                                          size_t *count)
{
    *count = s->n_files;
    return s->files;
}

const char *shard_stream_errmsg(const shard_stream *s)
{
    return s->err;
}

void shard_stream_free(shard_stream *s)
{
    if (!s)
        return;
    frame_pool_stop(&s->pool);
    shard_discard_file(s);
    ZSTD_freeCCtx(s->cctx);
    framed_free(&s->tok);
    framed_free(&s->text);
    for (size_t i = 0; i < sizeof(s->col) / sizeof(s->col[0]); i++)
        free(s->col[i].p);
    free(s->scratch.p);
    free(s->files);
    free(s);
}

size_t shard_text_encoded_size(const shard_message *m, size_t n)
{
    size_t size = 4;

    for (size_t i = 0; i < n; i++)
        size += 1 + (m[i].role_len > 255 ? 255 : m[i].role_len) + 4 +
                m[i].content_len;
    return size;
}

void shard_text_encode(unsigned char *dst, const shard_message *m, size_t n)
{
    shard_put32(dst, (uint32_t)n);
    dst += 4;
    for (size_t i = 0; i < n; i++) {
        size_t rl = m[i].role_len > 255 ? 255 : m[i].role_len;

        *dst++ = (unsigned char)rl;
        memcpy(dst, m[i].role, rl);
        dst += rl;
        shard_put32(dst, (uint32_t)m[i].content_len);
        dst += 4;
        memcpy(dst, m[i].content, m[i].content_len);
        dst += m[i].content_len;
    }
}
