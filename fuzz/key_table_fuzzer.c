/*
 * key_table_fuzzer.c - fuzzes the raw key table reader
 * (libshard/key_table.c), which `shard merge --dedup` runs on each input's
 * DIR/dedup.keys: untrusted bytes from a dataset directory.
 *
 * For each input the harness checks, and aborts when one fails:
 *   1. A failure is SHARD_ECORRUPT, SHARD_EFORMAT or SHARD_ENOMEM, with a
 *      one-line message naming the file, and no entries.
 *   2. A success gives entries that fill the file exactly after its
 *      64-byte header.
 *   3. The entries written back with the same settings read back the
 *      same, twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "internal.h"
#include "key_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data to a new temporary file; its path goes to `path`. */
static int put_file(char *path, const uint8_t *data, size_t size)
{
    int fd;
    FILE *f;

    strcpy(path, "/tmp/key_table_fuzz.XXXXXX");
    if ((fd = mkstemp(path)) < 0)
        return -1;
    if (!(f = fdopen(fd, "wb"))) {
        close(fd);
        unlink(path);
        return -1;
    }
    if (fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* Rewrites v[0..n) and checks it reads back the same. */
static void round_trip(const char *path, const shard_key_entry *v, size_t n,
                       int norm, int policy)
{
    char err[SHARD_ERRMAX];
    shard_key_entry *back;
    size_t n2;
    int norm2, policy2;

    REQUIRE(shard_keys_write(path, v, n, norm, policy, err) == 0);
    REQUIRE(shard_keys_read(path, &back, &n2, &norm2, &policy2, err) == 0);
    REQUIRE(n2 == n && norm2 == norm && policy2 == policy);
    REQUIRE(n == 0 || memcmp(back, v, n * sizeof(*v)) == 0);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[SHARD_ERRMAX];
    shard_key_entry *v;
    size_t n;
    int rc, norm, policy;

    if (put_file(path, data, size) < 0)
        return 0;
    rc = shard_keys_read(path, &v, &n, &norm, &policy, err);
    if (rc < 0) {
        REQUIRE(rc == SHARD_ECORRUPT || rc == SHARD_EFORMAT ||
                rc == SHARD_ENOMEM);
        REQUIRE(!strchr(err, '\n') && strstr(err, path) == err);
        REQUIRE(v == NULL && n == 0);
    } else {
        REQUIRE(64 + n * sizeof(*v) == size);
        round_trip(path, v, n, norm, policy);
        round_trip(path, v, n, norm, policy);
        free(v);
    }
    unlink(path);
    return 0;
}
