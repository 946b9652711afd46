#!/usr/bin/python3
"""Train on negatives only: an unlikelihood objective over a shard dataset.

    make demo
    PYTHONPATH=libshard/python /usr/bin/python3 examples/train_negatives.py \
        build/demo

Streams only the `neg` records (responses marked bad) through
shard.torch_data.ShardIterableDataset, and trains a tiny GRU language
model on CPU with the unlikelihood loss -log(1 - p(token)) on each
response token: the model learns to make the rejected responses unlikely.
The prompt is masked out of the loss (labels -100), so only what the
model said is penalised.

The model starts as the unigram distribution of those responses (its
output bias is their log frequency), the worst case for this objective,
so the loss starts high and visibly falls.  Exits 1 if it does not fall
to under half its starting value.
"""
import argparse
import sys

import numpy as np
import torch
from torch import nn

import shard
from shard.torch_data import IGNORE_INDEX, ShardIterableDataset


class TinyLM(nn.Module):
    def __init__(self, vocab, dim=48):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, vocab)

    def forward(self, ids):
        hidden, _ = self.rnn(self.embed(ids))
        return self.out(hidden)


def unlikelihood_loss(logits, labels):
    """Mean of -log(1 - p(y_t)) over response tokens (labels != -100).

    Position t predicts token t + 1, so labels are shifted by one.
    """
    logits, labels = logits[:, :-1], labels[:, 1:]
    keep = labels != IGNORE_INDEX
    logp = torch.log_softmax(logits, dim=-1)
    target = labels.clamp(min=0).unsqueeze(-1)
    p = logp.gather(-1, target).squeeze(-1).exp()
    loss = -torch.log1p(-p.clamp(max=1 - 1e-6))
    return loss[keep].mean(), p[keep].mean()


def compact_vocabulary(path):
    """Token ids of the negatives, and their response-token frequencies.

    A tiny model needs a tiny vocabulary: ids are remapped to 0..V-1.
    """
    ds = shard.Dataset(path, select="neg")
    every = np.concatenate([ds[i].tokens for i in range(len(ds))])
    said = np.concatenate([ds[i].response for i in range(len(ds))])
    ids = np.unique(every)
    counts = np.bincount(np.searchsorted(ids, said), minlength=len(ids))
    return ids, counts, len(ds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", nargs="?", default="build/demo")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.003)
    args = ap.parse_args()

    torch.manual_seed(0)
    ids, counts, n_neg = compact_vocabulary(args.dataset)
    remap = torch.from_numpy(ids.astype(np.int64))
    model = TinyLM(len(ids))
    with torch.no_grad():
        model.out.bias.copy_(torch.log(torch.from_numpy(counts + 0.1)
                                       .float()))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    data = ShardIterableDataset(args.dataset, select="neg",
                                batch_size=args.batch_size, max_len=256,
                                shuffle=True, seed=0)
    print("%d negative records, vocabulary of %d ids, %d steps"
          % (n_neg, len(ids), args.steps))

    losses, step, epoch = [], 0, 0
    while step < args.steps:
        data.set_epoch(epoch)
        for batch in torch.utils.data.DataLoader(data, batch_size=None):
            x = torch.searchsorted(remap, batch["input_ids"])
            labels = torch.where(batch["labels"] == IGNORE_INDEX,
                                 batch["labels"], x)
            loss, p = unlikelihood_loss(model(x), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step % 5 == 0 or step == args.steps - 1:
                print("step %3d  epoch %d  unlikelihood loss %.4f  "
                      "mean p(rejected token) %.4f"
                      % (step, epoch, loss.item(), p.item()))
            step += 1
            if step == args.steps:
                break
        epoch += 1

    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print("loss %.4f -> %.4f (mean of the first and last 5 steps)"
          % (first, last))
    return 0 if last < first / 2 else 1


if __name__ == "__main__":
    sys.exit(main())
