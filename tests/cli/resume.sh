#!/bin/sh
# resume.sh - a compile killed with SIGKILL at any point, then resumed
# with --resume, writes the same dataset, byte for byte, as a compile
# never interrupted; the journal's refusals.
. tests/cli_lib.sh

HH=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz
C=$TMP/corpus
mkdir -p "$C"

# Five inputs: HH, two variants of it (other text, so kept), a slice of
# it again (duplicates), bad rows, a gzip member, and OASST (unlabelled
# records and pairs); small shards, so that there are hundreds of
# commits to stop between.
gzip -dc "$HH" > "$C/a.jsonl"
sed 's/ the / the1 /g' "$C/a.jsonl" > "$C/b.jsonl"
{
    head -400 "$C/a.jsonl"
    echo '{"chosen": "broken'
    echo '[1, 2]'
    sed 's/ a / a2 /g' "$C/a.jsonl" | head -1200
} > "$C/c.jsonl"
sed 's/ to / to3 /g' "$C/a.jsonl" | gzip -c > "$C/d.jsonl.gz"
cp "$SHARED_DATA/oasst/en_100_tree.jsonl" "$C/e-oasst.jsonl"
IN="$C/a.jsonl $C/b.jsonl $C/c.jsonl $C/d.jsonl.gz $C/e-oasst.jsonl"
OPT="--shard-size 24K --conflicts keep --no-progress"

compile() { # DIR -jN [more options]
    d=$1
    shift
    # shellcheck disable=SC2086
    "$SHARD" compile $IN -o "$d" $OPT "$@"
}

lines() { # the commits in a journal, 0 when it is absent
    if [ -f "$1/journal" ]; then
        grep -c '^shard ' "$1/journal"
    else
        echo 0
    fi
}

# kill_at DIR WHEN -jN: starts a compile and kills it with SIGKILL when
# its journal has WHEN commits (a number) or after WHEN seconds (s0.3).
kill_at() {
    # shellcheck disable=SC2086
    "$SHARD" compile $IN -o "$1" $OPT "$3" > /dev/null 2>&1 &
    pid=$!
    case $2 in
    s*) sleep "${2#s}" ;;
    *) while [ "$(lines "$1")" -lt "$2" ] && kill -0 $pid 2>/dev/null; do
           :
       done ;;
    esac
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
}

# A killed compile never leaves a manifest over its shards: either it
# finished, or there is no manifest.
killed_state() { # NAME DIR
    if [ -f "$2/manifest.json" ] && [ -f "$2/journal" ]; then
        fail "$1" "a manifest and a journal"
    elif [ -f "$2/manifest.json" ] && "$SHARD" verify "$2" > /dev/null; then
        pass "$1"
    elif [ -f "$2/manifest.json" ]; then
        fail "$1" "a manifest over a damaged dataset"
    else
        pass "$1"
    fi
}

if ! compile "$TMP/ref" -j1 > "$TMP/ref.log" 2>&1; then
    fail reference "$(tail -2 "$TMP/ref.log")"
    exit 0
fi
total=$(find "$TMP/ref/pos" "$TMP/ref/neg" "$TMP/ref/unl" -name '*.shard' |
        wc -l)
if [ "$total" -ge 100 ]; then
    pass "many_shards ($total)"
else
    fail many_shards "only $total shards: no points to stop between"
fi

# Stops at commits spread over the run and at times, at -j1 and -j2.
n=0
for point in 0:-j1 1:-j2 $((total / 4)):-j1 $((total / 2)):-j2 \
             $((total * 9 / 10)):-j1 s0.05:-j2 s0.5:-j1; do
    j=${point#*:}
    point=${point%:*}
    n=$((n + 1))
    d=$TMP/k$n
    kill_at "$d" "$point" "$j"
    killed_state "killed_${point}${j}" "$d"
    if [ ! -f "$d/manifest.json" ] &&
       ! compile "$d" "$j" --resume > "$d.log" 2>&1; then
        fail "resume_${point}${j}" "$(tail -1 "$d.log")"
        continue
    fi
    same "resume_${point}${j}" "$TMP/ref" "$d"
done

# Killed twice: during the compile and during its resume.
kill_at "$TMP/twice" $((total / 3)) -j1
OPT="$OPT --resume"
kill_at "$TMP/twice" $((total * 2 / 3)) -j2
compile "$TMP/twice" -j1 > /dev/null 2>&1
same resume_twice "$TMP/ref" "$TMP/twice"

# A line torn by the kill is ignored; a shard cut short is refused.
OPT=${OPT% --resume}
kill_at "$TMP/torn" $((total / 2)) -j1
printf 'shard pos 99999.shard 12 3' >> "$TMP/torn/journal"
compile "$TMP/torn" -j1 --resume > "$TMP/torn.log" 2>&1
same torn_line "$TMP/ref" "$TMP/torn"

kill_at "$TMP/cut" $((total / 2)) -j1
first=$(grep '^shard neg' "$TMP/cut/journal" | head -1 | cut -d' ' -f3)
truncate -s -1 "$TMP/cut/neg/$first"
if compile "$TMP/cut" -j1 --resume > "$TMP/cut.log" 2>&1; then
    fail cut_shard "resumed over a damaged shard"
elif grep -q "neg/$first: not the shard the journal committed" \
        "$TMP/cut.log" && [ ! -f "$TMP/cut/manifest.json" ]; then
    pass cut_shard
else
    fail cut_shard "$(tail -1 "$TMP/cut.log")"
fi

# Refusals: other options, a finished dataset, a plain compile over an
# interrupted one; --force starts over.
kill_at "$TMP/other" $((total / 2)) -j1
compile "$TMP/other" -j1 --resume --shard-size 32K > "$TMP/o.log" 2>&1
if [ $? -ne 0 ] && grep -q 'cannot resume: the interrupted compile had ' \
        "$TMP/o.log" && grep -q 'shard-size 24576' "$TMP/o.log"; then
    pass other_options
else
    fail other_options "$(tail -1 "$TMP/o.log")"
fi
compile "$TMP/other" -j1 > "$TMP/o2.log" 2>&1
if [ $? -ne 0 ] && grep -q 'holds an interrupted compile (--resume' \
        "$TMP/o2.log"; then
    pass plain_over_interrupted
else
    fail plain_over_interrupted "$(tail -1 "$TMP/o2.log")"
fi
compile "$TMP/other" -j1 --force > /dev/null 2>&1
same force_over_interrupted "$TMP/ref" "$TMP/other"
compile "$TMP/other" -j1 --resume > "$TMP/o3.log" 2>&1
if [ $? -ne 0 ] && grep -q 'finished (it has a manifest); nothing to' \
        "$TMP/o3.log"; then
    pass resume_finished
else
    fail resume_finished "$(tail -1 "$TMP/o3.log")"
fi
