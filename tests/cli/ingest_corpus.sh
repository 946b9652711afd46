#!/bin/sh
# ingest_corpus.sh - a corpus mixing a gzip file, a zstd file and a tar
# archive (holding JSON lines with CRLF ends and a JSON array), with
# broken rows in each, compiles with exact counts; the same corpus piped
# through stdin as one tar gives the same records; --strict, --keep-going
# and a truncated stream.
. tests/cli_lib.sh

C=$TMP/corpus
mkdir -p "$C" "$TMP/c"
HH=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
KTO=$SHARED_DATA/llama-factory/kto_en_demo.json
for f in "$HH" "$KTO"; do
    if ! [ -f "$f" ]; then
        fail data "$f is missing"
        exit 1
    fi
done

# a.jsonl.gz: 8 rows (the blank line is no row); 5 broken, one per
# reason: bad_json, bad_utf8, missing_field, wrong_type, unknown_label.
printf '%s\n' \
    '{"prompt":"p1","response":"r1","label":"pos"}' \
    '{"prompt":"p2","response":"r2","label":"neg"}' \
    '{"prompt":"p3","response":"r3"' > "$TMP/a.jsonl"
printf '{"prompt":"p4","response":"\377\376","label":"pos"}\n' >> "$TMP/a.jsonl"
printf '%s\n' \
    '{"prompt":"p5","label":"pos"}' \
    '{"prompt":"p6","response":7,"label":"pos"}' \
    '' \
    '{"prompt":"p8","response":"r8","label":"maybe"}' \
    '{"prompt":"p9","response":"r9","label":1}' >> "$TMP/a.jsonl"
gzip -c "$TMP/a.jsonl" > "$C/a.jsonl.gz"

# b.jsonl.zst: 40 HH-RLHF rows, then a cut-off row and a row that is an
# array: 42 rows, 2 broken (bad_json, wrong_type), 80 records, 40 pairs.
gzip -dc "$HH" | head -40 > "$TMP/b.jsonl"
printf '%s\n' '{"chosen": "\n\nHuman: hi", "rejected"' '[1, 2]' \
    >> "$TMP/b.jsonl"
zstd -q "$TMP/b.jsonl" -o "$C/b.jsonl.zst"

# c.tar: c/1.jsonl, verifier rows with CRLF ends, one over
# --max-row-bytes, the last without a line end: 4 rows, 1 broken, pos 2,
# neg 1.  c/2.json: the first 20 KTO rows as an array with a trailing
# comma: 21 rows, 1 broken (bad_json).
long=$(head -c 150000 /dev/zero | tr '\0' 'x')
printf '{"prompt":[{"role":"user","content":"2+2?"}],"response":"4","reward":1}\r\n{"prompt":"3+3?","response":"7","reward":0}\r\n{"prompt":"x","response":"%s","reward":1}\r\n{"prompt":"5+5?","response":"10","reward":1}' \
    "$long" > "$TMP/c/1.jsonl"
node -e "
const rows = JSON.parse(require('fs').readFileSync('$KTO')).slice(0, 20);
process.stdout.write('[\n' + rows.map(r => JSON.stringify(r)).join(',\n') + ',\n]\n');
const pos = rows.filter(r => r.label).length;
require('fs').writeFileSync('$TMP/kto.pos', String(pos));" > "$TMP/c/2.json"
(cd "$TMP" && tar cf "$C/c.tar" c/1.jsonl c/2.json)
KPOS=$(cat "$TMP/kto.pos")

OPTS="--max-row-bytes 100000"
"$SHARD" compile $OPTS "$C" -o "$TMP/d" 2> "$TMP/d.err"
check compiles test $? -eq 0
"$SHARD" inspect "$TMP/d" --json > "$TMP/d.json"
check exact_counts json_get "$TMP/d.json" "
    (a => a.rows_read === 75 && a.rows_invalid === 9 &&
       JSON.stringify(a.invalid_by_reason) === JSON.stringify({bad_json: 3,
           bad_utf8: 1, missing_field: 1, wrong_type: 2, unknown_label: 1,
           over_limit: 1, bad_transcript: 0}) &&
       a.records === 106 && a.kept === 106)(j.accounting) &&
    j.records.pos === 2 + 40 + 2 + $KPOS && j.records.neg === 1 + 40 + 1 + (20 - $KPOS) &&
    j.records.unl === 0 && j.pairs === 40 && j.pairs_table.rows === 40 &&
    j.schema === 'mixed' || process.exit(1)"
