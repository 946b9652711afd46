/*
 * ingest_fuzzer.c - fuzzes the input layer (libshard/ingest_input.h):
 * libarchive's recognition of compression and archives, nested members,
 * and the row splitter for JSON lines and JSON arrays.
 *
 * The first byte picks the row limit (1 to 256 bytes, so that overlong
 * rows are common); the rest is the file.  For each input the harness
 * checks, and aborts when one fails:
 *   1. shard_input_next returns 1, 0 or a negative code with a message
 *      naming the input, and nothing after 0 or a failure is asked for.
 *   2. Every row has 1-based line and row numbers, no more than max_row
 *      bytes, a NUL after its text (the padding is zeroed), and a problem
 *      message whenever it was overlong.
 *   3. Members are numbered from 1 and never go back; within a member
 *      row numbers strictly increase and line numbers never decrease.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ingest_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond))                                                        \
            abort();                                                        \
    } while (0)

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
        while ((rc = shard_input_next(in, &l)) > 0)
            check_row(&l, max_row, &member, &row, &line);
        REQUIRE(rc == 0 || (rc < 0 && strstr(shard_input_errmsg(in),
                                             "/proc/self/fd/")));
        shard_input_close(in);
    }
    close(fd);
    return 0;
}
