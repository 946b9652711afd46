#!/bin/sh
# merge.sh - shard merge: a corpus with repeats and conflicts across its
# parts, compiled part by part and merged, reads back as the parts one
# after the other; with --dedup it gives the records, labels and counts of
# compiling it whole, under every conflict policy; a merged dataset can be
# appended to and merged again; bad merges are refused in one line; the
# inputs' bytes never change.
. tests/cli_lib.sh

. tests/dedup_lib.sh

W=$TMP/whole.jsonl
sed -n '1,300p' "$W" > "$TMP/p1.jsonl"
sed -n '301,600p' "$W" > "$TMP/p2.jsonl"
tail -n +601 "$W" > "$TMP/p3.jsonl"
P="$TMP/p1 $TMP/p2 $TMP/p3"

# Checksums of every file of the given directories, to compare later.
sums() {
    find "$@" -type f | sort | xargs sha256sum
}

for p in p1 p2 p3; do
    "$SHARD" compile -q "$TMP/$p.jsonl" -o "$TMP/$p"
done
sums $P > "$TMP/before.sums"

# ---- without --dedup: every record of every part, in part order --------

"$SHARD" merge -q $P -o "$TMP/plain"
check plain_verifies "$SHARD" verify "$TMP/plain"
for sel in pos neg unl; do
    for p in p1 p2 p3; do
        "$SHARD" cat "$TMP/$p" --label $sel
    done > "$TMP/parts.$sel"
    "$SHARD" cat "$TMP/plain" --label $sel > "$TMP/plain.$sel"
    check "plain_${sel}_is_the_parts_in_order" cmp "$TMP/parts.$sel" \
        "$TMP/plain.$sel"
done
check plain_counts_are_sums json_get "$TMP/plain/manifest.json" "
    (ps => ['records', 'kept', 'duplicate', 'conflict', 'rows_read']
        .every(k => j.accounting[k] ===
                    ps.reduce((n, p) => n + p.accounting[k], 0)) &&
      ['pos', 'neg', 'unl'].every(l => j.records[l] ===
          ps.reduce((n, p) => n + p.records[l], 0)) &&
      j.pairs === ps.reduce((n, p) => n + p.pairs, 0) &&
      j.pairs_table.pairs === j.pairs &&
      j.inputs.length === 3 && j.merge.datasets.length === 3 &&
      j.merge.dedup === false)
    (['p1', 'p2', 'p3'].map(p => require('$TMP/' + p + '/manifest.json')))
    || process.exit(1)"
# Every comparison of every part is there, joined by record id (a record
# two parts share has one id: the row may join the other part's copy).
ids() {
    grep -o '"record_id": "[0-9a-f]*"' | sort
}
for p in p1 p2 p3; do
    "$SHARD" cat "$TMP/$p" --label pairs
done | ids > "$TMP/parts.pairs"
"$SHARD" cat "$TMP/plain" --label pairs | ids > "$TMP/plain.pairs"
check plain_pairs_are_the_parts sh -c "
    test -s '$TMP/parts.pairs' && cmp '$TMP/parts.pairs' '$TMP/plain.pairs'"
check plain_has_no_key_table test ! -e "$TMP/plain/dedup.keys"
check shards_are_hard_links sh -c "
    test \$(stat -c %i '$TMP/plain/pos/00001.shard') = \
         \$(stat -c %i '$TMP/p2/pos/00000.shard') &&
    test \$(stat -c %h '$TMP/p2/pos/00000.shard') -ge 2"

# ---- --dedup: as one compile over every part in order ------------------

# dedup_matches NAME WHOLE PART...: under every policy, the parts
# ($TMP/PART.jsonl) compiled one by one and merged with --dedup read back
# as WHOLE compiled at once, with the same counts.
dedup_matches() {
    name=$1 whole=$2
    shift 2
    for c in drop keep neg pos; do
        dirs=""
        for p in "$@"; do
            "$SHARD" compile -q --conflicts $c "$TMP/$p.jsonl" \
                -o "$TMP/${p}_$c"
            dirs="$dirs $TMP/${p}_$c"
        done
        "$SHARD" compile -q --conflicts $c "$whole" -o "$TMP/${name}_whole_$c"
        "$SHARD" merge -q --dedup $dirs -o "$TMP/${name}_$c"
        same "${name}_$c" "$TMP/${name}_whole_$c" "$TMP/${name}_$c"
    done
}
dedup_matches dedup "$W" p1 p2 p3

