/*
 * test_merges.c - the listed-merges loops (merges.h) against each other,
 * on the merge tables of the real Llama-3 and Qwen3 tokenizer.json files
 * (fetched into the vocabulary cache by make vocab), and the table itself
 * on a small hand-made list.  Ids against HF's own are checked by
 * tests/cli/tokenizer_corpus.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "merges.h"
#include "test.h"
#include "tokenizer_internal.h"

/* The byte ids of s[0..n) under t, into a new array. */
static uint32_t *byte_ids(const shard_tokenizer *t, const char *s, size_t n)
{
    uint32_t *ids = malloc(n * sizeof(*ids));

    for (size_t i = 0; ids && i < n; i++)
        ids[i] = t->bpe.byte_rank[(unsigned char)s[i]];
    return ids;
}

/* Deterministic text of n bytes drawn from `alphabet`. */
static char *text_from(const char *alphabet, size_t n, uint32_t seed)
{
    size_t k = strlen(alphabet);
    char *s = malloc(n);

    for (size_t i = 0; s && i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        s[i] = alphabet[(seed >> 16) % k];
    }
    return s;
}

/* Merges s both ways and checks the parts agree; returns how many. */
static long same_both_ways(const shard_tokenizer *t, const char *s,
                           size_t n)
{
    uint32_t *a = byte_ids(t, s, n), *b = byte_ids(t, s, n);
    long na, nb;

    CHECK(a && b);
    na = shard_merges_apply(&t->merges, a, n);
    nb = shard_merges_apply_heap(&t->merges, b, n);
    CHECK(na > 0 && na == nb);
    CHECK(memcmp(a, b, (size_t)na * sizeof(*a)) == 0);
    free(a);
    free(b);
    return na;
}

static void queue_equals_heap(const char *name)
{
    static const char *const alphabets[] = {
        "a", "ab", "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        "!", " ", "0123456789", "\xe4\xb8\x80\xe4\xb8\x81",
    };
    shard_tokenizer *t;

    if (shard_tokenizer_open(&t, name) != 0)
        FAILF("%s (run make vocab)", shard_last_error());
    for (size_t i = 0; i < sizeof(alphabets) / sizeof(*alphabets); i++) {
        size_t sizes[] = {SHARD_MERGES_QUEUE, 3 * SHARD_MERGES_QUEUE + 7,
                          1u << 18};

        for (size_t k = 0; k < 3; k++) {
            char *s = text_from(alphabets[i], sizes[k], (uint32_t)(i + k));

            CHECK(s);
            /* Every alphabet but the digits (which Qwen keeps apart)
             * merges somewhere. */
            if (same_both_ways(t, s, sizes[k]) == (long)sizes[k])
                CHECK(strcmp(alphabets[i], "0123456789") == 0);
            free(s);
        }
    }
    shard_tokenizer_close(t);
}

TEST(queue_equals_heap_llama3)
{
    queue_equals_heap("llama3");
}

TEST(queue_equals_heap_qwen3)
{
    queue_equals_heap("qwen3");
}

/*
 * Runs of one byte take the run merge (runs.h) in shard_merges_apply():
 * for every byte and many lengths, under each model, it gives the heap's
 * parts.  The lengths cover both parities around powers of two, where
 * the groups of a run split.
 */
static void runs_equal_heap(const char *name)
{
    static const size_t big[] = {1023, 1024, 1025, 4097, 65536, 69999};
    char *s = malloc(70000);
    shard_tokenizer *t;

    CHECK(s);
    if (shard_tokenizer_open(&t, name) != 0)
        FAILF("%s (run make vocab)", shard_last_error());
    for (int c = 0; c < 256; c++) {
        memset(s, c, 70000);
        for (size_t n = 60; n < 420; n += 1 + (size_t)(c + n) % 5)
            same_both_ways(t, s, n);
        if (c % 17 == 'a' % 17)
            for (size_t i = 0; i < sizeof(big) / sizeof(*big); i++)
                same_both_ways(t, s, big[i]);
    }
    shard_tokenizer_close(t);
    free(s);
}

