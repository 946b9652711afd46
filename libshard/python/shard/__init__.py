"""Reading libshard datasets from Python, over the reader library (ctypes).

    import shard
    ds = shard.Dataset("build/demo", select="neg")
    rec = ds[0]                      # rec.tokens: numpy array, no copy
    loader = ds.loader(shuffle=True, seed=1, rank=0, world=1)
    for batch in loader.batches(max_records=32, max_tokens=8192):
        batch["tokens"], batch["lengths"], batch["loss_mask"]

A record's `tokens` array shares memory with the shard's mapping (codec
none) or with the decompressed frame (zstd); the array holds a reference
that keeps that memory alive as long as the array (or any view of it)
lives, after the dataset is closed too.  Arrays are read-only.

The PyTorch side (IterableDataset, collate) is in shard.torch_data.
"""
import ctypes

import numpy as np

from . import _native
from ._native import lib

__all__ = ["ShardError", "Dataset", "Loader", "RecordView", "LABELS"]

LABELS = ("unl", "pos", "neg")


class ShardError(Exception):
    """A libshard call failed; the message names the file and the problem."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _check(code, message):
    if code < 0:
        raise ShardError(code, message().decode("utf-8", "replace"))
    return code


class _Tokens:
    """Owns one record reference and exposes its tokens to numpy."""

    def __init__(self, rec):
        self._rec = rec
        dtype = "<u2" if rec.dtype == 2 else "<u4"
        # A NULL pointer is refused by numpy even for 0 elements.
        addr = rec.tokens or 1
        self.__array_interface__ = {
            "shape": (rec.n_tokens,),
            "typestr": dtype,
            "data": (addr, True),
            "version": 3,
        }

    # Bound at definition: module globals may be gone at interpreter exit.
    def __del__(self, _release=lib.shard_record_release,
                _byref=ctypes.byref):
        _release(_byref(self._rec))


class RecordView:
    """One record: `tokens` (numpy, zero copy) and its columns."""

    __slots__ = ("tokens", "prompt_len", "label", "reward", "prompt_id",
                 "pair_id", "record_id", "index")

    def __init__(self, rec):
        self.prompt_len = rec.prompt_len
        self.label = LABELS[rec.label]
        self.reward = rec.reward
        self.prompt_id = rec.prompt_id
        self.pair_id = rec.pair_id
        self.record_id = rec.record_id
        self.index = rec.index
        self.tokens = np.asarray(_Tokens(rec))

    @property
    def response(self):
        """The response tokens: a view, no copy."""
        return self.tokens[self.prompt_len:]

    def __repr__(self):
        return ("RecordView(label=%s, n_tokens=%d, prompt_len=%d, "
                "record_id=%016x)" % (self.label, len(self.tokens),
                                      self.prompt_len, self.record_id))


class Dataset:
    """A dataset directory (through its manifest.json) or one shard file.

    select: "pos", "neg", "unl", "both" (pos and neg), "all" or "pairs"
    (records joined into (chosen, rejected) pairs, see pair()).
    Indexing gives records numbered pos first, then neg, then unl.
    """

    def __init__(self, path, select="all", cache_bytes=64 << 20):
        self._h = None
        mask = ctypes.c_uint()
        if lib.shard_select_parse(select.encode(), ctypes.byref(mask)) < 0:
            raise ValueError("select: unknown value %r" % (select,))
        opts = _native.DatasetOptions(_native.DATASET_OPTIONS_VERSION,
                                      mask.value, cache_bytes)
        handle = ctypes.c_void_p()
        _check(lib.shard_dataset_open_with(ctypes.byref(handle),
                                           str(path).encode(),
                                           ctypes.byref(opts)),
               lib.shard_last_error)
        self._h = handle
        self.path = str(path)
        self.select = select

    def close(self, _close=lib.shard_dataset_close):
        if self._h:
            _close(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self):
        # Records removed by a later --append (tombstones) are not counted.
        return lib.shard_dataset_live_count(self._h)

    def __getitem__(self, i):
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("record %d out of range (%d records)" % (i, n))
        rec = _native.Record()
        _check(lib.shard_dataset_live_get(self._h, i, ctypes.byref(rec)),
               lambda: lib.shard_dataset_errmsg(self._h))
        return RecordView(rec)

    @property
    def pairs(self):
        """Number of (chosen, rejected) pairs (select="pairs" only)."""
        return lib.shard_dataset_pairs(self._h)

    def pair(self, j):
        """Pair j as (chosen record, rejected record)."""
        chosen, rejected = ctypes.c_uint64(), ctypes.c_uint64()
        if lib.shard_dataset_pair(self._h, j, ctypes.byref(chosen),
                                  ctypes.byref(rejected)) < 0:
            raise IndexError("pair %d out of range" % j)
        return self[chosen.value], self[rejected.value]

    def loader(self, **options):
        """A Loader over this dataset; see Loader for the options."""
        return Loader(self, **options)


class Loader:
    """One partition's deterministic pass over a dataset, resumable.

    shuffle, seed, window: frames are permuted from (seed, epoch), then the
    records of each run of `window` frames.  rank/world and worker/workers
    pick a contiguous, disjoint range of the epoch's order.  readahead
    decodes the next window on a background thread.
    """

    def __init__(self, dataset, shuffle=False, seed=0, window=8, rank=0,
                 world=1, worker=0, workers=1, readahead=False):
        self._h = None
        opts = _native.LoaderOptions(_native.LOADER_OPTIONS_VERSION,
                                     int(bool(shuffle)), seed, window, rank,
                                     world, worker, workers,
                                     int(bool(readahead)))
        handle = ctypes.c_void_p()
        _check(lib.shard_loader_open(ctypes.byref(handle), dataset._h,
                                     ctypes.byref(opts)),
               lib.shard_last_error)
        self._h = handle
        self.dataset = dataset  # the C loader needs it open
        self._batch = _native.Batch()
        self._batch_ref = ctypes.byref(self._batch)

    def close(self, _close=lib.shard_loader_close):
        if self._h:
            _close(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def _error(self):
        return lib.shard_loader_errmsg(self._h)

    def __len__(self):
        """Records this partition yields per epoch."""
        return lib.shard_loader_records(self._h)

    def __iter__(self):
        return self

    def __next__(self):
        rec = _native.Record()
        if _check(lib.shard_loader_next(self._h, ctypes.byref(rec)),
                  self._error) == 0:
            raise StopIteration
        return RecordView(rec)

    def state(self):
        """The state as {"seed", "epoch", "position"}."""
        st = _native.LoaderState()
        lib.shard_loader_state_get(self._h, ctypes.byref(st))
        return {"seed": st.seed, "epoch": st.epoch,
                "position": st.position}

    def seek(self, state):
        """Moves to a state returned by state() (O(1) in records)."""
        st = _native.LoaderState(state["seed"], state["epoch"],
                                 state["position"])
        _check(lib.shard_loader_seek(self._h, ctypes.byref(st)),
               self._error)

    def set_epoch(self, epoch):
        """Moves to the start of `epoch`, keeping the seed."""
        self.seek({"seed": self.state()["seed"], "epoch": epoch,
                   "position": 0})

    def batch(self, max_records, max_tokens, max_len=0):
        """The next records packed into fresh numpy arrays, or None.

        Stops before a record that would not fit in max_tokens; with
        max_len, every record is first cut to max_len tokens.

        Returns a dict: tokens (uint32, packed), lengths (uint32),
        loss_mask (uint8: 0 on prompt tokens, 1 on response tokens),
        prompt_lens (uint32), labels (uint8: 0 unl, 1 pos, 2 neg) and
        truncated (tokens cut from a record longer than max_tokens).
        """
        # One allocation carved into the five arrays: tokens and lengths
        # first (4-byte aligned), then the byte arrays.
        t4, r4 = 4 * max_tokens, 4 * max_records
        buf = np.empty(t4 + 2 * r4 + max_tokens + max_records, np.uint8)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        b = self._batch
        b.tokens, b.lengths, b.prompt_lens = addr, addr + t4, addr + t4 + r4
        b.loss_mask = addr + t4 + 2 * r4
        b.labels = b.loss_mask + max_tokens
        b.max_tokens, b.max_len, b.max_records = max_tokens, max_len, \
            max_records
        if lib.shard_loader_batch(self._h, self._batch_ref) < 0:
            _check(-1, self._error)
        n, t = b.n_records, b.n_tokens
        if n == 0:
            return None
        u32 = buf[:t4 + 2 * r4].view(np.uint32)
        mask_at = t4 + 2 * r4
        return {"tokens": u32[:t],
                "loss_mask": buf[mask_at:mask_at + t],
                "lengths": u32[max_tokens:max_tokens + n],
                "prompt_lens": u32[max_tokens + max_records:
                                   max_tokens + max_records + n],
                "labels": buf[mask_at + max_tokens:
                              mask_at + max_tokens + n],
                "truncated": b.truncated}

    def batches(self, max_records, max_tokens, max_len=0):
        """Batches until the end of the epoch."""
        while True:
            b = self.batch(max_records, max_tokens, max_len)
            if b is None:
                return
            yield b
