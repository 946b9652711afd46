"""dedup_corpus.py GZ OUTDIR - a dedup test corpus from the HH-RLHF file.

Writes OUTDIR/base.jsonl (the first 600 rows) and OUTDIR/whole.jsonl:
those rows, rows 0-99 again, 50 later rows with " the " widened to
"  the " (a whitespace variant), and 50 others with chosen and rejected
swapped; shuffled with a fixed seed so that repeats come before and after
their originals.  Compiled with the default policy this gives 1600
records: 300 duplicates, 200 conflicts, 550 pos and 550 neg kept, 550
pairs with 150 duplicate and 100 dropped.
"""
import gzip
import json
import random
import sys

src, out = sys.argv[1], sys.argv[2]
with gzip.open(src, "rt", encoding="utf-8") as f:
    lines = [next(f) for _ in range(600)]
with open(out + "/base.jsonl", "w") as f:
    f.writelines(lines)
rows = [json.loads(l) for l in lines]
has_the = [i for i in range(100, 600)
           if " the " in rows[i]["chosen"] + rows[i]["rejected"]]
variants = has_the[:50]
swapped = [i for i in range(100, 600) if i not in variants][:50]
assert len(variants) == 50
assert all(rows[i]["chosen"] != rows[i]["rejected"] for i in swapped)
corpus = list(rows) + rows[0:100]
for i in variants:
    corpus.append({k: v.replace(" the ", "  the ")
                   for k, v in rows[i].items()})
for i in swapped:
    corpus.append({"chosen": rows[i]["rejected"],
                   "rejected": rows[i]["chosen"]})
random.Random(5).shuffle(corpus)
with open(out + "/whole.jsonl", "w") as f:
    for r in corpus:
        f.write(json.dumps(r) + "\n")
