/*
 * dataset_reader.c - a dataset directory (or one shard) as a single
 * sequence of records, through the manifest's list of shards.
 *
 * The directory is complete only when manifest.json exists: the writer
 * publishes it last.  The files read are exactly those the manifest lists;
 * each must hold the records and carry the header checksum its entry says,
 * so a shard replaced or left over from another compile is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_internal.h"
#include "shard_tombstones.h"
#include "shard_pairs.h"

int shard_select_parse(const char *name, unsigned *select)
{
    static const struct {
        const char *name;
        unsigned mask;
    } names[] = {
        {"pos", SHARD_SELECT_POS},   {"neg", SHARD_SELECT_NEG},
        {"unl", SHARD_SELECT_UNL},   {"both", SHARD_SELECT_BOTH},
        {"all", SHARD_SELECT_ALL},   {"pairs", SHARD_SELECT_PAIRS},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(name, names[i].name)) {
            *select = names[i].mask;
            return 0;
        }
    return SHARD_EINVAL;
}

static int add_shard(shard_dataset *d, const char *path,
                     const shard_reader_options *opts)
{
    int rc;

    if (shard_grow((void **)&d->shards, &d->cap_shards, d->n + 1,
                   sizeof(*d->shards)) ||
        shard_grow((void **)&d->starts, &d->cap_starts, d->n + 2,
                   sizeof(*d->starts)))
        return shard_errf(d->err, SHARD_ENOMEM, "out of memory");
    if (d->n == 0)
        d->starts[0] = 0;
    if ((rc = shard_reader_open(&d->shards[d->n], path, opts)) < 0)
        return shard_errf(d->err, rc, "%s", shard_last_error());
    d->starts[d->n + 1] =
        d->starts[d->n] + shard_reader_count(d->shards[d->n]);
    d->n++;
    return 0;
}

/* Opens the listed shards of one label, checking each against its entry. */
static int add_stream(shard_dataset *d, const char *dir, int label,
                      const shard_manifest_entry *list, size_t n,
                      const shard_reader_options *opts)
{
    char path[4400];
    int rc;

    d->label_start[label] = d->n ? d->starts[d->n] : 0;
    for (size_t i = 0; i < n; i++) {
        const shard_manifest_entry *e = &list[i];
        const shard_info *in;

        if (e->label != label)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->path);
        if ((rc = add_shard(d, path, opts)) < 0)
            return rc;
        in = shard_reader_info(d->shards[d->n - 1]);
        if (in->records != e->records || in->checksum != e->checksum)
            return shard_errf(d->err, SHARD_ECORRUPT,
                              "%s: does not match manifest.json (%llu "
                              "records, checksum %016llx; listed %llu, "
                              "%016llx)", path,
                              (unsigned long long)in->records,
                              (unsigned long long)in->checksum,
                              (unsigned long long)e->records,
                              (unsigned long long)e->checksum);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Turns the tombstones of the selected streams into sorted dataset
 * indexes.  Returns 0 or SHARD_ENOMEM. */
static int find_dead(shard_dataset *d)
{
    uint64_t end[SHARD_LABEL_COUNT] = {0};

    if (d->n_tomb == 0)
        return 0;
    if (!(d->dead = malloc(d->n_tomb * sizeof(*d->dead))))
        return shard_errf(d->err, SHARD_ENOMEM, "out of memory");
    for (size_t k = 0; k < d->n; k++) {
        int l = shard_reader_info(d->shards[k])->label;

        if (l >= 0 && l < SHARD_LABEL_COUNT)
            end[l] = d->starts[k + 1];
    }
    for (size_t i = 0; i < d->n_tomb; i++) {
        int l = (int)(d->tomb[i] >> 56);
        uint64_t at;

        if (l < 0 || l >= SHARD_LABEL_COUNT || !(d->select & (1u << l)))
            continue;
        at = d->label_start[l] + (d->tomb[i] & ((1ull << 56) - 1));
        if (at < end[l])
            d->dead[d->n_dead++] = at;
    }
    qsort(d->dead, d->n_dead, sizeof(*d->dead), cmp_u64);
    return 0;
}

static int add_streams(shard_dataset *d, const char *dir,
                       const shard_reader_options *opts)
{
    static const int order[] = {SHARD_LABEL_POS, SHARD_LABEL_NEG,
                                SHARD_LABEL_UNL};
    shard_manifest_entry *list;
    size_t n;
    int rc;

    if ((rc = shard_manifest_list(dir, &list, &n, d->err)) < 0)
        return rc;
    if ((rc = shard_tombstones_read(dir, &d->tomb, &d->n_tomb)) < 0) {
        free(list);
        return shard_errf(d->err, rc, "%s", shard_last_error());
    }
    for (size_t i = 0; rc == 0 && i < 3; i++)
        if (d->select & (1u << order[i]))
            rc = add_stream(d, dir, order[i], list, n, opts);
    free(list);
    return rc;
}

/*
 * Open addressing on 64-bit keys (pair ids, record ids; never 0): the
 * slot of `key`, or the empty slot where it would go.
 */
typedef struct {
    uint64_t (*slot)[2]; /* key, value + 1 */
    size_t mask;
} id_table;

static int table_init(id_table *t, uint64_t n)
{
    size_t size = 16;

    while (size < 2 * n)
        size *= 2;
    t->mask = size - 1;
    t->slot = calloc(size, sizeof(*t->slot));
    return t->slot ? 0 : SHARD_ENOMEM;
}

static size_t table_find(const id_table *t, uint64_t key)
{
    size_t h = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & t->mask;

    while (t->slot[h][0] && t->slot[h][0] != key)
        h = (h + 1) & t->mask;
    return h;
}

/* Keeps the first value given for a key. */
static void table_put(id_table *t, uint64_t key, uint64_t value)
{
    size_t h = table_find(t, key);

    if (!t->slot[h][0]) {
        t->slot[h][0] = key;
        t->slot[h][1] = value + 1;
    }
}

/* The value of key + 1, or 0 when absent. */
static uint64_t table_get(const id_table *t, uint64_t key)
{
    return key ? t->slot[table_find(t, key)][1] : 0;
}

/* Puts (column value, dataset index) of every record of `label`. */
static void index_column(const shard_dataset *d, int kind, int label,
                         id_table *t)
{
    for (size_t k = 0; k < d->n; k++) {
        size_t count, width;
        const uint64_t *keys =
            shard_reader_column(d->shards[k], kind, &count, &width);
        const uint8_t *labels = shard_reader_column(
            d->shards[k], SHARD_COL_LABEL, &count, &width);

        for (size_t i = 0; keys && labels && i < count; i++)
            if (keys[i] && labels[i] == label)
                table_put(t, keys[i], d->starts[k] + i);
    }
}

static void add_pair(shard_dataset *d, uint64_t pos, uint64_t neg)
{
    d->pairs[d->n_pairs][0] = pos;
    d->pairs[d->n_pairs][1] = neg;
    d->n_pairs++;
}

/* Without a pairs table: pos and neg records sharing a pair_id. */
static void join_on_pair_id(shard_dataset *d, id_table *neg)
{
    index_column(d, SHARD_COL_PAIR_ID, SHARD_LABEL_NEG, neg);
    for (size_t k = 0; k < d->n; k++) {
        size_t count, width;
        const uint64_t *ids = shard_reader_column(
            d->shards[k], SHARD_COL_PAIR_ID, &count, &width);
        const uint8_t *labels = shard_reader_column(
            d->shards[k], SHARD_COL_LABEL, &count, &width);

        for (size_t i = 0; ids && labels && i < count; i++) {
            uint64_t n = labels[i] == SHARD_LABEL_POS
                             ? table_get(neg, ids[i]) : 0;

            if (n)
                add_pair(d, d->starts[k] + i, n - 1);
        }
    }
}

static int by_chosen_then_rejected(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;

    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0])
                        : (x[1] > y[1]) - (x[1] < y[1]);
}

