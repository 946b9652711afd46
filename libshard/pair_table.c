/*
 * pair_table.c - DIR/pairs/00000.pairs: writing while compiling, reading
 * in place.  docs/FORMAT.md ("The pairs table") is the normative layout:
 * a 64-byte header, then 32-byte rows.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "format.h"
#include "internal.h"
#include "shard_pairs.h"

#define PAIRS_MAGIC "\x89SHP\r\n\x1a\n"
#define PAIRS_HEADER 64
#define PAIRS_ROW 32

/* Header field offsets. */
enum {
    PH_MAGIC = 0,
    PH_MAJOR = 8,
    PH_MINOR = 10,
    PH_ROW_SIZE = 12,
    PH_COUNT = 16,
    PH_FILE_SIZE = 24,
    PH_BODY_SUM = 32,
    PH_HEADER_SUM = 40
};

static void header_fill(unsigned char *h, uint64_t count, uint64_t body)
{
    memset(h, 0, PAIRS_HEADER);
    memcpy(h + PH_MAGIC, PAIRS_MAGIC, 8);
    shard_put16(h + PH_MAJOR, 1);
    shard_put16(h + PH_MINOR, 0);
    shard_put32(h + PH_ROW_SIZE, PAIRS_ROW);
    shard_put64(h + PH_COUNT, count);
    shard_put64(h + PH_FILE_SIZE, PAIRS_HEADER + count * PAIRS_ROW);
    shard_put64(h + PH_BODY_SUM, body);
    shard_put64(h + PH_HEADER_SUM, XXH3_64bits(h, PAIRS_HEADER));
}

/* ---- reading ---------------------------------------------------------- */

struct shard_pairs {
    unsigned char *map;
    size_t len;
    uint64_t count, checksum;
};

static int header_check(const unsigned char *h, size_t len,
                        const char *path)
{
    unsigned char copy[PAIRS_HEADER];
    uint64_t count;

    if (len < PAIRS_HEADER || memcmp(h, PAIRS_MAGIC, 8) != 0)
        return shard_set_last_error(SHARD_ECORRUPT, "%s: not a pairs "
                                    "table", path);
    if (shard_le16(h + PH_MAJOR) != 1)
        return shard_set_last_error(SHARD_EFORMAT, "%s: pairs table "
                                    "version %u", path,
                                    shard_le16(h + PH_MAJOR));
    memcpy(copy, h, PAIRS_HEADER);
    shard_put64(copy + PH_HEADER_SUM, 0);
    count = shard_le64(h + PH_COUNT);
    if (XXH3_64bits(copy, PAIRS_HEADER) != shard_le64(h + PH_HEADER_SUM))
        return shard_set_last_error(SHARD_ECORRUPT, "%s: header checksum "
                                    "mismatch", path);
    if (shard_le32(h + PH_ROW_SIZE) != PAIRS_ROW ||
        count > (len - PAIRS_HEADER) / PAIRS_ROW ||
        shard_le64(h + PH_FILE_SIZE) != len ||
        PAIRS_HEADER + count * PAIRS_ROW != len)
        return shard_set_last_error(SHARD_ECORRUPT, "%s: size %zu does "
                                    "not match the header", path, len);
    if (XXH3_64bits(h + PAIRS_HEADER, count * PAIRS_ROW) !=
        shard_le64(h + PH_BODY_SUM))
        return shard_set_last_error(SHARD_ECORRUPT, "%s: rows checksum "
                                    "mismatch", path);
    return 0;
}

int shard_pairs_open(shard_pairs **out, const char *path)
{
    shard_pairs *t;
    struct stat st;
    int fd, rc;

    *out = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return shard_set_last_error(errno == ENOENT ? SHARD_ENOTFOUND
                                                    : SHARD_EIO,
                                    "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !(t = calloc(1, sizeof(*t)))) {
        close(fd);
        return shard_set_last_error(SHARD_EIO, "%s: %s", path,
                                    strerror(errno));
    }
    t->len = (size_t)st.st_size;
    t->map = t->len ? mmap(NULL, t->len, PROT_READ, MAP_SHARED, fd, 0)
                    : MAP_FAILED;
    close(fd);
    if (t->map == MAP_FAILED) {
        free(t);
        return shard_set_last_error(SHARD_ECORRUPT, "%s: empty or "
                                    "unmappable", path);
    }
    if ((rc = header_check(t->map, t->len, path)) < 0) {
        munmap(t->map, t->len);
        free(t);
        return rc;
    }
    t->count = shard_le64(t->map + PH_COUNT);
    t->checksum = shard_le64(t->map + PH_HEADER_SUM);
    *out = t;
    return 0;
}

