#!/bin/sh
# trainer_python.sh - the Python module over build/libshard-reader.so,
# on the real HH-RLHF test split compiled with codec zstd and codec none
# (tests/test_python.py).  Needs /usr/bin/python3 with numpy; the torch
# cases skip, saying so, where torch is absent.
. tests/cli_lib.sh
. tests/trainer_lib.sh

trainer_needs numpy hh
"$SHARD" compile -q "$HH" --format hh-rlhf --frame-size 64K -o "$TMP/zstd"
check compile_zstd test $? -eq 0
"$SHARD" compile -q "$HH" --format hh-rlhf --frame-size 64K --codec none \
    -o "$TMP/none"
check compile_none test $? -eq 0
trainer_python tests/test_python.py "$TMP/zstd" "$TMP/none"
