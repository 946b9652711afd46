#!/bin/sh
# unicode_sweep.sh - every seventh letter, number, mark and white-space
# code point (all of them with SHARD_SWEEP_STEP=1, as `make
# check-tokenizer-full` runs it), and every one where engines of different
# Unicode versions split differently, in four contexts, through each
# tokenizer: ids must equal npm tiktoken's and HF tokenizers'.
. tests/cli_lib.sh

step=${SHARD_SWEEP_STEP:-7}

for model in cl100k_base o200k_base gpt2 p50k_base llama3 qwen3 gpt4o; do
    out=$TMP/$model
    if ! node tests/unicode_sweep.mjs "$(ref_spec "$model")" "$out" "$step" \
            > "$TMP/ref.out" 2>&1; then
        fail "$model:reference" "$(tail -1 "$TMP/ref.out")"
        continue
    fi
    "$SHARD" tokenize -t "$model" "$out/sweep.jsonl" > "$out/ours.ids"
    bad=$(paste -d ' ' "$out/sweep.cps" "$out/ours.ids" "$out/sweep.ids" |
          awk '$2 != $3 { n++; if (n <= 5) s = s " U+" toupper($1) }
               END { if (n) print n " lines differ:" s }')
    lines=$(wc -l < "$out/sweep.cps")
    if [ -z "$bad" ] && [ "$lines" -gt 1000 ]; then
        pass "$model:$lines code points"
    else
        fail "$model:code_points" "${bad:-only $lines lines}"
    fi
done
