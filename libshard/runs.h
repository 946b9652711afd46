/*
 * runs.h - byte-pair merging of a piece that is one byte repeated
 * (internal to libshard).
 *
 * In a run such as `=====`, a line of spaces or `aaaa...`, every part is
 * the byte repeated, so a part is known by its length and the merge
 * state by the list of lengths.  shard_runs_merge() keeps that list as
 * groups of equal lengths side by side and makes the merges a whole
 * group at a time where it can, in O(log n) steps for the runs of the
 * published vocabularies where the array loop and the heaps take O(n).
 * The rule that says which parts merge first is the caller's: the ranks
 * of tiktoken (bpe.c) or the listed merges of a tokenizer.json
 * (merges.c).
 */
#ifndef SHARD_RUNS_H
#define SHARD_RUNS_H

#include <stddef.h>
#include <stdint.h>

/* Runs shorter than this are left to the usual loops. */
#define SHARD_RUNS_MIN 64

/* What rule->pair() returns for two parts that do not merge. */
#define SHARD_RUNS_NONE UINT32_MAX

/*
 * A merge rule over part lengths.  pair() gives the priority of joining
 * a part of l1 bytes with the part of l2 bytes on its right (the lowest
 * merges first, the leftmost on a tie), or SHARD_RUNS_NONE; two pairs
 * may share a priority only when they make parts of the same length.
 * part() gives the id of a part of l bytes; it is asked only about
 * lengths that pair() made or 1.  Both may keep state in ctx.
 */
typedef struct {
    uint32_t (*pair)(void *ctx, size_t l1, size_t l2);
    uint32_t (*part)(void *ctx, size_t l);
    void *ctx;
} shard_runs_rule;

/*
 * Merges a run of n bytes (n >= 1) by `rule` and writes the ids of the
 * parts, left to right, to out[] (room for n).  Returns their number,
 * or -2 when the run split into more groups or took more steps than
 * this merge allows (a rule whose priorities follow no order of the
 * lengths); out[] is then undefined and the caller merges the piece
 * another way.  Cannot fail otherwise.
 */
long shard_runs_merge(const shard_runs_rule *rule, size_t n, uint32_t *out);

/* Whether p[0..n) (n >= 1) is one byte repeated. */
int shard_runs_is_run(const unsigned char *p, size_t n);

#endif
