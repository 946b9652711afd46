#!/bin/sh
# tokenizer_corpus.sh - `shard tokenize` against the reference tokenizers:
# npm tiktoken for cl100k_base, o200k_base, gpt2 and p50k_base, and HF
# tokenizers (npm, native) for the Llama-3, Qwen3 and GPT-4o tokenizer.json
# files, on the edge cases of tests/data/tokenizer_edge.jsonl and several
# megabytes of prose, code and generated text in a dozen scripts; decoding
# back; refusal of the tokenizer.json files that are not supported.
# SHARD_CORPUS_MB (default 4) sizes the code and generated parts of the corpus;
# `make check-tokenizer-full` runs it with 40.
. tests/cli_lib.sh


# same_lines NAME A B: passes when the files are equal; otherwise names
# the first line that differs.
same_lines() {
    if cmp -s "$2" "$3"; then
        pass "$1"
    else
        line=$(cmp "$2" "$3" 2>&1 | sed -n 's/.*line \([0-9]*\).*/\1/p')
        fail "$1" "first difference on line ${line:-?} of $3"
    fi
}

for model in cl100k_base o200k_base gpt2 p50k_base llama3 qwen3 gpt4o; do
    json=$(ref_spec "$model")
    ref=$TMP/$model
    if ! node tests/corpus_ref.mjs "$json" "$ref" "${SHARD_CORPUS_MB:-4}" \
            > "$TMP/ref.out" 2>&1; then
        fail "$model:reference" "$(tail -1 "$TMP/ref.out")"
        continue
    fi

    "$SHARD" tokenize -t "$model" --hf-added-tokens "$ref/all.jsonl" \
        > "$ref/ours.ids" 2> "$TMP/err"
    same_lines "$model:ids_equal_reference_with_added_tokens" "$ref/all.ids" \
        "$ref/ours.ids"
    "$SHARD" tokenize -t "$json" "$ref/plain.jsonl" > "$ref/plain.ours" \
        2> "$TMP/err"
    same_lines "$model:ids_equal_reference" "$ref/plain.ids" \
        "$ref/plain.ours"

    # Decoding gives the text back (Qwen's as NFC, which HF applies too).
    "$SHARD" tokenize -t "$model" --decode "$ref/plain.ours" \
        > "$ref/decoded.jsonl"
    check "$model:decode_round_trip" node -e "
        const fs = require('fs');
        const a = fs.readFileSync('$ref/plain.jsonl', 'utf8').split('\n');
        const b = fs.readFileSync('$ref/decoded.jsonl', 'utf8').split('\n');
        if (a.length !== b.length) process.exit(1);
        for (let i = 0; i < a.length - 1; i++) {
            const want = JSON.parse(a[i]).normalize(
                '$model' === 'qwen3' ? 'NFC' : undefined);
            if (JSON.parse(b[i]) !== ('$model' === 'qwen3' ? want :
                                      JSON.parse(a[i]))) {
                console.error('line', i + 1); process.exit(1);
            }
        }"
done

# Special-token strings in content stay text unless asked otherwise.
echo '"a<|eot_id|>b"' > "$TMP/special.jsonl"
check llama3:special_text_is_text_by_default sh -c "
    '$SHARD' tokenize -t llama3 '$TMP/special.jsonl' | grep -qv 128009"
check llama3:special_text_with_hf_added_tokens sh -c "
    '$SHARD' tokenize -t llama3 --hf-added-tokens '$TMP/special.jsonl' |
        grep -qx '\[64,128009,65\]'"

# Files of other kinds are refused with a message naming what is wrong.
refused() { # NAME JSON EXPECTED-TEXT
    printf '%s\n' "$2" > "$TMP/bad.json"
    if echo '"x"' | "$SHARD" tokenize -t "$TMP/bad.json" \
            > /dev/null 2> "$TMP/bad.err"; then
        fail "$1" "loaded"
    elif grep -q "$3" "$TMP/bad.err"; then
        pass "$1"
    else
        fail "$1" "$(cat "$TMP/bad.err")"
    fi
}
refused refuses_wordpiece '{"model": {"type": "WordPiece", "vocab": {}}}' \
    'unsupported tokenizer: model type is not BPE'
refused refuses_nfkc '{"model": {"type": "BPE", "vocab": {}, "merges": []},
    "normalizer": {"type": "NFKC"}}' 'normalizer other than NFC'
refused refuses_unknown_split '{"model": {"type": "BPE", "vocab": {},
    "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"},
    {"type": "ByteLevel", "use_regex": false}]}}' 'Split pattern "\\w+"'
refused refuses_dropout '{"model": {"type": "BPE", "dropout": 0.1}}' \
    'BPE dropout'
refused refuses_not_json '{"model": ' 'not JSON'
