#!/bin/sh
# trainer_export.sh - shard cat --format tokens|jsonl and shard export
# (Megatron .bin/.idx, JSON lines) on the real HH-RLHF test split, read
# back by independent Python+numpy readers (tests/test_export.py).
. tests/cli_lib.sh

PY=/usr/bin/python3
IN=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
if ! [ -f "$IN" ]; then
    fail data "$IN is missing"
    exit 1
fi
if ! $PY -c 'import numpy' 2>/dev/null; then
    echo "SKIP cli/$script:all: numpy is not installed for $PY"
    exit 0
fi
"$SHARD" compile -q "$IN" --format hh-rlhf --frame-size 64K -o "$TMP/hh"
check compile test $? -eq 0
# r50k_base has 50,257 ids: Megatron's rule then stores uint16.
"$SHARD" compile -q examples/logs -t r50k_base -o "$TMP/small" 2>/dev/null
check compile_r50k test -f "$TMP/small/manifest.json"
PYTHONPATH=tests $PY tests/test_export.py "$SHARD" "$TMP/hh" "$TMP" \
    "$TMP/small"
