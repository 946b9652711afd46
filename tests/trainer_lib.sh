# trainer_lib.sh - what the trainer_*.sh CLI tests share; sourced after
# tests/cli_lib.sh, not run.

PY=/usr/bin/python3
HH=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz

# trainer_needs MODULES [hh]: exits the test when /usr/bin/python3 lacks
# one of the modules (a skip) or, with hh, when the HH-RLHF split is
# missing (a failure).
trainer_needs() {
    if [ "${2:-}" = hh ] && ! [ -f "$HH" ]; then
        fail data "$HH is missing"
        exit 1
    fi
    if ! $PY -c "import $1" 2>/dev/null; then
        echo "SKIP cli/$script:all: $1 not installed for $PY"
        exit 0
    fi
}

# trainer_python SCRIPT ARGS...: runs a test script against the library
# just built (with the sanitizer runtimes preloaded when make asan-check
# built it).
trainer_python() {
    LD_PRELOAD=${SHARD_ASAN_PRELOAD:-} ASAN_OPTIONS=detect_leaks=0 \
        SHARD_READER_LIB=$BUILD/libshard-reader.so \
        PYTHONPATH=libshard/python:tests $PY "$@"
}
