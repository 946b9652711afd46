#!/bin/sh
# parallel.sh - compile -j N: the same files, byte for byte, and the same
# accounting and messages for every N, on the HH-RLHF test file and on a
# mixed corpus with bad rows, duplicates, conflicts and pairs spread over
# many batches.
. tests/cli_lib.sh

HH=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
MIX=$TMP/mix
mkdir -p "$MIX"

# The mixed corpus: the dedup fixtures repeated 40 times (duplicates and
# conflicts far apart, in other batches), with bad rows between the
# copies: broken JSON, a bare array, a row no schema claims, a blank line.
i=0
while [ $i -lt 40 ]; do
    cat tests/data/dedup/conflicts.jsonl tests/data/dedup/pairs.jsonl
    echo '{"prompt": "broken'
    echo '[1, 2]'
    echo '{"nothing": "here", "n": '$i'}'
    echo
    i=$((i + 1))
done > "$MIX/a-dedup.jsonl"
cp tests/data/formats/*.jsonl "$MIX/"
cp tests/data/dedup/near.jsonl "$MIX/b-near.jsonl"
gzip -c tests/data/dedup/conflicts.jsonl > "$MIX/c-conflicts.jsonl.gz"
cp "$SHARED_DATA/oasst/en_100_tree.jsonl" "$MIX/d-oasst.jsonl"

# messages NAME ERR1 ERR2: the same stderr but for the timing lines.
messages() {
    grep -v -e ' in [0-9.]* s$' -e 'rows/s' "$2" > "$TMP/$1.m1"
    grep -v -e ' in [0-9.]* s$' -e 'rows/s' "$3" > "$TMP/$1.m2"
    if cmp -s "$TMP/$1.m1" "$TMP/$1.m2"; then
        pass "$1"
    else
        fail "$1" "$(diff "$TMP/$1.m1" "$TMP/$1.m2" | head -3 | tr '\n' ' ')"
    fi
}

# run SET J OPTIONS...: compiles into $TMP/SET-jJ, stderr beside it.
run() {
    out=$TMP/$1-j$2
    jobs=$2
    shift 2
    "$SHARD" compile -j "$jobs" "$@" -o "$out" 2> "$out.err"
    echo $? > "$out.rc"
}

for j in 1 2 4; do
    run hh $j "$HH" --format hh-rlhf --template hh
    run mix $j "$MIX"
    run near $j "$MIX" --near-dup 0.5 --near-dup-scope stream \
        --conflicts keep --codec none --frame-size 4K
done

check hh_compiles test "$(cat "$TMP/hh-j1.rc")" -eq 0
check mix_compiles test "$(cat "$TMP/mix-j1.rc")" -eq 0
for set in hh mix near; do
    for j in 2 4; do
        check "${set}_exit_j$j" test "$(cat "$TMP/$set-j$j.rc")" = \
            "$(cat "$TMP/$set-j1.rc")"
        same "${set}_bytes_j1_j$j" "$TMP/$set-j1" "$TMP/$set-j$j"
        messages "${set}_messages_j1_j$j" "$TMP/$set-j1.err" \
            "$TMP/$set-j$j.err"
    done
done

# The mixed corpus does exercise what must stay in order.
check mix_accounting json_get "$TMP/mix-j4/manifest.json" "
    j.accounting.invalid_by_reason.bad_json === 40 &&
    j.accounting.invalid_by_reason.wrong_type === 40 &&
    j.accounting.duplicate > 400 && j.accounting.conflict > 0 &&
    j.accounting.pairs > 0 && j.accounting.pairs_duplicate > 0 &&
    j.accounting.rows_read > 1000 && j.schema === 'mixed'"
check near_dropped json_get "$TMP/near-j4/manifest.json" "
    j.accounting.near_duplicate > 0"

# Strict and --keep-going stop or go on at the same row for every -j.
printf 'not json\n' > "$TMP/bad.jsonl"
for j in 1 3; do
    "$SHARD" compile -q -j $j --strict "$MIX" "$TMP/bad.jsonl" \
        -o "$TMP/strict-j$j" 2> "$TMP/strict-j$j.err"
    echo $? > "$TMP/strict-j$j.rc"
    "$SHARD" compile -q -j $j --keep-going "$MIX" "$TMP/missing.jsonl" \
        "$TMP/bad.jsonl" -o "$TMP/kg-j$j" 2> "$TMP/kg-j$j.err"
done
check strict_exit test "$(cat "$TMP/strict-j1.rc")" -eq 3 -a \
    "$(cat "$TMP/strict-j3.rc")" -eq 3
messages strict_messages "$TMP/strict-j1.err" "$TMP/strict-j3.err"
same keep_going_bytes "$TMP/kg-j1" "$TMP/kg-j3"

# The progress line: on a terminal (through script(1)), never in a pipe,
# never with --no-progress.  The line is drawn after the first batch of
# each run, then at most four times a second.
SIX="'$HH' '$HH' '$HH' '$HH' '$HH' '$HH'"
if command -v script > /dev/null 2>&1; then
    script -qec "'$SHARD' compile -j1 $SIX -o '$TMP/pty'" \
        /dev/null > "$TMP/pty.out" 2>&1
    check progress_on_a_terminal grep -q 'dedup keys: .* rows/s' \
        "$TMP/pty.out"
    script -qec "'$SHARD' compile -j1 --no-progress $SIX -o '$TMP/pty2'" \
        /dev/null > "$TMP/pty2.out" 2>&1
    check no_progress_flag sh -c "grep -q 'compiled' '$TMP/pty2.out' &&
        ! grep -q 'dedup keys: ' '$TMP/pty2.out'"
else
    echo "SKIP cli/$script:progress_on_a_terminal: no script(1)"
fi
eval "'$SHARD' compile -j1 $SIX -o '$TMP/pipe'" 2> "$TMP/pipe.err"
check no_progress_in_a_pipe sh -c "grep -q 'compiled' '$TMP/pipe.err' &&
    ! grep -q 'dedup keys: ' '$TMP/pipe.err'"

check bad_jobs_refused sh -c \
    "! '$SHARD' compile -j -1 '$MIX' -o '$TMP/neg' 2> /dev/null"
