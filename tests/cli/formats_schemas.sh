#!/bin/sh
# formats_schemas.sh - every schema without a real sample file here, on
# small fixtures in tests/data/formats: what auto-detection picks, the
# labels, pairs and skipped rows each rule gives, and the rules written
# to the manifest.
. tests/cli_lib.sh

F=tests/data/formats

# expect NAME FILE SCHEMA 'rows invalid records pos neg unl pairs' [ARGS]
expect() {
    name=$1 file=$2 schema=$3 want=$4
    shift 4
    "$SHARD" compile "$F/$file" -o "$TMP/$name" "$@" > "$TMP/$name.err" 2>&1
    "$SHARD" inspect "$TMP/$name" --json > "$TMP/$name.json" 2>/dev/null
    got=$(json_get "$TMP/$name.json" "[j.accounting.rows_read,
        j.accounting.rows_invalid, j.accounting.records, j.records.pos,
        j.records.neg, j.records.unl, j.pairs_table.rows].join(' ')")
    if [ "$got" = "$want" ]; then pass "${name}_counts"
    else fail "${name}_counts" "got '$got', want '$want'"; fi
    if [ "$schema" = map ] ||
       grep -q "$file: format $schema (auto-detected)" "$TMP/$name.err"; then
        pass "${name}_detected"
    else
        fail "${name}_detected" "$(grep format "$TMP/$name.err")"
    fi
}

# rule NAME PREFIX: the manifest's label_rules holds a rule starting so.
rule() {
    check "${1}_rule_in_manifest" node -e "
const m = JSON.parse(require('fs').readFileSync('$TMP/$1/manifest.json'));
if (!m.label_rules.some(r => r.startsWith('$2'))) process.exit(1);"
}

# labels NAME 'response=label,...': those responses have those labels.
labels() {
    "$SHARD" cat "$TMP/$1" > "$TMP/$1.cat"
    check "${1}_labels" node -e "
const got = new Map(require('fs').readFileSync('$TMP/$1.cat', 'utf8').trim()
    .split('\n').map(l => JSON.parse(l)).map(r => [r.response, r]));
for (const [resp, want] of Object.entries($2)) {
    const r = got.get(resp);
    if (!r || r.label !== want[0] || (want.length > 1 && r.reward !== want[1]))
        throw new Error(resp + ': ' + JSON.stringify(r && [r.label, r.reward]));
}"
}

expect verl verl.jsonl verl '5 1 6 3 2 1 0'
labels verl '{"5": ["pos", 1], "6": ["neg", 0], "11": ["pos"], "12": ["neg"],
              "13": ["unl", 0.5], "42": ["pos", 1]}'
rule verl 'verl: pos when reward >= 1'

expect uf ultrafeedback.jsonl ultrafeedback '3 0 8 2 3 3 2'
labels uf '{"7": ["pos", 8.5], "4": ["neg", 3], "9": ["neg", 3],
            "2": ["unl", 6], "hi": ["pos", 4.5], "go away": ["neg", 1],
            "a": ["unl", 5]}'
rule uf 'ultrafeedback: score = overall_score'

expect pku pku.jsonl pku-saferlhf '3 1 4 1 3 0 2'
labels pku '{"I can'"'"'t help with breaking into property.": ["pos", 1],
             "Here is how to break in...": ["neg", 0]}'
rule pku 'pku-saferlhf: pos when is_response_k_safe'

expect arena arena.jsonl arena '5 1 8 2 4 2 1'
labels arena '{"Paris.": ["pos"], "Lyon.": ["neg"], "5": ["neg"],
               "22": ["neg"], "Hello!": ["unl"], "Knock knock.": ["pos"],
               "No.": ["neg"]}'
rule arena 'arena: winner pos'
check arena_unknown_winner grep -q 'arena.jsonl:5: unknown winner "model_c"' \
    "$TMP/arena.err"

expect kaggle arena_kaggle.jsonl arena '3 1 4 1 1 2 1'
labels kaggle '{"It depends.": ["pos"], "Never.": ["neg"],
                "Sure: more.": ["unl"]}'
