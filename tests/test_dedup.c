/*
 * test_dedup.c - record keys, the key table in memory and on disk, and
 * the flags of records kept in a conflict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile_internal.h"
#include "dedup.h"
#include "shard_compile.h"
#include "shard_reader.h"
#include "shard_tombstones.h"
#include "test.h"

static shard_key key_of(const char *ctx, const char *resp, int norm)
{
    shard_message m[2] = {{"user", 4, ctx, strlen(ctx)},
                          {"assistant", 9, resp, strlen(resp)}};
    shard_key k;

    if (shard_key_record(&k, m, 2, norm) < 0)
        FAILF("shard_key_record failed");
    return k;
}

static int key_eq(shard_key a, shard_key b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

TEST(keys_by_normalisation)
{
    shard_key a = key_of("Hello  world", "Fine.", SHARD_NORM_WS);
    shard_key b = key_of(" Hello\n\tworld ", "Fine.", SHARD_NORM_WS);

    CHECK(key_eq(a, b));
    CHECK(!key_eq(key_of("Hello  world", "Fine.", SHARD_NORM_NONE),
                  key_of(" Hello\n\tworld ", "Fine.", SHARD_NORM_NONE)));
    CHECK(!key_eq(key_of("Hello", "Fine.", SHARD_NORM_WS),
                  key_of("hello", "Fine.", SHARD_NORM_WS)));
    /* Full-width letters, a combining accent, case: one key under nfkc. */
    CHECK(key_eq(key_of("CAF\xc3\x89", "ok", SHARD_NORM_NFKC),
                 key_of("\xef\xbd\x83\xef\xbd\x81\xef\xbd\x86" "e\xcc\x81",
                        "ok", SHARD_NORM_NFKC)));
    CHECK(!key_eq(key_of("CAF\xc3\x89", "ok", SHARD_NORM_WS),
                  key_of("caf\xc3\xa9", "ok", SHARD_NORM_WS)));
    /* The boundary between context and response is part of the key. */
    CHECK(!key_eq(key_of("ab", "c", SHARD_NORM_WS),
                  key_of("a", "bc", SHARD_NORM_WS)));
}

/* The next state of the tests' linear congruential generator. */
static uint64_t lcg_next(uint64_t *seed)
{
    return *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
}

/* Text of n bytes drawn from an alphabet heavy in white space or, with
 * `prose`, from one of words and single spaces, with now and then a run
 * of white space or a control byte. */
static void random_text(char *s, size_t n, uint64_t *seed, int prose)
{
    static const char spaces[] = " \t\n\v\f\r  ab\x1f\x1e\xc3\xa9z.";
    static const char words[] = "abcdefghij klmnop qrstuv wxyz\xc3\xa9. "
                                "ABCDEFGHIJ KLMNOP QRSTUV WXYZ\x80, ";
    const char *alpha = prose ? words : spaces;
    size_t k = prose ? sizeof(words) - 1 : sizeof(spaces) - 1;

    for (size_t i = 0; i < n; i++) {
        uint64_t r = lcg_next(seed);

        s[i] = alpha[(r >> 33) % k];
        if (prose && (r >> 20) % 97 == 0)
            s[i] = "\n\t \x01\r"[(r >> 12) % 5];
    }
}

/* The ids and the `ws` key from one folding equal those hashed message by
 * message, for texts empty, blank, long (past shard_fold_ws's 4 KB
 * pieces) and full of white-space runs at either end. */
TEST(folded_hashes_match)
{
    static char text[3][20000];
    shard_message m[3];
    uint64_t seed = 7;
    char *buf = NULL;
    size_t cap = 0;

    for (int round = 0; round < 300; round++) {
        size_t n = 1 + round % 3, len = 0, ctx_len;
        shard_key a, b;

        for (size_t i = 0; i < n; i++) {
            size_t l = round % 7 == 0 ? 0 : (seed >> 40) % (round < 20
                                                           ? 20000 : 300);

            random_text(text[i], l, &seed, round % 2);
            m[i] = (shard_message){i % 2 ? "assistant" : "user",
                                   i % 2 ? 9 : 4, text[i], l};
        }
        CHECK_EQ_INT(shard_fold_messages(&buf, &len, &cap, m, n - 1), 0);
        ctx_len = len;
        CHECK_EQ_INT(shard_fold_messages(&buf, &len, &cap, m + n - 1, 1),
                     0);
        CHECK_EQ_INT(shard_key_record(&a, m, n, SHARD_NORM_WS), 0);
        b = shard_key_folded(buf, len);
        CHECK(key_eq(a, b));
        CHECK(shard_record_id_folded(buf, len) == shard_record_id(m, n));
        CHECK(shard_prompt_id_folded(buf, ctx_len) ==
              shard_prompt_id(m, n - 1));
    }
    free(buf);
}