TEST(runs_equal_heap_llama3)
{
    runs_equal_heap("llama3");
}

TEST(runs_equal_heap_qwen3)
{
    runs_equal_heap("qwen3");
}

static uint32_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

/*
 * A table over the parts of 1 to RUN_TABLE `a`s (id 100 + length), at
 * shuffled priorities: every pair of equal lengths that sum to RUN_TABLE
 * or less is listed, any other with odds 1 in 2, and one of those with
 * odds 1 in 4 makes an id of another family, which no run of a real table
 * does (the run merge must then give the run back when it meets two
 * pairs of one sum that disagree).  Returns the table's size.
 */
#define RUN_TABLE 40

static size_t random_run_merges(shard_merges *m, uint64_t *state)
{
    uint32_t prio[RUN_TABLE * RUN_TABLE];
    size_t n = 0;

    CHECK_EQ_INT(shard_merges_init(m, RUN_TABLE * RUN_TABLE), 0);
    for (uint32_t i = 0; i < RUN_TABLE * RUN_TABLE; i++)
        prio[i] = i;
    for (uint32_t i = RUN_TABLE * RUN_TABLE - 1; i > 0; i--) {
        uint32_t j = next_random(state) % (i + 1), tmp = prio[i];

        prio[i] = prio[j];
        prio[j] = tmp;
    }
    for (uint32_t l1 = 1; l1 < RUN_TABLE; l1++)
        for (uint32_t l2 = 1; l1 + l2 <= RUN_TABLE; l2++) {
            uint32_t merged = 100 + l1 + l2;

            if (l1 != l2 && next_random(state) % 2 == 0)
                continue;
            if (l1 != l2 && next_random(state) % 4 == 0)
                merged = 1000 + RUN_TABLE * l1 + l2;
            CHECK_EQ_INT(shard_merges_add(m, 100 + l1, 100 + l2,
                                          prio[RUN_TABLE * l1 + l2], merged),
                         0);
            n++;
        }
    return n;
}

/* Runs under random tables merge as the heap merges them, whether the
 * run merge takes them or gives them back. */
TEST(random_run_merges_equal_heap)
{
    static uint32_t a[5000], b[5000];
    uint64_t state = 3107;

    for (int v = 0; v < 300; v++) {
        shard_merges m;

        CHECK(random_run_merges(&m, &state) > 0);
        for (int k = 0; k < 8; k++) {
            size_t n = 64 + next_random(&state) % (k < 6 ? 400 : 4900);
            long na, nb;

            for (size_t i = 0; i < n; i++)
                a[i] = b[i] = 101;
            na = shard_merges_apply(&m, a, n);
            nb = shard_merges_apply_heap(&m, b, n);
            CHECK(na > 0 && na == nb);
            CHECK(memcmp(a, b, (size_t)na * sizeof(*a)) == 0);
        }
        shard_merges_free(&m);
    }
}

/*
 * A run whose parts outgrow the ids the run merge keeps (1024 bytes) is
 * given back whole and merged the usual way: a table that doubles `a`s
 * up to 4096 makes two parts of 4096 from 8192.
 */
TEST(run_past_kept_lengths_goes_the_usual_way)
{
    static uint32_t a[8192], b[8192];
    shard_merges m;
    uint32_t k = 0;

    CHECK_EQ_INT(shard_merges_init(&m, 16), 0);
    for (uint32_t l = 1; l <= 2048; l *= 2, k++)
        CHECK_EQ_INT(shard_merges_add(&m, 100 + l, 100 + l, k, 100 + 2 * l),
                     0);
    for (size_t i = 0; i < 8192; i++)
        a[i] = b[i] = 101;
    CHECK_EQ_INT(shard_merges_apply(&m, a, 8192), 2);
    CHECK_EQ_INT(shard_merges_apply_heap(&m, b, 8192), 2);
    CHECK_EQ_INT(a[0], 100 + 4096);
    CHECK_EQ_INT(a[1], 100 + 4096);
    CHECK_EQ_INT(b[0], 100 + 4096);
    shard_merges_free(&m);
}

