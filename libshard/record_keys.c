/*
 * record_keys.c - record_id to dedup key, and key to position, from a
 * dataset's text sections (record_keys.h).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "record_keys.h"
#include "shard_reader.h"

#define NONE UINT64_MAX

typedef struct {
    uint64_t id; /* record_id, never 0; 0: an empty slot */
    uint64_t lo, hi;
    unsigned labels;
} id_slot;

typedef struct {
    uint64_t lo, hi; /* never both 0 (a key is never all zero) */
    uint64_t pos[SHARD_LABEL_COUNT];
} key_slot;

struct shard_record_keys {
    id_slot *ids;
    key_slot *keys;
    size_t mask; /* both tables have mask + 1 slots */
};

static id_slot *id_find(const shard_record_keys *t, uint64_t id)
{
    size_t h = (size_t)(id * 0x9e3779b97f4a7c15ull >> 20) & t->mask;

    while (t->ids[h].id && t->ids[h].id != id)
        h = (h + 1) & t->mask;
    return &t->ids[h];
}

static key_slot *key_find(const shard_record_keys *t, const shard_key *k)
{
    size_t h = (size_t)(k->lo ^ k->hi >> 9) & t->mask;

    while ((t->keys[h].lo | t->keys[h].hi) &&
           (t->keys[h].lo != k->lo || t->keys[h].hi != k->hi))
        h = (h + 1) & t->mask;
    return &t->keys[h];
}

/* Notes record `id` of `label`, at stream position `pos`, with key k. */
static void note(shard_record_keys *t, uint64_t id, int label, uint64_t pos,
                 const shard_key *k)
{
    id_slot *s = id_find(t, id);
    key_slot *ks = key_find(t, k);

    if (!s->id) {
        *s = (id_slot){id, k->lo, k->hi, 0};
    }
    s->labels |= 1u << label;
    if (!(ks->lo | ks->hi)) {
        ks->lo = k->lo;
        ks->hi = k->hi;
        for (int l = 0; l < SHARD_LABEL_COUNT; l++)
            ks->pos[l] = NONE;
    }
    if (ks->pos[label] == NONE)
        ks->pos[label] = pos;
}

/*
 * The key of record j of shard r from its text.  `m` (cap *cap) holds the
 * messages.  0, SHARD_ENOTFOUND (no text section) or negative.
 */
static int record_key(shard_reader *r, uint64_t j, int normalize,
                      shard_message **m, size_t *cap, shard_key *k)
{
    shard_text text;
    int rc;

    if ((rc = shard_reader_text(r, j, &text)) < 0)
        return rc;
    if (shard_grow((void **)m, cap, text.n_messages + 1, sizeof(**m)) < 0)
        rc = SHARD_ENOMEM;
    for (size_t i = 0; rc == 0 && i < text.n_messages; i++)
        (*m)[i] = (shard_message){text.messages[i].role,
                                  text.messages[i].role_len,
                                  text.messages[i].content,
                                  text.messages[i].content_len};
    if (rc == 0)
        rc = shard_key_record(k, *m, text.n_messages, normalize);
    shard_text_free(&text);
    return rc;
}

/* Notes every record of shard r, the first of its label at `first`. */
static int note_shard(shard_record_keys *t, shard_reader *r, uint64_t first,
                      int normalize, char *err)
{
    const shard_info *info = shard_reader_info(r);
    size_t count, width;
    const uint64_t *ids =
        shard_reader_column(r, SHARD_COL_RECORD_ID, &count, &width);
    shard_message *m = NULL;
    size_t cap = 0;
    shard_key k;
    int rc = 0;

    if (!info->has_text || info->label >= SHARD_LABEL_COUNT || !ids)
        return shard_errf(err, SHARD_ENOTFOUND, "a shard without text or "
                          "of mixed labels");
    for (uint64_t j = 0; rc == 0 && j < count; j++)
        if ((rc = record_key(r, j, normalize, &m, &cap, &k)) < 0)
            shard_errf(err, rc, "record %llu: %s", (unsigned long long)j,
                       shard_reader_errmsg(r));
        else if (ids[j])
            note(t, ids[j], info->label, first + j, &k);
    free(m);
    return rc;
}

int shard_record_keys_open(shard_record_keys **out, const char *dir,
                           int normalize, char *err)
{
    uint64_t next[SHARD_LABEL_COUNT] = {0};
    shard_record_keys *t;
    shard_dataset *ds;
    size_t size = 16;
    int rc;

    *out = NULL;
    if ((rc = shard_dataset_open(&ds, dir, -1, NULL)) < 0)
        return shard_errf(err, rc, "%s", shard_last_error());
    while (size < 2 * shard_dataset_count(ds))
        size *= 2;
    if (!(t = calloc(1, sizeof(*t))) ||
        !(t->ids = calloc(size, sizeof(*t->ids))) ||
        !(t->keys = calloc(size, sizeof(*t->keys)))) {
        shard_record_keys_free(t);
        shard_dataset_close(ds);
        return shard_errf(err, SHARD_ENOMEM, "%s: out of memory", dir);
    }
    t->mask = size - 1;
    for (size_t k = 0; rc == 0 && k < shard_dataset_shards(ds); k++) {
        shard_reader *r = shard_dataset_shard(ds, k);
        int label = shard_reader_info(r)->label;

        rc = note_shard(t, r, label < SHARD_LABEL_COUNT ? next[label] : 0,
                        normalize, err);
        if (rc == 0)
            next[label] += shard_reader_count(r);
    }
    shard_dataset_close(ds);
    if (rc < 0) {
        shard_record_keys_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void shard_record_keys_free(shard_record_keys *t)
{
    if (!t)
        return;
    free(t->ids);
    free(t->keys);
    free(t);
}

unsigned shard_record_keys_by_id(const shard_record_keys *t, uint64_t id,
                                 shard_key *key)
{
    const id_slot *s = id ? id_find(t, id) : NULL;

    if (!s || !s->id)
        return 0;
    key->lo = s->lo;
    key->hi = s->hi;
    return s->labels;
}

int64_t shard_record_keys_position(const shard_record_keys *t,
                                   const shard_key *key, int label)
{
    const key_slot *s = key_find(t, key);

    if (!(s->lo | s->hi) || s->pos[label] == NONE)
        return -1;
    return (int64_t)s->pos[label];
}