# Parts that repeat each other's rows (1-500, 250-800, 1-120): within
# and across parts, records and comparisons recur with conflicts among
# them.  Compared with one compile of the parts concatenated.
sed -n '1,500p' "$W" > "$TMP/o1.jsonl"
sed -n '250,800p' "$W" > "$TMP/o2.jsonl"
sed -n '1,120p' "$W" > "$TMP/o3.jsonl"
cat "$TMP/o1.jsonl" "$TMP/o2.jsonl" "$TMP/o3.jsonl" > "$TMP/ocat.jsonl"
dedup_matches overlapping "$TMP/ocat.jsonl" o1 o2 o3
check overlapping_recounts json_get "$TMP/overlapping_drop/manifest.json" "
    j.merge.recounted > 0 && j.merge.pairs_recounted > 0 ||
    process.exit(1)"

# Without text sections, the records' keys cannot be read again: the
# merge decides by the key tables and record ids, and still matches
# parts that do not repeat each other.
for p in p1 p2 p3; do
    "$SHARD" compile -q --no-text "$TMP/$p.jsonl" -o "$TMP/${p}_notext"
done
"$SHARD" compile -q --no-text "$W" -o "$TMP/whole_notext"
"$SHARD" merge -q --dedup "$TMP/p1_notext" "$TMP/p2_notext" \
    "$TMP/p3_notext" -o "$TMP/merged_notext"
same without_text "$TMP/whole_notext" "$TMP/merged_notext"

M=$TMP/dedup_drop
check dedup_verifies "$SHARD" verify "$M"
check dedup_tombstones_are_the_drops json_get "$M/manifest.json" "
    j.merge.duplicate + j.merge.conflict ===
        (require('fs').statSync('$M/tombstones').size - 64) / 8 &&
    j.merge.duplicate > 0 && j.merge.conflict > 0 || process.exit(1)"
"$SHARD" inspect "$M" > "$TMP/inspect.txt"
check inspect_shows_merge grep -q \
    '^merged     3 datasets (dedup on): dropped [1-9][0-9]* duplicate' \
    "$TMP/inspect.txt"
"$SHARD" inspect --json "$M" > "$TMP/inspect.json"
check inspect_json_merge json_get "$TMP/inspect.json" "
    j.merge.datasets === 3 && j.merge.dedup === true &&
    j.merge.conflict > 0 || process.exit(1)"

# Every reader sees the kept records only: cat, export and Python.
"$SHARD" cat "$M" > "$TMP/merged.all"
"$SHARD" export -q "$M" --to jsonl -o "$TMP/export"
check export_reads_merged cmp "$TMP/merged.all" "$TMP/export.jsonl"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    LD_PRELOAD=${SHARD_ASAN_PRELOAD:-} ASAN_OPTIONS=detect_leaks=0 \
        SHARD_READER_LIB=$BUILD/libshard-reader.so PYTHONPATH=libshard/python \
        /usr/bin/python3 -c "
import shard
d = shard.Dataset('$M')
print(len(d), len(set((d[i].record_id, d[i].label) for i in range(len(d)))))
print(shard.Dataset('$M', select='pairs').pairs)" > "$TMP/py.out" 2>&1
    n=$(wc -l < "$TMP/merged.all")
    pairs=$("$SHARD" cat "$M" --label pairs | wc -l)
    check python_reads_merged sh -c "
        test \"\$(sed -n 1p '$TMP/py.out')\" = '$n $n' &&
        test \$((\$(sed -n 2p '$TMP/py.out') * 2)) -eq $pairs"
fi

# A merged dataset can be appended to and merged again.
"$SHARD" merge -q --dedup "$TMP/p1" "$TMP/p2" -o "$TMP/m12"
"$SHARD" merge -q --dedup "$TMP/m12" "$TMP/p3" -o "$TMP/m12_3"
same merge_of_merged "$TMP/dedup_whole_drop" "$TMP/m12_3"
"$SHARD" merge -q --dedup "$TMP/p1" "$TMP/p2" -o "$TMP/m12a"
cp "$TMP/m12a/manifest.json" "$TMP/m12a.manifest.json"
"$SHARD" compile -q --append "$TMP/m12a" "$TMP/p3.jsonl"
same append_to_merged "$TMP/dedup_whole_drop" "$TMP/m12a"
check append_keeps_merge_object json_get "$TMP/m12a/manifest.json" "
    JSON.stringify(j.merge) ===
        JSON.stringify(require('$TMP/m12a.manifest.json').merge) &&
    j.merge.datasets.length === 2 && j.inputs.length === 3 ||
    process.exit(1)"
check append_keeps_linked_shards "$SHARD" verify "$TMP/m12a"

