/*
 * ingest_input.c - rows from plain, compressed, archived and nested
 * inputs, as JSON lines or JSON arrays.
 *
 * The input is a stack of libarchive readers: level 0 reads the file (a
 * gzip file through gunzip.c, whose inflated bytes it then reads), and
 * each regular member of an archive is opened as a new level that reads
 * its bytes from the level below (so compression and archives nest).  The
 * innermost open entry is the "leaf"; its bytes go through a small state
 * machine that finds rows without parsing them: lines, or the top-level
 * elements of a JSON array (strings and nesting are tracked so that commas
 * and brackets inside elements do not split them).
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gunzip.h"
#include "ingest_input.h"
#include "internal.h"
#include "json.h"

#define BLOCK_SIZE (1 << 16)

typedef struct {
    struct archive *ar;
    int is_raw;      /* a single stream, not an archive */
    size_t base_len; /* length of `where` when this level opened */
} level;

typedef enum {
    MODE_SNIFF, /* before the first byte that is not white space */
    MODE_LINES, /* JSON lines */
    MODE_ARRAY, /* inside a top-level JSON array */
    MODE_AFTER, /* after the array's closing bracket */
    MODE_JUNK   /* text after the array: gathered as one bad row */
} split_mode;

struct shard_input {
    level lv[SHARD_INPUT_MAX_NESTING + 1];
    int fd;           /* the file; closed by close unless stdin */
    shard_gunzip *gz; /* a gzip file's inflater, or NULL */
    int depth;        /* levels open */
    int dead;         /* the file itself failed: every call fails */
    int leaf_open;    /* an entry is being read */
    uint32_t members; /* leaves opened so far */
    char path[4096];
    char where[4400];
    size_t max_row;

    const unsigned char *blk; /* current block of the leaf */
    size_t blk_len, blk_pos;

    split_mode mode;
    uint64_t nl;       /* newlines consumed in the leaf */
    uint64_t rows;     /* rows handed out from the leaf */
    uint64_t row_line; /* line where the pending row starts */
    int row_open;      /* the pending row has started */
    int depth_in_elem; /* nesting inside an array element */
    int in_str, esc;
    int after_comma;   /* between elements: a comma was just read */
    int at_start;      /* no byte of the leaf consumed yet */

    char *line;
    size_t len, cap;
    int overlong;
    char problem[SHARD_ERRMAX];
    char err[SHARD_ERRMAX];
};

/* ---- the stack of archives ------------------------------------------- */

static struct archive *reader_new(void)
{
    struct archive *ar = archive_read_new();

    if (!ar)
        return NULL;
    archive_read_support_filter_all(ar);
    archive_read_support_format_tar(ar);
    archive_read_support_format_zip(ar);
    archive_read_support_format_raw(ar);
    archive_read_support_format_empty(ar);
    return ar;
}

/* Feeds a nested archive with the data of the current member below it. */
static la_ssize_t nested_read(struct archive *a, void *ctx,
                              const void **buf)
{
    level *below = ctx;
    size_t size;
    la_int64_t off;
    int rc;

    do {
        rc = archive_read_data_block(below->ar, buf, &size, &off);
        if (rc == ARCHIVE_EOF)
            return 0;
        if (rc < ARCHIVE_WARN) {
            archive_set_error(a, archive_errno(below->ar), "%s",
                              archive_error_string(below->ar));
            return -1;
        }
    } while (size == 0);
    return (la_ssize_t)size;
}

/* Feeds level 0 with a gzip file's inflated bytes. */
static la_ssize_t gunzip_read(struct archive *a, void *ctx, const void **buf)
{
    shard_input *in = ctx;
    char err[SHARD_ERRMAX];
    long n = shard_gunzip_read(in->gz, buf, err);

    if (n < 0) {
        archive_set_error(a, EIO, "%s", err);
        return -1;
    }
    return (la_ssize_t)n;
}

/* Opens level 0 on in->fd: by gunzip.c for a gzip file that can be
 * looked at without reading it, else by libarchive alone. */
static int open_file(shard_input *in)
{
    if (!shard_gunzip_sniff(in->fd))
        return archive_read_open_fd(in->lv[0].ar, in->fd, BLOCK_SIZE);
    if (shard_gunzip_new(&in->gz, in->fd) < 0) {
        archive_set_error(in->lv[0].ar, ENOMEM, "out of memory");
        return ARCHIVE_FATAL;
    }
    return archive_read_open(in->lv[0].ar, in, NULL, gunzip_read, NULL);
}

static int fail_at(shard_input *in, int k, const char *what);

