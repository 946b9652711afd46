/*
 * compile_append.c - the dataset already in DIR, for compile --append
 * (compile_append.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile_append.h"
#include "internal.h"
#include "shard_reader.h"
#include "shard_tombstones.h"

struct shard_append {
    char dir[4096];
    shard_manifest old;
    uint64_t first_seq[SHARD_LABEL_COUNT], base[SHARD_LABEL_COUNT];
    uint64_t *tomb;         /* old entries, then new ones */
    size_t n_tomb, cap_tomb, n_old_tomb;
    uint64_t *dead;         /* record ids of the records removed now */
    size_t n_dead, cap_dead;
    int oom;
    uint64_t removed_tokens[SHARD_LABEL_COUNT];
    uint64_t removed[SHARD_LABEL_COUNT];
    uint64_t pairs_removed;
    shard_file_info *files[SHARD_LABEL_COUNT]; /* for the manifest */
    shard_input_stats *inputs;
    const char **merge_paths; /* a merged dataset's, kept */
};

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The manifest's tokenizer and template must be this compile's. */
static int check_tokenizer(const shard_append *a,
                           const shard_tokenizer_info *tok, char *err)
{
    if (strcmp(a->old.tokenizer, tok->name) != 0 ||
        a->old.tokenizer_hash != tok->hash)
        return shard_errf(err, SHARD_EINVAL, "%s: compiled with tokenizer "
                          "%s, not %s", a->dir, a->old.tokenizer, tok->name);
    if (strcmp(a->old.template_name, tok->template) != 0)
        return shard_errf(err, SHARD_EINVAL, "%s: compiled with template "
                          "%s, not %s", a->dir, a->old.template_name,
                          tok->template);
    return 0;
}

int shard_append_open(shard_append **out, const char *dir,
                      const shard_tokenizer_info *tok, char *err)
{
    shard_append *a = calloc(1, sizeof(*a));
    int rc;

    *out = NULL;
    if (!a)
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    snprintf(a->dir, sizeof(a->dir), "%s", dir);
    if ((rc = shard_manifest_read(dir, &a->old)) < 0) {
        free(a);
        return shard_errf(err, rc, "%s: no dataset to append to (%s)", dir,
                          shard_last_error());
    }
    if ((rc = check_tokenizer(a, tok, err)) < 0 ||
        (rc = shard_tombstones_read(dir, &a->tomb, &a->n_tomb)) < 0) {
        if (rc != SHARD_EINVAL)
            shard_errf(err, rc, "%s", shard_last_error());
        shard_append_free(a);
        return rc;
    }
    a->cap_tomb = a->n_old_tomb = a->n_tomb;
    for (size_t i = 0; i < a->old.n_shards; i++) {
        const shard_manifest_shard *s = &a->old.shards[i];

        if (s->label >= 0 && s->label < SHARD_LABEL_COUNT) {
            a->first_seq[s->label]++;
            a->base[s->label] += s->records;
        }
    }
    *out = a;
    return 0;
}

void shard_append_free(shard_append *a)
{
    if (!a)
        return;
    shard_manifest_free(&a->old);
    free(a->tomb);
    free(a->dead);
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        free(a->files[l]);
    free(a->inputs);
    free(a->merge_paths);
    free(a);
}

uint64_t shard_append_first_seq(const shard_append *a, int label)
{
    return a->first_seq[label];
}

uint64_t shard_append_base(const shard_append *a, int label)
{
    return a->base[label];
}

uint32_t shard_append_inputs(const shard_append *a)
{
    return (uint32_t)a->old.n_inputs;
}

void shard_append_remove(void *ctx, int label, uint32_t position)
{
    shard_append *a = ctx;

    if (shard_grow((void **)&a->tomb, &a->cap_tomb, a->n_tomb + 1,
                   sizeof(*a->tomb)))
        a->oom = 1;
    else
        a->tomb[a->n_tomb++] = shard_tombstone(label, position);
}

/* Notes the id and tokens of each record removed now. */
static int read_removed(shard_append *a, char *err)
{
    shard_dataset *ds[SHARD_LABEL_COUNT] = {0};
    int rc = 0;

    for (size_t i = a->n_old_tomb; rc == 0 && i < a->n_tomb; i++) {
        int label = (int)(a->tomb[i] >> 56);
        uint64_t pos = a->tomb[i] & ((1ull << 56) - 1);
        shard_record r;

        if (!ds[label] &&
            (rc = shard_dataset_open(&ds[label], a->dir, label, NULL)) < 0)
            rc = shard_errf(err, rc, "%s", shard_last_error());
        else if ((rc = shard_dataset_get(ds[label], pos, &r)) < 0)
            rc = shard_errf(err, rc, "%s: record %llu of %s: %s", a->dir,
                            (unsigned long long)pos,
                            shard_label_name(label),
                            shard_dataset_errmsg(ds[label]));
        else if (shard_grow((void **)&a->dead, &a->cap_dead, a->n_dead + 1,
                            sizeof(*a->dead)))
            rc = shard_errf(err, SHARD_ENOMEM, "out of memory");
        if (rc == 0) {
            a->dead[a->n_dead++] = r.record_id;
            a->removed[label]++;
            a->removed_tokens[label] += r.n_tokens;
            shard_record_release(&r);
        }
    }
    for (int l = 0; l < SHARD_LABEL_COUNT; l++)
        shard_dataset_close(ds[l]);
    if (a->n_dead > 0)
        qsort(a->dead, a->n_dead, sizeof(*a->dead), by_value);
    return rc;
}

