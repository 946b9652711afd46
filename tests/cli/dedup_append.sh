#!/bin/sh
# dedup_append.sh - compile --append: the halves (and thirds) of a corpus
# appended one after the other give the records, labels and counts of
# compiling it whole, under every conflict policy; removed records are
# tombstoned and readers skip them; bad appends are refused.
. tests/cli_lib.sh

. tests/dedup_lib.sh

W=$TMP/whole.jsonl
head -400 "$W" > "$TMP/h1.jsonl"
tail -n +401 "$W" > "$TMP/h2.jsonl"
sed -n '1,250p' "$W" > "$TMP/t1.jsonl"
sed -n '251,500p' "$W" > "$TMP/t2.jsonl"
tail -n +501 "$W" > "$TMP/t3.jsonl"

for p in drop keep neg pos; do
    "$SHARD" compile -q --conflicts $p "$W" -o "$TMP/whole_$p"
    "$SHARD" compile -q --conflicts $p "$TMP/h1.jsonl" -o "$TMP/halves_$p"
    "$SHARD" compile -q --conflicts $p --append "$TMP/halves_$p" \
        "$TMP/h2.jsonl"
    same "halves_$p" "$TMP/whole_$p" "$TMP/halves_$p"
done
"$SHARD" compile -q "$TMP/t1.jsonl" -o "$TMP/thirds"
"$SHARD" compile -q --append "$TMP/thirds" "$TMP/t2.jsonl"
"$SHARD" compile -q --append "$TMP/thirds" "$TMP/t3.jsonl"
same thirds "$TMP/whole_drop" "$TMP/thirds"

# Both halves with the key table on disk (--mem-limit 2K): the same.
"$SHARD" compile -v --mem-limit 2K "$TMP/h1.jsonl" -o "$TMP/small" \
    2> "$TMP/small.err"
"$SHARD" compile -v --mem-limit 2K --append "$TMP/small" "$TMP/h2.jsonl" \
    2> "$TMP/small2.err"
check small_went_to_disk sh -c "
    grep -q 'key table went to disk' '$TMP/small.err' &&
    grep -q 'key table went to disk' '$TMP/small2.err'"
same halves_on_disk "$TMP/whole_drop" "$TMP/small"

# The second half turned records of the first into conflicts: they are
# listed as tombstones, their shards stay as written, and the dataset
# still verifies.
check tombstones_written test -s "$TMP/halves_drop/tombstones"
check new_shards_after_old sh -c "
    test -e '$TMP/halves_drop/pos/00000.shard' &&
    test -e '$TMP/halves_drop/pos/00001.shard'"
check appended_dataset_verifies "$SHARD" verify "$TMP/halves_drop"
"$SHARD" cat "$TMP/halves_drop" > "$TMP/halves.all"
check readers_return_kept json_get "$TMP/halves_drop/manifest.json" "
    j.accounting.kept === $(wc -l < "$TMP/halves.all") &&
    j.accounting.kept < j.shards.reduce((n, s) => n + s.records, 0) ||
    process.exit(1)"
# Random access through Python sees the same records as cat.
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    LD_PRELOAD=${SHARD_ASAN_PRELOAD:-} ASAN_OPTIONS=detect_leaks=0 \
        SHARD_READER_LIB=$BUILD/libshard-reader.so PYTHONPATH=libshard/python \
        /usr/bin/python3 -c "
import shard
d = shard.Dataset('$TMP/halves_drop', select='all')
print(len(d))
ids = sorted(d[i].record_id for i in range(len(d)))
print(len(set(ids)))" > "$TMP/py.out" 2>&1
    check python_skips_tombstones sh -c "
        test \"\$(sed -n 1p '$TMP/py.out')\" -eq $(wc -l < "$TMP/halves.all") &&
        test \"\$(sed -n 2p '$TMP/py.out')\" -eq $(wc -l < "$TMP/halves.all")"
fi
check inputs_listed_in_order json_get "$TMP/thirds/manifest.json" "
    j.inputs.map(i => i.path.replace(/.*\\//, '')).join() ===
        't1.jsonl,t2.jsonl,t3.jsonl' || process.exit(1)"

# Appending what the dataset already holds adds nothing but duplicates.
"$SHARD" compile -q "$TMP/h1.jsonl" -o "$TMP/again"
"$SHARD" compile -q --append "$TMP/again" "$TMP/h1.jsonl"
check append_same_input_twice json_get "$TMP/again/manifest.json" "
    j.accounting.records === 1600 &&
    j.accounting.duplicate * 2 >= j.accounting.records &&
    j.accounting.kept + j.accounting.duplicate + j.accounting.conflict ===
        j.accounting.records || process.exit(1)"

# Refused: another tokenizer, another policy, no dataset, -o with it.
"$SHARD" compile -q -t o200k_base --append "$TMP/again" "$TMP/t3.jsonl" \
    2>/dev/null
check other_tokenizer_refused test $? -eq 1
"$SHARD" compile -q --conflicts keep --append "$TMP/again" \
    "$TMP/t3.jsonl" 2> "$TMP/policy.err"
check other_policy_refused grep -q 'conflicts drop' "$TMP/policy.err"
"$SHARD" compile -q --append "$TMP/none" "$TMP/t3.jsonl" 2>/dev/null
check missing_dataset_refused test $? -eq 1
"$SHARD" compile -q --append "$TMP/again" "$TMP/t3.jsonl" -o "$TMP/x" \
    2>/dev/null
check append_and_output_refused test $? -eq 2
check refused_appends_leave_it json_get "$TMP/again/manifest.json" "
    j.accounting.records === 1600 || process.exit(1)"