/*
 * " word" under t without the piece cache: the whole piece when t takes
 * whole tokens (ignore_merges), else its listed merges; into ids[].
 */
static long merged_alone(const shard_tokenizer *t, const char *s, size_t n,
                         uint32_t *ids)
{
    uint32_t *b = byte_ids(t, s, n);
    long k;

    CHECK(b);
    if (t->whole_piece &&
        (ids[0] = shard_bpe_rank(&t->bpe, (const unsigned char *)s, n)) !=
            SHARD_BPE_NONE)
        k = 1;
    else {
        k = shard_merges_apply(&t->merges, b, n);
        memcpy(ids, b, (size_t)k * sizeof(*ids));
    }
    free(b);
    return k;
}

/*
 * The piece cache serves listed merges too (shard_bpe_cached), and two
 * tokenizer.json models in one thread must not read each other's
 * entries: the same " word" is encoded under Llama-3 and Qwen3 in turn,
 * each twice, and must give what its own merges give.
 */
TEST(piece_cache_keeps_hf_tables_apart)
{
    shard_tokenizer *t[2];
    shard_tokens got = {0};
    uint32_t want[32];
    uint32_t seed = 11;
    size_t cached = 0;

    if (shard_tokenizer_open(&t[0], "llama3") != 0 ||
        shard_tokenizer_open(&t[1], "qwen3") != 0)
        FAILF("%s (run make vocab)", shard_last_error());
    for (int w = 0; w < 3000; w++) {
        char word[24] = " ";
        size_t n = 1 + 4 + w % 12;

        for (size_t i = 1; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            word[i] = "abcdefghijklmnopqrstuvwxyz"[(seed >> 16) % 26];
        }
        for (int pass = 0; pass < 4; pass++) {
            const shard_tokenizer *u = t[pass % 2];
            long k = merged_alone(u, word, n, want);

            got.len = 0;
            CHECK_EQ_INT(shard_tokenizer_encode(u, word, n, &got), 0);
            CHECK_EQ_INT(got.len, k);
            CHECK(memcmp(got.ids, want, (size_t)k * sizeof(*want)) == 0);
            cached += pass >= 2 && k > 1;
        }
    }
    /* Most words merged to several ids, the pieces the cache keeps
     * (one id: a token, looked up whole). */
    CHECK(cached > 3000);
    shard_tokens_free(&got);
    shard_tokenizer_close(t[0]);
    shard_tokenizer_close(t[1]);
}

/* A table with a merge whose result is reachable by another split too:
 * only the listed pair merges, lowest priority first, leftmost on ties. */
TEST(only_listed_pairs_merge)
{
    shard_merges m;
    uint32_t ids[] = {1, 2, 3, 1, 2};

    CHECK_EQ_INT(shard_merges_init(&m, 4), 0);
    CHECK_EQ_INT(shard_merges_add(&m, 1, 2, 0, 10), 0);  /* a b -> ab */
    CHECK_EQ_INT(shard_merges_add(&m, 10, 3, 1, 11), 0); /* ab c -> abc */
    CHECK_EQ_INT(shard_merges_add(&m, 1, 2, 5, 12), 1);  /* listed twice */
    CHECK(shard_merges_find(&m, 2, 3) == NULL);          /* b c: no */
    CHECK_EQ_INT(shard_merges_apply(&m, ids, 5), 2);
    CHECK_EQ_INT(ids[0], 11);
    CHECK_EQ_INT(ids[1], 10);
    shard_merges_free(&m);
}

TEST_MAIN()