/*
 * With the table: every row whose chosen and rejected records are both in
 * the dataset, found by record_id whatever their labels (ranked replies
 * compare two pos records, say); sorted by chosen record so that the
 * loader meets each of their frames once.
 */
static int join_on_table(shard_dataset *d, const shard_pairs *t)
{
    const shard_pair *rows = shard_pairs_rows(t);
    uint64_t n = shard_pairs_count(t);
    id_table ids;

    if (table_init(&ids, shard_dataset_count(d)) < 0 ||
        !(d->pairs = calloc(n + 1, sizeof(*d->pairs)))) {
        free(ids.slot);
        return shard_errf(d->err, SHARD_ENOMEM, "out of memory");
    }
    for (int label = 0; label < SHARD_LABEL_COUNT; label++)
        index_column(d, SHARD_COL_RECORD_ID, label, &ids);
    for (uint64_t j = 0; j < n; j++) {
        uint64_t a = table_get(&ids, rows[j].chosen);
        uint64_t b = table_get(&ids, rows[j].rejected);

        if (a && b)
            add_pair(d, a - 1, b - 1);
    }
    qsort(d->pairs, d->n_pairs, sizeof(*d->pairs), by_chosen_then_rejected);
    free(ids.slot);
    return 0;
}

/*
 * Pairs of a directory dataset come from its pairs table when it has one
 * (a record may then be in several pairs), else from equal pair_id
 * columns.  Linear in records and rows, from the mapped columns.
 */
