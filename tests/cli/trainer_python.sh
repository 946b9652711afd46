#!/bin/sh
# trainer_python.sh - the Python module over build/libshard-reader.so,
# on the real HH-RLHF test split compiled with codec zstd and codec none
# (tests/test_python.py).  Needs /usr/bin/python3 with numpy; the torch
# cases skip, saying so, where torch is absent.
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
"$SHARD" compile -q "$IN" --format hh-rlhf --frame-size 64K -o "$TMP/zstd"
check compile_zstd test $? -eq 0
"$SHARD" compile -q "$IN" --format hh-rlhf --frame-size 64K --codec none \
    -o "$TMP/none"
check compile_none test $? -eq 0
SHARD_READER_LIB=$BUILD/libshard-reader.so PYTHONPATH=libshard/python \
    $PY tests/test_python.py "$TMP/zstd" "$TMP/none"
