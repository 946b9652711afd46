/*
 * shard_mpi.h - one rank's part of `shard compile --mpi` (compiler side;
 * not installed).  docs/DISTRIBUTED.md describes the whole.
 *
 * Every rank runs the same compile over the same list of inputs and reads
 * the inputs shard_mpi_split gives it.  The dedup keys go to the rank
 * that owns their hash range: the first sweep notes each key there with
 * its global position (input index, then the note's number within the
 * input), so the owner decides each note as one process reading every
 * input in order would; the fates come back to the rank that read the
 * row, which then writes its own shards.  Rank 0 gathers the shard lists
 * and the accounting and writes the manifest.
 *
 * Collective calls (marked so) must be made by every rank in the same
 * order.  A failure on any rank is agreed on at the next collective call:
 * every rank then gets the failing rank's message, prefixed "rank N: ",
 * in the err buffer given to shard_mpi_open, and every later collective
 * call returns the same code without communicating.
 *
 * Built with MPI when SHARD_MPI is defined (make MPI=1); otherwise
 * shard_mpi_open fails with a message and no handle ever exists.
 */
#ifndef SHARD_MPI_H
#define SHARD_MPI_H

#include <stdint.h>

#include "compile_internal.h"
#include "dedup.h"
#include "shard_pairs.h"

typedef struct shard_mpi shard_mpi;

/*
 * Joins the job (MPI_Init unless the caller did, then MPI_Finalize at
 * exit).  `policy` is the --conflicts policy; the notes in flight take
 * at most half of `mem_limit` (0: 64 Ki notes a round); `tmpdir` holds
 * this rank's spool of notes; `err` (SHARD_ERRMAX bytes) receives
 * messages and must outlive the handle.  Returns 0, SHARD_EINVAL (built
 * without MPI) or SHARD_ENOMEM.
 */
int shard_mpi_open(shard_mpi **out, int policy, uint64_t mem_limit,
                   const char *tmpdir, char *err);
void shard_mpi_close(shard_mpi *m);

int shard_mpi_rank(const shard_mpi *m);
int shard_mpi_size(const shard_mpi *m);

/* "r0003-": what this rank's shard file names begin with. */
const char *shard_mpi_prefix(const shard_mpi *m);

/*
 * Which inputs this rank reads: sorted by size, largest first (ties by
 * index), each goes to the rank with the fewest bytes so far (ties to the
 * lowest rank); every rank computes the same.  Sets *mine to n flags,
 * valid until close.  0, SHARD_ENOMEM or SHARD_EINVAL (too many inputs).
 */
int shard_mpi_split(shard_mpi *m, char *const *paths, size_t n,
                    const unsigned char **mine);

/* Collective: 0 when rc is 0 on every rank, else the failure's code. */
int shard_mpi_agree(shard_mpi *m, int rc);

/*
 * First sweep, in this rank's input order: notes a key read from input
 * `input`.  Collective in effect: it exchanges a batch with every rank
 * once enough notes are queued.  0 or negative.
 */
int shard_mpi_note(shard_mpi *m, uint32_t input, const shard_key *k,
                   int label);

/*
 * Collective: ends the first sweep (`rc` is this rank's result of it),
 * then fetches the fate of every note this rank made from the owners.
 * 0 or negative.
 */
int shard_mpi_resolve(shard_mpi *m, int rc);

/* Second sweep, the same notes in the same order: the next fate. */
int shard_mpi_decide(shard_mpi *m);

/*
 * Collective: gives rank 0 the whole job's figures in d (shard files of
 * every rank, schema, rules), acct (summed), inputs (each from the rank
 * that read it) and ex (the first examples of each rank, in rank order).
 * Other ranks keep theirs.  0 or negative.
 */
int shard_mpi_gather(shard_mpi *m, shard_manifest_data *d,
                     shard_accounting *acct, shard_input_stats *inputs,
                     shard_examples *ex);

/* Bytes this job's ranks sent each other for dedup and its notes, known
 * on rank 0 after shard_mpi_gather; the collective rounds so far. */
void shard_mpi_traffic(const shard_mpi *m, uint64_t *bytes,
                       uint64_t *notes, uint64_t *rounds);

/* Where this rank's pairs table goes (DIR itself on rank 0), created;
 * close removes it if it is left empty. */
int shard_mpi_pairs_dir(shard_mpi *m, const char *outdir, char *buf,
                        size_t cap);

/* Rank 0, after shard_mpi_agree: adds the other ranks' pairs to w and
 * removes their tables.  0 or negative. */
int shard_mpi_pairs_merge(shard_mpi *m, const char *outdir,
                          shard_pairs_writer *w);

/* Rank 0, once DIR is ready: removes the rank directories (DIR/.rNNNN)
 * a killed job left.  0 or SHARD_EIO. */
int shard_mpi_clean(shard_mpi *m, const char *outdir);

#endif