# Shard files are never written in place: compiling over an input with
# --force replaces its files, and a merge linked to the old ones still
# reads them as they were.
"$SHARD" compile -q "$TMP/p1.jsonl" -o "$TMP/x1"
"$SHARD" merge -q "$TMP/x1" "$TMP/p2" -o "$TMP/mx"
"$SHARD" cat "$TMP/mx" > "$TMP/mx.before"
"$SHARD" compile -q --force "$TMP/p3.jsonl" -o "$TMP/x1"
"$SHARD" cat "$TMP/mx" > "$TMP/mx.after"
check links_survive_recompile sh -c "
    '$SHARD' verify '$TMP/mx' > /dev/null &&
    cmp -s '$TMP/mx.before' '$TMP/mx.after'"

# Into another file system the shards are copied, with the same result.
SHM=$(mktemp -d /dev/shm/shard-merge.XXXXXX 2>/dev/null || true)
if [ -n "$SHM" ] && [ "$(stat -c %d "$SHM")" != "$(stat -c %d "$TMP")" ]
then
    "$SHARD" merge -q --dedup $P -o "$SHM/m"
    same copied_across_file_systems "$M" "$SHM/m"
    check copies_counted json_get "$SHM/m/manifest.json" "
        j.merge.copied === 6 && j.merge.linked === 0 || process.exit(1)"
else
    echo "SKIP cli/$script:copied_across_file_systems: no other file system"
fi
[ -n "$SHM" ] && rm -rf "$SHM"

# ---- refusals: one line each, no manifest written ----------------------

# refused NAME PATTERN COMMAND...: fails with one line matching PATTERN.
refused() {
    name=$1 pattern=$2
    shift 2
    if "$@" > "$TMP/r.out" 2>&1; then
        fail "$name" "succeeded"
    elif [ "$(wc -l < "$TMP/r.out")" -ne 1 ] ||
         ! grep -q -e "$pattern" "$TMP/r.out"; then
        fail "$name" "$(head -3 "$TMP/r.out" | tr '\n' ' ')"
    else
        pass "$name"
    fi
}

"$SHARD" compile -q -t o200k_base "$TMP/p3.jsonl" -o "$TMP/p3_o200k"
refused other_tokenizer "$TMP/p1 and $TMP/p3_o200k differ in tokenizer" \
    "$SHARD" merge "$TMP/p1" "$TMP/p3_o200k" -o "$TMP/r1"
check other_tokenizer_no_manifest test ! -e "$TMP/r1/manifest.json"
"$SHARD" compile -q --template chatml "$TMP/p3.jsonl" -o "$TMP/p3_chatml"
refused other_template "differ in template" \
    "$SHARD" merge "$TMP/p1" "$TMP/p3_chatml" -o "$TMP/r2"
refused other_policy "$TMP/p1 and $TMP/p2_neg differ in conflicts" \
    "$SHARD" merge --dedup "$TMP/p1" "$TMP/p2_neg" -o "$TMP/r3"
refused policy_not_theirs "compiled with --conflicts drop, not pos" \
    "$SHARD" merge --dedup --conflicts pos "$TMP/p1" "$TMP/p2" -o "$TMP/r4"
mkdir "$TMP/half"
cp -r "$TMP/p2/pos" "$TMP/half/"
refused missing_manifest "$TMP/half: no manifest.json" \
    "$SHARD" merge "$TMP/p1" "$TMP/half" -o "$TMP/r5"
refused not_a_directory "$TMP/nowhere: not a dataset directory" \
    "$SHARD" merge "$TMP/p1" "$TMP/nowhere" -o "$TMP/r6"
refused output_not_empty "$TMP/p1: exists and is not empty" \
    "$SHARD" merge "$TMP/p2" "$TMP/p3" -o "$TMP/p1"
refused dedup_needs_key_tables "$TMP/plain: no key table" \
    "$SHARD" merge --dedup "$TMP/plain" "$TMP/p3" -o "$TMP/r7"
refused append_needs_key_table "$TMP/plain: no key table .*merged without" \
    "$SHARD" compile -q --append "$TMP/plain" "$TMP/p3.jsonl"
# Under keep, a key kept with two labels in one input's in-memory key
# table, repeated by an earlier input, is found only through the text.
for p in o1 o2; do
    "$SHARD" compile -q --no-text --conflicts keep "$TMP/$p.jsonl" \
        -o "$TMP/${p}_keep_notext"
done
refused keep_without_text "$TMP/o2_keep_notext: .* no text to find it" \
    "$SHARD" merge --dedup "$TMP/o1_keep_notext" "$TMP/o2_keep_notext" \
    -o "$TMP/r8"

# After all of the above, appends to a merge included, the inputs are
# byte for byte as compiled.
sums $P > "$TMP/after.sums"
check inputs_unchanged cmp "$TMP/before.sums" "$TMP/after.sums"
