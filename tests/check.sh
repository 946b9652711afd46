#!/bin/sh
# check.sh - what `make check` runs, in three parts: every test
# (tests/run.sh) on the normal build; every test again on the build with
# AddressSanitizer and UndefinedBehaviorSanitizer; each fuzz harness for
# FUZZ_SECONDS.  Ends with the totals of the three, "N passed, N failed"
# (", N skipped"), and fails when a test failed or none ran.
#
# Environment: BUILD, ASAN_BUILD, FUZZ_DIR, FUZZ_SECONDS (20),
# SHARD_ASAN_PRELOAD (the sanitizer runtimes, for Python's ctypes).
set -u
: "${BUILD:=build}" "${ASAN_BUILD:=build-asan}"
: "${FUZZ_DIR:=$BUILD/fuzz-clang}" "${FUZZ_SECONDS:=20}"
: "${SHARED_DATA:=../shared/data}"
export SHARED_DATA FUZZ_DIR FUZZ_SECONDS

echo "== every test"
SHARD=$BUILD/shard BUILD=$BUILD sh tests/run.sh

echo
echo "== every test under ASan and UBSan ($ASAN_BUILD)"
npm_dir=$BUILD/npm # the references, installed once by `make testdeps`
SHARD=$ASAN_BUILD/shard BUILD=$ASAN_BUILD SHARD_NPM_DIR=$npm_dir \
    SHARD_SANITIZED=1 SHARD_ASAN_PRELOAD="${SHARD_ASAN_PRELOAD:-}" \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 sh tests/run.sh

echo
echo "== each fuzz harness for $FUZZ_SECONDS s"
sh tests/fuzz-run.sh | tee "$FUZZ_DIR/fuzz-results.txt"

sh tests/tally.sh "$BUILD/test-results.txt" "$ASAN_BUILD/test-results.txt" \
    "$FUZZ_DIR/fuzz-results.txt"