typedef struct {
    char text[256];
    size_t len;
} fold_sink;

static void fold_collect(void *ctx, const char *p, size_t n)
{
    fold_sink *k = ctx;

    memcpy(k->text + k->len, p, n);
    k->len += n;
}

/* shard_fold_messages() gives, between role and separator, the bytes
 * shard_fold_ws() does, on short texts of words and white space where
 * every 16-byte window, at every alignment, meets each case: single
 * spaces and other white space, runs, white space last in the window or
 * the text, the bytes next to \t..\r. */
TEST(fold_matches_the_reference)
{
    static const char *const parts[] = {
        "abc", "de", "f", " ", " ", "\n", " \t", "  ", "\x01", "\xc3\xa9",
        "\t", "\r", "\v", "\f", "\x08", "\x0e", "\x1f", "!",
        "abcdefghijklmnopq", "x\ny\tz\rw\vv\fu t"};
    size_t n_parts = sizeof(parts) / sizeof(parts[0]);
    uint64_t seed = 11;
    char text[128], *buf = NULL;
    size_t cap = 0;

    for (int round = 0; round < 40000; round++) {
        shard_message m = {"", 0, text, 0};
        fold_sink want = {{0}, 0};
        size_t len = 0, target;

        target = (lcg_next(&seed) >> 33) % 70;
        while (m.content_len < target) {
            const char *w = parts[(lcg_next(&seed) >> 33) % n_parts];

            memcpy(text + m.content_len, w, strlen(w));
            m.content_len += strlen(w);
        }
        shard_fold_ws(text, m.content_len, fold_collect, &want);
        CHECK_EQ_INT(shard_fold_messages(&buf, &len, &cap, &m, 1), 0);
        CHECK_EQ_INT(len, want.len + 2);
        if (len == want.len + 2)
            CHECK(memcmp(buf + 1, want.text, want.len) == 0);
    }
    free(buf);
}

TEST(pair_key_is_ordered)
{
    shard_key a = key_of("q", "yes", SHARD_NORM_WS);
    shard_key b = key_of("q", "no", SHARD_NORM_WS);
    shard_key ab = shard_key_pair(&a, &b), ba = shard_key_pair(&b, &a);

    CHECK(!key_eq(ab, ba));
    CHECK(key_eq(ab, shard_key_pair(&a, &b)));
}

TEST(names_parse)
{
    CHECK_EQ_INT(shard_normalize_parse("nfkc"), SHARD_NORM_NFKC);
    CHECK_EQ_INT(shard_normalize_parse("nfc"), -1);
    CHECK_EQ_INT(shard_conflicts_parse("neg"), SHARD_CONFLICTS_NEG);
    CHECK_EQ_INT(shard_conflicts_parse(""), -1);
    CHECK_EQ_STR(shard_conflicts_name(SHARD_CONFLICTS_KEEP), "keep");
}

/* A stream of notes: n records over `distinct` keys, labels from a
 * small generator so that some keys repeat and some conflict. */
typedef struct {
    shard_key *keys;
    int *labels;
    size_t n;
} notes;

static notes notes_make(size_t n, uint64_t distinct, uint64_t seed)
{
    notes s = {calloc(n, sizeof(shard_key)), calloc(n, sizeof(int)), n};
    uint64_t x = seed;

    if (!s.keys || !s.labels)
        FAILF("out of memory");
    for (size_t i = 0; i < n; i++) {
        uint64_t k;

        k = (lcg_next(&x) >> 33) % distinct;
        s.keys[i].lo = k * 0x9e3779b97f4a7c15ull + 1;
        s.keys[i].hi = k * 0xc2b2ae3d27d4eb4full;
        /* Most keys keep one label; every seventh key may take any. */
        s.labels[i] = k % 7 == 0 ? (int)((x >> 20) % 3) : (int)(k % 3);
        if (i % 5 == 4) /* some pairs too */
            s.labels[i] = SHARD_DEDUP_PAIR;
    }
    return s;
}

static void notes_free(notes *s)
{
    free(s->keys);
    free(s->labels);
}

/*
 * Whether what the first sweep told of note i (`repeat`: the note was
 * SHARD_DEDUP_REPEAT) and what shard_dedup_conflicted() tells before its
 * decision agree with its fate.  In memory both must be exact; on disk
 * neither may be told.
 */
