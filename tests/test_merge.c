/*
 * test_merge.c - the key table as raw entries (key_table.h), read and
 * written the way dedup.c reads and writes it, and shard_merge's
 * refusals of bad arguments.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup.h"
#include "internal.h"
#include "key_table.h"
#include "shard_merge.h"
#include "shard_tombstones.h"
#include "test.h"

static void temp_path(char *path)
{
    int fd;

    strcpy(path, "/tmp/test_merge.XXXXXX");
    fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
}

/* The entry of key k among v[0..n) with the written bit, or NULL. */
static const shard_key_entry *written(const shard_key_entry *v, size_t n,
                                      shard_key k)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].lo == k.lo && v[i].hi == k.hi &&
            (v[i].labels & SHARD_KEY_WRITTEN))
            return &v[i];
    return NULL;
}

/* A table dedup.c saves reads back as its entries, with its settings. */
TEST(reads_what_dedup_saves)
{
    char path[64], err[SHARD_ERRMAX];
    shard_key k = {21, 22}, j = {23, 24};
    shard_key_entry *v;
    const shard_key_entry *e;
    shard_dedup *d;
    size_t n;
    int norm, policy;

    temp_path(path);
    CHECK_EQ_INT(shard_dedup_open(&d, 0, SHARD_CONFLICTS_NEG, "/tmp"), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &k, SHARD_LABEL_POS), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &k, SHARD_LABEL_NEG), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &j, SHARD_LABEL_UNL), 0);
    CHECK_EQ_INT(shard_dedup_resolve(d), 0);
    CHECK_EQ_INT(shard_dedup_decide(d, &k, SHARD_LABEL_POS, 0),
                 SHARD_FATE_CONFLICT);
    CHECK_EQ_INT(shard_dedup_decide(d, &k, SHARD_LABEL_NEG, 5), 0);
    CHECK_EQ_INT(shard_dedup_decide(d, &j, SHARD_LABEL_UNL, 9), 0);
    CHECK_EQ_INT(shard_dedup_save(d, path, SHARD_NORM_NFKC), 0);
    shard_dedup_free(d);

    CHECK_EQ_INT(shard_keys_read(path, &v, &n, &norm, &policy, err), 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(norm, SHARD_NORM_NFKC);
    CHECK_EQ_INT(policy, SHARD_CONFLICTS_NEG);
    CHECK((e = written(v, n, k)) != NULL);
    CHECK_EQ_INT(e->position, 5);
    CHECK_EQ_INT(e->labels & 7, 1 << SHARD_LABEL_POS | 1 << SHARD_LABEL_NEG);
    CHECK((e = written(v, n, j)) != NULL);
    CHECK_EQ_INT(e->position, 9);
    free(v);
    CHECK_EQ_INT(unlink(path), 0);
}

static void collect_gone(void *ctx, int label, uint32_t pos)
{
    uint64_t *out = ctx;

    out[out[0]++ + 1] = shard_tombstone(label, pos);
}

/*
 * The layout a merge writes (each key with its labels, then each record
 * kept) loads into dedup.c: an append then sees the key's record where
 * the written entry puts it, and supersedes it on a new label.
 */
