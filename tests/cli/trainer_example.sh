#!/bin/sh
# trainer_example.sh - examples/train_negatives.py on the demo dataset
# (examples/logs compiled into a temporary directory): it streams the
# negatives into a tiny model and its unlikelihood loss must fall.  Skips,
# saying so, where /usr/bin/python3 lacks numpy or torch.
. tests/cli_lib.sh

PY=/usr/bin/python3
if ! $PY -c 'import numpy, torch' 2>/dev/null; then
    echo "SKIP cli/$script:train_negatives: numpy or torch is not" \
         "installed for $PY"
    exit 0
fi
"$SHARD" compile -q examples/logs -o "$TMP/demo" 2>/dev/null
check compile_demo test -f "$TMP/demo/manifest.json"
SHARD_READER_LIB=$BUILD/libshard-reader.so PYTHONPATH=libshard/python \
    $PY examples/train_negatives.py "$TMP/demo" > "$TMP/train.out" 2>&1
status=$?
check train_negatives_loss_falls test $status -eq 0
check prints_the_loss grep -q '^step  39 .*unlikelihood loss' "$TMP/train.out"
[ $status -eq 0 ] || sed 's/^/    /' "$TMP/train.out"