/* Copies the old pairs rows whose records both stay. */
static int copy_pairs(shard_append *a, shard_pairs_writer *w, char *err)
{
    char path[4400];
    shard_pairs *t;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", a->dir, SHARD_PAIRS_PATH);
    if ((rc = shard_pairs_open(&t, path)) == SHARD_ENOTFOUND)
        return 0;
    if (rc < 0)
        return shard_errf(err, rc, "%s", shard_last_error());
    for (uint64_t i = 0; rc == 0 && i < shard_pairs_count(t); i++) {
        const shard_pair *p = &shard_pairs_rows(t)[i];

        if (shard_tombstones_has(a->dead, a->n_dead, p->chosen) ||
            shard_tombstones_has(a->dead, a->n_dead, p->rejected))
            a->pairs_removed++;
        else if ((rc = shard_pairs_writer_add(w, p)) < 0)
            shard_errf(err, rc, "%s", shard_pairs_writer_errmsg(w));
    }
    shard_pairs_close(t);
    return rc;
}

int shard_append_apply(shard_append *a, shard_pairs_writer *pairs,
                       char *err)
{
    int rc;

    if (a->oom)
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    if ((rc = read_removed(a, err)) < 0)
        return rc;
    return copy_pairs(a, pairs, err);
}

/* The old accounting plus the new, then the removals. */
static void add_accounting(shard_append *a, shard_accounting *acct)
{
    const uint64_t *o = (const uint64_t *)(const void *)&a->old.acct;
    uint64_t *t = (uint64_t *)(void *)acct;
    uint64_t gone = 0;

    _Static_assert(sizeof(shard_accounting) % sizeof(uint64_t) == 0,
                   "the accounting is counters only");
    for (size_t i = 0; i < sizeof(*acct) / sizeof(uint64_t); i++)
        t[i] += o[i];
    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        acct->kept_by_label[l] -= a->removed[l];
        acct->tokens_by_label[l] -= a->removed_tokens[l];
        gone += a->removed[l];
    }
    acct->kept -= gone;
    acct->conflict += gone;
    acct->pairs -= a->pairs_removed;
    acct->pairs_dropped += a->pairs_removed;
}

/* Old shards of each label, then the new. */
static int merge_files(shard_append *a, shard_manifest_data *d)
{
    for (int l = 0; l < SHARD_LABEL_COUNT; l++) {
        size_t n = 0, total = a->first_seq[l] + d->n_files[l];

        if (!(a->files[l] = calloc(total + 1, sizeof(*a->files[l]))))
            return SHARD_ENOMEM;
        for (size_t i = 0; i < a->old.n_shards; i++) {
            const shard_manifest_shard *s = &a->old.shards[i];
            const char *name = strchr(s->path, '/');
            shard_file_info *f = &a->files[l][n];

            if (s->label != l)
                continue;
            snprintf(f->path, sizeof(f->path), "%s",
                     name ? name + 1 : s->path);
            f->records = s->records;
            f->tokens = s->tokens;
            f->bytes = s->bytes;
            f->checksum = s->checksum;
            n++;
        }
        if (d->n_files[l] > 0)
            memcpy(a->files[l] + n, d->files[l],
                   d->n_files[l] * sizeof(*d->files[l]));
        d->files[l] = a->files[l];
        d->n_files[l] = n + d->n_files[l];
    }
    return 0;
}

/* Old inputs, then the new. */
static int merge_inputs(shard_append *a, shard_manifest_data *d)
{
    size_t n = a->old.n_inputs;

    if (!(a->inputs = calloc(n + d->n_inputs + 1, sizeof(*a->inputs))))
        return SHARD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const shard_manifest_input *o = &a->old.inputs[i];
        shard_input_stats *in = &a->inputs[i];

        snprintf(in->path, sizeof(in->path), "%s", o->path);
        snprintf(in->format, sizeof(in->format), "%s", o->format);
        snprintf(in->error, sizeof(in->error), "%s", o->error);
        in->rows_read = o->rows_read;
        in->rows_invalid = o->rows_invalid;
        in->records = o->records;
        in->kept = o->kept;
    }
    if (d->n_inputs > 0)
        memcpy(a->inputs + n, d->inputs,
               d->n_inputs * sizeof(*d->inputs));
    d->inputs = a->inputs;
    d->n_inputs += n;
    return 0;
}

/* A dataset `shard merge` wrote keeps its "merge" object. */
static int keep_merge(shard_append *a, shard_manifest_data *d)
{
    size_t n = a->old.merge.datasets;

    if (!a->old.merged)
        return 0;
    if (!(a->merge_paths = calloc(n + 1, sizeof(*a->merge_paths))))
        return SHARD_ENOMEM;
    for (size_t i = 0; i < n; i++)
        a->merge_paths[i] = a->old.merge_paths[i];
    d->merge = &a->old.merge;
    d->merge_paths = a->merge_paths;
    d->merge_first_input = a->old.merge_first;
    return 0;
}

int shard_append_finish(shard_append *a, shard_manifest_data *d,
                        shard_accounting *acct, char *err)
{
    int rc;

    add_accounting(a, acct);
    if (merge_files(a, d) < 0 || merge_inputs(a, d) < 0 ||
        keep_merge(a, d) < 0)
        return shard_errf(err, SHARD_ENOMEM, "out of memory");
    if (strcmp(d->schema, a->old.schema) != 0 && a->old.schema[0])
        d->schema = strcmp(d->schema, "none") == 0 ? a->old.schema
                                                   : "mixed";
    if (a->n_tomb > 0)
        qsort(a->tomb, a->n_tomb, sizeof(*a->tomb), by_value);
    if (a->n_tomb > a->n_old_tomb &&
        (rc = shard_tombstones_write(a->dir, a->tomb, a->n_tomb)) < 0)
        return shard_errf(err, rc, "%s", shard_last_error());
    return 0;
}
