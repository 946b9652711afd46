# dedup_lib.sh - the corpus and the comparison the dedup CLI tests share;
# sourced after tests/cli_lib.sh, not run.

# Builds $TMP/base.jsonl and $TMP/whole.jsonl (tests/dedup_corpus.py), or
# skips the whole script when the HH-RLHF file is missing.
H=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
if [ ! -r "$H" ]; then
    echo "SKIP cli/$script:all: $H not readable"
    exit 0
fi
/usr/bin/python3 tests/dedup_corpus.py "$H" "$TMP" ||
    fail corpus "tests/dedup_corpus.py failed"

# same NAME WHOLE DIR: DIR reads back record for record as WHOLE does
# (every stream and the pairs), with the same counts.
same() {
    for sel in pos neg unl pairs; do
        "$SHARD" cat "$2" --label $sel > "$TMP/w.$sel" 2>&1
        "$SHARD" cat "$3" --label $sel > "$TMP/a.$sel" 2>&1
        if ! cmp -s "$TMP/w.$sel" "$TMP/a.$sel"; then
            fail "$1" "$sel records differ from the whole compile"
            return
        fi
    done
    check "$1" json_get "$3/manifest.json" "
        (w => ['records', 'kept', 'duplicate', 'conflict', 'pairs_duplicate',
               'pairs_dropped', 'rows_read'].every(k =>
                   j.accounting[k] === w.accounting[k]) &&
              ['pos', 'neg', 'unl'].every(l =>
                   j.records[l] === w.records[l] &&
                   j.tokens[l] === w.tokens[l]) &&
              j.pairs === w.pairs && j.pairs_table.pairs === w.pairs)
        (require('$2/manifest.json')) || process.exit(1)"
}
