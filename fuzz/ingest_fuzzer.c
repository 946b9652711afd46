/*
 * ingest_fuzzer.c - fuzzes the input layer (libshard/ingest_input.h):
 * libarchive's recognition of compression and archives, nested members,
 * and the row splitter for JSON lines and JSON arrays.
 *
 * The first byte picks the row limit (1 to 256 bytes, so that overlong
 * rows are common); the rest is the file.  For each input the harness
 * checks, and aborts when one fails:
 *   1. shard_input_next returns 1, 0 or a negative code with a message
 *      naming the input; after a failed member it goes on, and after a
 *      failure of the file itself (shard_input_dead) nothing is asked.
 *   2. Every row has 1-based line and row numbers, no more than max_row
 *      bytes, a NUL after its text (the padding is zeroed), and a problem
 *      message whenever it was overlong.
 *   3. Members are numbered from 1 and never go back; within a member
 *      row numbers strictly increase and line numbers never decrease.
 *   4. A small JSON array of text bytes (under 512 bytes and no control
 *      bytes but white space, so that neither an archive format nor a
 *      compression bidder such as lzma's can claim it) splits exactly as a
 *      byte-by-byte reference splitter here says: the same rows, texts,
 *      line numbers and problems.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "ingest_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_row(const shard_line *l, size_t max_row, uint32_t *member,
                      uint64_t *row, uint64_t *line)
{
    REQUIRE(l->lineno >= 1 && l->row >= 1 && l->where && l->where[0]);
    REQUIRE(l->len <= max_row && l->text[l->len] == '\0');
    REQUIRE(!l->overlong || (l->problem && l->problem[0]));
    REQUIRE(l->member >= *member && l->member >= 1);
    if (l->member != *member) {
        *member = l->member;
        *row = *line = 0;
    }
    REQUIRE(l->row > *row && l->lineno >= *line);
    *row = l->row;
    *line = l->lineno;
}

/* A row as the reference splitter sees it. */
typedef struct {
    size_t off, len;
    uint64_t line;
    const char *problem;
} ref_row;

#define REF_MAX 600

static int ref_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void ref_add(ref_row *r, size_t *k, size_t off, size_t len,
                    uint64_t line, const char *problem, size_t max_row)
{
    if (len > max_row && !problem)
        problem = "long";
    r[(*k)++] = (ref_row){off, len, line, problem};
}

/*
 * Splits d[0..n) (a JSON array) one byte at a time.  Returns the number
 * of rows, or -1 when d is not an array.
 */
static long ref_split(const uint8_t *d, size_t n, size_t max_row,
                      ref_row *r)
{
    size_t i = 0, k = 0, start = 0;
    uint64_t nl = 0, line = 0;
    int depth = 0, in_str = 0, esc = 0, open = 0, comma = 0;

    if (n >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    for (; i < n && ref_space(d[i]); i++)
        nl += d[i] == '\n';
    if (i == n || d[i] != '[')
        return -1;
    for (i++; i < n; i++) {
        uint8_t c = d[i];

        nl += c == '\n';
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (ref_space(c))
            continue;
        if (depth == 0 && (c == ',' || c == ']')) {
            if (open)
                ref_add(r, &k, start, i - start, line, NULL, max_row);
            else if (c == ',' || comma || k > 0)
                ref_add(r, &k, 0, 0, nl + 1, "empty", max_row);
            open = 0;
            comma = c == ',';
            if (c == ']')
                break;
            continue;
        }
        if (!open) {
            open = 1;
            line = nl + 1;
            start = i;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{')
            depth++;
        else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    if (i >= n) {
        ref_add(r, &k, start, open ? n - start : 0, open ? line : nl + 1,
                "cut", max_row);
        return (long)k;
    }
    for (i++; i < n && ref_space(d[i]); i++)
        nl += d[i] == '\n';
    if (i < n)
        ref_add(r, &k, i, n - i, nl + 1, "junk", max_row);
    return (long)k;
}

static int text_like(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (d[i] < 0x20 && !ref_space(d[i]))
            return 0;
    return 1;
}

/* The input's rows match the reference's, one by one. */
static void check_reference(const char *path, const uint8_t *d, size_t n,
                            size_t max_row)
{
    static ref_row r[REF_MAX];
    long k = n < 512 && text_like(d, n) ? ref_split(d, n, max_row, r) : -1;
    shard_input *in;
    shard_line l;
    long got = 0;

    if (k < 0 || shard_input_open(&in, path, max_row) != 0)
        return;
    while (shard_input_next(in, &l) > 0) {
        REQUIRE(got < k);
        REQUIRE(l.lineno == r[got].line && l.row == (uint64_t)got + 1);
        REQUIRE(!l.problem == !r[got].problem);
        REQUIRE(l.overlong == (r[got].problem && r[got].len > max_row));
        if (!l.problem)
            REQUIRE(l.len == r[got].len &&
                    memcmp(l.text, d + r[got].off, l.len) == 0);
        got++;
    }
    REQUIRE(got == k);
    shard_input_close(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    shard_input *in;
    shard_line l;
    uint32_t member = 0;
    uint64_t row = 0, line = 0;
    size_t max_row;
    int fd, rc;

    if (size < 1)
        return 0;
    max_row = 1 + (size_t)data[0];
    fd = memfd_create("ingest", 0);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, data + 1, size - 1) == (ssize_t)(size - 1));
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    if (shard_input_open(&in, path, max_row) == 0) {
        int failures = 0;

        while ((rc = shard_input_next(in, &l)) != 0) {
            if (rc > 0) {
                check_row(&l, max_row, &member, &row, &line);
                continue;
            }
            REQUIRE(strstr(shard_input_errmsg(in), "/proc/self/fd/"));
            if (shard_input_dead(in))
                break;
            REQUIRE(++failures < 100000); /* members run out */
        }
        shard_input_close(in);
    }
    check_reference(path, data + 1, size - 1, max_row);
    close(fd);
    return 0;
}
