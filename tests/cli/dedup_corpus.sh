#!/bin/sh
# dedup_corpus.sh - dedup on a corpus built from the HH-RLHF file: exact
# repeats, whitespace variants and swapped labels, compiled whole, split
# over gzip, zstd and tar inputs, from stdin, and with a tiny --mem-limit;
# every way must give the same records and the counts the construction
# implies.
. tests/cli_lib.sh

# The corpus: tests/dedup_corpus.py says what it holds.
. tests/dedup_lib.sh

# The same rows in order over three inputs: gzip, zstd, and a tar member.
sed -n '1,300p' "$TMP/whole.jsonl" | gzip > "$TMP/a.jsonl.gz"
sed -n '301,600p' "$TMP/whole.jsonl" | zstd -q > "$TMP/b.jsonl.zst"
mkdir "$TMP/t"
sed -n '601,$p' "$TMP/whole.jsonl" > "$TMP/t/c.jsonl"
tar -cf "$TMP/c.tar" -C "$TMP/t" c.jsonl

"$SHARD" compile -q "$TMP/base.jsonl" -o "$TMP/base"
"$SHARD" compile -q "$TMP/whole.jsonl" -o "$TMP/whole"
"$SHARD" compile -q "$TMP/a.jsonl.gz" "$TMP/b.jsonl.zst" "$TMP/c.tar" \
    -o "$TMP/split"
"$SHARD" compile -q - -o "$TMP/stdin" < "$TMP/whole.jsonl"
cat "$TMP/whole.jsonl" | "$SHARD" compile -q - -o "$TMP/pipe"
"$SHARD" compile -v --mem-limit 4K "$TMP/whole.jsonl" -o "$TMP/small" \
    2> "$TMP/small.err"

# The originals hold no repeats; then 100 repeated rows and 50
# whitespace variants are 300 duplicate records (and 150 duplicate
# pairs); each swapped row makes both of its texts a conflict: 200
# records, and 100 pairs (the original and the swapped) lose a side.
check base_is_clean json_get "$TMP/base/manifest.json" "
    j.accounting.duplicate === 0 && j.accounting.conflict === 0 &&
    j.records.pos === 600 && j.records.neg === 600 || process.exit(1)"
check counts_implied json_get "$TMP/whole/manifest.json" "
    j.accounting.records === 1600 && j.accounting.duplicate === 300 &&
    j.accounting.conflict === 200 && j.records.pos === 550 &&
    j.records.neg === 550 && j.accounting.kept === 1100 &&
    j.pairs === 550 && j.accounting.pairs_duplicate === 150 &&
    j.accounting.pairs_dropped === 100 || process.exit(1)"

same split_into_three_inputs "$TMP/whole" "$TMP/split"
same from_stdin_file "$TMP/whole" "$TMP/stdin"
same from_stdin_pipe "$TMP/whole" "$TMP/pipe"
same mem_limit_4k "$TMP/whole" "$TMP/small"
check mem_limit_went_to_disk grep -q 'key table went to disk' \
    "$TMP/small.err"
check no_temporary_files_left sh -c "
    ! ls -a '$TMP/small' '$TMP/pipe' | grep -q -e '^\.dedup' -e '^\.stdin'"
