#!/bin/sh
# fuzz-run.sh - runs each libFuzzer harness for FUZZ_SECONDS from a copy
# of its seed corpus; one line "PASS fuzz-run:<surface>: N runs" or
# "FAIL fuzz-run:<surface>: ..." each.  Environment: FUZZ_DIR (where
# `make fuzz` built the harnesses), FUZZ_SECONDS (30).
set -u
: "${FUZZ_DIR:=build/fuzz-clang}" "${FUZZ_SECONDS:=30}"

ran=0
for h in "$FUZZ_DIR"/*_fuzzer; do
    [ -x "$h" ] || continue
    ran=$((ran + 1))
    s=$(basename "$h" _fuzzer)
    work=$FUZZ_DIR/corpus-$s
    rm -rf "$work" && mkdir -p "$work"
    if [ -d "fuzz/corpus/$s" ]; then
        cp fuzz/corpus/"$s"/* "$work"/
    fi
    if "$h" -max_total_time="$FUZZ_SECONDS" -max_len=65536 \
            -print_final_stats=1 "$work" > "$FUZZ_DIR/$s.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
                   "$FUZZ_DIR/$s.log")
        echo "PASS fuzz-run:$s: ${runs:-?} runs in $FUZZ_SECONDS s"
    else
        echo "FAIL fuzz-run:$s: a finding, see $FUZZ_DIR/$s.log"
        grep -a -m3 -E 'ERROR|SUMMARY|abort|REQUIRE' "$FUZZ_DIR/$s.log" |
            sed 's/^/    /'
    fi
done
[ $ran -gt 0 ] || echo "FAIL fuzz-run: no harness in $FUZZ_DIR (make fuzz)"
