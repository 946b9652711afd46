#!/bin/sh
# hh_rlhf.sh - the foundation's acceptance checks on the real HH-RLHF
# harmless-base test split (2,312 pairs).
. tests/cli_lib.sh

IN=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
OUT=$TMP/out
if ! [ -f "$IN" ]; then
    fail data "$IN is missing"
    exit 1
fi

check compile "$SHARD" compile -q "$IN" --format hh-rlhf -o "$OUT"
"$SHARD" inspect "$OUT" --json > "$TMP/inspect.json"
check counts json_get "$TMP/inspect.json" \
    "j.records.pos === 2312 && j.records.neg === 2312 &&
     j.records.unl === 0 && j.pairs === 2312 &&
     j.accounting.rows_read === 2312 && j.accounting.rows_invalid === 0 &&
     j.accounting.records === 4624 && j.accounting.kept === 4624 ||
     process.exit(1)"
check inspect_keys json_get "$TMP/inspect.json" \
    "['pos','neg','unl'].every(l => l in j.tokens) &&
     j.tokens.neg > 0 && j.tokenizer.name === 'cl100k_base' &&
     j.tokenizer.vocab_size === 100277 && /^[0-9a-f]{16}$/.test(j.tokenizer.hash) &&
     'invalid_by_reason' in j.accounting && 'duplicate' in j.accounting &&
     'near_duplicate' in j.accounting && 'conflict' in j.accounting &&
     j.shards.length >= 2 && j.shards.every(s => s.path && s.label &&
         s.records > 0 && s.bytes > 0) || process.exit(1)"
check verify "$SHARD" verify "$OUT"

# Every rejected response comes back exactly.  The expected text is
# computed here independently: after the last "\n\nAssistant:" inside the
# common prefix of chosen and rejected, trimmed.
"$SHARD" cat "$OUT" --label neg --jsonl > "$TMP/neg.jsonl"
check rejected_texts node -e "
const zlib = require('zlib'), fs = require('fs');
const rows = zlib.gunzipSync(fs.readFileSync('$IN')).toString('utf8')
    .split('\n').filter(l => l.trim()).map(l => JSON.parse(l));
const got = fs.readFileSync('$TMP/neg.jsonl', 'utf8').split('\n')
    .filter(l => l).map(l => JSON.parse(l));
if (got.length !== rows.length) throw new Error('count ' + got.length);
const M = '\n\nAssistant:';
rows.forEach((r, i) => {
    let k = 0;
    while (k < r.chosen.length && k < r.rejected.length &&
           r.chosen[k] === r.rejected[k]) k++;
    const cut = r.chosen.lastIndexOf(M, k - M.length);
    const want = r.rejected.slice(cut + M.length).replace(/^[ \t\r\n]+|[ \t\r\n]+\$/g, '');
    if (got[i].response !== want) throw new Error('row ' + (i + 1));
    if (got[i].label !== 'neg' || !got[i].pair_id) throw new Error('label/pair ' + i);
});"

# The token section cut out of a shard decodes with stock zstd.
SHARD_FILE=$OUT/neg/00000.shard
node -e "
const fs = require('fs'), b = fs.readFileSync('$SHARD_FILE');
const n = b.readUInt32LE(60);
for (let i = 0; i < n; i++) {
    const e = 256 + 32 * i;
    if (b.readUInt32LE(e) !== 17) continue;
    const off = Number(b.readBigUInt64LE(e + 8)), size = Number(b.readBigUInt64LE(e + 16));
    fs.writeFileSync('$TMP/tokens.zst', b.subarray(off, off + size));
}" 
check stock_zstd_decodes_token_section zstd -q -t "$TMP/tokens.zst"
zstd -q -d -c "$TMP/tokens.zst" > "$TMP/tokens.raw" 2>/dev/null
check token_section_holds_all_tokens node -e "
const fs = require('fs'), j = JSON.parse(fs.readFileSync('$TMP/inspect.json'));
const s = j.shards.find(s => s.path === 'neg/00000.shard');
if (fs.statSync('$TMP/tokens.raw').size !== s.tokens * 4) process.exit(1);"

# Damage: flip one byte at positions spread over the whole shard.
size=$(wc -c < "$SHARD_FILE")
undetected=0
crashed=0
for i in $(seq 0 47); do
    at=$(( (size - 1) * i / 47 ))
    rm -rf "$TMP/bad"
    cp -r "$OUT" "$TMP/bad"
    node -e "
const fs = require('fs'), f = '$TMP/bad/neg/00000.shard', b = fs.readFileSync(f);
b[$at] ^= 0x10; fs.writeFileSync(f, b);"
    "$SHARD" verify "$TMP/bad" > "$TMP/verify.out" 2>&1
    st=$?
    if [ $st -ne 1 ] || ! grep -q 'neg/00000.shard' "$TMP/verify.out"; then
        undetected=$((undetected + 1))
        echo "byte $at: verify exit $st" >&2
    fi
    "$SHARD" cat "$TMP/bad" --label neg > "$TMP/cat.out" 2>/dev/null
    [ $? -ge 128 ] && crashed=$((crashed + 1))
done
if [ $undetected -eq 0 ]; then pass flipped_bytes_detected
else fail flipped_bytes_detected "$undetected of 48 flips undetected"; fi
if [ $crashed -eq 0 ]; then pass damaged_shard_never_crashes_cat
else fail damaged_shard_never_crashes_cat "$crashed runs ended by a signal"; fi
