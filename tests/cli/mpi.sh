#!/bin/sh
# mpi.sh - compile --mpi: `mpirun -n 4` on loopback over the dedup corpus
# (tests/dedup_corpus.py) cut into six inputs that different ranks read,
# so repeats and swapped labels cross ranks, against one process over the
# same inputs: the same records, pairs and counts; verify passes; a rank
# that fails (a bad row under --strict) or is killed fails the job and
# leaves no manifest.
. tests/cli_lib.sh

if ! command -v mpirun > /dev/null 2>&1; then
    echo "SKIP cli/$script:all: mpirun not found (make check installs" \
        "Open MPI)"
    exit 0
fi
mkdir "$TMP/probe"
if "$SHARD" compile --mpi /dev/null -o "$TMP/probe/out" 2>&1 |
        grep -q 'built without MPI'; then
    echo "SKIP cli/$script:all: $SHARD was built without MPI (make MPI=1)"
    exit 0
fi

. tests/dedup_lib.sh

# Open MPI refuses root without these; --oversubscribe: 4 ranks on fewer
# cores.  `timeout` ends a job that would hang instead of failing.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI keeps allocations until exit: under ASan (make asan-check)
# LeakSanitizer would fail every rank.
if [ -n "${SHARD_SANITIZED:-}" ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi
mpi() {
    timeout 300 mpirun --allow-run-as-root --oversubscribe -n 4 "$SHARD" \
        compile --mpi "$@"
}

# Six inputs of unequal size, two compressed: the split by size gives
# each rank different files.
C=$TMP/corpus
mkdir "$C"
sed -n '1,60p' "$TMP/whole.jsonl" > "$C/a.jsonl"
sed -n '61,240p' "$TMP/whole.jsonl" | gzip > "$C/b.jsonl.gz"
sed -n '241,330p' "$TMP/whole.jsonl" > "$C/c.jsonl"
sed -n '331,520p' "$TMP/whole.jsonl" | zstd -q > "$C/d.jsonl.zst"
sed -n '521,700p' "$TMP/whole.jsonl" > "$C/e.jsonl"
sed -n '701,$p' "$TMP/whole.jsonl" > "$C/f.jsonl"

"$SHARD" compile -q -j1 "$C" -o "$TMP/one"
# A 4K --mem-limit makes the key exchange run in rounds of 16 notes.
if mpi -v -j1 --mem-limit 4K "$C" -o "$TMP/four" > "$TMP/four.out" 2>&1
then
    pass runs
else
    fail runs "$(grep -v '^ ' "$TMP/four.out" | tail -3 | tr '\n' ' ')"
fi

# same_set NAME ONE DIR: DIR holds the records and pairs ONE does, in any
# order, with the same counts, per input too.
same_set() {
    for sel in pos neg unl pairs; do
        "$SHARD" cat "$2" --label $sel 2>&1 | sort > "$TMP/one.$sel"
        "$SHARD" cat "$3" --label $sel 2>&1 | sort > "$TMP/dir.$sel"
        if ! cmp -s "$TMP/one.$sel" "$TMP/dir.$sel"; then
            fail "$1" "$sel records differ from one process's"
            return
        fi
    done
    check "$1" json_get "$3/manifest.json" "
        (w => Object.keys(w.accounting).every(k =>
                  JSON.stringify(j.accounting[k]) ===
                  JSON.stringify(w.accounting[k])) &&
              JSON.stringify([j.records, j.tokens, j.pairs, j.inputs,
                              j.schema]) ===
              JSON.stringify([w.records, w.tokens, w.pairs, w.inputs,
                              w.schema]) &&
              j.pairs_table.pairs === w.pairs)
        (require('$2/manifest.json')) || process.exit(1)"
}

same_set same_as_one_process "$TMP/one" "$TMP/four"
check counts_implied json_get "$TMP/four/manifest.json" "
    j.accounting.records === 1600 && j.accounting.duplicate === 300 &&
    j.accounting.conflict === 200 && j.records.pos === 550 &&
    j.records.neg === 550 && j.pairs === 550 &&
    j.accounting.pairs_duplicate === 150 &&
    j.accounting.pairs_dropped === 100 || process.exit(1)"
check verify "$SHARD" verify "$TMP/four"
check every_rank_wrote json_get "$TMP/four/manifest.json" "
    [0, 1, 2, 3].every(r => j.shards.some(s =>
        s.path.startsWith(s.label + '/r000' + r + '-'))) ||
    process.exit(1)"
check exchange_in_rounds sh -c "
    grep -Eq 'mpi: 4 ranks sent [0-9]+ bytes in ([4-9]|[1-9][0-9]+) rounds' \
        '$TMP/four.out'"
check no_temporary_files_left sh -c "
    ! ls -a '$TMP/four' | grep -q -e '^\.r0' -e '^\.mpi' -e '\.tmp$'"
# The traffic, for docs/DISTRIBUTED.md (in the test log).
sed -n 's/^shard: \(mpi: .*\)/traffic: \1/p' "$TMP/four.out"

# Neither the workers per rank nor the size of the rounds changes a byte.
mpi -q -j2 "$C" -o "$TMP/four-j2" > /dev/null 2>&1
check same_bytes_for_any_j_and_round diff -r "$TMP/four" "$TMP/four-j2"

# Another policy: the kept records of a conflict are flagged.
"$SHARD" compile -q -j1 --conflicts keep "$C" -o "$TMP/one-keep"
mpi -q -j1 --conflicts keep "$C" -o "$TMP/four-keep" > /dev/null 2>&1
same_set conflicts_keep "$TMP/one-keep" "$TMP/four-keep"

# More ranks than inputs: two ranks read nothing and still take part;
# an input cut short is reported by --keep-going from the rank that read
# it; --force replaces the dataset from rank 0.
head -c 3000 "$C/b.jsonl.gz" > "$TMP/cut.jsonl.gz"
"$SHARD" compile -q -j1 --keep-going "$C/a.jsonl" "$TMP/cut.jsonl.gz" \
    -o "$TMP/one-two" 2> /dev/null
mpi -q -j1 --keep-going "$C/a.jsonl" "$TMP/cut.jsonl.gz" -o "$TMP/four" \
    --force > /dev/null 2>&1
same_set two_inputs_keep_going_force "$TMP/one-two" "$TMP/four"
check cut_input_counted json_get "$TMP/four/manifest.json" "
    j.accounting.inputs_failed === 1 && j.inputs[1].error.length > 0 &&
    j.shards.every(s => /\/r000[01]-/.test(s.path)) || process.exit(1)"

# What a rank cannot do alone is refused before MPI starts.
"$SHARD" compile --mpi - -o "$TMP/refused" < "$C/a.jsonl" \
    > "$TMP/refused.out" 2>&1
"$SHARD" compile --mpi --near-dup 0.9 "$C" -o "$TMP/refused" \
    >> "$TMP/refused.out" 2>&1
check refuses_stdin_and_near_dup sh -c "
    grep -q 'standard input cannot be read by several ranks' \
        '$TMP/refused.out' &&
    grep -q -- '--mpi: not with --near-dup' '$TMP/refused.out' &&
    test ! -e '$TMP/refused/manifest.json'"

# A rank fails: one input holds a bad row, under --strict.
cp -r "$C" "$TMP/bad"
sed -i '7s/.*/{"chosen": 1/' "$TMP/bad/c.jsonl"
mpi -q -j1 --strict "$TMP/bad" -o "$TMP/strict" > "$TMP/strict.out" 2>&1
status=$?
check strict_fails_the_job test "$status" -eq 3
check strict_leaves_no_manifest test ! -e "$TMP/strict/manifest.json"
check strict_leaves_no_rank_directory sh -c "
    ! ls -a '$TMP/strict' | grep -q -e '^\.r0' -e '^\.mpi'"
# mpirun's own lines may cut into ours between "shard: " and the rest.
check strict_one_line sh -c "
    test \$(grep -c 'compile: rank' '$TMP/strict.out') -eq 1 &&
    grep -q 'compile: rank [0-3]: .*c.jsonl: 1 invalid rows' \
        '$TMP/strict.out'"

# A rank is killed: it reads a FIFO that holds it until the test has
# found it (the process that has the FIFO open) and killed it.
mkfifo "$TMP/g.jsonl"
sleep 300 > "$TMP/g.jsonl" &
holder=$!
mpi -q -j1 "$TMP/bad" "$TMP/g.jsonl" -o "$TMP/killed" > "$TMP/killed.out" \
    2>&1 &
job=$!
victim=
for _ in $(seq 1 120); do
    for fd in /proc/[0-9]*/fd/*; do
        if [ "$(readlink "$fd" 2>/dev/null)" = "$TMP/g.jsonl" ]; then
            victim=${fd#/proc/}
            victim=${victim%%/*}
            [ "$victim" = "$holder" ] || break 2
            victim=
        fi
    done
    sleep 1
done
[ -n "$victim" ] && kill -9 "$victim"
wait "$job"
status=$?
kill "$holder" 2> /dev/null
check found_the_rank test -n "$victim"
check killed_rank_fails_the_job test "$status" -ne 0
check killed_rank_leaves_no_manifest test ! -e "$TMP/killed/manifest.json"

# The next job over the killed one's directory, with --force, leaves none
# of its rank directories.
ls -a "$TMP/killed" > "$TMP/killed.ls"
check killed_job_left_rank_directories grep -q '^\.r0' "$TMP/killed.ls"
mpi -q -j1 "$C" -o "$TMP/killed" --force > /dev/null 2>&1
same_set force_after_killed_job "$TMP/one" "$TMP/killed"
check force_removes_rank_directories sh -c "
    ! ls -a '$TMP/killed' | grep -q '^\.r0'"
