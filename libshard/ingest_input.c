/*
 * ingest_input.c - lines from plain, compressed and archived inputs.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_input.h"
#include "internal.h"
#include "json.h"

struct shard_input {
    struct archive *ar;
    char path[4096];
    char where[4400];
    int is_raw;        /* not an archive: one stream */
    int in_entry;      /* an entry is open for reading */
    int at_line_start; /* next byte starts a line */
    uint64_t lineno;
    size_t max_line;

    const unsigned char *blk; /* current block from libarchive */
    size_t blk_len, blk_pos;

    char *line;
    size_t len, cap;
    int overlong;
    char err[SHARD_ERRMAX];
};

int shard_input_open(shard_input **out, const char *path, size_t max_line)
{
    shard_input *in = calloc(1, sizeof(*in));
    int rc;

    *out = NULL;
    if (!in)
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    snprintf(in->path, sizeof(in->path), "%s",
             strcmp(path, "-") == 0 ? "<stdin>" : path);
    in->max_line = max_line;
    in->ar = archive_read_new();
    if (!in->ar) {
        free(in);
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    }
    archive_read_support_filter_all(in->ar);
    archive_read_support_format_tar(in->ar);
    archive_read_support_format_zip(in->ar);
    archive_read_support_format_raw(in->ar);
    archive_read_support_format_empty(in->ar);
    rc = archive_read_open_filename(in->ar,
                                    strcmp(path, "-") == 0 ? NULL : path,
                                    1 << 16);
    if (rc != ARCHIVE_OK) {
        shard_set_last_error(SHARD_EIO, "%s: %s", in->path,
                             archive_error_string(in->ar));
        shard_input_close(in);
        return SHARD_EIO;
    }
    *out = in;
    return 0;
}

/* Moves to the next regular entry; 1 when there is one, 0 at the end. */
static int next_entry(shard_input *in)
{
    struct archive_entry *e;
    int rc;

    for (;;) {
        rc = archive_read_next_header(in->ar, &e);
        if (rc == ARCHIVE_EOF)
            return 0;
        if (rc < ARCHIVE_WARN)
            return shard_errf(in->err, SHARD_EIO, "%s: %s", in->path,
                              archive_error_string(in->ar));
        in->is_raw = archive_format(in->ar) == ARCHIVE_FORMAT_RAW;
        if (!in->is_raw && archive_entry_filetype(e) != AE_IFREG)
            continue;
        if (in->is_raw)
            snprintf(in->where, sizeof(in->where), "%s", in->path);
        else
            snprintf(in->where, sizeof(in->where), "%s:%s", in->path,
                     archive_entry_pathname(e));
        in->in_entry = 1;
        in->lineno = 0;
        in->at_line_start = 1;
        in->blk_len = in->blk_pos = 0;
        return 1;
    }
}

/* Refills the block; 1 with bytes, 0 at the end of the entry. */
static int next_block(shard_input *in)
{
    const void *buf;
    size_t size;
    la_int64_t off;
    int rc;

    do {
        rc = archive_read_data_block(in->ar, &buf, &size, &off);
        if (rc == ARCHIVE_EOF)
            return 0;
        if (rc < ARCHIVE_WARN)
            return shard_errf(in->err, SHARD_EIO, "%s: %s", in->where,
                              archive_error_string(in->ar));
    } while (size == 0);
    in->blk = buf;
    in->blk_len = size;
    in->blk_pos = 0;
    return 1;
}

static int keep(shard_input *in, const unsigned char *p, size_t n)
{
    size_t need;

    if (in->overlong)
        return 0;
    if (in->len + n > in->max_line) {
        in->overlong = 1;
        in->len = 0;
        return 0;
    }
    need = in->len + n + SHARD_JSON_PADDING;
    if (need > in->cap) {
        size_t cap = in->cap ? in->cap : 1 << 16;
        char *l;

        while (cap < need)
            cap *= 2;
        if (!(l = realloc(in->line, cap)))
            return shard_errf(in->err, SHARD_ENOMEM, "%s: out of memory",
                              in->where);
        in->line = l;
        in->cap = cap;
    }
    memcpy(in->line + in->len, p, n);
    in->len += n;
    return 0;
}

/* Finishes the gathered line: drops "\r" and a leading BOM. */
static void emit(shard_input *in, shard_line *line)
{
    size_t skip = 0;

    if (in->len && in->line[in->len - 1] == '\r')
        in->len--;
    if (in->lineno == 1 && in->len >= 3 &&
        memcmp(in->line, "\xef\xbb\xbf", 3) == 0)
        skip = 3;
    if (in->line)
        memset(in->line + in->len, 0, SHARD_JSON_PADDING);
    line->text = in->line ? in->line + skip : "";
    line->len = in->len - skip;
    line->lineno = in->lineno;
    line->where = in->where;
    line->overlong = in->overlong;
}

int shard_input_next(shard_input *in, shard_line *line)
{
    int rc;

    in->len = 0;
    in->overlong = 0;
    for (;;) {
        if (!in->in_entry && (rc = next_entry(in)) <= 0)
            return rc;
        if (in->blk_pos == in->blk_len) {
            if ((rc = next_block(in)) < 0)
                return rc;
            if (rc == 0) {
                in->in_entry = 0;
                if (in->at_line_start)
                    continue;
                in->at_line_start = 1;
                emit(in, line);
                return 1;
            }
        }
        if (in->at_line_start) {
            in->lineno++;
            in->at_line_start = 0;
        }

        const unsigned char *p = in->blk + in->blk_pos;
        size_t avail = in->blk_len - in->blk_pos;
        const unsigned char *nl = memchr(p, '\n', avail);
        size_t n = nl ? (size_t)(nl - p) : avail;

        if ((rc = keep(in, p, n)) < 0)
            return rc;
        in->blk_pos += n + (nl ? 1 : 0);
        if (nl) {
            in->at_line_start = 1;
            emit(in, line);
            return 1;
        }
    }
}

uint64_t shard_input_bytes(const shard_input *in)
{
    return (uint64_t)archive_filter_bytes(in->ar, -1);
}

const char *shard_input_errmsg(const shard_input *in)
{
    return in->err;
}

void shard_input_close(shard_input *in)
{
    if (!in)
        return;
    if (in->ar)
        archive_read_free(in->ar);
    free(in->line);
    free(in);
}
