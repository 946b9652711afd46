#!/bin/sh
# progress.sh - the progress line: percent and time left when the input
# sizes are known, the sweep out of two, nothing of it for standard input
# sizes, and nothing at all on stderr when it is not a terminal.
. tests/cli_lib.sh

HH=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
SIX="'$HH' '$HH' '$HH' '$HH' '$HH' '$HH'"

eval "'$SHARD' compile -q -j2 $SIX -o '$TMP/quiet'" 2> "$TMP/quiet.err"
check quiet_pipe_silent test ! -s "$TMP/quiet.err"
eval "'$SHARD' compile -j2 $SIX -o '$TMP/pipe'" 2> "$TMP/pipe.err"
check no_line_in_a_pipe sh -c "grep -q 'compiled' '$TMP/pipe.err' &&
    ! grep -q 'sweep [12]/2' '$TMP/pipe.err' && ! tr '\r' '\n' < '$TMP/pipe.err' |
    grep -q 'rows/s, .* kept'"

if ! command -v script > /dev/null 2>&1; then
    echo "SKIP cli/$script:percent_on_a_terminal: no script(1)"
    exit 0
fi
# Drawn from the second batch of a sweep, then at most four times a
# second: six copies of the file give sweep 1 more than fifty batches.
script -qec "'$SHARD' compile -j1 $SIX -o '$TMP/pty'" /dev/null |
    tr '\r' '\n' > "$TMP/pty.out" 2>&1
check percent_on_a_terminal grep -qE \
    'dedup keys: sweep 1/2, [0-9]+%, [0-9]+:[0-9][0-9] left, [0-9]+ rows' \
    "$TMP/pty.out"
script -qec "zcat $SIX | '$SHARD' compile -j1 - -o '$TMP/stdin'" \
    /dev/null | tr '\r' '\n' > "$TMP/stdin.out" 2>&1
check no_percent_for_stdin sh -c "
    grep -qE 'dedup keys: sweep 1/2, [0-9]+ rows' '$TMP/stdin.out' &&
    ! grep -q '%' '$TMP/stdin.out'"