static void check_foretold(int spilled, size_t i, int label, int repeat,
                           int conflicted, int fate)
{
    int conflict = fate == SHARD_FATE_CONFLICT && label != SHARD_DEDUP_PAIR;

    if (spilled && (repeat || conflicted))
        FAILF("note %zu: told %d, %d by a table on disk", i, repeat,
              conflicted);
    if (!spilled && repeat != (fate == SHARD_FATE_DUPLICATE))
        FAILF("note %zu: repeat %d, fate %d", i, repeat, fate);
    if (!spilled && !repeat && conflicted != conflict)
        FAILF("note %zu: conflicted %d, fate %d", i, conflicted, fate);
}

/*
 * Runs both sweeps over `s` with a table of `limit` bytes; the fates go
 * to out[].  Returns whether the table went to disk.
 */
static int run_sweeps(const notes *s, uint64_t limit, int policy, int *out,
                      uint64_t *peak)
{
    shard_dedup *d;
    char dir[] = "/tmp/test_dedup.XXXXXX";
    char *repeat = calloc(s->n, 1);
    int spilled;

    CHECK(mkdtemp(dir) != NULL);
    CHECK(repeat != NULL);
    CHECK_EQ_INT(shard_dedup_open(&d, limit, policy, dir), 0);
    for (int pass = 0; pass < 2; pass++) {
        size_t i;
        int rc = 0;

        for (i = 0; i < s->n; i++) {
            rc = shard_dedup_note(d, &s->keys[i], s->labels[i]);
            repeat[i] = rc == SHARD_DEDUP_REPEAT;
            if (rc != 0 && rc != SHARD_DEDUP_REPEAT)
                break;
        }
        if (rc != SHARD_DEDUP_RESTART) {
            CHECK(rc == 0 || rc == SHARD_DEDUP_REPEAT);
            break;
        }
        CHECK_EQ_INT(pass, 0); /* at most one restart */
    }
    CHECK_EQ_INT(shard_dedup_resolve(d), 0);
    spilled = shard_dedup_spilled(d);
    for (size_t i = 0; i < s->n; i++) {
        int conflicted = shard_dedup_conflicted(d, &s->keys[i],
                                                s->labels[i]);

        out[i] = shard_dedup_decide(d, &s->keys[i], s->labels[i],
                                    (uint32_t)i);
        CHECK(out[i] >= 0);
        check_foretold(spilled, i, s->labels[i], repeat[i], conflicted,
                       out[i]);
    }
    free(repeat);
    *peak = shard_dedup_peak_bytes(d);
    shard_dedup_free(d);
    CHECK_EQ_INT(rmdir(dir), 0); /* no partition file left behind */
    return spilled;
}

TEST(spilled_table_decides_the_same)
{
    notes s = notes_make(60000, 9000, 7);
    int *mem = calloc(s.n, sizeof(int)), *disk = calloc(s.n, sizeof(int));
    uint64_t peak;

    CHECK(mem && disk);
    for (int policy = 0; policy <= SHARD_CONFLICTS_POS; policy++) {
        size_t counts[4] = {0};

        CHECK_EQ_INT(run_sweeps(&s, 0, policy, mem, &peak), 0);
        /* 4 KiB: 64 slots for some 9000 keys, so partitions split. */
        CHECK_EQ_INT(run_sweeps(&s, 4096, policy, disk, &peak), 1);
        CHECK(peak <= 4096 + s.n / 4 + 1);
        for (size_t i = 0; i < s.n; i++) {
            if (mem[i] != disk[i])
                FAILF("policy %d, note %zu: %d in memory, %d on disk",
                      policy, i, mem[i], disk[i]);
            counts[mem[i]]++;
        }
        CHECK(counts[SHARD_FATE_DUPLICATE] > 0);
        CHECK(policy == SHARD_CONFLICTS_KEEP
                  ? counts[SHARD_FATE_KEEP_FLAGGED] > 0
                  : counts[SHARD_FATE_CONFLICT] > 0);
    }
    free(mem);
    free(disk);
    notes_free(&s);
}

