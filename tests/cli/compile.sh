#!/bin/sh
# compile.sh - compile on the shipped examples: schemas, accounting, bad
# rows, stdin, --strict, --force, codec none, and a reader-only program.
. tests/cli_lib.sh

OUT=$TMP/demo
"$SHARD" compile examples/logs -o "$OUT" 2> "$TMP/compile.err"
check compile_examples test $? -eq 0
"$SHARD" inspect "$OUT" --json > "$TMP/i.json"

# 23 rows: 2 invalid (one bad JSON, one unknown label); 4 pairs give 8
# records, 17 canonical rows give 17.
check accounting json_get "$TMP/i.json" "
    j.accounting.rows_read === 23 && j.accounting.rows_invalid === 2 &&
    j.accounting.invalid_by_reason.bad_json === 1 &&
    j.accounting.invalid_by_reason.unknown_label === 1 &&
    j.accounting.records === 25 &&
    j.accounting.records === j.accounting.kept + j.accounting.duplicate +
        j.accounting.near_duplicate + j.accounting.conflict &&
    j.records.pos + j.records.neg + j.records.unl === j.accounting.kept &&
    j.pairs === 4 && j.schema === 'mixed' || process.exit(1)"
check bad_row_messages_name_file_and_line sh -c "
    grep -q '^shard: examples/logs/thumbs.jsonl:12: invalid JSON' '$TMP/compile.err' &&
    grep -q '^shard: examples/logs/thumbs.jsonl:13: unknown label' '$TMP/compile.err'"
check compressed_input_detected_by_bytes \
    grep -q 'verifier.jsonl.gz: format canonical' "$TMP/compile.err"

# Existing output needs --force; --strict fails with status 3.
"$SHARD" compile -q examples/logs -o "$OUT" 2>/dev/null
check refuses_existing_dataset test $? -eq 1
check force_replaces "$SHARD" compile -q --force examples/logs -o "$OUT"
"$SHARD" compile -q --strict examples/logs -o "$TMP/strict" 2>/dev/null
check strict_exit_3 test $? -eq 3
check strict_leaves_no_manifest test ! -e "$TMP/strict/manifest.json"

# Standard input, and codec none.
gzip -dc examples/logs/verifier.jsonl.gz |
    "$SHARD" compile -q - --codec none -o "$TMP/stdin"
"$SHARD" inspect "$TMP/stdin" --json > "$TMP/s.json"
check stdin_counts json_get "$TMP/s.json" \
    "j.records.pos === 3 && j.records.neg === 3 || process.exit(1)"
check stdin_verify "$SHARD" verify "$TMP/stdin"

# Text round trip: canonical responses come back byte for byte.
"$SHARD" cat "$OUT" --label pos > "$TMP/pos.jsonl"
check cat_roundtrip node -e "
const fs = require('fs');
const got = fs.readFileSync('$TMP/pos.jsonl', 'utf8').trim().split('\n')
    .map(l => JSON.parse(l).response);
for (const want of ['ありがとう (arigatō).', '^\\\\d{5}(-\\\\d{4})?\$',
                    'Cold rain on maples\nred leaves loosen one by one\nthe gutter fills up'])
    if (!got.includes(want)) throw new Error('missing ' + JSON.stringify(want));"

# Without a text section, cat decodes the tokens.
"$SHARD" compile -q --no-text examples/logs/thumbs.jsonl -o "$TMP/notext" 2>/dev/null
"$SHARD" cat "$TMP/notext" --label neg > "$TMP/notext.jsonl"
check cat_decodes_tokens grep -q '"response": "Sydney."' "$TMP/notext.jsonl"

# A program linked with the reader library alone reads the dataset.
check reader_only_example sh -c "
    '$BUILD/examples/read_shard' '$OUT' neg > '$TMP/read.out' &&
    grep -q '^11 records' '$TMP/read.out'"

# Usage errors exit 2.
"$SHARD" compile 2>/dev/null
check usage_exit_2 test $? -eq 2
"$SHARD" cat "$OUT" --label maybe 2>/dev/null
check bad_label_exit_2 test $? -eq 2

# The compiled tokens are tiktoken's: with template none, the prompt is the
# context contents joined by blank lines, tokenized apart from the response.
"$SHARD" cat "$OUT" > "$TMP/all.jsonl"
check tokens_match_tiktoken node -e "
const { get_encoding } = require(require('path').resolve(
    process.env.SHARD_NPM_DIR || 'build/npm', 'node_modules/tiktoken'));
const enc = get_encoding('cl100k_base'), fs = require('fs');
const rows = fs.readFileSync('$TMP/all.jsonl', 'utf8').trim().split('\n')
    .map(l => JSON.parse(l));
if (rows.length !== 25) throw new Error('rows ' + rows.length);
for (const r of rows) {
    const prompt = r.context.map(m => m.content + '\n\n').join('');
    const p = enc.encode_ordinary(prompt).length;
    const n = p + enc.encode_ordinary(r.response).length;
    if (p !== r.prompt_len || n !== r.n_tokens)
        throw new Error(JSON.stringify(r.response) + ': ' + [p, n, r.prompt_len, r.n_tokens]);
}"
