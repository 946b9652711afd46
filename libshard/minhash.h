/*
 * minhash.h - near-duplicate responses: MinHash with LSH banding
 * (compiler side).
 *
 * A response's shingles are its runs of 3 consecutive words (white-space
 * separated, ASCII letters lower-cased; a response of one or two words is
 * one shingle).  Its signature holds, for each of up to 128 hash
 * functions h(x) = a*x + b (mod 2^64, a odd, both drawn from the seed),
 * the least value over its shingles.  The signature is cut into b bands
 * of r values, with b and r chosen so that the banding's threshold
 * (1/b)^(1/r) is nearest the requested Jaccard threshold; two responses
 * whose signatures agree on a whole band, within the same scope, are
 * candidates, and a candidate whose signatures agree on at least
 * `threshold` of their values is a near duplicate.  Everything depends
 * on the seed and on the order of the calls only.
 */
#ifndef SHARD_MINHASH_H
#define SHARD_MINHASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct shard_near shard_near;

/*
 * Opens an index for Jaccard `threshold` in (0, 1].  Returns 0 or
 * SHARD_ENOMEM.
 */
int shard_near_open(shard_near **out, double threshold, uint64_t seed);
void shard_near_free(shard_near *n);

/*
 * Checks a response against those added before it with the same `scope`
 * (any 64-bit value: a label and prompt, or 0 for the whole stream).
 * Returns 1 when it is a near duplicate of one of them (it is then not
 * added), 0 when it was added (a response without words is never a near
 * duplicate and is not added), or SHARD_ENOMEM.
 */
int shard_near_check(shard_near *n, const char *text, size_t len,
                     uint64_t scope);

/* Distinct (response, earlier response) candidate pairs compared. */
uint64_t shard_near_candidates(const shard_near *n);

/* Bands and rows per band in use. */
void shard_near_shape(const shard_near *n, int *bands, int *rows);

#endif
