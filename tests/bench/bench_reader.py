"""Tokens per second delivered to Python as numpy batches.

Usage: bench_reader.py ZSTD_DATASET NONE_DATASET MEGATRON_PREFIX

The three hold the same records: two compiles of one input (codec zstd and
codec none) and `shard export --to megatron` of the first.  Each reader
produces, per batch of B records, a packed uint32/int32 token array and
the record lengths:

  shard zstd / none   Loader.batch(): one C call fills fresh numpy arrays;
                      frame cache off (each pass decodes every frame),
                      read-ahead thread on
  memmap per-doc      numpy.memmap of the .bin, the .idx read with numpy;
                      each document sliced by its pointer and size, the
                      batch packed with numpy.concatenate
  memmap contiguous   the same memmap, the batch's documents copied as one
                      slice (possible only in file order: an upper bound)

Sequential order, then shuffled order (shard: seed 1, window 8; memmap:
a random permutation of the documents).  Each figure is the best of 7
rounds of at least 0.2 s, the readers taking turns within each round, all
in this one run; ratios are to the per-document memmap reader.
"""
import struct
import sys
import time

import numpy as np

import shard

ZSTD, NONE, PREFIX = sys.argv[1:4]


def read_index(prefix):
    with open(prefix + ".idx", "rb") as f:
        idx = f.read()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    code = idx[17]
    n, _docs = struct.unpack_from("<QQ", idx, 18)
    sizes = np.frombuffer(idx, np.int32, n, 34).astype(np.int64)
    pointers = np.frombuffer(idx, np.int64, n, 34 + 4 * n)
    dtype = {4: np.int32, 8: np.uint16}[code]
    return np.memmap(prefix + ".bin", dtype=dtype, mode="r"), sizes, \
        pointers // np.dtype(dtype).itemsize


def shard_pass(path, batch, shuffle):
    # No frame cache: every pass decodes every frame again, as a pass over
    # a dataset larger than memory would.
    ds = shard.Dataset(path, cache_bytes=0)
    loader = ds.loader(shuffle=shuffle, seed=1, readahead=True)

    def run():
        loader.set_epoch(0)
        tokens = 0
        while True:
            b = loader.batch(batch, batch * 4096, 4096)
            if b is None:
                return tokens
            tokens += len(b["tokens"])
    return run


def memmap_pass(batch, shuffle, contiguous=False):
    bin_, sizes, starts = read_index(PREFIX)
    order = np.arange(len(sizes))
    if shuffle:
        order = np.random.default_rng(1).permutation(len(sizes))

    def run():
        tokens = 0
        for at in range(0, len(order), batch):
            docs = order[at:at + batch]
            lengths = sizes[docs]
            if contiguous:
                lo, hi = starts[docs[0]], starts[docs[-1]] + lengths[-1]
                packed = np.array(bin_[lo:hi])
            else:
                packed = np.concatenate([bin_[s:s + n] for s, n in
                                         zip(starts[docs], lengths)])
            tokens += len(packed)
        return tokens
    return run


def timed(run):
    """Tokens per second over passes lasting at least 0.2 s."""
    t0, tokens = time.perf_counter(), 0
    while True:
        tokens += run()
        dt = time.perf_counter() - t0
        if dt >= 0.2:
            return tokens / dt


def rates(runs):
    """Best of 7 rounds per reader, the readers taking turns in each
    round so that the machine's other load falls on all of them."""
    best = [0.0] * len(runs)
    for _ in range(7):
        for i, run in enumerate(runs):
            best[i] = max(best[i], timed(run))
    return best


def main():
    total = int(read_index(PREFIX)[1].sum())
    print("records: %d, tokens: %d" % (len(shard.Dataset(ZSTD)), total))
    for shuffle in (False, True):
        for batch in (32, 256):
            rows = [
                ("memmap per-doc", memmap_pass(batch, shuffle)),
                ("shard zstd", shard_pass(ZSTD, batch, shuffle)),
                ("shard none", shard_pass(NONE, batch, shuffle)),
            ]
            if not shuffle:
                rows.append(("memmap contiguous",
                             memmap_pass(batch, shuffle, True)))
            print("\n%s order, %d records per batch:"
                  % ("shuffled" if shuffle else "file", batch))
            measured = rates([run for _, run in rows])
            for (name, _), r in zip(rows, measured):
                print("  %-18s %8.1f M tokens/s  %5.2fx"
                      % (name, r / 1e6, r / measured[0]))


if __name__ == "__main__":
    main()
