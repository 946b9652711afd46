#!/bin/sh
# run.sh - runs every test and ends with "N passed, N failed".
#
# Unit tests are the binaries $BUILD/tests/test_*, CLI tests the scripts
# tests/cli/*.sh, and the fuzz corpora are replayed through each harness.
# Every test case prints one line starting with PASS, FAIL or SKIP; this
# script counts them.  Environment: SHARD (the CLI), BUILD, SHARED_DATA.
set -u

: "${BUILD:=build}" "${SHARD:=$BUILD/shard}" "${SHARED_DATA:=../shared/data}"
export BUILD SHARD SHARED_DATA

log=$BUILD/test-results.txt
: > "$log"

run() { # name command...
    name=$1
    shift
    out=$BUILD/test-output.txt
    "$@" > "$out" 2>&1
    status=$?
    cat "$out" >> "$log"
    grep -aE '^(PASS|FAIL|SKIP) ' "$out"
    if [ $status -ne 0 ] && ! grep -aq '^FAIL ' "$out"; then
        # A crash or an exit without a FAIL line is a failure too.
        echo "FAIL $name: exited with status $status" | tee -a "$log"
        tail -5 "$out" | sed 's/^/    /'
    fi
    if [ $status -eq 0 ] && ! grep -aqE '^(PASS|SKIP) ' "$out"; then
        echo "FAIL $name: ran no test case" | tee -a "$log"
    fi
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run "$(basename "$t")" "$t"
done

for t in tests/cli/*.sh; do
    run "$t" sh "$t"
done

for h in "$BUILD"/fuzz/*_fuzzer; do
    [ -x "$h" ] || continue
    surface=$(basename "$h" _fuzzer)
    if [ -d "fuzz/corpus/$surface" ]; then
        run "$h" sh -c "'$h' fuzz/corpus/$surface && \
            echo 'PASS fuzz:$surface: corpus replayed'"
    fi
done

sh tests/tally.sh "$log"
