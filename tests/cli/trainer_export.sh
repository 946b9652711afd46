#!/bin/sh
# trainer_export.sh - shard cat --format tokens|jsonl and shard export
# (Megatron .bin/.idx, JSON lines) on the real HH-RLHF test split, read
# back by independent Python+numpy readers (tests/test_export.py).
. tests/cli_lib.sh
. tests/trainer_lib.sh

trainer_needs numpy hh
"$SHARD" compile -q "$HH" --format hh-rlhf --frame-size 64K -o "$TMP/hh"
check compile test $? -eq 0
# r50k_base has 50,257 ids: Megatron's rule then stores uint16.
"$SHARD" compile -q examples/logs -t r50k_base -o "$TMP/small" 2>/dev/null
check compile_r50k test -f "$TMP/small/manifest.json"
trainer_python tests/test_export.py "$SHARD" "$TMP/hh" "$TMP" "$TMP/small"
