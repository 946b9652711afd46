/*
 * test_dataset.c - the dataset reader and loader: the manifest's shard
 * list, label selection, pairs, deterministic shuffle by frame windows,
 * partitions, resume from any state, read-ahead, and batches.
 *
 * The test dataset has pos and neg streams cut into many small frames and
 * several shards each; record i of either stream carries record_id
 * label * 1000000 + i, and pos i pairs with neg i when i % 3 != 0.
 */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard_pairs.h"
#include "shard_reader.h"
#include "shard_writer.h"
#include "test.h"

#define N_POS 700
#define N_NEG 650

static char root[256];

static uint64_t rid(int label, uint64_t i)
{
    return (uint64_t)label * 1000000 + i;
}

static void gen_tokens(uint64_t id, uint32_t *tokens, size_t *n)
{
    uint64_t s = id * 2654435761u + 7;

    *n = 1 + id % 97;
    for (size_t k = 0; k < *n; k++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tokens[k] = (uint32_t)(s >> 40) % 50000;
    }
}

static void write_label(const char *dir, int label, uint64_t n,
                        shard_codec codec)
{
    shard_writer_options o = SHARD_WRITER_OPTIONS_INIT;
    shard_stream *s;
    uint32_t tokens[128];

    o.codec = codec;
    o.shard_size = 16 << 10;
    o.frame_size = 1 << 10;
    o.label = label;
    o.with_text = 0;
    o.tokenizer.vocab_size = 50000;
    snprintf(o.tokenizer.name, sizeof(o.tokenizer.name), "test");
    if (shard_stream_open(&s, dir, &o) != 0)
        FAILF("open %s: %s", dir, shard_last_error());
    for (uint64_t i = 0; i < n; i++) {
        shard_record_in in = {0};

        gen_tokens(rid(label, i), tokens, &in.n_tokens);
        in.tokens = tokens;
        in.prompt_len = (uint32_t)(in.n_tokens / 3);
        in.label = label;
        in.record_id = rid(label, i);
        in.pair_id = i % 3 ? i + 1 : 0;
        if (shard_stream_add(s, &in) != 0)
            FAILF("add: %s", shard_stream_errmsg(s));
    }
    if (shard_stream_finish(s) != 0)
        FAILF("finish: %s", shard_stream_errmsg(s));
    shard_stream_free(s);
}

/* Lists DIR/<label>/NNNNN.shard as the manifest's "shards". */
static void write_manifest(const char *dir, const char *extra)
{
    char path[512];
    FILE *f;
    int first = 1;

    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "{\"format\": \"libshard-dataset\", \"x\": [1, -2.5e3, "
               "{\"a\": null}, true, \"\\u00e9\\\"\"],\n \"shards\": [");
    for (int label = 0; label < SHARD_LABEL_COUNT; label++)
        for (unsigned seq = 0;; seq++) {
            shard_reader *r;
            const shard_info *in;

            snprintf(path, sizeof(path), "%s/%s/%05u.shard", dir,
                     shard_label_name(label), seq);
            if (access(path, F_OK) != 0)
                break;
            CHECK(shard_reader_open(&r, path, NULL) == 0);
            in = shard_reader_info(r);
            fprintf(f, "%s{\"path\": \"%s/%05u.shard\", \"label\": \"%s\", "
                       "\"records\": %llu, \"checksum\": \"%016llx\"}",
                    first ? "" : ",\n  ", shard_label_name(label), seq,
                    shard_label_name(label),
                    (unsigned long long)in->records,
                    (unsigned long long)in->checksum);
            shard_reader_close(r);
            first = 0;
        }
    fprintf(f, "]%s}\n", extra);
    fclose(f);
}

