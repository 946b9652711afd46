#!/bin/sh
# dedup_corpus.sh - dedup on a corpus built from the HH-RLHF file: exact
# repeats, whitespace variants and swapped labels, compiled whole, split
# over gzip, zstd and tar inputs, from stdin, and with a tiny --mem-limit;
# every way must give the same records and the counts the construction
# implies.
. tests/cli_lib.sh

H=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
if [ ! -r "$H" ]; then
    echo "SKIP cli/$script:all: $H not readable"
    exit 0
fi

# 600 original rows; rows 0-99 again; 50 later rows with " the "
# widened to "  the " (a whitespace variant); 50 others with chosen and
# rejected swapped.  Shuffled with a fixed seed so that repeats come
# before and after their originals.
gzip -dc "$H" | head -600 > "$TMP/base.jsonl"
/usr/bin/python3 - "$TMP" <<'EOF'
import json, random, sys
tmp = sys.argv[1]
rows = [json.loads(l) for l in open(tmp + "/base.jsonl")]
has_the = [i for i in range(100, 600)
           if " the " in rows[i]["chosen"] + rows[i]["rejected"]]
variants = has_the[:50]
swapped = [i for i in range(100, 600) if i not in variants][:50]
out = list(rows)
out += rows[0:100]
for i in variants:
    out.append({k: v.replace(" the ", "  the ") for k, v in rows[i].items()})
for i in swapped:
    out.append({"chosen": rows[i]["rejected"], "rejected": rows[i]["chosen"]})
random.Random(5).shuffle(out)
with open(tmp + "/whole.jsonl", "w") as f:
    for r in out:
        f.write(json.dumps(r) + "\n")
assert len(variants) == 50
assert all(rows[i]["chosen"] != rows[i]["rejected"] for i in swapped)
EOF

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

# same NAME DIR: DIR has the records and counts of the whole compile.
for sel in pos neg unl pairs; do
    "$SHARD" cat "$TMP/whole" --label $sel > "$TMP/whole.$sel" 2>&1
done
same() {
    for sel in pos neg unl pairs; do
        "$SHARD" cat "$2" --label $sel > "$TMP/$1.$sel" 2>&1
        if ! cmp -s "$TMP/$1.$sel" "$TMP/whole.$sel"; then
            fail "$1" "$sel records differ from the whole compile"
            return
        fi
    done
    check "$1" json_get "$2/manifest.json" "
        (w => ['records', 'kept', 'duplicate', 'conflict', 'pairs_duplicate',
               'pairs_dropped'].every(k => j.accounting[k] === w.accounting[k])
         && j.pairs === w.pairs)(require('$TMP/whole/manifest.json')) ||
        process.exit(1)"
}
same split_into_three_inputs "$TMP/split"
same from_stdin_file "$TMP/stdin"
same from_stdin_pipe "$TMP/pipe"
same mem_limit_4k "$TMP/small"
check mem_limit_went_to_disk grep -q 'key table went to disk' \
    "$TMP/small.err"
check no_temporary_files_left sh -c "
    ! ls -a '$TMP/small' '$TMP/pipe' | grep -q -e '^\.dedup' -e '^\.stdin'"
