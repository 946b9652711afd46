#!/bin/sh
# formats_real.sh - issue 4's acceptance checks on the real files in
# $SHARED_DATA: --format auto picks the right schema for each, and the
# LLaMA-Factory demos and the OASST trees give the counts computed here
# independently (in node, from the same files).
. tests/cli_lib.sh

D=$SHARED_DATA
for f in llama-factory/kto_en_demo.json llama-factory/dpo_en_demo.json \
         llama-factory/v1_dpo_demo.jsonl oasst/en_100_tree.jsonl \
         hh-rlhf/harmless-base-test.jsonl.gz; do
    if ! [ -f "$D/$f" ]; then
        fail data "$D/$f is missing"
        exit 1
    fi
done

# compile NAME FILE: compiles FILE with --format auto into $TMP/NAME.
compile() {
    "$SHARD" compile "$2" -o "$TMP/$1" > "$TMP/$1.err" 2>&1
    "$SHARD" inspect "$TMP/$1" --json > "$TMP/$1.json"
}

# picks NAME FILE SCHEMA: auto-detection said it picked SCHEMA.
picks() {
    check "auto_picks_$3" grep -q "$2: format $3 (auto-detected)" \
        "$TMP/$1.err"
}

compile kto "$D/llama-factory/kto_en_demo.json"
compile dpo "$D/llama-factory/dpo_en_demo.json"
compile v1 "$D/llama-factory/v1_dpo_demo.jsonl"
compile oasst "$D/oasst/en_100_tree.jsonl"
compile hh "$D/hh-rlhf/harmless-base-test.jsonl.gz"
picks kto "$D/llama-factory/kto_en_demo.json" kto
picks dpo "$D/llama-factory/dpo_en_demo.json" sharegpt-dpo
picks v1 "$D/llama-factory/v1_dpo_demo.jsonl" messages-pairs
picks oasst "$D/oasst/en_100_tree.jsonl" oasst
picks hh "$D/hh-rlhf/harmless-base-test.jsonl.gz" hh-rlhf

check kto_150_pos_150_neg json_get "$TMP/kto.json" "
    j.records.pos === 150 && j.records.neg === 150 && j.records.unl === 0 &&
    j.accounting.rows_read === 300 && j.accounting.rows_invalid === 0 &&
    j.pairs === 0 || process.exit(1)"

# 300 rows give 600 records; 5 rows repeat an earlier one (issue 5), so
# 295 pos and 295 neg are kept, with 295 pairs.
check dpo_300_pairs_600_records json_get "$TMP/dpo.json" "
    j.pairs === 295 && j.pairs_table.rows === 295 &&
    j.accounting.records === 600 && j.records.pos === 295 &&
    j.records.neg === 295 && j.accounting.duplicate === 10 &&
    j.accounting.rows_read === 300 || process.exit(1)"

# The KTO labels, row by row, against the file (array order is row order).
"$SHARD" cat "$TMP/kto" > "$TMP/kto.jsonl"
check kto_labels_match_rows node -e "
const fs = require('fs');
const rows = JSON.parse(fs.readFileSync('$D/llama-factory/kto_en_demo.json'));
const want = new Map(rows.map(r => [r.messages[r.messages.length - 1].content,
                                    r.label ? 'pos' : 'neg']));
const got = fs.readFileSync('$TMP/kto.jsonl', 'utf8').trim().split('\n')
    .map(l => JSON.parse(l));
if (got.length !== 300) throw new Error('records ' + got.length);
for (const g of got)
    if (want.get(g.response) !== g.label) throw new Error(g.response.slice(0, 40));"

# v1: typed content parts are joined, the pair shares the context.
"$SHARD" cat "$TMP/v1" > "$TMP/v1.jsonl"
check v1_typed_parts node -e "
const fs = require('fs');
const rows = fs.readFileSync('$D/llama-factory/v1_dpo_demo.jsonl', 'utf8')
    .trim().split('\n').map(l => JSON.parse(l));
const got = fs.readFileSync('$TMP/v1.jsonl', 'utf8').trim().split('\n')
    .map(l => JSON.parse(l));