check per_input_read_equals_kept_plus_skipped node -e "
const m = JSON.parse(require('fs').readFileSync('$TMP/d/manifest.json'));
const got = m.inputs.map(i => [i.path.replace(/.*\//, ''), i.rows_read,
                               i.rows_kept, i.rows_invalid, i.records]);
const want = [['a.jsonl.gz', 8, 3, 5, 3], ['b.jsonl.zst', 42, 40, 2, 80],
              ['c.tar', 25, 23, 2, 23]];
if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(JSON.stringify(got));
if (m.accounting.rows_read !== m.accounting.rows_kept + m.accounting.rows_invalid)
    throw new Error('total');"
check formats_per_member sh -c "
    grep -q 'c.tar:c/1.jsonl: format verl' '$TMP/d.err' &&
    grep -q 'c.tar:c/2.json: format kto' '$TMP/d.err' &&
    grep -q 'b.jsonl.zst: format hh-rlhf' '$TMP/d.err'"
check offenders_named sh -c "
    grep -q 'a.jsonl.gz:3: invalid JSON' '$TMP/d.err' &&
    grep -q 'a.jsonl.gz:4: invalid JSON: .*UTF-8' '$TMP/d.err' &&
    grep -q 'a.jsonl.gz:8: unknown label' '$TMP/d.err' &&
    grep -q 'b.jsonl.zst:42: row is not a JSON object' '$TMP/d.err' &&
    grep -q 'c.tar:c/1.jsonl:3: row longer than 100000 bytes' '$TMP/d.err' &&
    grep -q 'c.tar:c/2.json:22: empty element in JSON array' '$TMP/d.err'"
check label_rule_in_manifest grep -q '"verl: pos when reward >= 1' \
    "$TMP/d/manifest.json"
check verify "$SHARD" verify "$TMP/d"

# The same corpus through stdin, as one tar stream.
(cd "$C" && tar cf - a.jsonl.gz b.jsonl.zst c.tar) |
    "$SHARD" compile $OPTS - -o "$TMP/s" 2> "$TMP/s.err"
check stdin_compiles test $? -eq 0
"$SHARD" cat "$TMP/d" > "$TMP/d.cat"
"$SHARD" cat "$TMP/s" > "$TMP/s.cat"
check stdin_same_records cmp "$TMP/d.cat" "$TMP/s.cat"
check stdin_same_pairs_table cmp "$TMP/d/pairs/00000.pairs" \
    "$TMP/s/pairs/00000.pairs"
"$SHARD" inspect "$TMP/s" --json > "$TMP/s.json"
check stdin_same_accounting node -e "
const fs = require('fs'), a = JSON.parse(fs.readFileSync('$TMP/d.json')),
      b = JSON.parse(fs.readFileSync('$TMP/s.json'));
for (const k of ['accounting', 'records', 'tokens', 'pairs'])
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) throw new Error(k);"

# --strict: any skipped row fails with status 3 and no manifest.
"$SHARD" compile -q --strict $OPTS "$C" -o "$TMP/strict" 2>/dev/null
check strict_exit_3 test $? -eq 3
check strict_no_manifest test ! -e "$TMP/strict/manifest.json"

