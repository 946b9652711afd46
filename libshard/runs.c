/*
 * runs.c - the run merge (see runs.h).
 *
 * The state is a list of groups, each k parts of l bytes, with no two
 * neighbours of equal length.  The loop makes the rule's merges in the
 * rule's order (lowest priority, then leftmost), on groups instead of
 * bytes:
 *
 * - The candidates are the pair inside each group of two or more parts,
 *   at its first part, and the pair across each boundary of groups.
 * - When the lowest is inside group j (k parts of l bytes, priority rho),
 *   the merges that follow take the pairs of that group left to right,
 *   one after the other, as long as no pair they make comes before rho:
 *   (2l, l) and (2l, 2l) inside the group, (left, 2l) and (2l, right) at
 *   its ends.  Then the group becomes k / 2 parts of 2l, and one of l
 *   when k is odd, in one step.  Otherwise one pair merges.
 * - Nothing else can come between: pairs of priority rho elsewhere lie
 *   right of the group, since the one taken is the leftmost, and none of
 *   the pairs above has priority rho, since each makes a part of another
 *   length than 2l (neighbouring groups differ in length) and only pairs
 *   that make parts of one length may share a priority.
 *
 * With priorities that grow with the length, as in every published
 * vocabulary, a run of n bytes takes O(log n) steps.  Groups and steps
 * are bounded all the same, and past a bound the caller merges the run
 * the usual way.
 */
#include <string.h>

#include "runs.h"

#define RUNS_GROUPS 64
#define RUNS_STEPS 4096

typedef struct {
    uint32_t len, count;
} runs_group;

typedef struct {
    const shard_runs_rule *rule;
    runs_group g[RUNS_GROUPS];
    size_t m; /* groups in use */
} runs_state;

static uint32_t runs_pair(const runs_state *r, size_t l1, size_t l2)
{
    return r->rule->pair(r->rule->ctx, l1, l2);
}

/* Inserts group `add` before group `at`; -1 when the groups are full. */
static int runs_insert(runs_state *r, size_t at, runs_group add)
{
    if (r->m == RUNS_GROUPS)
        return -1;
    memmove(r->g + at + 1, r->g + at, (r->m - at) * sizeof(*r->g));
    r->g[at] = add;
    r->m++;
    return 0;
}

/* Drops empty groups and joins neighbours of equal length. */
static void runs_tidy(runs_state *r)
{
    size_t out = 0;

    for (size_t i = 0; i < r->m; i++) {
        if (r->g[i].count == 0)
            continue;
        if (out > 0 && r->g[out - 1].len == r->g[i].len)
            r->g[out - 1].count += r->g[i].count;
        else
            r->g[out++] = r->g[i];
    }
    r->m = out;
}

/* Makes the lowest merge: the pair at group j's right boundary, or, when
 * `inner`, the pairs inside group j (all of them when that is safe, see
 * above).  `rho` is that merge's priority.  0, or -1 when the groups are
 * full. */
static int runs_step(runs_state *r, size_t j, int inner, uint32_t rho)
{
    runs_group *g = r->g;
    uint32_t l = g[j].len, k = g[j].count;
    int all;

    if (!inner) {
        g[j].count--;
        g[j + 1].count--;
        return runs_insert(r, j + 1, (runs_group){l + g[j + 1].len, 1});
    }
    all = (k < 3 || runs_pair(r, 2 * (size_t)l, l) > rho) &&
          (k < 4 || runs_pair(r, 2 * (size_t)l, 2 * (size_t)l) > rho) &&
          (j == 0 || runs_pair(r, g[j - 1].len, 2 * (size_t)l) > rho) &&
          (k % 2 == 1 || j + 1 == r->m ||
           runs_pair(r, 2 * (size_t)l, g[j + 1].len) > rho);
    g[j] = (runs_group){2 * l, all ? k / 2 : 1};
    return runs_insert(r, j + 1, (runs_group){l, all ? k % 2 : k - 2});
}

/* The lowest candidate: its group through *at, whether it lies inside
 * that group through *inner; SHARD_RUNS_NONE when there is none. */
static uint32_t runs_lowest(const runs_state *r, size_t *at, int *inner)
{
    uint32_t best = SHARD_RUNS_NONE, v;

    /* In start order: group j's inner pair, then its right boundary;
     * strict comparisons keep the leftmost of equal priorities. */
    for (size_t j = 0; j < r->m; j++) {
        if (r->g[j].count >= 2 &&
            (v = runs_pair(r, r->g[j].len, r->g[j].len)) < best) {
            best = v;
            *at = j;
            *inner = 1;
        }
        if (j + 1 < r->m &&
            (v = runs_pair(r, r->g[j].len, r->g[j + 1].len)) < best) {
            best = v;
            *at = j;
            *inner = 0;
        }
    }
    return best;
}

long shard_runs_merge(const shard_runs_rule *rule, size_t n, uint32_t *out)
{
    runs_state r = {.rule = rule, .m = 1};

    if (n >= UINT32_MAX)
        return -2;
    r.g[0] = (runs_group){1, (uint32_t)n};

    for (int step = 0; step < RUNS_STEPS; step++) {
        size_t at = 0;
        int inner = 0;
        uint32_t rho = runs_lowest(&r, &at, &inner);
        long got = 0;

        if (rho == SHARD_RUNS_NONE) {
            for (size_t j = 0; j < r.m; j++) {
                uint32_t id = rule->part(rule->ctx, r.g[j].len);

                for (uint32_t i = 0; i < r.g[j].count; i++)
                    out[got++] = id;
            }
            return got;
        }
        if (runs_step(&r, at, inner, rho) != 0)
            return -2;
        runs_tidy(&r);
    }
    return -2;
}

int shard_runs_is_run(const unsigned char *p, size_t n)
{
    return p[0] == p[n - 1] && memcmp(p, p + 1, n - 1) == 0;
}
