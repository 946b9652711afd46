#!/bin/sh
# dedup_near.sh - near duplicates (--near-dup): scopes on a fixture, and on
# the HH-RLHF file every record dropped checked against an exact Jaccard
# computed independently in Python.
. tests/cli_lib.sh

F=tests/data/dedup/near.jsonl

# near.jsonl: (1) a 40-word answer, pos; (2) the same with its last word
# changed, pos; (3) with its first word changed, neg; (4) as (2) for
# another prompt; (5) every other word changed, pos.  Within label and
# prompt only (2) is near (1); across the stream (2), (3) and (4) are.
for scope in group stream; do
    "$SHARD" compile -q --near-dup 0.85 --near-dup-scope $scope "$F" \
        -o "$TMP/$scope"
done
check scope_group json_get "$TMP/group/manifest.json" "
    j.accounting.near_duplicate === 1 && j.records.pos === 3 &&
    j.records.neg === 1 && j.accounting.near_candidates >= 1 &&
    j.options.near_dup === 0.85 && j.options.near_dup_scope === 'group' ||
    process.exit(1)"
check scope_stream json_get "$TMP/stream/manifest.json" "
    j.accounting.near_duplicate === 3 && j.records.pos === 2 &&
    j.records.neg === 0 || process.exit(1)"
"$SHARD" cat "$TMP/group" --label pos > "$TMP/group.pos"
check earlier_record_kept sh -c "
    grep 'Describe an evening' '$TMP/group.pos' | grep -q 'into night' &&
    ! grep 'Describe an evening' '$TMP/group.pos' | grep -q 'darkness'"
"$SHARD" compile -q "$F" -o "$TMP/off"
check off_by_default json_get "$TMP/off/manifest.json" "
    j.accounting.near_duplicate === 0 && j.accounting.kept === 5 ||
    process.exit(1)"
"$SHARD" compile -q --near-dup 1.5 "$F" -o "$TMP/bad" 2>/dev/null
check bad_threshold_refused test $? -eq 2

H=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
if [ ! -r "$H" ]; then
    echo "SKIP cli/$script:hh_stream: $H not readable"
    exit 0
fi
"$SHARD" compile -q "$H" -o "$TMP/hh"
"$SHARD" compile -q --near-dup 0.85 --near-dup-scope stream --near-dup-seed 7 \
    "$H" -o "$TMP/hh_near"
"$SHARD" compile -q --near-dup 0.85 --near-dup-scope stream --near-dup-seed 7 \
    "$H" -o "$TMP/hh_again"
"$SHARD" cat "$TMP/hh" > "$TMP/all.jsonl"
"$SHARD" cat "$TMP/hh_near" > "$TMP/near.jsonl"
"$SHARD" cat "$TMP/hh_again" > "$TMP/again.jsonl"
check same_seed_same_output cmp -s "$TMP/near.jsonl" "$TMP/again.jsonl"

# Every record dropped has a kept response whose exact 3-word-shingle
# Jaccard is at least 0.7 (MinHash estimates it within a few hundredths),
# and the count in the manifest is the number of records missing.
check hh_dropped_are_near /usr/bin/python3 - "$TMP" <<'EOF'
import json, sys
tmp = sys.argv[1]
def shingles(text):
    w = text.translate({c: c + 32 for c in range(65, 91)}).split()
    if len(w) < 3:
        return {tuple(w)} if w else set()
    return {tuple(w[i:i + 3]) for i in range(len(w) - 2)}
def load(p):
    return [json.loads(l) for l in open(p)]
every, kept = load(tmp + "/all.jsonl"), load(tmp + "/near.jsonl")
key = lambda r: (r["record_id"], r["label"])
kept_ids = {key(r) for r in kept}
dropped = [r for r in every if key(r) not in kept_ids]
m = json.load(open(tmp + "/hh_near/manifest.json"))
assert len(dropped) == m["accounting"]["near_duplicate"] > 0, len(dropped)
kept_sh = [shingles(r["response"]) for r in kept]
for r in dropped:
    s = shingles(r["response"])
    best = max(len(s & k) / len(s | k) for k in kept_sh if s | k)
    assert best >= 0.7, (r["response"][:60], best)
EOF