TEST(dedup_loads_what_a_merge_writes)
{
    char path[64], err[SHARD_ERRMAX];
    shard_key k = {31, 32}, j = {33, 34};
    shard_key_entry v[3] = {
        {31, 32, 0, 1u << SHARD_LABEL_POS, {0, 0, 0}},
        {31, 32, 40, SHARD_KEY_WRITTEN | 1u << SHARD_LABEL_POS, {0, 0, 0}},
        {33, 34, 0, 1u << SHARD_LABEL_NEG, {0, 0, 0}},
    };
    uint64_t gone[4] = {0};
    shard_dedup *d;

    temp_path(path);
    CHECK_EQ_INT(shard_keys_write(path, v, 3, SHARD_NORM_WS,
                                  SHARD_CONFLICTS_DROP, err), 0);
    CHECK_EQ_INT(shard_dedup_open(&d, 0, SHARD_CONFLICTS_DROP, "/tmp"), 0);
    CHECK_EQ_INT(shard_dedup_load(d, path, SHARD_NORM_WS), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &k, SHARD_LABEL_NEG), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &j, SHARD_LABEL_NEG),
                 SHARD_DEDUP_REPEAT);
    CHECK_EQ_INT(shard_dedup_resolve(d), 0);
    shard_dedup_superseded(d, collect_gone, gone);
    CHECK_EQ_INT(gone[0], 1);
    CHECK(gone[1] == shard_tombstone(SHARD_LABEL_POS, 40));
    CHECK_EQ_INT(shard_dedup_decide(d, &k, SHARD_LABEL_NEG, 0),
                 SHARD_FATE_CONFLICT);
    CHECK_EQ_INT(shard_dedup_decide(d, &j, SHARD_LABEL_NEG, 0),
                 SHARD_FATE_DUPLICATE);
    shard_dedup_free(d);
    CHECK_EQ_INT(unlink(path), 0);
}

/* Rewrites byte `at` of the file with its complement. */
static void flip_byte(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    int c;

    CHECK(f != NULL);
    CHECK(fseek(f, at, SEEK_SET) == 0 && (c = fgetc(f)) != EOF);
    CHECK(fseek(f, at, SEEK_SET) == 0 && fputc(~c & 0xff, f) != EOF);
    CHECK(fclose(f) == 0);
}

/* A damaged, cut or missing table is refused with a message naming it. */
TEST(damaged_tables_refused)
{
    char path[64], err[SHARD_ERRMAX];
    shard_key_entry v[2] = {{1, 2, 3, 1, {0, 0, 0}}, {4, 5, 6, 2, {0, 0, 0}}};
    shard_key_entry *got;
    size_t n;
    int norm, policy;

    temp_path(path);
    CHECK_EQ_INT(shard_keys_write(path, v, 2, 0, 0, err), 0);
    flip_byte(path, 64 + 30);
    CHECK_EQ_INT(shard_keys_read(path, &got, &n, &norm, &policy, err),
                 SHARD_ECORRUPT);
    CHECK(strstr(err, path) != NULL);
    CHECK_EQ_INT(shard_keys_write(path, v, 2, 0, 0, err), 0);
    CHECK_EQ_INT(truncate(path, 64 + 30), 0);
    CHECK_EQ_INT(shard_keys_read(path, &got, &n, &norm, &policy, err),
                 SHARD_ECORRUPT);
    CHECK_EQ_INT(shard_keys_write(path, v, 2, 0, 0, err), 0);
    flip_byte(path, 3);
    CHECK_EQ_INT(shard_keys_read(path, &got, &n, &norm, &policy, err),
                 SHARD_ECORRUPT);
    CHECK_EQ_INT(unlink(path), 0);
    CHECK_EQ_INT(shard_keys_read(path, &got, &n, &norm, &policy, err),
                 SHARD_ENOTFOUND);
    CHECK(got == NULL && n == 0);
}

/* Bad arguments fail before anything is written. */
TEST(merge_refuses_bad_arguments)
{
    const char *none[] = {"/nonexistent/shard-test-a"};
    shard_merge_options o = SHARD_MERGE_OPTIONS_INIT;
    char out[] = "/tmp/test_merge_out.XXXXXX";

    CHECK(mkdtemp(out) != NULL);
    CHECK_EQ_INT(shard_merge(none, 0, out, NULL, NULL, NULL), SHARD_EINVAL);
    o.version = 99;
    CHECK_EQ_INT(shard_merge(none, 1, out, &o, NULL, NULL), SHARD_EINVAL);
    CHECK_EQ_INT(shard_merge(none, 1, out, NULL, NULL, NULL),
                 SHARD_ENOTFOUND);
    CHECK(strstr(shard_last_error(), "not a dataset directory") != NULL);
    CHECK(access(out, F_OK) == 0);
    CHECK_EQ_INT(rmdir(out), 0);
}

TEST_MAIN()
