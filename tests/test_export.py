"""shard cat --format tokens and shard export, checked by independent
readers (tests/megatron_idx.py).  Usage: test_export.py SHARD DATASET TMP
SMALL, SMALL being a dataset whose vocabulary fits 16 bits.  Prints one
PASS/FAIL line per case.
"""
import json
import os
import subprocess
import sys

import numpy as np

from megatron_idx import read_megatron, read_token_stream

SHARD, DATASET, TMP, SMALL = sys.argv[1:5]
failures = 0


def case(name, fn):
    global failures
    try:
        fn()
        print("PASS cli/trainer_export:%s" % name)
    except Exception as e:  # a failed check of any kind fails the case
        failures += 1
        print("FAIL cli/trainer_export:%s: %s" % (name, e))


def run(*args):
    return subprocess.run([SHARD] + list(args), check=True,
                          stdout=subprocess.PIPE).stdout


def stream(label):
    return read_token_stream(run("cat", DATASET, "--label", label,
                                 "--format", "tokens"))


def jsonl(label, *more):
    out = run("cat", DATASET, "--label", label, *more).decode()
    return [json.loads(line) for line in out.splitlines()]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def token_stream_matches_jsonl():
    for label in ("neg", "pos", "all"):
        recs, rows = stream(label), jsonl(label, "--format", "jsonl")
        check(len(recs) == len(rows) and len(recs) > 0,
              "%s: %d records vs %d lines" % (label, len(recs), len(rows)))
        for r, j in zip(recs, rows):
            check(len(r["tokens"]) == j["n_tokens"], "n_tokens")
            check(r["prompt_len"] == j["prompt_len"], "prompt_len")
            check(r["record_id"] == int(j["record_id"], 16), "record_id")
            check(("unl", "pos", "neg")[r["label"]] == j["label"], "label")
    check(all(r["label"] == 2 for r in stream("neg")), "neg only")


def jsonl_alias_is_the_default_format():
    check(run("cat", DATASET, "--jsonl") == run("cat", DATASET),
          "--jsonl differs from the default")


def megatron_export_round_trips(label, dataset, want):
    def go():
        prefix = os.path.join(TMP, "meg_" + label)
        subprocess.run([SHARD, "export", dataset, "--to", "megatron", "-o",
                        prefix, "--label", label, "-q"], check=True)
        dtype, docs, sizes, pointers = read_megatron(prefix)
        check(dtype == want, "dtype %s, expected %s" % (dtype, want))
        recs = read_token_stream(run("cat", dataset, "--label", label,
                                     "--format", "tokens"))
        check(len(docs) == len(recs), "%d documents for %d records"
              % (len(docs), len(recs)))
        for d, r in zip(docs, recs):
            check(np.array_equal(d.astype(np.int64),
                                 r["tokens"].astype(np.int64)),
                  "document tokens differ")
        check(pointers[0] == 0 and np.all(np.diff(pointers) ==
                                          sizes[:-1] * dtype.itemsize),
              "pointers are not the running sum of sizes")
        check(os.path.getsize(prefix + ".bin") ==
              int(sizes.sum()) * dtype.itemsize, ".bin size")
        check(not os.path.exists(prefix + ".bin.tmp"), "temporary left")
    return go


def jsonl_export_equals_cat():
    prefix = os.path.join(TMP, "exp")
    subprocess.run([SHARD, "export", DATASET, "--to", "jsonl", "-o", prefix,
                    "--label", "neg", "-q"], check=True)
    with open(prefix + ".jsonl", "rb") as f:
        check(f.read() == run("cat", DATASET, "--label", "neg"),
              "export --to jsonl differs from cat")


def pairs_come_adjacent():
    recs = stream("pairs")
    check(len(recs) > 0 and len(recs) % 2 == 0, "pairs: odd count")
    for a, b in zip(recs[0::2], recs[1::2]):
        check(a["label"] == 1 and b["label"] == 2, "pair labels")
        check(a["pair_id"] == b["pair_id"] != 0, "pair ids")


def shuffled_cat_is_a_permutation():
    plain = sorted(r["record_id"] for r in stream("all"))
    shuf = read_token_stream(run("cat", DATASET, "--format", "tokens",
                                 "--shuffle", "--seed", "5"))
    again = read_token_stream(run("cat", DATASET, "--format", "tokens",
                                  "--shuffle", "--seed", "5"))
    ids = [r["record_id"] for r in shuf]
    check(sorted(ids) == plain, "not a permutation")
    check(ids == [r["record_id"] for r in again], "seed does not fix it")


def cat_partitions_split_the_shuffled_order():
    def ids(*more):
        return [r["record_id"] for r in read_token_stream(
            run("cat", DATASET, "--format", "tokens", "--shuffle", "--seed",
                "3", *more))]
    whole = ids()
    parts = [ids("--rank", str(r), "--world", "3") for r in range(3)]
    check(sum(parts, []) == whole, "ranks do not tile the order")
    check(max(map(len, parts)) - min(map(len, parts)) <= 1, "unbalanced")
    check(ids("--epoch", "1") != whole, "epoch 1 repeats epoch 0")
    check(sorted(ids("--epoch", "1")) == sorted(whole), "epoch 1 differs")


def usage_errors_exit_2():
    for args in (["export", DATASET, "-o", TMP + "/x"],
                 ["export", DATASET, "--to", "parquet", "-o", TMP + "/x"],
                 ["cat", DATASET, "--format", "csv"],
                 ["cat", DATASET, "--label", "maybe"],
                 ["cat", DATASET, "--rank", "2", "--world", "2"]):
        rc = subprocess.run([SHARD] + args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        check(rc == 2, "%s: exit %d" % (" ".join(args[:4]), rc))


case("token_stream_matches_jsonl", token_stream_matches_jsonl)
case("jsonl_alias_is_the_default_format", jsonl_alias_is_the_default_format)
case("megatron_all_int32_read_back_by_independent_reader",
     megatron_export_round_trips("all", DATASET, np.int32))
case("megatron_neg_int32_read_back_by_independent_reader",
     megatron_export_round_trips("neg", DATASET, np.int32))
case("megatron_uint16_read_back_by_independent_reader",
     megatron_export_round_trips("both", SMALL, np.uint16))
case("jsonl_export_equals_cat", jsonl_export_equals_cat)
case("pairs_come_adjacent", pairs_come_adjacent)
case("shuffled_cat_is_a_permutation", shuffled_cat_is_a_permutation)
case("cat_partitions_split_the_shuffled_order",
     cat_partitions_split_the_shuffled_order)
case("usage_errors_exit_2", usage_errors_exit_2)
sys.exit(1 if failures else 0)
