"""PyTorch side of the shard module: an IterableDataset and collate.

    from shard.torch_data import ShardIterableDataset
    ds = ShardIterableDataset("data", select="neg", batch_size=16,
                              max_len=1024, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=None,
                                         num_workers=2)
    for step, batch in enumerate(loader):
        ...  # batch["input_ids"], batch["attention_mask"], batch["labels"]
        state = ds.state_dict(batches=step + 1)

The dataset yields whole batches (give DataLoader batch_size=None).  Work
is split over ranks (torch.distributed when initialised, or rank/world
given) and over the DataLoader's workers: each (rank, worker) reads its
own contiguous range of the epoch's order (shard_reader.h, "A loader").

Resume.  DataLoader takes batches from its workers in turn (worker 0, 1,
..., 0, 1, ...), so the number of batches a rank has consumed fixes how
many each worker has produced; state_dict(batches=k) records (seed, epoch,
k) and a dataset given that state with load_state_dict() produces exactly
the batches an unbroken run would have produced after the k-th, with the
same number of workers.  Without workers the dataset counts k itself.
Every batch also carries "batch_index", its index in the rank's epoch.
"""
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from . import Dataset

IGNORE_INDEX = -100


def pad_packed(tokens, lengths, prompt_lens, pad_id=0):
    """Packed records to padded tensors, with the prompt masked.

    Returns input_ids (int64, [B, T], padded with pad_id), attention_mask
    (1 on tokens), labels (the input ids on response tokens, IGNORE_INDEX
    on prompt and padding) and lengths.  Labels are not shifted: a model
    predicting token t+1 from position t shifts them itself.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    prompt_lens = np.asarray(prompt_lens, dtype=np.int64)
    n = len(lengths)
    width = int(lengths.max()) if n else 0
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if n else lengths
    row = np.repeat(np.arange(n), lengths)
    col = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    ids = np.asarray(tokens[:len(row)], dtype=np.int64)

    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    attention = np.zeros((n, width), dtype=np.int64)
    labels = np.full((n, width), IGNORE_INDEX, dtype=np.int64)
    input_ids[row, col] = ids
    attention[row, col] = 1
    response = col >= prompt_lens[row]
    labels[row[response], col[response]] = ids[response]
    return {"input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention),
            "labels": torch.from_numpy(labels),
            "lengths": torch.from_numpy(lengths)}


def collate(records, pad_id=0, max_len=None):
    """Collates RecordViews (or anything with .tokens and .prompt_len).

    Each record is cut to max_len tokens when given, then padded; labels
    carry IGNORE_INDEX on the prompt, as pad_packed.
    """
    toks = [r.tokens[:max_len] if max_len else r.tokens for r in records]
    lengths = [len(t) for t in toks]
    tokens = np.concatenate(toks) if toks else np.zeros(0, np.uint32)
    return pad_packed(tokens, lengths, [r.prompt_len for r in records],
                      pad_id)


def worker_plan(counts, batch_size, batches):
    """Where each worker stands after a rank consumed `batches` batches.

    counts[v] is the records of worker v's partition.  Returns (positions,
    first): the records each worker has produced, and the worker whose
    batch comes next.  DataLoader cycles over workers, skipping those that
    are done; partitions differ by at most one record, so at most one
    round is incomplete.
    """
    workers = len(counts)
    made = [-(-c // batch_size) for c in counts]  # batches per worker
    full = min(made)
    done = [0] * workers
    if batches <= full * workers:
        rounds, extra = divmod(batches, workers)
        done = [rounds + (v < extra) for v in range(workers)]
        first = extra
    else:
        left = batches - full * workers
        done = [full] * workers
        last_round = [v for v in range(workers) if made[v] > full]
        for v in last_round[:left]:
            done[v] += 1
        rest = last_round[left:]
        first = rest[0] if rest else 0
    positions = [min(done[v] * batch_size, counts[v])
                 for v in range(workers)]
    return positions, first


def batch_index(counts, batch_size, worker, nth):
    """Index in the rank's epoch of worker's nth batch (from 0)."""
    workers = len(counts)
    made = [-(-c // batch_size) for c in counts]
    full = min(made)
    if nth < full:
        return nth * workers + worker
    return full * workers + sum(1 for u in range(worker) if made[u] > full)


class ShardIterableDataset(IterableDataset):
    """Batches of a libshard dataset for torch.utils.data.DataLoader.

    select: "neg", "pos", "both", "all" or "pairs" (chosen then rejected
    record of each pair, adjacent in one batch: batch_size must be even).  Each record is cut to max_len tokens.  Batches are
    dicts of pad_packed() plus "label" (0 unl, 1 pos, 2 neg per record)
    and "batch_index".
    """

    def __init__(self, path, select="neg", batch_size=8, max_len=2048,
                 shuffle=True, seed=0, window=8, rank=None, world=None,
                 readahead=True, pad_id=0):
        super().__init__()
        if select == "pairs" and batch_size % 2:
            raise ValueError("select='pairs' needs an even batch_size, "
                             "so that no pair is split across batches")
        self.path = str(path)
        self.select = select
        self.batch_size = batch_size
        self.max_len = max_len
        self.shuffle = shuffle
        self.seed = seed
        self.window = window
        self.rank, self.world = rank, world
        self.readahead = readahead
        self.pad_id = pad_id
        self.epoch = 0
        self._resume = 0  # batches of this epoch already consumed
        self._seen = 0    # batches this process yielded (no workers)

    def _rank_world(self):
        if self.rank is not None:
            return self.rank, self.world or 1
        if torch.distributed.is_available() and \
                torch.distributed.is_initialized():
            return (torch.distributed.get_rank(),
                    torch.distributed.get_world_size())
        return 0, 1

    def set_epoch(self, epoch):
        """Starts `epoch` from its beginning."""
        self.epoch = epoch
        self._resume = 0
        self._seen = 0

    def state_dict(self, batches=None):
        """(seed, epoch, batches consumed by this rank in the epoch).

        With DataLoader workers, pass `batches` (e.g. the step count in
        the epoch, or batch["batch_index"] + 1 of the last batch used).
        """
        if batches is None:
            batches = self._resume + self._seen
        return {"seed": self.seed, "epoch": self.epoch,
                "batches": int(batches)}

    def load_state_dict(self, state):
        self.seed = state["seed"]
        self.epoch = state["epoch"]
        self._resume = state["batches"]
        self._seen = 0

    def _loader(self, dataset, rank, world, worker, workers, readahead):
        return dataset.loader(shuffle=self.shuffle, seed=self.seed,
                              window=self.window, rank=rank, world=world,
                              worker=worker, workers=workers,
                              readahead=readahead)

    def __iter__(self):
        info = get_worker_info()
        me, workers = (info.id, info.num_workers) if info else (0, 1)
        rank, world = self._rank_world()
        # Opened here, in the worker process: a loader's read-ahead
        # thread does not survive fork().
        dataset = Dataset(self.path, select=self.select)
        counts = []
        for w in range(workers):
            probe = self._loader(dataset, rank, world, w, workers, False)
            counts.append(len(probe))
            probe.close()
        positions, first = worker_plan(counts, self.batch_size,
                                       self._resume)
        # DataLoader starts with worker 0: it plays the worker whose
        # batch comes next in the unbroken run.
        v = (me + first) % workers
        loader = self._loader(dataset, rank, world, v, workers,
                              self.readahead)
        loader.seek({"seed": self.seed, "epoch": self.epoch,
                     "position": positions[v]})
        nth = -(-positions[v] // self.batch_size)
        for packed in loader.batches(self.batch_size,
                                     self.batch_size * self.max_len,
                                     self.max_len):
            batch = pad_packed(packed["tokens"], packed["lengths"],
                               packed["prompt_lens"], self.pad_id)
            batch["label"] = torch.from_numpy(
                packed["labels"].astype(np.int64))
            batch["batch_index"] = batch_index(counts, self.batch_size, v,
                                               nth)
            nth += 1
            if not info:
                self._seen += 1
            yield batch
        loader.close()
        dataset.close()