TEST(fates_follow_the_rules)
{
    shard_key k = {1, 2}, j = {3, 4};
    notes s = {(shard_key[]){k, k, j, k, j, j},
               (int[]){SHARD_LABEL_POS, SHARD_LABEL_POS, SHARD_LABEL_UNL,
                       SHARD_LABEL_NEG, SHARD_LABEL_UNL, SHARD_LABEL_POS},
               6};
    static const int want[4][6] = {
        {3, 2, 3, 3, 2, 3}, /* drop */
        {1, 2, 1, 1, 2, 1}, /* keep, flagged */
        {3, 2, 3, 0, 2, 3}, /* neg: j has no negative: all dropped */
        {0, 2, 3, 3, 2, 0}, /* pos */
    };
    int got[6];
    uint64_t peak;

    for (int policy = 0; policy <= SHARD_CONFLICTS_POS; policy++) {
        run_sweeps(&s, 0, policy, got, &peak);
        for (int i = 0; i < 6; i++)
            if (got[i] != want[policy][i])
                FAILF("policy %s, note %d: fate %d, want %d",
                      shard_conflicts_name(policy), i, got[i],
                      want[policy][i]);
    }
}

TEST(sweeps_that_differ_are_refused)
{
    shard_dedup *d;
    shard_key a = {5, 6}, b = {7, 8};

    CHECK_EQ_INT(shard_dedup_open(&d, 0, SHARD_CONFLICTS_DROP, "/tmp"), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &a, SHARD_LABEL_POS), 0);
    CHECK_EQ_INT(shard_dedup_resolve(d), 0);
    CHECK_EQ_INT(shard_dedup_decide(d, &b, SHARD_LABEL_POS, 0),
                 SHARD_EINVAL);
    CHECK_EQ_INT(shard_dedup_decide(d, &a, SHARD_LABEL_POS, 0),
                 SHARD_FATE_KEEP);
    CHECK_EQ_INT(shard_dedup_decide(d, &a, SHARD_LABEL_POS, 0),
                 SHARD_EINVAL); /* more decisions than notes */
    shard_dedup_free(d);
}

/* Flags of the records of `dir`, in dataset order (pos, neg, unl). */
static size_t read_flags(const char *dir, uint32_t *flags, size_t cap)
{
    shard_dataset *ds;
    shard_record r;
    size_t n;

    CHECK_EQ_INT(shard_dataset_open(&ds, dir, -1, NULL), 0);
    n = (size_t)shard_dataset_count(ds);
    CHECK(n <= cap);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(shard_dataset_get(ds, i, &r), 0);
        flags[i] = r.flags;
        shard_record_release(&r);
    }
    shard_dataset_close(ds);
    return n;
}

