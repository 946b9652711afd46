#!/bin/sh
# trainer_example.sh - examples/train_negatives.py on the demo dataset
# (examples/logs compiled into a temporary directory): it streams the
# negatives into a tiny model and its unlikelihood loss must fall.  Skips,
# saying so, where /usr/bin/python3 lacks numpy or torch.
. tests/cli_lib.sh
. tests/trainer_lib.sh

trainer_needs "numpy, torch"
"$SHARD" compile -q examples/logs -o "$TMP/demo" 2>/dev/null
check compile_demo test -f "$TMP/demo/manifest.json"
trainer_python examples/train_negatives.py "$TMP/demo" > "$TMP/train.out" 2>&1
status=$?
check train_negatives_loss_falls test $status -eq 0
check prints_the_loss grep -q '^step  39 .*unlikelihood loss' "$TMP/train.out"
[ $status -eq 0 ] || sed 's/^/    /' "$TMP/train.out"