static const char *dataset(void)
{
    char dir[400];

    if (root[0])
        return root;
    snprintf(root, sizeof(root), "%s/test_dataset.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        FAILF("mkdtemp failed");
    snprintf(dir, sizeof(dir), "%s/pos", root);
    write_label(dir, SHARD_LABEL_POS, N_POS, SHARD_CODEC_ZSTD);
    snprintf(dir, sizeof(dir), "%s/neg", root);
    write_label(dir, SHARD_LABEL_NEG, N_NEG, SHARD_CODEC_NONE);
    write_manifest(root, "");
    return root;
}

static shard_dataset *open_select(const char *select)
{
    shard_dataset_options o = SHARD_DATASET_OPTIONS_INIT;
    shard_dataset *d;

    CHECK(shard_select_parse(select, &o.select) == 0);
    if (shard_dataset_open_with(&d, dataset(), &o) != 0)
        FAILF("open %s: %s", select, shard_last_error());
    return d;
}

/* Reads a whole partition's epoch as record ids into ids (cap entries). */
static size_t run_ids(shard_loader *l, uint64_t *ids, size_t cap)
{
    shard_record r;
    size_t n = 0;
    int rc;

    while ((rc = shard_loader_next(l, &r)) == 1) {
        CHECK(n < cap);
        ids[n++] = r.record_id;
        shard_record_release(&r);
    }
    if (rc < 0)
        FAILF("next: %s", shard_loader_errmsg(l));
    return n;
}

static shard_loader *loader(shard_dataset *d, int shuffle, uint64_t seed,
                            uint32_t part, uint32_t parts, int readahead)
{
    shard_loader_options o = SHARD_LOADER_OPTIONS_INIT;
    shard_loader *l;

    o.shuffle = shuffle;
    o.seed = seed;
    o.window = 3;
    o.rank = part / 2;
    o.world = (parts + 1) / 2;
    o.worker = part % 2;
    o.workers = parts > 1 ? 2 : 1;
    if (parts == 1)
        o.rank = o.worker = 0, o.world = 1;
    o.readahead = readahead;
    if (shard_loader_open(&l, d, &o) != 0)
        FAILF("loader: %s", shard_last_error());
    return l;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

TEST(manifest_lists_the_shards_in_label_order)
{
    shard_dataset *d = open_select("all");
    shard_record r;

    CHECK(shard_dataset_shards(d) > 4);
    CHECK_EQ_INT(shard_dataset_count(d), N_POS + N_NEG);
    CHECK(shard_dataset_get(d, 0, &r) == 0);
    CHECK_EQ_INT(r.record_id, rid(SHARD_LABEL_POS, 0));
    shard_record_release(&r);
    CHECK(shard_dataset_get(d, N_POS, &r) == 0);
    CHECK_EQ_INT(r.record_id, rid(SHARD_LABEL_NEG, 0));
    shard_record_release(&r);
    shard_dataset_close(d);
}

TEST(select_keeps_one_label)
{
    shard_dataset *d = open_select("neg");
    shard_record r;

    CHECK_EQ_INT(shard_dataset_count(d), N_NEG);
    for (uint64_t i = 0; i < N_NEG; i += 37) {
        CHECK(shard_dataset_get(d, i, &r) == 0);
        CHECK_EQ_INT(r.label, SHARD_LABEL_NEG);
        CHECK_EQ_INT(r.record_id, rid(SHARD_LABEL_NEG, i));
        shard_record_release(&r);
    }
    shard_dataset_close(d);
    d = open_select("pos");
    CHECK_EQ_INT(shard_dataset_count(d), N_POS);
    shard_dataset_close(d);
    unsigned m;
    CHECK(shard_select_parse("maybe", &m) == SHARD_EINVAL);
}

TEST(pairs_join_pos_and_neg_on_pair_id)
{
    shard_dataset *d = open_select("pairs");
    shard_loader *l = loader(d, 1, 5, 0, 1, 0);
    uint64_t want = 0;
    shard_record a, b;

    for (uint64_t i = 0; i < N_NEG; i++)
        want += i % 3 != 0;
    CHECK_EQ_INT(shard_dataset_pairs(d), want);
    CHECK_EQ_INT(shard_loader_records(l), 2 * want);
    for (uint64_t j = 0; j < want; j++) {
        CHECK(shard_loader_next(l, &a) == 1);
        CHECK(shard_loader_next(l, &b) == 1);
        CHECK_EQ_INT(a.label, SHARD_LABEL_POS);
        CHECK_EQ_INT(b.label, SHARD_LABEL_NEG);
        CHECK(a.pair_id != 0 && a.pair_id == b.pair_id);
        CHECK_EQ_INT(a.record_id % 1000000, b.record_id % 1000000);
        shard_record_release(&a);
        shard_record_release(&b);
    }
    CHECK(shard_loader_next(l, &a) == 0);
    shard_loader_close(l);
    shard_dataset_close(d);
}

/* A pairs table takes precedence: a record may be in several pairs. */
TEST(pairs_come_from_the_pairs_table_when_there_is_one)
{
    static const uint64_t rows[][2] = {{3, 3}, {0, 0}, {0, 5}, {99999, 1},
                                       {1, 1}, {2, 4}};
    static const uint64_t want[][2] = {{0, 0}, {0, 5}, {1, 1}, {2, 4},
                                       {3, 3}};
    shard_pairs_writer *w;
    uint64_t count, bytes, sum;
    char path[512];
    shard_dataset *d;
    shard_loader *l;
    shard_record r;

    dataset();
    CHECK(shard_pairs_writer_open(&w, root) == 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        shard_pair p = {7, rid(SHARD_LABEL_POS, rows[i][0]),
                        rid(SHARD_LABEL_NEG, rows[i][1]), i + 1};

        CHECK(shard_pairs_writer_add(w, &p) == 0);
    }
    CHECK(shard_pairs_writer_finish(w, &count, &bytes, &sum) == 0);
    shard_pairs_writer_free(w);
    d = open_select("pairs");
    snprintf(path, sizeof(path), "%s/%s", root, SHARD_PAIRS_PATH);
    unlink(path);
    CHECK_EQ_INT(shard_dataset_pairs(d), 5);
    l = loader(d, 0, 0, 0, 1, 0);
    for (size_t j = 0; j < 5; j++)
        for (int side = 0; side < 2; side++) {
            CHECK(shard_loader_next(l, &r) == 1);
            CHECK_EQ_INT(r.record_id,
                         rid(side ? SHARD_LABEL_NEG : SHARD_LABEL_POS,
                             want[j][side]));
            shard_record_release(&r);
        }
    CHECK(shard_loader_next(l, &r) == 0);
    shard_loader_close(l);
    shard_dataset_close(d);
}

TEST(unshuffled_loader_gives_dataset_order)
{
    shard_dataset *d = open_select("both");
    shard_loader *l = loader(d, 0, 0, 0, 1, 0);
    static uint64_t ids[N_POS + N_NEG];
    shard_record r;

    CHECK_EQ_INT(run_ids(l, ids, N_POS + N_NEG), N_POS + N_NEG);
    for (uint64_t i = 0; i < N_POS + N_NEG; i++) {
        CHECK(shard_dataset_get(d, i, &r) == 0);
        CHECK_EQ_INT(ids[i], r.record_id);
        shard_record_release(&r);
    }
    shard_loader_close(l);
    shard_dataset_close(d);
}

TEST(shuffle_is_a_permutation_fixed_by_seed_and_epoch)
{
    shard_dataset *d = open_select("both");
    static uint64_t a[N_POS + N_NEG], b[N_POS + N_NEG], c[N_POS + N_NEG];
    shard_loader *l1 = loader(d, 1, 42, 0, 1, 0);
    shard_loader *l2 = loader(d, 1, 42, 0, 1, 1);
    shard_loader_state st = {42, 1, 0};
    size_t n = N_POS + N_NEG, moved = 0;

    CHECK_EQ_INT(run_ids(l1, a, n), n);
    CHECK_EQ_INT(run_ids(l2, b, n), n);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    CHECK(shard_loader_seek(l1, &st) == 0);
    CHECK_EQ_INT(run_ids(l1, c, n), n);
    for (size_t i = 0; i < n; i++)
        moved += a[i] != c[i];
    CHECK(moved > n / 2);
    qsort(a, n, sizeof(*a), cmp_u64);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(a[i], i < N_POS ? rid(SHARD_LABEL_POS, i)
                                     : rid(SHARD_LABEL_NEG, i - N_POS));
    shard_loader_close(l1);
    shard_loader_close(l2);
    shard_dataset_close(d);
}

/* With a window of one frame, each frame's records come out together. */
TEST(window_of_one_frame_keeps_frames_contiguous)
{
    shard_dataset *d = open_select("neg");
    shard_loader_options o = SHARD_LOADER_OPTIONS_INIT;
    shard_reader *r = shard_dataset_shard(d, 0);
    shard_loader *l;
    static uint64_t ids[N_NEG];
    uint64_t first, count, at = N_NEG, last = 0;

    o.shuffle = 1;
    o.seed = 9;
    o.window = 1;
    CHECK(shard_loader_open(&l, d, &o) == 0);
    CHECK_EQ_INT(run_ids(l, ids, N_NEG), N_NEG);
    CHECK(shard_reader_frames(r) > 3);
    shard_reader_frame_span(r, 1, &first, &count);
    for (size_t i = 0; i < N_NEG; i++)
        if (ids[i] >= rid(SHARD_LABEL_NEG, first) &&
            ids[i] < rid(SHARD_LABEL_NEG, first + count)) {
            at = at < i ? at : i;
            last = i;
        }
    CHECK_EQ_INT(last - at + 1, count);
    shard_loader_close(l);
    shard_dataset_close(d);
}

/* Without any frame cache, a shuffled pass decodes each frame once. */
TEST(a_pass_decodes_each_frame_once)
{
    shard_dataset_options o = SHARD_DATASET_OPTIONS_INIT;
    static uint64_t ids[N_POS];
    shard_dataset *d;

    o.select = SHARD_SELECT_POS; /* the zstd stream */
    o.cache_bytes = 0;
    CHECK(shard_dataset_open_with(&d, dataset(), &o) == 0);
    for (int readahead = 0; readahead < 2; readahead++) {
        shard_loader *l = loader(d, 1, 77, 0, 1, readahead);
        uint64_t before = 0, after = 0, frames = 0;

        for (size_t k = 0; k < shard_dataset_shards(d); k++)
            before += shard_reader_frames_decoded(shard_dataset_shard(d, k));
        CHECK_EQ_INT(run_ids(l, ids, N_POS), N_POS);
        for (size_t k = 0; k < shard_dataset_shards(d); k++) {
            shard_reader *r = shard_dataset_shard(d, k);

            after += shard_reader_frames_decoded(r);
            frames += shard_reader_frames(r);
        }
        CHECK(frames > 20);
        CHECK_EQ_INT(after - before, frames);
        shard_loader_close(l);
    }
    shard_dataset_close(d);
}

TEST(partitions_are_disjoint_balanced_and_cover_the_order)
{
    shard_dataset *d = open_select("both");
    static uint64_t whole[N_POS + N_NEG], parts[N_POS + N_NEG];
    size_t n = N_POS + N_NEG, got = 0;
    shard_loader *l = loader(d, 1, 7, 0, 1, 0);

    CHECK_EQ_INT(run_ids(l, whole, n), n);
    shard_loader_close(l);
    for (uint32_t p = 0; p < 6; p++) {
        size_t k;

        l = loader(d, 1, 7, p, 6, p % 2);
        k = run_ids(l, parts + got, n - got);
        CHECK(k == n / 6 || k == n / 6 + 1);
        CHECK_EQ_INT(k, shard_loader_records(l));
        got += k;
        shard_loader_close(l);
    }
    CHECK_EQ_INT(got, n);
    /* Ranges of one order: concatenated, they are the whole epoch. */
    CHECK(memcmp(whole, parts, sizeof(whole)) == 0);
    shard_dataset_close(d);
}

TEST(resume_from_any_state_continues_exactly)
{
    shard_dataset *d = open_select("pairs");
    static uint64_t whole[2 * N_NEG], rest[2 * N_NEG];
    shard_loader *a = loader(d, 1, 3, 1, 2, 0);
    size_t n = run_ids(a, whole, 2 * N_NEG);
    shard_loader_state st, back = {3, 0, 0};

    CHECK(n > 100);
    for (size_t p = 0; p <= n; p += p < 20 ? 1 : 13) {
        shard_loader *b = loader(d, 1, 3, 1, 2, (int)(p & 1));
        shard_record r;

        CHECK(shard_loader_seek(a, &back) == 0);
        for (size_t i = 0; i < p; i++) {
            CHECK(shard_loader_next(a, &r) == 1);
            shard_record_release(&r);
        }
        shard_loader_state_get(a, &st);
        CHECK_EQ_INT(st.position, p);
        CHECK(shard_loader_seek(b, &st) == 0);
        CHECK_EQ_INT(run_ids(b, rest, n - p), n - p);
        CHECK(memcmp(rest, whole + p, (n - p) * sizeof(*rest)) == 0);
        shard_loader_close(b);
    }
    st.position = n + 1;
    CHECK(shard_loader_seek(a, &st) == SHARD_EINVAL);
    shard_loader_close(a);
    shard_dataset_close(d);
}

TEST(batch_packs_tokens_lengths_and_loss_masks)
{
    shard_dataset *d = open_select("all");
    shard_loader *l = loader(d, 1, 11, 0, 1, 1);
    shard_loader *ref = loader(d, 1, 11, 0, 1, 0);
    uint32_t tokens[300], lengths[16], plen[16];
    uint8_t mask[300], labels[16];
    shard_batch b = {tokens, mask, 300, 0, lengths, plen, labels, 16,
                     0, 0, 0};
    size_t seen = 0;

    for (;;) {
        size_t at = 0;

        CHECK(shard_loader_batch(l, &b) == 0);
        if (b.n_records == 0)
            break;
        CHECK(b.n_tokens <= 300 && b.n_records <= 16);
        for (size_t j = 0; j < b.n_records; j++) {
            shard_record r;

            CHECK(shard_loader_next(ref, &r) == 1);
            CHECK_EQ_INT(lengths[j], r.n_tokens);
            CHECK_EQ_INT(plen[j], r.prompt_len);
            CHECK_EQ_INT(labels[j], r.label);
            for (size_t k = 0; k < r.n_tokens; k++) {
                CHECK_EQ_INT(tokens[at + k], shard_record_token(&r, k));
                CHECK_EQ_INT(mask[at + k], k >= r.prompt_len);
            }
            at += r.n_tokens;
            shard_record_release(&r);
        }
        CHECK_EQ_INT(at, b.n_tokens);
        seen += b.n_records;
    }
    CHECK_EQ_INT(seen, N_POS + N_NEG);
    shard_loader_close(l);
    shard_loader_close(ref);
    shard_dataset_close(d);
}

TEST(batch_cuts_a_record_longer_than_the_buffer)
{
    shard_dataset *d = open_select("pos");
    shard_loader *l = loader(d, 0, 0, 0, 1, 0);
    uint32_t tokens[8], lengths[4];
    shard_batch b = {tokens, NULL, 8, 0, lengths, NULL, NULL, 4, 0, 0, 0};
    shard_record r;

    CHECK(shard_dataset_get(d, 0, &r) == 0);
    CHECK(r.n_tokens > 8);
    CHECK(shard_loader_batch(l, &b) == 0);
    CHECK_EQ_INT(b.n_records, 1);
    CHECK_EQ_INT(b.n_tokens, 8);
    CHECK_EQ_INT(b.truncated, r.n_tokens - 8);
    CHECK_EQ_INT(tokens[7], shard_record_token(&r, 7));
    shard_record_release(&r);
    shard_loader_close(l);
    shard_dataset_close(d);
}

TEST(batch_cuts_each_record_to_max_len)
{
    shard_dataset *d = open_select("neg");
    shard_loader *l = loader(d, 0, 0, 0, 1, 0);
    uint32_t tokens[40], lengths[8];
    shard_batch b = {tokens, NULL, 40, 5, lengths, NULL, NULL, 8, 0, 0, 0};
    size_t cut = 0;

    CHECK(shard_loader_batch(l, &b) == 0);
    CHECK_EQ_INT(b.n_records, 8);
    for (uint64_t i = 0; i < 8; i++) {
        shard_record r;

        CHECK(shard_dataset_get(d, i, &r) == 0);
        CHECK_EQ_INT(lengths[i], r.n_tokens < 5 ? r.n_tokens : 5);
        CHECK_EQ_INT(tokens[5 * i], shard_record_token(&r, 0));
        cut += r.n_tokens - lengths[i];
        shard_record_release(&r);
    }
    CHECK_EQ_INT(b.truncated, cut);
    shard_loader_close(l);
    shard_dataset_close(d);
}

static int open_fails_with(const char *extra_or_text, int raw)
{
    char path[512], copy[512];
    shard_dataset *d;
    FILE *f;
    int rc;

    dataset();
    snprintf(path, sizeof(path), "%s/manifest.json", root);
    snprintf(copy, sizeof(copy), "%s/manifest.keep", root);
    CHECK(rename(path, copy) == 0);
    if (raw) {
        f = fopen(path, "w");
        fputs(extra_or_text, f);
        fclose(f);
    } else {
        write_manifest(root, extra_or_text);
    }
    rc = shard_dataset_open(&d, root, -1, NULL);
    CHECK(d == NULL || rc == 0);
    shard_dataset_close(d);
    CHECK(rename(copy, path) == 0);
    return rc;
}

TEST(damaged_or_missing_manifests_are_refused)
{
    char path[512], copy[512];
    shard_dataset *d;

    CHECK_EQ_INT(open_fails_with("{\"shards\": [", 1), SHARD_ECORRUPT);
    CHECK(strstr(shard_last_error(), "byte 12") != NULL);
    CHECK_EQ_INT(open_fails_with("{\"format\": 1}", 1), SHARD_ECORRUPT);
    CHECK_EQ_INT(open_fails_with("{\"shards\": [{\"path\": \"../x\", "
                                 "\"label\": \"pos\"}]}", 1),
                 SHARD_ECORRUPT);
    CHECK_EQ_INT(open_fails_with("{\"shards\": [{\"path\": \"neg/00000."
                                 "shard\", \"label\": \"neg\", \"records\": "
                                 "1, \"checksum\": \"0000000000000001\"}]}",
                                 1),
                 SHARD_ECORRUPT);
    CHECK(strstr(shard_last_error(), "does not match manifest") != NULL);
    CHECK_EQ_INT(open_fails_with(", \"shards\": []", 0), SHARD_ECORRUPT);
    CHECK_EQ_INT(open_fails_with("{\"shards\": []} x", 1), SHARD_ECORRUPT);
    CHECK_EQ_INT(open_fails_with("{\"shards\": [{\"path\": \"pos/nope."
                                 "shard\", \"label\": \"pos\"}]}", 1),
                 SHARD_ENOTFOUND);
    snprintf(path, sizeof(path), "%s/manifest.json", root);
    snprintf(copy, sizeof(copy), "%s/manifest.keep", root);
    CHECK(rename(path, copy) == 0);
    CHECK_EQ_INT(shard_dataset_open(&d, root, -1, NULL), SHARD_ENOTFOUND);
    CHECK(strstr(shard_last_error(), "no manifest.json") != NULL);
    CHECK(rename(copy, path) == 0);
}

/*
 * Damaged manifests: random byte flips, cuts and insertions.  Every open
 * fails cleanly or succeeds on a subset of the shards (sanitizer builds
 * catch any over-read).
 */
TEST(mutated_manifests_open_or_fail_cleanly)
{
    static const char junk[] = "{}[]\",:\\0123456789eE-+.tfnu \n";
    char path[512], copy[512], *text, *m;
    uint64_t s = 12345;
    size_t len, ok = 0;
    FILE *f;

    dataset();
    snprintf(path, sizeof(path), "%s/manifest.json", root);
    snprintf(copy, sizeof(copy), "%s/manifest.keep", root);
    f = fopen(path, "rb");
    CHECK(f != NULL);
    text = malloc(1 << 16);
    m = malloc((1 << 16) + 64);
    len = fread(text, 1, 1 << 16, f);
    fclose(f);
    CHECK(len > 100 && len < (1 << 16));
    CHECK(rename(path, copy) == 0);
    for (int round = 0; round < 1500; round++) {
        size_t n = len, at;
        shard_dataset *d;

        memcpy(m, text, len);
        for (int k = 0; k < 1 + round % 3; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            at = (size_t)(s >> 33) % n;
            switch ((s >> 20) % 4) {
            case 0: m[at] ^= (char)(1 << ((s >> 8) % 8)); break;
            case 1: m[at] = junk[(s >> 12) % (sizeof(junk) - 1)]; break;
            case 2: n = at; break;
            default:
                memmove(m + at + 1, m + at, n - at);
                m[at] = junk[(s >> 12) % (sizeof(junk) - 1)];
                n++;
            }
            if (n == 0)
                n = 1;
        }
        f = fopen(path, "wb");
        fwrite(m, 1, n, f);
        fclose(f);
        if (shard_dataset_open(&d, root, -1, NULL) == 0) {
            CHECK(shard_dataset_count(d) <= N_POS + N_NEG);
            shard_dataset_close(d);
            ok++;
        } else {
            CHECK(d == NULL && shard_last_error()[0] != '\0');
        }
    }
    CHECK(rename(copy, path) == 0);
    CHECK(ok > 0 && ok < 1500);
    free(text);
    free(m);
}

TEST(a_window_past_the_frame_count_is_one_window)
{
    shard_dataset *d = open_select("both");
    static uint64_t a[N_POS + N_NEG], b[N_POS + N_NEG];
    shard_loader_options o = SHARD_LOADER_OPTIONS_INIT;
    shard_loader *l;

    o.shuffle = 1;
    o.seed = 21;
    o.window = UINT32_MAX;
    CHECK(shard_loader_open(&l, d, &o) == 0);
    CHECK_EQ_INT(run_ids(l, a, N_POS + N_NEG), N_POS + N_NEG);
    shard_loader_close(l);
    o.window = 100000;
    CHECK(shard_loader_open(&l, d, &o) == 0);
    CHECK_EQ_INT(run_ids(l, b, N_POS + N_NEG), N_POS + N_NEG);
    shard_loader_close(l);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    shard_dataset_close(d);
}

TEST(bad_loader_options_are_refused)
{
    shard_dataset *d = open_select("neg");
    shard_loader_options o = SHARD_LOADER_OPTIONS_INIT;
    shard_loader *l;

    o.rank = 2;
    o.world = 2;
    CHECK_EQ_INT(shard_loader_open(&l, d, &o), SHARD_EINVAL);
    CHECK(l == NULL);
    o.rank = 0;
    o.window = 0;
    CHECK_EQ_INT(shard_loader_open(&l, d, &o), SHARD_EINVAL);
    shard_dataset_close(d);
}

TEST(frame_records_share_the_held_frame)
{
    shard_dataset *d = open_select("pos");
    shard_reader *r = shard_dataset_shard(d, 0);
    shard_frame f;
    shard_record a, b;

    CHECK(shard_reader_frame(r, 1, &f) == 0);
    CHECK(shard_reader_frame_record(r, &f, f.first, &a) == 0);
    CHECK(shard_reader_frame_record(r, &f, f.first + f.count - 1, &b) == 0);
    shard_record_release(&b);
    CHECK(shard_reader_frame_record(r, &f, f.first + f.count, &b) ==
          SHARD_EINVAL);
    CHECK(a.ref == f.ref && (const unsigned char *)a.tokens == f.data);
    shard_frame_release(&f);
    CHECK_EQ_INT(a.record_id, rid(SHARD_LABEL_POS, f.first));
    shard_record_release(&a);
    CHECK(shard_reader_frame(r, shard_reader_frames(r), &f) ==
          SHARD_EINVAL);
    shard_dataset_close(d);
}

TEST_MAIN()