check kaggle_bad_embedded_json grep -q \
    'arena_kaggle.jsonl:3: a field holding JSON text does not parse' \
    "$TMP/kaggle.err"

expect critique critique.jsonl critique '3 1 4 2 2 0 2'
labels critique '{"Slash their tyres.": ["neg"],
    "Talk to them or to your manager about what happened.": ["pos"],
    "Rain rain go away.": ["neg"]}'

expect map mapped.jsonl map '5 2 3 1 1 1 0' --format map \
    --map 'prompt=q.text,response=answers.0.body,system=sys' \
    --label-rule 'rating>=7;rating<=3'
labels map '{"Dune.": ["pos", 9], "Pineapple.": ["neg", 2], "ed.": ["unl", 5]}'
rule map 'map: pos when rating>=7, neg when rating<=3, else unl'
check map_context node -e "
const r = require('fs').readFileSync('$TMP/map.cat', 'utf8').trim().split('\n')
    .map(l => JSON.parse(l)).find(r => r.response === 'Dune.');
if (JSON.stringify(r.context) !== JSON.stringify([{role: 'system',
    content: 'Be brief.'}, {role: 'user', content: 'Best sci-fi novel?'}]))
    throw new Error(JSON.stringify(r.context));"

# map needs its mapping: an error before any row is read.
"$SHARD" compile -q "$F/mapped.jsonl" --format map -o "$TMP/nomap" 2> "$TMP/nomap.err"
check map_without_mapping_fails sh -c "test $? -eq 1 &&
    grep -q 'format map needs --map' '$TMP/nomap.err'"
"$SHARD" compile -q "$F/mapped.jsonl" --format map --map 'response=x' \
    --label-rule 'rating=>7' -o "$TMP/badrule" 2> "$TMP/badrule.err"
check bad_label_rule_fails grep -q 'label-rule: bad condition' "$TMP/badrule.err"
"$SHARD" compile -q "$F/verl.jsonl" --label-rule 'reward>=1' -o "$TMP/norule" \
    2> "$TMP/norule.err"
check label_rule_needs_format_map sh -c "test $? -eq 1 &&
    grep -q 'need --format map' '$TMP/norule.err'"

# OASST's rule on a tree that has what the real sample lacks: deleted and
# failed-review replies (dropped with their subtrees), "_skip_*" keys and
# other emojis (no votes), red_flag (a down vote), a deleted root.
expect oasst oasst.jsonl oasst '3 1 4 1 1 2 2'
labels oasst '{"A1": ["pos", 2], "A3": ["neg", -1], "A2": ["unl", 0],
               "A8": ["unl", 0]}'
check oasst_dropped_subtrees sh -c "! grep -q '\"A[467]\"' '$TMP/oasst.cat'"
check oasst_context_is_the_path node -e "
const r = require('fs').readFileSync('$TMP/oasst.cat', 'utf8').trim().split('\n')
    .map(l => JSON.parse(l)).find(r => r.response === 'A3');
if (r.context.map(m => m.role + ':' + m.content).join('|') !==
    'user:Q|assistant:A1|user:P2') throw new Error(JSON.stringify(r.context));"
check oasst_pairs_rank0_over_lower node -e "
const fs = require('fs');
const recs = new Map(fs.readFileSync('$TMP/oasst.cat', 'utf8').trim().split('\n')
    .map(l => JSON.parse(l)).map(r => [r.record_id, r.response]));
const b = fs.readFileSync('$TMP/oasst/pairs/00000.pairs'), got = [];
for (let i = 0; i < Number(b.readBigUInt64LE(16)); i++) {
    const h = o => b.readBigUInt64LE(64 + 32 * i + o).toString(16).padStart(16, '0');
    got.push(recs.get(h(8)) + '>' + recs.get(h(16)));
}
if (got.join(',') !== 'A1>A2,A1>A8') throw new Error(got.join(','));"
