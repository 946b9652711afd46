/*
 * key_table.c - DIR/dedup.keys as raw entries (key_table.h): a 64-byte
 * header, then `count` entries of 24 bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "format.h"
#include "internal.h"
#include "key_table.h"

_Static_assert(sizeof(shard_key_entry) == 24, "a key entry is 24 bytes");

#define KT_MAGIC "\x89SHK\r\n\x1a\n"
#define KT_HEADER 64

/* Header field offsets (docs/FORMAT.md, "The key table"). */
enum {
    KT_MAJOR = 8,
    KT_ENTRY = 12,
    KT_COUNT = 16,
    KT_NORMALIZE = 24,
    KT_CONFLICTS = 25,
    KT_BODY_SUM = 48,
    KT_HEADER_SUM = 56
};

/* Checks the header against the file's size; 0 or a negative code. */
static int header_check(const unsigned char *h, long size, const char *path,
                        char *err)
{
    unsigned char copy[KT_HEADER];
    uint64_t count = shard_le64(h + KT_COUNT);

    memcpy(copy, h, KT_HEADER);
    shard_put64(copy + KT_HEADER_SUM, 0);
    if (memcmp(h, KT_MAGIC, 8) != 0 ||
        XXH3_64bits(copy, KT_HEADER) != shard_le64(h + KT_HEADER_SUM) ||
        shard_le32(h + KT_ENTRY) != sizeof(shard_key_entry))
        return shard_errf(err, SHARD_ECORRUPT, "%s: not a key table or a "
                          "damaged one", path);
    if (shard_le16(h + KT_MAJOR) != 1)
        return shard_errf(err, SHARD_EFORMAT, "%s: key table version %u",
                          path, shard_le16(h + KT_MAJOR));
    if (count > (uint64_t)(size - KT_HEADER) / sizeof(shard_key_entry) ||
        KT_HEADER + count * sizeof(shard_key_entry) != (uint64_t)size)
        return shard_errf(err, SHARD_ECORRUPT, "%s: key table cut short "
                          "or damaged", path);
    return 0;
}

/* Opens path and reads its header; *size is the file's size. */
static FILE *open_table(const char *path, unsigned char *h, long *size,
                        char *err, int *rc)
{
    FILE *f = fopen(path, "rb");

    *rc = 0;
    if (!f) {
        *rc = shard_errf(err, errno == ENOENT ? SHARD_ENOTFOUND : SHARD_EIO,
                         "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (*size = ftell(f)) < KT_HEADER ||
        fseek(f, 0, SEEK_SET) != 0 || fread(h, 1, KT_HEADER, f) != KT_HEADER)
        memset(h, 0, KT_HEADER), *size = KT_HEADER;
    if ((*rc = header_check(h, *size, path, err)) < 0) {
        fclose(f);
        return NULL;
    }
    return f;
}

int shard_keys_read(const char *path, shard_key_entry **out, size_t *n,
                    int *normalize, int *policy, char *err)
{
    unsigned char h[KT_HEADER];
    uint64_t count;
    long size;
    int rc;
    FILE *f = open_table(path, h, &size, err, &rc);

    *out = NULL;
    *n = 0;
    if (!f)
        return rc;
    count = shard_le64(h + KT_COUNT);
    if (!(*out = malloc(count ? count * sizeof(**out) : 1))) {
        fclose(f);
        return shard_errf(err, SHARD_ENOMEM, "%s: out of memory", path);
    }
    if (fread(*out, sizeof(**out), count, f) != count ||
        XXH3_64bits(*out, count * sizeof(**out)) !=
            shard_le64(h + KT_BODY_SUM)) {
        fclose(f);
        free(*out);
        *out = NULL;
        return shard_errf(err, SHARD_ECORRUPT, "%s: key table cut short "
                          "or damaged", path);
    }
    fclose(f);
    *n = (size_t)count;
    *normalize = h[KT_NORMALIZE];
    *policy = h[KT_CONFLICTS];
    return 0;
}

int shard_keys_write(const char *path, const shard_key_entry *v, size_t n,
                     int normalize, int policy, char *err)
{
    unsigned char h[KT_HEADER];
    char tmp[4200];
    FILE *f;
    int ok;

    memset(h, 0, sizeof(h));
    memcpy(h, KT_MAGIC, 8);
    shard_put16(h + KT_MAJOR, 1);
    shard_put32(h + KT_ENTRY, sizeof(*v));
    shard_put64(h + KT_COUNT, n);
    h[KT_NORMALIZE] = (unsigned char)normalize;
    h[KT_CONFLICTS] = (unsigned char)policy;
    shard_put64(h + KT_BODY_SUM, XXH3_64bits(v, n * sizeof(*v)));
    shard_put64(h + KT_HEADER_SUM, XXH3_64bits(h, sizeof(h)));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "wb")))
        return shard_errf(err, SHARD_EIO, "%s: %s", tmp, strerror(errno));
    ok = fwrite(h, 1, sizeof(h), f) == sizeof(h) &&
         (n == 0 || fwrite(v, sizeof(*v), n, f) == n) && fflush(f) == 0 &&
         fsync(fileno(f)) == 0;
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        shard_errf(err, SHARD_EIO, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return SHARD_EIO;
    }
    return 0;
}
