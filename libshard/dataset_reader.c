/*
 * dataset_reader.c - a dataset directory (or one shard) as a single
 * sequence of records.
 *
 * The directory is complete only when manifest.json exists: the writer
 * publishes it last.  Shards are found by listing each label's stream
 * directory for files named NNNNN.shard, numbered from 00000 without gaps;
 * temporary files (dot names) are never read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "shard_reader.h"

struct shard_dataset {
    shard_reader **shards;
    uint64_t *starts; /* first dataset index of each shard, plus total */
    size_t n, cap_shards, cap_starts;
    char err[SHARD_ERRMAX];
};

static int add_shard(shard_dataset *d, const char *path,
                     const shard_reader_options *opts)
{
    int rc;

    if (shard_grow((void **)&d->shards, &d->cap_shards, d->n + 1,
                   sizeof(*d->shards)) ||
        shard_grow((void **)&d->starts, &d->cap_starts, d->n + 2,
                   sizeof(*d->starts)))
        return SHARD_ENOMEM;
    if (d->n == 0)
        d->starts[0] = 0;
    if ((rc = shard_reader_open(&d->shards[d->n], path, opts)) < 0)
        return shard_errf(d->err, rc, "%s", shard_last_error());
    d->starts[d->n + 1] =
        d->starts[d->n] + shard_reader_count(d->shards[d->n]);
    d->n++;
    return 0;
}

/* Opens DIR/<label>/00000.shard, 00001.shard, ... until one is missing. */
static int add_stream(shard_dataset *d, const char *dir, int label,
                      const shard_reader_options *opts)
{
    char path[4200];
    int rc;

    for (unsigned seq = 0;; seq++) {
        snprintf(path, sizeof(path), "%s/%s/%05u.shard", dir,
                 shard_label_name(label), seq);
        if (access(path, F_OK) != 0)
            return 0;
        if ((rc = add_shard(d, path, opts)) < 0)
            return rc;
    }
}

int shard_dataset_open(shard_dataset **out, const char *path, int label,
                       const shard_reader_options *opts)
{
    static const int order[] = {SHARD_LABEL_POS, SHARD_LABEL_NEG,
                                SHARD_LABEL_UNL};
    shard_dataset *d;
    struct stat st;
    char manifest[4200];
    int rc = 0;

    *out = NULL;
    if (stat(path, &st) != 0)
        return shard_set_last_error(errno == ENOENT ? SHARD_ENOTFOUND
                                                    : SHARD_EIO,
                                    "%s: %s", path, strerror(errno));
    if (!(d = calloc(1, sizeof(*d))))
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");

    if (!S_ISDIR(st.st_mode)) {
        rc = add_shard(d, path, opts);
    } else {
        snprintf(manifest, sizeof(manifest), "%s/manifest.json", path);
        if (access(manifest, F_OK) != 0)
            rc = shard_errf(d->err, SHARD_ENOTFOUND,
                            "%s: no manifest.json: not a complete dataset",
                            path);
        for (size_t i = 0; rc == 0 && i < 3; i++)
            if (label < 0 || label == order[i])
                rc = add_stream(d, path, order[i], opts);
    }
    if (rc < 0) {
        shard_copy_last_error(d->err[0] ? d->err : shard_strerror(rc));
        shard_dataset_close(d);
        return rc;
    }
    if (d->n == 0 && !(d->starts = calloc(1, sizeof(*d->starts)))) {
        shard_dataset_close(d);
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    }
    *out = d;
    return 0;
}

void shard_dataset_close(shard_dataset *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        shard_reader_close(d->shards[i]);
    free(d->shards);
    free(d->starts);
    free(d);
}

uint64_t shard_dataset_count(const shard_dataset *d)
{
    return d->starts[d->n];
}

size_t shard_dataset_shards(const shard_dataset *d)
{
    return d->n;
}

shard_reader *shard_dataset_shard(const shard_dataset *d, size_t k)
{
    return k < d->n ? d->shards[k] : NULL;
}

const char *shard_dataset_errmsg(const shard_dataset *d)
{
    return d->err;
}

int shard_dataset_get(shard_dataset *d, uint64_t i, shard_record *rec)
{
    size_t lo = 0, hi = d->n;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (i >= shard_dataset_count(d))
        return shard_errf(d->err, SHARD_EINVAL,
                          "record %llu out of range (%llu records)",
                          (unsigned long long)i,
                          (unsigned long long)shard_dataset_count(d));
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (d->starts[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    rc = shard_reader_get(d->shards[lo], i - d->starts[lo], rec);
    if (rc < 0)
        shard_errf(d->err, rc, "%s", shard_reader_errmsg(d->shards[lo]));
    return rc;
}
