"""The Python module (libshard/python/shard): zero copy, lifetimes,
determinism, partitions, resume, batches, and the PyTorch dataset.

Usage: test_python.py ZSTD_DATASET NONE_DATASET, two compiles of the same
input with codec zstd and codec none.  Prints one PASS/FAIL/SKIP line per
case; the torch cases SKIP, saying so, where torch is not installed.
"""
import gc
import os
import sys

import numpy as np

import shard

ZSTD, NONE = sys.argv[1:3]
failures = 0

try:
    import torch
    from shard.torch_data import (IGNORE_INDEX, ShardIterableDataset,
                                  collate, worker_plan)
except ImportError as e:
    torch = None
    torch_missing = str(e)


def case(name, fn, needs_torch=False):
    global failures
    if needs_torch and torch is None:
        print("SKIP cli/trainer_python:%s: torch is not installed (%s)"
              % (name, torch_missing))
        return
    try:
        fn()
        print("PASS cli/trainer_python:%s" % name)
    except Exception as e:  # a failed check of any kind fails the case
        failures += 1
        print("FAIL cli/trainer_python:%s: %s: %s"
              % (name, type(e).__name__, e))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def mappings():
    """(start, end, path) of every file mapping of this process."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            out.append((lo, hi, parts[5] if len(parts) > 5 else ""))
    return out


def ids(records):
    return [r.record_id for r in records]


def none_codec_arrays_point_into_the_mapped_shard():
    ds = shard.Dataset(NONE, select="neg")
    rec = ds[len(ds) // 2]
    addr = rec.tokens.__array_interface__["data"][0]
    where = [p for lo, hi, p in mappings() if lo <= addr < hi]
    check(where and where[0].endswith(".shard"),
          "tokens at %#x are not in a shard mapping: %s" % (addr, where))
    check(not rec.tokens.flags.writeable, "array is writeable")
    check(rec.tokens.base is not None, "array owns a copy")


def zstd_records_share_their_frame_buffer():
    ds = shard.Dataset(ZSTD, select="neg")
    a, b = ds[0], ds[1]
    pa = a.tokens.__array_interface__["data"][0]
    pb = b.tokens.__array_interface__["data"][0]
    check(pb == pa + a.tokens.nbytes,
          "record 1 does not follow record 0 in one frame buffer")
    check(a.tokens.ctypes.data == pa, "numpy made a copy")
    check(pa % 64 == 0, "frame buffer not 64-byte aligned")


def arrays_outlive_record_dataset_and_loader():
    ds = shard.Dataset(ZSTD, select="both", cache_bytes=0)
    loader = ds.loader(shuffle=True, seed=3)
    views = [next(loader).response for _ in range(20)]
    want = [v.copy() for v in views]
    loader.close()
    ds.close()
    del loader, ds
    gc.collect()
    # New allocations would reuse freed frames; the views must not change.
    junk = [np.ones(1 << 16, np.uint32) for _ in range(64)]
    check(all(np.array_equal(v, w) for v, w in zip(views, want)),
          "a view changed after its dataset was closed")
    del junk


def codecs_give_the_same_tokens():
    a, b = shard.Dataset(ZSTD), shard.Dataset(NONE)
    check(len(a) == len(b) > 0, "record counts differ")
    for i in range(0, len(a), 97):
        check(np.array_equal(a[i].tokens, b[i].tokens), "record %d" % i)
        check(a[i].prompt_len == b[i].prompt_len, "prompt_len %d" % i)


def same_seed_same_order_and_epochs_differ():
    ds = shard.Dataset(ZSTD, select="neg")
    one = ids(ds.loader(shuffle=True, seed=7, window=4))
    two = ids(ds.loader(shuffle=True, seed=7, window=4, readahead=True))
    check(one == two, "same seed, different order")
    other = ds.loader(shuffle=True, seed=7, window=4)
    other.set_epoch(1)
    check(ids(other) != one, "epoch 1 repeats epoch 0")
    check(sorted(one) == sorted(ids(ds.loader())), "not a permutation")


def partitions_are_disjoint_and_complete():
    ds = shard.Dataset(ZSTD, select="both")
    whole = ids(ds.loader(shuffle=True, seed=1))
    parts = []
    for rank in range(2):
        for worker in range(3):
            parts.append(ids(ds.loader(shuffle=True, seed=1, rank=rank,
                                       world=2, worker=worker, workers=3)))
    flat = [x for p in parts for x in p]
    check(len(set(flat)) == len(flat), "partitions overlap")
    check(sorted(flat) == sorted(whole), "partitions miss records")
    check(max(map(len, parts)) - min(map(len, parts)) <= 1, "unbalanced")


def resume_continues_exactly():
    ds = shard.Dataset(ZSTD, select="pairs")
    full = ids(ds.loader(shuffle=True, seed=9, rank=1, world=2))
    check(len(full) > 100, "too few records")
    for stop in (0, 1, 2, 57, len(full) // 2 + 1, len(full) - 1,
                 len(full)):
        first = ds.loader(shuffle=True, seed=9, rank=1, world=2)
        head = [next(first).record_id for _ in range(stop)]
        state = first.state()
        again = ds.loader(shuffle=True, seed=9, rank=1, world=2,
                          readahead=True)
        again.seek(state)
        check(head + ids(again) == full, "resume at %d differs" % stop)


def batches_equal_records():
    ds = shard.Dataset(ZSTD, select="all")
    recs = list(ds.loader(shuffle=True, seed=2))
    at = 0
    for b in ds.loader(shuffle=True, seed=2).batches(7, 4096):
        off = 0
        for n, plen, lab in zip(b["lengths"], b["prompt_lens"],
                                b["labels"]):
            r = recs[at]
            check(np.array_equal(b["tokens"][off:off + n], r.tokens),
                  "tokens of record %d" % at)
            check(np.array_equal(b["loss_mask"][off:off + n],
                                 np.arange(n) >= r.prompt_len),
                  "loss mask of record %d" % at)
            check(plen == r.prompt_len and shard.LABELS[lab] == r.label,
                  "columns of record %d" % at)
            off += n
            at += 1
    check(at == len(recs), "batches gave %d of %d records"
          % (at, len(recs)))


def errors_are_exceptions():
    try:
        shard.Dataset(os.path.join(ZSTD, "missing"))
        raise AssertionError("opened a missing dataset")
    except shard.ShardError as e:
        check("missing" in str(e), "message: %s" % e)
    try:
        shard.Dataset(ZSTD).loader(rank=2, world=2)
        raise AssertionError("accepted rank 2 of 2")
    except shard.ShardError:
        pass


def collate_masks_prompt_and_padding():
    class R:
        def __init__(self, tokens, plen):
            self.tokens = np.array(tokens, np.uint32)
            self.prompt_len = plen
    b = collate([R([5, 6, 7, 8], 2), R([9, 10], 1)], pad_id=0)
    check(b["input_ids"].tolist() == [[5, 6, 7, 8], [9, 10, 0, 0]], "ids")
    check(b["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]],
          "attention")
    m = IGNORE_INDEX
    check(b["labels"].tolist() == [[m, m, 7, 8], [m, 10, m, m]], "labels")


def batches_of(ds, workers, state=None):
    if state:
        ds.load_state_dict(state)
    loader = torch.utils.data.DataLoader(ds, batch_size=None,
                                         num_workers=workers)
    return [(b["batch_index"], b["input_ids"].tolist()) for b in loader]


def torch_workers_cover_the_rank_in_batch_order():
    ds = ShardIterableDataset(ZSTD, select="neg", batch_size=5, max_len=64,
                              seed=4)
    one = batches_of(ds, 0)
    two = batches_of(ds, 2)
    check([i for i, _ in two] == list(range(len(two))),
          "batch_index is not 0, 1, 2, ...")
    rows = lambda bs: sorted(tuple(r) for _, b in bs for r in b)
    check(rows(one) == rows(two), "workers miss or repeat records")


def torch_resume_with_workers_is_exact():
    ds = ShardIterableDataset(ZSTD, select="pairs", batch_size=4,
                              max_len=48, seed=6, window=2)
    whole = batches_of(ds, 2)
    check(len(whole) > 10, "too few batches")
    for k in (1, 2, 7, len(whole) - 1, len(whole)):
        ds2 = ShardIterableDataset(ZSTD, select="pairs", batch_size=4,
                                   max_len=48, seed=0, window=2)
        state = ds.state_dict(batches=k)
        rest = batches_of(ds2, 2, state)
        check(rest == whole[k:], "resume after %d batches differs" % k)


def torch_state_without_workers_counts_itself():
    ds = ShardIterableDataset(ZSTD, select="neg", batch_size=3, max_len=32,
                              seed=8)
    it = iter(ds)
    seen = [next(it)["input_ids"].tolist() for _ in range(4)]
    state = ds.state_dict()
    check(state["batches"] == 4, "state %s" % state)
    rest = [b["input_ids"].tolist() for b in it]
    ds2 = ShardIterableDataset(ZSTD, select="neg", batch_size=3, max_len=32)
    ds2.load_state_dict(state)
    check([b["input_ids"].tolist() for b in ds2] == rest, "resume differs")
    check(len(seen) == 4, "batches")


def torch_ranks_split_the_data():
    got = []
    for rank in range(2):
        ds = ShardIterableDataset(ZSTD, select="both", batch_size=8,
                                  max_len=4096, seed=2, rank=rank, world=2)
        for b in ds:
            got += [tuple(r[:n]) for r, n in zip(b["input_ids"].tolist(),
                                                 b["lengths"].tolist())]
    whole = shard.Dataset(ZSTD, select="both")
    want = [tuple(whole[i].tokens.tolist()) for i in range(len(whole))]
    check(sorted(got) == sorted(want), "ranks miss or repeat records")


def torch_pairs_stay_in_one_batch():
    try:
        ShardIterableDataset(ZSTD, select="pairs", batch_size=3)
        raise AssertionError("accepted an odd batch size for pairs")
    except ValueError:
        pass
    ds = ShardIterableDataset(ZSTD, select="pairs", batch_size=6,
                              max_len=64, seed=5)
    for b in ds:
        labels = b["label"].tolist()
        check(len(labels) % 2 == 0, "a batch of %d records" % len(labels))


def worker_plan_tail():
    # Worker 1 has one batch more: after 5 batches (0,1,0,1,1) it is done.
    pos, first = worker_plan([4, 6], 2, 5)
    check(pos == [4, 6] and first == 0, "plan %s %s" % (pos, first))
    pos, first = worker_plan([4, 6], 2, 3)
    check(pos == [4, 2] and first == 1, "plan %s %s" % (pos, first))


case("none_codec_arrays_point_into_the_mapped_shard",
     none_codec_arrays_point_into_the_mapped_shard)
case("zstd_records_share_their_frame_buffer",
     zstd_records_share_their_frame_buffer)
case("arrays_outlive_record_dataset_and_loader",
     arrays_outlive_record_dataset_and_loader)
case("codecs_give_the_same_tokens", codecs_give_the_same_tokens)
case("same_seed_same_order_and_epochs_differ",
     same_seed_same_order_and_epochs_differ)
case("partitions_are_disjoint_and_complete",
     partitions_are_disjoint_and_complete)
case("resume_continues_exactly", resume_continues_exactly)
case("batches_equal_records", batches_equal_records)
case("errors_are_exceptions", errors_are_exceptions)
case("collate_masks_prompt_and_padding", collate_masks_prompt_and_padding,
     True)
case("torch_workers_cover_the_rank_in_batch_order",
     torch_workers_cover_the_rank_in_batch_order, True)
case("torch_resume_with_workers_is_exact",
     torch_resume_with_workers_is_exact, True)
case("torch_state_without_workers_counts_itself",
     torch_state_without_workers_counts_itself, True)
case("torch_ranks_split_the_data", torch_ranks_split_the_data, True)
case("torch_pairs_stay_in_one_batch", torch_pairs_stay_in_one_batch, True)
case("worker_plan_tail", worker_plan_tail, True)
sys.exit(1 if failures else 0)
