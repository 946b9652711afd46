/*
 * tombstones.c - DIR/tombstones: a 64-byte header, then sorted 8-byte
 * entries (shard_tombstones.h; docs/FORMAT.md, "Tombstones").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "format.h"
#include "internal.h"
#include "shard_tombstones.h"

#define TOMB_MAGIC "\x89SHT\r\n\x1a\n"
#define TOMB_HEADER 64

/* Header field offsets. */
enum {
    TH_MAJOR = 8,
    TH_MINOR = 10,
    TH_ENTRY = 12,
    TH_COUNT = 16,
    TH_BODY_SUM = 48,
    TH_HEADER_SUM = 56
};

static void header_fill(unsigned char *h, uint64_t count, uint64_t body)
{
    memset(h, 0, TOMB_HEADER);
    memcpy(h, TOMB_MAGIC, 8);
    shard_put16(h + TH_MAJOR, 1);
    shard_put32(h + TH_ENTRY, 8);
    shard_put64(h + TH_COUNT, count);
    shard_put64(h + TH_BODY_SUM, body);
    shard_put64(h + TH_HEADER_SUM, XXH3_64bits(h, TOMB_HEADER));
}

/* Checks the header and sizes; 0 or SHARD_ECORRUPT. */
static int header_check(const unsigned char *h, long size, const char *p)
{
    unsigned char copy[TOMB_HEADER];
    uint64_t count = shard_le64(h + TH_COUNT);

    memcpy(copy, h, TOMB_HEADER);
    shard_put64(copy + TH_HEADER_SUM, 0);
    if (memcmp(h, TOMB_MAGIC, 8) != 0 || shard_le16(h + TH_MAJOR) != 1 ||
        shard_le32(h + TH_ENTRY) != 8 ||
        XXH3_64bits(copy, TOMB_HEADER) != shard_le64(h + TH_HEADER_SUM) ||
        count > (uint64_t)(size - TOMB_HEADER) / 8 ||
        TOMB_HEADER + count * 8 != (uint64_t)size)
        return shard_set_last_error(SHARD_ECORRUPT, "%s: not a tombstone "
                                    "list or a damaged one", p);
    return 0;
}

int shard_tombstones_read(const char *dir, uint64_t **v, size_t *n)
{
    unsigned char h[TOMB_HEADER];
    char p[4200];
    uint64_t count;
    long size;
    FILE *f;
    int rc;

    *v = NULL;
    *n = 0;
    snprintf(p, sizeof(p), "%s/%s", dir, SHARD_TOMBSTONES_PATH);
    if (!(f = fopen(p, "rb")))
        return errno == ENOENT ? 0
                               : shard_set_last_error(SHARD_EIO, "%s: %s",
                                                      p, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < TOMB_HEADER ||
        fseek(f, 0, SEEK_SET) != 0 || fread(h, 1, sizeof(h), f) != sizeof(h))
        memset(h, 0, sizeof(h)), size = 0;
    if ((rc = header_check(h, size, p)) < 0) {
        fclose(f);
        return rc;
    }
    count = shard_le64(h + TH_COUNT);
    if (!(*v = malloc(count ? count * 8 : 1))) {
        fclose(f);
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    }
    if (fread(*v, 8, count, f) != count ||
        XXH3_64bits(*v, count * 8) != shard_le64(h + TH_BODY_SUM)) {
        fclose(f);
        free(*v);
        *v = NULL;
        return shard_set_last_error(SHARD_ECORRUPT, "%s: entries damaged",
                                    p);
    }
    fclose(f);
    *n = (size_t)count;
    return 0;
}

int shard_tombstones_has(const uint64_t *v, size_t n, uint64_t entry)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (v[mid] == entry)
            return 1;
        if (v[mid] < entry)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int shard_tombstones_write(const char *dir, const uint64_t *v, size_t n)
{
    unsigned char h[TOMB_HEADER];
    char p[4200], tmp[4300];
    FILE *f;
    int ok;

    snprintf(p, sizeof(p), "%s/%s", dir, SHARD_TOMBSTONES_PATH);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    header_fill(h, n, XXH3_64bits(v, n * 8));
    if (!(f = fopen(tmp, "wb")))
        return shard_set_last_error(SHARD_EIO, "%s: %s", tmp,
                                    strerror(errno));
    ok = fwrite(h, 1, sizeof(h), f) == sizeof(h) &&
         fwrite(v, 8, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0 || !ok || rename(tmp, p) != 0) {
        shard_set_last_error(SHARD_EIO, "%s: %s", p, strerror(errno));
        unlink(tmp);
        return SHARD_EIO;
    }
    return 0;
}