uint64_t shard_pairs_count(const shard_pairs *t)
{
    return t->count;
}

const shard_pair *shard_pairs_rows(const shard_pairs *t)
{
    return (const shard_pair *)(const void *)(t->map + PAIRS_HEADER);
}

uint64_t shard_pairs_checksum(const shard_pairs *t)
{
    return t->checksum;
}

void shard_pairs_close(shard_pairs *t)
{
    if (!t)
        return;
    munmap(t->map, t->len);
    free(t);
}

/* ---- writing ---------------------------------------------------------- */

struct shard_pairs_writer {
    FILE *f;
    XXH3_state_t *sum;
    uint64_t count;
    char dir[4096];
    char tmp[4200];
    char err[SHARD_ERRMAX];
};

int shard_pairs_writer_open(shard_pairs_writer **out, const char *dir)
{
    unsigned char h[PAIRS_HEADER] = {0};
    shard_pairs_writer *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (!w || !(w->sum = XXH3_createState())) {
        free(w);
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    }
    XXH3_64bits_reset(w->sum);
    snprintf(w->dir, sizeof(w->dir), "%s/pairs", dir);
    snprintf(w->tmp, sizeof(w->tmp), "%s/.00000.pairs.tmp", w->dir);
    if ((mkdir(w->dir, 0755) != 0 && errno != EEXIST) ||
        !(w->f = fopen(w->tmp, "wb")) ||
        fwrite(h, 1, sizeof(h), w->f) != sizeof(h)) {
        shard_set_last_error(SHARD_EIO, "%s: %s", w->tmp, strerror(errno));
        shard_pairs_writer_free(w);
        return SHARD_EIO;
    }
    *out = w;
    return 0;
}

int shard_pairs_writer_add(shard_pairs_writer *w, const shard_pair *row)
{
    unsigned char b[PAIRS_ROW];

    shard_put64(b, row->prompt_id);
    shard_put64(b + 8, row->chosen);
    shard_put64(b + 16, row->rejected);
    shard_put64(b + 24, row->pair_id);
    if (fwrite(b, 1, sizeof(b), w->f) != sizeof(b))
        return shard_errf(w->err, SHARD_EIO, "%s: %s", w->tmp,
                          strerror(errno));
    XXH3_64bits_update(w->sum, b, sizeof(b));
    w->count++;
    return 0;
}

int shard_pairs_writer_finish(shard_pairs_writer *w, uint64_t *count,
                              uint64_t *bytes, uint64_t *checksum)
{
    unsigned char h[PAIRS_HEADER];
    char final[4200];

    header_fill(h, w->count, XXH3_64bits_digest(w->sum));
    if (fseek(w->f, 0, SEEK_SET) != 0 ||
        fwrite(h, 1, sizeof(h), w->f) != sizeof(h) || fflush(w->f) != 0 ||
        fsync(fileno(w->f)) != 0)
        return shard_errf(w->err, SHARD_EIO, "%s: %s", w->tmp,
                          strerror(errno ? errno : EIO));
    fclose(w->f);
    w->f = NULL;
    snprintf(final, sizeof(final), "%s/00000.pairs", w->dir);
    if (rename(w->tmp, final) != 0)
        return shard_errf(w->err, SHARD_EIO, "%s: rename: %s", final,
                          strerror(errno));
    w->tmp[0] = '\0';
    shard_sync_dir(w->dir); /* the table is in place either way */
    *count = w->count;
    *bytes = PAIRS_HEADER + w->count * PAIRS_ROW;
    *checksum = shard_le64(h + PH_HEADER_SUM);
    return 0;
}

const char *shard_pairs_writer_errmsg(const shard_pairs_writer *w)
{
    return w->err;
}

void shard_pairs_writer_free(shard_pairs_writer *w)
{
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    if (w->tmp[0])
        unlink(w->tmp);
    XXH3_freeState(w->sum);
    free(w);
}
