#!/bin/sh
# dedup_semantics.sh - exact duplicates, label conflicts under each policy,
# the three normalisations and pairs, on tests/data/dedup fixtures.
. tests/cli_lib.sh

F=tests/data/dedup/conflicts.jsonl

# counts DIR: "pos neg unl kept duplicate conflict" from the manifest.
counts() {
    json_get "$1/manifest.json" "[j.records.pos, j.records.neg,
        j.records.unl, j.accounting.kept, j.accounting.duplicate,
        j.accounting.conflict].join(' ')"
}

# expect NAME OPTIONS WANT: compiles the fixture with OPTIONS and checks
# the counts.  The fixture's 11 records (see the comments beside each
# expectation): Paris x2 (a whitespace variant), flat earth neg, pos
# (prompt with a double space), neg (a tab), a joke (unl), CAFÉ pos in
# full-width letters vs café neg (the same under nfkc), and a prime
# answered pos, neg, pos.
expect() {
    name=$1 opts=$2 want=$3
    # shellcheck disable=SC2086
    "$SHARD" compile -q $opts "$F" -o "$TMP/$name" 2> "$TMP/$name.err"
    got=$(counts "$TMP/$name")
    if [ "$got" = "$want" ]; then
        pass "$name"
    else
        fail "$name" "got '$got', want '$want'"
    fi
}

# drop: flat earth and prime lose every record: 4 conflicts (the first of
# each label), 3 duplicates (Paris, the tabbed neg, the second prime pos).
expect drop "" "2 1 1 4 3 4"
# keep: the first of each label stays, flagged.
expect keep "--conflicts keep" "4 3 1 8 3 0"
# neg: the rejections win; pos: the approvals win.
expect neg "--conflicts neg" "2 3 1 6 3 2"
expect pos "--conflicts pos" "4 1 1 6 3 2"
# none: whitespace variants are distinct keys: only the prime pos repeats.
expect normalize_none "--normalize none" "4 3 1 8 1 2"
# nfkc: CAFÉ in full-width letters with a combining accent and café are
# one key, so that pair is a conflict too.
expect normalize_nfkc "--normalize nfkc" "1 0 1 2 3 6"

# The records kept are the first in input order: "Paris." not "Paris. ".
"$SHARD" cat "$TMP/drop" --label pos > "$TMP/drop.jsonl"
check first_kept sh -c "grep -q '\"response\": \"Paris.\"' '$TMP/drop.jsonl' &&
    ! grep -q '\"response\": \"Paris. \"' '$TMP/drop.jsonl'"

# The accounting identity holds under every policy.
for p in drop keep neg pos; do
    check "identity_$p" json_get "$TMP/$p/manifest.json" "
        j.accounting.records === j.accounting.kept + j.accounting.duplicate +
            j.accounting.near_duplicate + j.accounting.conflict &&
        j.records.pos + j.records.neg + j.records.unl === j.accounting.kept &&
        j.options.conflicts === '$p' || process.exit(1)"
done

# Pairs: row 2 repeats row 1 (a duplicate pair, two duplicate records);
# rows 3 and 4 rate "They are equal." neg then pos, so both of their
# pairs go with the conflict.
P=tests/data/dedup/pairs.jsonl
"$SHARD" compile -q "$P" -o "$TMP/pairs" 2> "$TMP/pairs.err"
check pairs_dedup_and_conflict json_get "$TMP/pairs/manifest.json" "
    j.pairs === 1 && j.pairs_table.pairs === 1 &&
    j.accounting.pairs_duplicate === 1 && j.accounting.pairs_dropped === 2 &&
    j.accounting.duplicate === 2 && j.accounting.conflict === 2 &&
    j.records.pos === 2 && j.records.neg === 2 || process.exit(1)"
"$SHARD" cat "$TMP/pairs" --label pairs > "$TMP/pairs.jsonl"
check pairs_read_back sh -c "test \$(wc -l < '$TMP/pairs.jsonl') -eq 2 &&
    grep -q 'nine minutes' '$TMP/pairs.jsonl'"

# Bad option values are refused with status 2.
"$SHARD" compile -q --conflicts maybe "$F" -o "$TMP/bad" 2>/dev/null
check bad_policy_refused test $? -eq 2
"$SHARD" compile -q --normalize nfc "$F" -o "$TMP/bad" 2>/dev/null
check bad_normalize_refused test $? -eq 2

# The LLaMA-Factory DPO demo: 300 rows, 5 of them repeats of earlier rows.
D=$SHARED_DATA/llama-factory/dpo_en_demo.json
if [ -r "$D" ]; then
    "$SHARD" compile -q "$D" -o "$TMP/dpo"
    check dpo_demo_295_295 json_get "$TMP/dpo/manifest.json" "
        j.records.pos === 295 && j.records.neg === 295 &&
        j.accounting.duplicate === 10 && j.accounting.conflict === 0 &&
        j.pairs === 295 || process.exit(1)"
else
    echo "SKIP cli/$script:dpo_demo_295_295: $D not readable"
fi