static int push_level(shard_input *in)
{
    level *below = &in->lv[in->depth - 1], *lv = &in->lv[in->depth];

    if (!(lv->ar = reader_new()))
        return shard_errf(in->err, SHARD_ENOMEM, "%s: out of memory",
                          in->where);
    if (archive_read_open(lv->ar, below, NULL, nested_read, NULL) !=
        ARCHIVE_OK) {
        int rc = fail_at(in, in->depth, archive_error_string(lv->ar));

        archive_read_free(lv->ar);
        lv->ar = NULL;
        return rc;
    }
    lv->base_len = strlen(in->where);
    in->depth++;
    return 0;
}

static void pop_level(shard_input *in)
{
    level *lv = &in->lv[--in->depth];

    archive_read_free(lv->ar);
    lv->ar = NULL;
    in->where[lv->base_len] = '\0';
}

/*
 * Level `k` failed with libarchive's message `what`.  When k > 0 the
 * failure is inside a member of level k - 1: that member is given up
 * (levels k and above closed) and the next call goes on with the next
 * member.  A failure of level 0, the file itself, is final.
 */
static int fail_at(shard_input *in, int k, const char *what)
{
    int rc = shard_errf(in->err, SHARD_EIO, "%s: %s", in->where,
                        what ? what : "unreadable");

    in->leaf_open = 0;
    in->blk_len = in->blk_pos = 0;
    if (k == 0)
        in->dead = 1;
    while (in->depth > k && in->depth > 1)
        pop_level(in);
    return rc;
}

int shard_input_open(shard_input **out, const char *path, size_t max_row)
{
    shard_input *in = calloc(1, sizeof(*in));
    int stdin_ = strcmp(path, "-") == 0;

    *out = NULL;
    if (!in || !(in->lv[0].ar = reader_new())) {
        free(in);
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    }
    snprintf(in->path, sizeof(in->path), "%s", stdin_ ? "<stdin>" : path);
    snprintf(in->where, sizeof(in->where), "%s", in->path);
    in->lv[0].base_len = strlen(in->where);
    in->depth = 1;
    in->max_row = max_row;
    in->fd = stdin_ ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0) {
        shard_set_last_error(SHARD_EIO, "%s: %s", in->path,
                             strerror(errno));
        shard_input_close(in);
        return SHARD_EIO;
    }
    if (open_file(in) != ARCHIVE_OK) {
        shard_set_last_error(SHARD_EIO, "%s: %s", in->path,
                             archive_error_string(in->lv[0].ar));
        shard_input_close(in);
        return SHARD_EIO;
    }
    *out = in;
    return 0;
}

static void leaf_reset(shard_input *in)
{
    in->leaf_open = 1;
    in->members++;
    in->blk_len = in->blk_pos = 0;
    in->mode = MODE_SNIFF;
    in->nl = in->rows = 0;
    in->row_open = 0;
    in->at_start = 1;
    in->len = 0;
    in->overlong = 0;
}

/*
 * Opens the next leaf: the next regular file at any level, descending into
 * members and climbing out of finished archives.  1 when one is open, 0 at
 * the end of the input.
 */
static int open_leaf(shard_input *in)
{
    struct archive_entry *e;

    for (;;) {
        level *top = &in->lv[in->depth - 1];
        int rc = archive_read_next_header(top->ar, &e);

        if (rc == ARCHIVE_EOF) {
            if (in->depth == 1)
                return 0;
            pop_level(in);
            continue;
        }
        if (rc < ARCHIVE_WARN)
            return fail_at(in, in->depth - 1, archive_error_string(top->ar));
        top->is_raw = archive_format(top->ar) == ARCHIVE_FORMAT_RAW;
        in->where[top->base_len] = '\0';
        if (top->is_raw) {
            leaf_reset(in);
            return 1;
        }
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        snprintf(in->where + top->base_len,
                 sizeof(in->where) - top->base_len, ":%s",
                 archive_entry_pathname(e));
        if (in->depth > SHARD_INPUT_MAX_NESTING) {
            leaf_reset(in);
            return 1;
        }
        if ((rc = push_level(in)) < 0)
            return rc;
    }
}

/* Refills the leaf's block; 1 with bytes, 0 at the end of the leaf. */
static int next_block(shard_input *in)
{
    level *top = &in->lv[in->depth - 1];
    const void *buf;
    size_t size;
    la_int64_t off;
    int rc;

    do {
        rc = archive_read_data_block(top->ar, &buf, &size, &off);
        if (rc == ARCHIVE_EOF)
            return 0;
        if (rc < ARCHIVE_WARN)
            return fail_at(in, in->depth - 1, archive_error_string(top->ar));
    } while (size == 0);
    in->blk = buf;
    in->blk_len = size;
    in->blk_pos = 0;
    return 1;
}