const text = m => m.content.map(p => p.value ?? p.text).join('');
if (got.length !== 20) throw new Error('records ' + got.length);
rows.forEach((r, i) => {
    const c = got.find(g => g.label === 'pos' &&
        g.response === text(r.chosen_messages[r.chosen_messages.length - 1]));
    const n = got.find(g => g.label === 'neg' &&
        g.response === text(r.rejected_messages[r.rejected_messages.length - 1]));
    if (!c || !n || c.pair_id !== n.pair_id || c.prompt_id !== n.prompt_id)
        throw new Error('row ' + (i + 1));
    if (c.context.length !== r.chosen_messages.length - 1 ||
        c.context[0].content !== text(r.chosen_messages[0]))
        throw new Error('context of row ' + (i + 1));
});"

# OASST, counted independently by the rule in shard(1): kept messages
# (not deleted, review not failed, and every ancestor kept); one record per
# assistant message; up = "+1", down = "-1" + "red_flag"; pairs: the first
# rank-0 kept assistant reply with each kept sibling of rank >= 1.
"$SHARD" cat "$TMP/oasst" > "$TMP/oasst.jsonl"
node -e "
const fs = require('fs');
const want = {pos: 0, neg: 0, unl: 0, pairs: [], records: 0};
function walk(m) {
    if (m.deleted === true || m.review_result === false) return;
    if (m.role === 'assistant') {
        const e = m.emojis || {};
        const up = e['+1'] || 0, down = (e['-1'] || 0) + (e.red_flag || 0);
        want[up > down ? 'pos' : down > up ? 'neg' : 'unl']++;
        want.records++;
    }
    const kids = (m.replies || []).filter(r => r.deleted !== true &&
        r.review_result !== false && r.role === 'assistant' &&
        Number.isInteger(r.rank));
    const best = kids.find(r => r.rank === 0);
    if (best)
        for (const r of kids)
            if (r.rank > 0) want.pairs.push([best.text, r.text]);
    (m.replies || []).forEach(walk);
}
fs.readFileSync('$D/oasst/en_100_tree.jsonl', 'utf8').trim().split('\n')
    .forEach(l => walk(JSON.parse(l).prompt));
fs.writeFileSync('$TMP/oasst.want', JSON.stringify(want));
console.error('oasst independent count:', want.pos, want.neg, want.unl,
              want.pairs.length);"
check oasst_counts_independent json_get "$TMP/oasst.json" "
    (w => j.records.pos === w.pos && j.records.neg === w.neg &&
          j.records.unl === w.unl && j.accounting.records === w.records &&
          j.pairs === w.pairs.length && j.pairs_table.rows === w.pairs.length)
    (JSON.parse(require('fs').readFileSync('$TMP/oasst.want'))) ||
    process.exit(1)"

# Every row of the pairs table names two records of one prompt, and the
# (chosen, rejected) texts are exactly the independent list.
check oasst_pairs_table node -e "
const fs = require('fs');
const want = JSON.parse(fs.readFileSync('$TMP/oasst.want')).pairs
    .map(p => JSON.stringify(p)).sort();
const recs = new Map(fs.readFileSync('$TMP/oasst.jsonl', 'utf8').trim()
    .split('\n').map(l => JSON.parse(l)).map(r => [r.record_id, r]));
const b = fs.readFileSync('$TMP/oasst/pairs/00000.pairs');
if (b.subarray(0, 4).toString('latin1') !== '\x89SHP') throw new Error('magic');
const n = Number(b.readBigUInt64LE(16)), hex = o => b.readBigUInt64LE(o)
    .toString(16).padStart(16, '0');
const got = [];
for (let i = 0; i < n; i++) {
    const o = 64 + 32 * i, c = recs.get(hex(o + 8)), r = recs.get(hex(o + 16));
    if (!c || !r) throw new Error('row ' + i + ' names a missing record');
    if (c.prompt_id !== hex(o) || r.prompt_id !== hex(o)) throw new Error('prompt ' + i);
    got.push(JSON.stringify([c.response, r.response]));
}
got.sort();
if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error('pairs differ');"

check oasst_rule_in_manifest node -e "
const m = JSON.parse(require('fs').readFileSync('$TMP/oasst/manifest.json'));
if (!m.label_rules.some(r => r.startsWith('oasst: pos when')))
    throw new Error(JSON.stringify(m.label_rules));"

check hh_pairs_table json_get "$TMP/hh.json" \
    "j.pairs === 2312 && j.pairs_table.rows === 2312 || process.exit(1)"
