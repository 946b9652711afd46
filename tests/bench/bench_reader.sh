#!/bin/sh
# bench_reader.sh - make bench-reader: tokens/s delivered to Python as
# numpy batches from zstd shards and codec-none shards, beside a plain
# numpy.memmap reader of the same tokens exported in Megatron layout
# (tests/bench/bench_reader.py), all in one run.
set -e
: "${BUILD:=build}" "${SHARD:=$BUILD/shard}" "${SHARED_DATA:=../shared/data}"
PY=/usr/bin/python3
IN=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shard-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

"$SHARD" compile -q "$IN" --format hh-rlhf -o "$TMP/zstd"
"$SHARD" compile -q "$IN" --format hh-rlhf --codec none -o "$TMP/none"
"$SHARD" export -q "$TMP/zstd" --to megatron -o "$TMP/meg"
SHARD_READER_LIB=$BUILD/libshard-reader.so PYTHONPATH=libshard/python \
    $PY tests/bench/bench_reader.py "$TMP/zstd" "$TMP/none" "$TMP/meg"