static int join_pairs(shard_dataset *d, const char *dir, int is_dir)
{
    char path[4200];
    shard_pairs *t = NULL;
    id_table neg;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, SHARD_PAIRS_PATH);
    rc = is_dir ? shard_pairs_open(&t, path) : SHARD_ENOTFOUND;
    if (rc == 0) {
        rc = join_on_table(d, t);
        shard_pairs_close(t);
        return rc;
    }
    if (rc != SHARD_ENOTFOUND)
        return shard_errf(d->err, rc, "%s", shard_last_error());
    if (table_init(&neg, shard_dataset_count(d)) < 0 ||
        !(d->pairs = calloc(shard_dataset_count(d) + 1,
                            sizeof(*d->pairs)))) {
        free(neg.slot);
        return shard_errf(d->err, SHARD_ENOMEM, "out of memory");
    }
    join_on_pair_id(d, &neg);
    free(neg.slot);
    return 0;
}

int shard_dataset_open_with(shard_dataset **out, const char *path,
                            const shard_dataset_options *o)
{
    shard_dataset_options def = SHARD_DATASET_OPTIONS_INIT;
    shard_reader_options ropts = SHARD_READER_OPTIONS_INIT;
    shard_dataset *d;
    struct stat st;
    int rc = 0;

    *out = NULL;
    if (!o)
        o = &def;
    if (o->version != SHARD_DATASET_OPTIONS_VERSION)
        return shard_set_last_error(SHARD_EINVAL,
                                    "dataset options: unknown version");
    if (stat(path, &st) != 0)
        return shard_set_last_error(errno == ENOENT ? SHARD_ENOTFOUND
                                                    : SHARD_EIO,
                                    "%s: %s", path, strerror(errno));
    if (!(d = calloc(1, sizeof(*d))))
        return shard_set_last_error(SHARD_ENOMEM, "out of memory");
    d->select = o->select ? o->select : SHARD_SELECT_ALL;
    if (d->select & SHARD_SELECT_PAIRS)
        d->select = SHARD_SELECT_PAIRS | SHARD_SELECT_ALL;
    ropts.cache_bytes = o->cache_bytes;

    if (!S_ISDIR(st.st_mode))
        rc = add_shard(d, path, &ropts);
    else
        rc = add_streams(d, path, &ropts);
    if (rc == 0 && d->n == 0 &&
        !(d->starts = calloc(1, sizeof(*d->starts))))
        rc = shard_errf(d->err, SHARD_ENOMEM, "out of memory");
    if (rc == 0)
        rc = find_dead(d);
    if (rc == 0 && (d->select & SHARD_SELECT_PAIRS))
        rc = join_pairs(d, path, S_ISDIR(st.st_mode));
    if (rc < 0) {
        shard_copy_last_error(d->err[0] ? d->err : shard_strerror(rc));
        shard_dataset_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

int shard_dataset_open(shard_dataset **out, const char *path, int label,
                       const shard_reader_options *opts)
{
    shard_dataset_options o = SHARD_DATASET_OPTIONS_INIT;

    if (label >= SHARD_LABEL_COUNT) {
        *out = NULL;
        return shard_set_last_error(SHARD_EINVAL, "label %d unknown",
                                    label);
    }
    if (label >= 0)
        o.select = 1u << label;
    if (opts) {
        if (opts->version != SHARD_READER_OPTIONS_VERSION) {
            *out = NULL;
            return shard_set_last_error(SHARD_EINVAL,
                                        "reader options: unknown version");
        }
        o.cache_bytes = opts->cache_bytes;
    }
    return shard_dataset_open_with(out, path, &o);
}

void shard_dataset_close(shard_dataset *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        shard_reader_close(d->shards[i]);
    free(d->shards);
    free(d->starts);
    free(d->pairs);
    free(d->tomb);
    free(d->dead);
    free(d);
}

int shard_dataset_tombstoned(const shard_dataset *d, uint64_t i)
{
    int label;

    if (!d->n_tomb || i >= shard_dataset_count(d))
        return 0;
    label = shard_reader_info(d->shards[shard_dataset_locate(d, i)])->label;
    if (label < 0 || label >= SHARD_LABEL_COUNT)
        return 0;
    return shard_tombstones_has(d->tomb, d->n_tomb,
                                shard_tombstone(label,
                                                i - d->label_start[label]));
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

uint64_t shard_dataset_shard_start(const shard_dataset *d, size_t k)
{
    return d->starts[k < d->n ? k : d->n];
}

unsigned shard_dataset_select(const shard_dataset *d)
{
    return d->select;
}

const char *shard_dataset_errmsg(const shard_dataset *d)
{
    return d->err;
}

uint64_t shard_dataset_pairs(const shard_dataset *d)
{
    return d->n_pairs;
}

int shard_dataset_pair(const shard_dataset *d, uint64_t j, uint64_t *pos,
                       uint64_t *neg)
{
    if (j >= d->n_pairs)
        return SHARD_EINVAL;
    *pos = d->pairs[j][0];
    *neg = d->pairs[j][1];
    return 0;
}

size_t shard_dataset_locate(const shard_dataset *d, uint64_t i)
{
    return shard_last_at_most(d->starts, d->n, i);
}

shard_reader *shard_dataset_reader_of(const shard_dataset *d, uint64_t i,
                                      uint64_t *local)
{
    size_t k = shard_dataset_locate(d, i);

    *local = i - d->starts[k];
    return d->shards[k];
}

uint64_t shard_dataset_live_count(const shard_dataset *d)
{
    return shard_dataset_count(d) - d->n_dead;
}

uint64_t shard_dataset_live_index(const shard_dataset *d, uint64_t j)
{
    size_t lo = 0, hi = d->n_dead;

    /* dead[k] - k is how many live records precede dead[k]; the live
     * record j comes after every dead one with at most j before it. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (d->dead[mid] - mid <= j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return j + lo;
}

int shard_dataset_live_get(shard_dataset *d, uint64_t j, shard_record *rec)
{
    if (j >= shard_dataset_live_count(d)) {
        memset(rec, 0, sizeof(*rec));
        return shard_errf(d->err, SHARD_EINVAL,
                          "record %llu out of range (%llu records)",
                          (unsigned long long)j,
                          (unsigned long long)shard_dataset_live_count(d));
    }
    return shard_dataset_get(d, shard_dataset_live_index(d, j), rec);
}

int shard_dataset_get(shard_dataset *d, uint64_t i, shard_record *rec)
{
    size_t k;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (i >= shard_dataset_count(d))
        return shard_errf(d->err, SHARD_EINVAL,
                          "record %llu out of range (%llu records)",
                          (unsigned long long)i,
                          (unsigned long long)shard_dataset_count(d));
    k = shard_dataset_locate(d, i);
    rc = shard_reader_get(d->shards[k], i - d->starts[k], rec);
    if (rc < 0)
        shard_errf(d->err, rc, "%s", shard_reader_errmsg(d->shards[k]));
    return rc;
}