# A truncated zstd stream fails the run, naming the file; --keep-going
# reports it, counts it and keeps the rest.
gzip -dc "$HH" | zstd -q -c | head -c 100000 > "$C/d.jsonl.zst"
"$SHARD" compile -q $OPTS "$C" -o "$TMP/t" 2> "$TMP/t.err"
check truncated_fails test $? -eq 1
check truncated_named grep -q 'd.jsonl.zst' "$TMP/t.err"
"$SHARD" compile -q --keep-going $OPTS "$C" -o "$TMP/k" 2> "$TMP/k.err"
check keep_going_exit_0 test $? -eq 0
check keep_going_reported grep -q 'd.jsonl.zst.*--keep-going' "$TMP/k.err"
check keep_going_counts node -e "
const m = JSON.parse(require('fs').readFileSync('$TMP/k/manifest.json'));
const d = m.inputs.find(i => i.path.endsWith('d.jsonl.zst'));
if (m.accounting.inputs_failed !== 1 || !d || !d.error) throw new Error('failed input');
if (m.accounting.rows_read !== 75 + d.rows_read) throw new Error('rows');
if (d.rows_read !== d.rows_kept + d.rows_invalid) throw new Error('identity');"

# An unreadable input: an error naming it, or skipped with --keep-going.
"$SHARD" compile -q "$TMP/absent.jsonl" -o "$TMP/u" 2> "$TMP/u.err"
check unreadable_fails sh -c "test $? -eq 1 && grep -q 'absent.jsonl' '$TMP/u.err'"

# Bad rows on stderr: the first 5 of a reason, then one line for the rest;
# -v prints every one.  The manifest counts all of them.
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo '{bad'; done > "$TMP/bad.jsonl"
"$SHARD" compile "$TMP/bad.jsonl" -o "$TMP/bad" 2> "$TMP/bad.err"
check first_offenders_then_a_count sh -c "
    test \$(grep -c 'bad.jsonl:[0-9]*: invalid JSON' '$TMP/bad.err') -eq 5 &&
    grep -q 'bad.jsonl:5: invalid JSON' '$TMP/bad.err' &&
    grep -q '7 more bad_json rows like these' '$TMP/bad.err'"
"$SHARD" compile -v "$TMP/bad.jsonl" -o "$TMP/badv" 2> "$TMP/badv.err"
check verbose_prints_every_offender sh -c "
    test \$(grep -c 'bad.jsonl:[0-9]*: invalid JSON' '$TMP/badv.err') -eq 12"

# In an archive a failed member loses only itself: with --keep-going the
# members after it are read.
mkdir -p "$TMP/m"
printf '{"prompt":"a","response":"first","label":"pos"}\n' > "$TMP/m/1.jsonl"
printf '{"prompt":"a","response":"last","label":"neg"}\n' > "$TMP/m/3.jsonl"
gzip -dc "$HH" | gzip -c | head -c 100000 > "$TMP/m/2.jsonl.gz"
(cd "$TMP/m" && tar cf ../m.tar 1.jsonl 2.jsonl.gz 3.jsonl)
"$SHARD" compile -q "$TMP/m.tar" -o "$TMP/m1" 2> "$TMP/m1.err"
check bad_member_fails_the_run sh -c "test $? -eq 1 &&
    grep -q 'm.tar:2.jsonl.gz: truncated gzip input' '$TMP/m1.err'"
"$SHARD" compile -q --keep-going "$TMP/m.tar" -o "$TMP/m2" 2>/dev/null
"$SHARD" cat "$TMP/m2" > "$TMP/m2.cat"
check keep_going_reads_members_after_a_bad_one sh -c "
    grep -q '\"response\": \"first\"' '$TMP/m2.cat' &&
    grep -q '\"response\": \"last\"' '$TMP/m2.cat' &&
    grep -q '\"error\": \".*m.tar:2.jsonl.gz: truncated' '$TMP/m2/manifest.json'"

# Files, standard input and a directory, mixed, in the order given.
cat "$C/a.jsonl.gz" | "$SHARD" compile -q $OPTS "$C/b.jsonl.zst" - "$TMP/c" \
    -o "$TMP/mix" 2>/dev/null
check mixed_operands node -e "
const m = JSON.parse(require('fs').readFileSync('$TMP/mix/manifest.json'));
const got = m.inputs.map(i => [i.path.replace(/.*\//, ''), i.format, i.rows_read]);
const want = [['b.jsonl.zst', 'hh-rlhf', 42], ['-', 'canonical', 8],
              ['1.jsonl', 'verl', 4], ['2.json', 'kto', 21]];
if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(JSON.stringify(got));"