TEST(keep_flags_conflicting_records)
{
    const char *in[] = {"tests/data/dedup/conflicts.jsonl"};
    shard_compile_options o = SHARD_COMPILE_OPTIONS_INIT;
    shard_accounting a;
    char dir[] = "/tmp/test_dedup_keep.XXXXXX";
    char cmd[128];
    uint32_t flags[16];
    size_t n, flagged = 0;

    CHECK(mkdtemp(dir) != NULL);
    o.conflicts = SHARD_CONFLICTS_KEEP;
    o.force = 1;
    CHECK_EQ_INT(shard_compile(in, 1, dir, &o, &a), 0);
    CHECK_EQ_INT(a.kept, 8);
    n = read_flags(dir, flags, 16);
    CHECK_EQ_INT(n, 8);
    for (size_t i = 0; i < n; i++)
        flagged += flags[i] == SHARD_RECORD_FLAG_CONFLICT;
    CHECK_EQ_INT(flagged, 4); /* flat earth pos/neg, prime pos/neg */

    o.conflicts = SHARD_CONFLICTS_NEG; /* winners are not flagged */
    CHECK_EQ_INT(shard_compile(in, 1, dir, &o, &a), 0);
    n = read_flags(dir, flags, 16);
    CHECK_EQ_INT(n, 6);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(flags[i], 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

TEST(tombstones_round_trip)
{
    char dir[] = "/tmp/test_tomb.XXXXXX", p[64];
    uint64_t v[3] = {shard_tombstone(SHARD_LABEL_POS, 3),
                     shard_tombstone(SHARD_LABEL_POS, 9),
                     shard_tombstone(SHARD_LABEL_NEG, 3)};
    uint64_t *got;
    size_t n;
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    CHECK_EQ_INT(shard_tombstones_read(dir, &got, &n), 0); /* none yet */
    CHECK_EQ_INT(n, 0);
    free(got);
    CHECK_EQ_INT(shard_tombstones_write(dir, v, 3), 0);
    CHECK_EQ_INT(shard_tombstones_read(dir, &got, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK(shard_tombstones_has(got, n, shard_tombstone(SHARD_LABEL_NEG, 3)));
    CHECK(!shard_tombstones_has(got, n, shard_tombstone(SHARD_LABEL_UNL, 3)));
    CHECK(!shard_tombstones_has(got, n, shard_tombstone(SHARD_LABEL_POS, 4)));
    free(got);

    snprintf(p, sizeof(p), "%s/%s", dir, SHARD_TOMBSTONES_PATH);
    CHECK((f = fopen(p, "r+b")) != NULL); /* one entry byte flipped */
    CHECK_EQ_INT(fseek(f, 64 + 8, SEEK_SET), 0);
    CHECK_EQ_INT(fputc(0x55, f), 0x55);
    fclose(f);
    CHECK_EQ_INT(shard_tombstones_read(dir, &got, &n), SHARD_ECORRUPT);
    CHECK(truncate(p, 70) == 0);
    CHECK_EQ_INT(shard_tombstones_read(dir, &got, &n), SHARD_ECORRUPT);
    CHECK_EQ_INT(unlink(p), 0);
    CHECK_EQ_INT(rmdir(dir), 0);
}

static void collect(void *ctx, int label, uint32_t pos)
{
    uint64_t *out = ctx;

    out[out[0]++ + 1] = shard_tombstone(label, pos);
}

/* A saved table makes a later compile see the earlier keys: repeats are
 * duplicates, and a new label supersedes the record written before. */
TEST(key_table_saved_and_loaded)
{
    char path[] = "/tmp/test_keys.XXXXXX";
    shard_key k = {11, 12}, j = {13, 14}, q = {15, 16};
    uint64_t gone[8] = {0};
    shard_dedup *d;
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ_INT(shard_dedup_open(&d, 0, SHARD_CONFLICTS_DROP, "/tmp"), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &k, SHARD_LABEL_POS), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &j, SHARD_LABEL_NEG), 0);
    CHECK_EQ_INT(shard_dedup_resolve(d), 0);
    CHECK_EQ_INT(shard_dedup_decide(d, &k, SHARD_LABEL_POS, 7), 0);
    CHECK_EQ_INT(shard_dedup_decide(d, &j, SHARD_LABEL_NEG, 4), 0);
    CHECK_EQ_INT(shard_dedup_save(d, path, SHARD_NORM_WS), 0);
    shard_dedup_free(d);

    CHECK_EQ_INT(shard_dedup_open(&d, 0, SHARD_CONFLICTS_KEEP, "/tmp"), 0);
    CHECK_EQ_INT(shard_dedup_load(d, path, SHARD_NORM_WS), SHARD_EFORMAT);
    shard_dedup_free(d);
    CHECK_EQ_INT(shard_dedup_open(&d, 0, SHARD_CONFLICTS_DROP, "/tmp"), 0);
    CHECK_EQ_INT(shard_dedup_load(d, path, SHARD_NORM_NFKC), SHARD_EFORMAT);
    CHECK_EQ_INT(shard_dedup_load(d, path, SHARD_NORM_WS), 0);
    CHECK_EQ_INT(shard_dedup_note(d, &k, SHARD_LABEL_NEG), 0);
    /* j was kept as a negative before: a repeat of the loaded table. */
    CHECK_EQ_INT(shard_dedup_note(d, &j, SHARD_LABEL_NEG),
                 SHARD_DEDUP_REPEAT);
    CHECK_EQ_INT(shard_dedup_note(d, &q, SHARD_LABEL_UNL), 0);
    CHECK_EQ_INT(shard_dedup_resolve(d), 0);
    shard_dedup_superseded(d, collect, gone);
    CHECK_EQ_INT(gone[0], 1);
    CHECK(gone[1] == shard_tombstone(SHARD_LABEL_POS, 7));
    CHECK_EQ_INT(shard_dedup_conflicted(d, &k, SHARD_LABEL_NEG), 1);
    CHECK_EQ_INT(shard_dedup_conflicted(d, &q, SHARD_LABEL_UNL), 0);
    CHECK_EQ_INT(shard_dedup_decide(d, &k, SHARD_LABEL_NEG, 0),
                 SHARD_FATE_CONFLICT);
    CHECK_EQ_INT(shard_dedup_decide(d, &j, SHARD_LABEL_NEG, 0),
                 SHARD_FATE_DUPLICATE);
    CHECK_EQ_INT(shard_dedup_decide(d, &q, SHARD_LABEL_UNL, 0),
                 SHARD_FATE_KEEP);
    shard_dedup_free(d);
    CHECK_EQ_INT(unlink(path), 0);
}

TEST_MAIN()