/* ---- rows ------------------------------------------------------------- */

/* Appends to the pending row, or flags it overlong past max_row. */
static int keep(shard_input *in, const unsigned char *p, size_t n)
{
    size_t need;

    if (in->overlong || n == 0)
        return 0;
    if (in->len + n > in->max_row) {
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

/* Hands out the pending row and starts a new one.  Returns 1. */
static int emit(shard_input *in, shard_line *line, uint64_t lineno,
                const char *problem)
{
    if (in->mode == MODE_LINES && in->len &&
        in->line[in->len - 1] == '\r')
        in->len--;
    if (in->line)
        memset(in->line + in->len, 0, SHARD_JSON_PADDING);
    in->rows++;
    line->text = in->line ? in->line : "";
    line->len = in->len;
    line->lineno = lineno;
    line->row = in->mode == MODE_LINES ? lineno : in->rows;
    line->where = in->where;
    line->member = in->members;
    line->overlong = in->overlong;
    line->problem = NULL;
    if (in->overlong)
        snprintf(in->problem, sizeof(in->problem),
                 "row longer than %zu bytes", in->max_row);
    else if (problem)
        snprintf(in->problem, sizeof(in->problem), "%s", problem);
    if (in->overlong || problem)
        line->problem = in->problem;
    in->len = 0;
    in->overlong = 0;
    in->row_open = 0;
    return 1;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Before the first non-space byte: a '[' makes the leaf an array. */
static void sniff(shard_input *in)
{
    while (in->blk_pos < in->blk_len) {
        const unsigned char *p = in->blk + in->blk_pos;

        if (in->at_start && in->blk_len - in->blk_pos >= 3 &&
            memcmp(p, "\xef\xbb\xbf", 3) == 0) {
            in->at_start = 0;
            in->blk_pos += 3;
            continue;
        }
        in->at_start = 0;
        if (!is_space(*p)) {
            in->mode = *p == '[' ? MODE_ARRAY : MODE_LINES;
            if (*p == '[') {
                in->blk_pos++;
                in->depth_in_elem = in->in_str = in->esc = 0;
                in->after_comma = 0;
            }
            return;
        }
        in->nl += *p == '\n';
        in->blk_pos++;
    }
}

/* JSON lines: 1 when a line is complete, 0 when the block ran out. */
static int split_lines(shard_input *in, shard_line *line)
{
    const unsigned char *p = in->blk + in->blk_pos;
    size_t avail = in->blk_len - in->blk_pos;
    const unsigned char *nl = memchr(p, '\n', avail);
    size_t n = nl ? (size_t)(nl - p) : avail;
    int rc;

    in->row_open = 1;
    if ((rc = keep(in, p, n)) < 0)
        return rc;
    in->blk_pos += n + (nl ? 1 : 0);
    if (!nl)
        return 0;
    rc = emit(in, line, in->nl + 1, NULL);
    in->nl++;
    return rc;
}

/*
 * A top-level separator (',' or ']') at blk[i] ends the pending element.
 * An element with nothing in it ("[1,,2]", "[1,]") is a bad row; the
 * empty array "[]" is no row at all.
 */
static int end_element(shard_input *in, shard_line *line, size_t i)
{
    unsigned char c = in->blk[i];
    int had = in->row_open, comma_before = in->after_comma;

    in->blk_pos = i + 1;
    in->after_comma = c == ',';
    if (c == ']')
        in->mode = MODE_AFTER;
    if (had)
        return emit(in, line, in->row_line, NULL);
    if (c == ']' && !comma_before && in->rows == 0)
        return 0;
    return emit(in, line, in->nl + 1, "empty element in JSON array");
}

static uint64_t count_newlines(const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    uint64_t k = 0;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
        k++;
        p++;
    }
    return k;
}

/*
 * Inside a string from blk[i]: jumps to the next quote and the escapes
 * before it with memchr rather than byte by byte.  Returns where scanning
 * resumes; clears in_str past the closing quote.
 */
static size_t skip_string(shard_input *in, size_t i)
{
    const unsigned char *b = in->blk, *q = NULL, *bs;
    size_t n = in->blk_len, end;

    while (i < n) {
        if (in->esc) { /* the escaped byte, which may be a quote */
            in->esc = 0;
            in->nl += b[i] == '\n';
            i++;
            continue;
        }
        if (!q || q < b + i)
            q = memchr(b + i, '"', n - i);
        end = q ? (size_t)(q - b) : n;
        if ((bs = memchr(b + i, '\\', end - i)))
            end = (size_t)(bs - b);
        in->nl += count_newlines(b + i, end - i);
        if (end == n)
            return n;
        if (!bs) {
            in->in_str = 0;
            return end + 1;
        }
        in->esc = 1;
        i = end + 1;
    }
    return i;
}

/*
 * Array elements: 1 when one is complete, 0 when the block ran out.  The
 * scan keeps its state in locals (the block is read through a char
 * pointer, which could alias the handle's fields).
 */
static int split_array(shard_input *in, shard_line *line)
{
    const unsigned char *b = in->blk;
    size_t n = in->blk_len, start = in->blk_pos, i = in->blk_pos;
    uint64_t nl = in->nl;
    int depth = in->depth_in_elem, open = in->row_open, rc;

    while (i < n) {
        unsigned char c = b[i];

        if (in->in_str) {
            in->nl = nl;
            i = skip_string(in, i);
            nl = in->nl;
            continue;
        }
        i++;
        if (c == '\n' || c == ' ' || c == '\t' || c == '\r') {
            nl += c == '\n';
            continue;
        }
        if (depth == 0 && (c == ',' || c == ']')) {
            in->nl = nl;
            in->depth_in_elem = 0;
            if (open && (rc = keep(in, b + start, i - 1 - start)) < 0)
                return rc;
            return end_element(in, line, i - 1);
        }
        if (!open) {
            open = in->row_open = 1;
            in->row_line = nl + 1;
            start = i - 1;
        }
        if (c == '"')
            in->in_str = 1;
        else if (c == '[' || c == '{')
            depth++;
        else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    in->nl = nl;
    in->depth_in_elem = depth;
    in->blk_pos = i;
    return open ? keep(in, b + start, i - start) : 0;
}

/* After the closing bracket only white space may follow. */
static int split_after(shard_input *in)
{
    const unsigned char *p = in->blk + in->blk_pos;
    size_t n = in->blk_len - in->blk_pos;

    if (in->mode == MODE_AFTER) {
        while (n && is_space(*p)) {
            in->nl += *p == '\n';
            p++;
            n--;
        }
        if (!n) {
            in->blk_pos = in->blk_len;
            return 0;
        }
        in->mode = MODE_JUNK;
        in->row_open = 1;
        in->row_line = in->nl + 1;
    }
    in->blk_pos = in->blk_len;
    return keep(in, p, n);
}

/* The leaf ended: hands out what is pending, if anything. */
static int finish_leaf(shard_input *in, shard_line *line)
{
    in->leaf_open = 0;
    switch (in->mode) {
    case MODE_LINES:
        return in->row_open ? emit(in, line, in->nl + 1, NULL) : 0;
    case MODE_ARRAY:
        return emit(in, line, in->row_open ? in->row_line : in->nl + 1,
                    "JSON array ends without ']'");
    case MODE_JUNK:
        return emit(in, line, in->row_line,
                    "text after the end of the JSON array");
    default:
        return 0;
    }
}

int shard_input_next(shard_input *in, shard_line *line)
{
    int rc;

    if (in->dead)
        return SHARD_EIO;
    for (;;) {
        if (!in->leaf_open && (rc = open_leaf(in)) <= 0)
            return rc;
        if (in->blk_pos == in->blk_len) {
            if ((rc = next_block(in)) < 0)
                return rc;
            if (rc == 0) {
                if (finish_leaf(in, line))
                    return 1;
                continue;
            }
        }
        switch (in->mode) {
        case MODE_SNIFF:
            sniff(in);
            rc = 0;
            break;
        case MODE_LINES:
            rc = split_lines(in, line);
            break;
        case MODE_ARRAY:
            rc = split_array(in, line);
            break;
        default:
            rc = split_after(in);
            break;
        }
        if (rc != 0)
            return rc;
    }
}

int shard_input_dead(const shard_input *in)
{
    return in->dead;
}

uint64_t shard_input_bytes(const shard_input *in)
{
    if (in->gz)
        return shard_gunzip_consumed(in->gz);
    return (uint64_t)archive_filter_bytes(in->lv[0].ar, -1);
}

const char *shard_input_errmsg(const shard_input *in)
{
    return in->err;
}

void shard_input_close(shard_input *in)
{
    if (!in)
        return;
    while (in->depth > 1)
        pop_level(in);
    if (in->lv[0].ar)
        archive_read_free(in->lv[0].ar);
    shard_gunzip_free(in->gz);
    if (in->fd > STDIN_FILENO)
        close(in->fd);
    free(in->line);
    free(in);
}
