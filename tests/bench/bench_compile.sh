#!/bin/sh
# bench_compile.sh - `make bench-compile`: `shard compile` on about 1 GB of
# feedback rows against tokenizer-only work on the same text and against
# the usual pipeline (Node.js, JSON.parse, npm tiktoken, Megatron
# .bin/.idx, one process per core), all in one run; wall-clock time and
# peak resident memory of each from /usr/bin/time.  Besides the default
# options, compile at -j = cores also runs with `--level 1` and with
# `--codec none --no-text` (uncompressed tokens only, what the Node
# pipeline writes).
#
# Environment: BUILD, SHARD, SHARED_DATA; BENCH_MB, the corpus size in MB
# of JSON lines (default 1000; 100 is enough on a busy machine).  The
# corpus (tests/bench/make_compile_corpus.py) is built once in
# $BUILD/bench/compile and reused.  Throughput in MB/s is always corpus
# MB (uncompressed JSON lines) over wall seconds, so the ratios compare
# times for the same job.  Exits 1 if a step fails or if the Node
# pipeline's token count differs from the compiler's.
set -u

: "${BUILD:=build}" "${SHARD:=$BUILD/shard}" "${SHARED_DATA:=../shared/data}"
: "${BENCH_MB:=1000}"
export SHARED_DATA
out=$BUILD/bench/compile
drv=$BUILD/tests/bench/bench_compile_tok
node_js=tests/bench/bench_compile_node.mjs
cores=$(nproc)
status=0

fail() {
    echo "bench_compile.sh: $*" >&2
    exit 1
}

[ -x "$drv" ] || fail "$drv missing (make bench-compile builds it)"
[ -x /usr/bin/time ] || fail "/usr/bin/time missing (apt-get install time)"
command -v node >/dev/null 2>&1 || fail "node not found"
mkdir -p "$out"

/usr/bin/python3 tests/bench/make_compile_corpus.py "$out" "$BENCH_MB" ||
    fail "corpus generation failed"
files=$(ls "$out"/rows-*.jsonl*)
json() { # FILE EXPR: a field of a JSON file, by a JavaScript expression
    node -e "const d = JSON.parse(require('fs').readFileSync('$1'));
             console.log($2)"
}
bytes=$(json "$out/corpus.json" d.bytes)

# timed NAME command...: runs it under /usr/bin/time; NAME.time gets
# "wall-seconds peak-KB", NAME.out its standard output.
timed() {
    timed_name=$1
    shift
    /usr/bin/time -f '%e %M' -o "$out/$timed_name.time" "$@" \
        > "$out/$timed_name.out" 2> "$out/$timed_name.err" ||
        fail "$timed_name failed: $(tail -1 "$out/$timed_name.err")"
}

# compile NAME OPTION...: a compile of the whole corpus into $out/NAME.
compile() {
    compile_name=$1
    shift
    rm -rf "${out:?}/$compile_name"
    timed "$compile_name" "$SHARD" compile -q "$@" $files \
        -o "$out/$compile_name"
    "$SHARD" inspect "$out/$compile_name" --json \
        > "$out/$compile_name.json" || fail "inspect $compile_name failed"
}

echo "machine: $cores cpus, $(grep -m1 'model name' /proc/cpuinfo |
    sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"

rm -rf "$out"/c-j*
compile c-j1 -j1
compile "c-j$cores" "-j$cores"
compile "c-j$cores-l1" "-j$cores" --level 1
compile "c-j$cores-raw" "-j$cores" --codec none --no-text
rows=$(json "$out/c-j1.json" d.accounting.rows_read)
kept=$(json "$out/c-j1.json" d.accounting.kept)
tokens=$(json "$out/c-j1.json" 'd.tokens.pos + d.tokens.neg + d.tokens.unl')

# Tokenizer-only: the texts the compiler encodes, one file per core
# (extracted once), encoded by one process, then by one per core.
if ! [ -s "$out/texts-0.txt" ] || [ "$out/corpus.json" -nt "$out/texts-0.txt" ]
then
    rm -f "$out"/texts-*.txt
    node "$node_js" texts "$out" "$cores" $files > /dev/null ||
        fail "text extraction failed"
fi
timed t-1 "$drv" cl100k_base "$out"/texts-*.txt
t0=$(date +%s.%N)
k=0
while [ $k -lt "$cores" ]; do
    timed "t-$cores-$k" "$drv" cl100k_base "$out/texts-$k.txt" &
    k=$((k + 1))
done
wait
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }' > "$out/t-N.wall"
cat "$out"/t-"$cores"-*.out | awk '{ n += $4 } END { print n }' \
    > "$out/t-N.tokens"
cat "$out"/t-"$cores"-*.time | awk '{ m += $2 } END { print m }' \
    > "$out/t-N.kb"

# The usual pipeline, one process per core.
rm -rf "$out/node"
timed node node "$node_js" pipeline "$out/node" "$cores" $files
node_tokens=$(json "$out/node.out" d.tokens)
node_kb=$(json "$out/node.out" d.peak_kb)

# Byte-identical shards and manifests for -j1, -j2, -j4.
same=yes
for j in 2 4; do
    [ -d "$out/c-j$j" ] || compile "c-j$j" "-j$j"
    (cd "$out/c-j1" && find . -type f | sort) > "$out/c-j1.files"
    (cd "$out/c-j$j" && find . -type f | sort) > "$out/c-j$j.files"
    if ! cmp -s "$out/c-j1.files" "$out/c-j$j.files"; then
        same="NO: -j1 and -j$j wrote different files"
        status=1
    fi
    for f in $(cat "$out/c-j1.files"); do
        if ! cmp -s "$out/c-j1/$f" "$out/c-j$j/$f"; then
            same="NO: $f differs between -j1 and -j$j"
            status=1
        fi
    done
done

echo "corpus: $bytes bytes of JSON lines in $(echo $files | wc -w) files" \
     "($(du -cb $files | tail -1 | cut -f1) on disk), $rows rows," \
     "$kept records kept, $tokens tokens (cl100k_base, template none)"
if [ "$node_tokens" = "$tokens" ]; then
    echo "token check: node pipeline $node_tokens = compile $tokens"
else
    echo "token check: node pipeline $node_tokens != compile $tokens"
    status=1
fi
echo "byte-identical shards and manifests, -j1 -j2 -j4: $same"
echo
{
    for c in j1 "j$cores" "j$cores-l1" "j$cores-raw"; do
        read -r s kb < "$out/c-$c.time"
        echo "compile-$c $s $kb $tokens"
    done
    read -r s kb < "$out/t-1.time"
    echo "tokenize-1 $s $kb $(cut -d' ' -f4 "$out/t-1.out")"
    echo "tokenize-$cores $(cat "$out/t-N.wall" "$out/t-N.kb" \
        "$out/t-N.tokens" | tr '\n' ' ')"
    read -r s kb < "$out/node.time"
    echo "node-$cores $s $node_kb $node_tokens"
} > "$out/table.txt"
awk -v bytes="$bytes" -v rows="$rows" -v kept="$kept" -v n="$cores" '
    { name[NR] = $1; sec[$1] = $2; kb[$1] = $3; tok[$1] = $4 }
    END {
        printf "%-14s %8s %8s %9s %8s %8s\n", "", "wall s", "MB/s",
               "rows/s", "Mtok/s", "peak MB"
        for (i = 1; i <= NR; i++) {
            k = name[i]
            printf "%-14s %8.2f %8.1f %9.0f %8.2f %8.0f\n", k, sec[k],
                   bytes / sec[k] / 1e6, rows / sec[k],
                   tok[k] / sec[k] / 1e6, kb[k] / 1024
        }
        c1 = sec["compile-j1"]; cn = sec["compile-j" n]
        node = sec["node-" n]
        printf "\ncompile-j1 / tokenize-1: %.2f (bar 0.70)\n",
               sec["tokenize-1"] / c1
        printf "compile-j%d / tokenize-%d: %.2f (bar 0.70); " \
               "--codec none --no-text: %.2f\n", n, n,
               sec["tokenize-" n] / cn,
               sec["tokenize-" n] / sec["compile-j" n "-raw"]
        printf "compile-j%d / compile-j1 rows/s: %.2f (bar 1.7 at -j2)\n",
               n, c1 / cn
        printf "compile-j%d / node-%d: %.2f (bar 10); with --level 1: " \
               "%.2f; --codec none --no-text: %.2f\n", n, n, node / cn,
               node / sec["compile-j" n "-l1"], node / sec["compile-j" n "-raw"]
        printf "compile-j1 peak %.0f MB, compile-j%d peak %.0f MB",
               kb["compile-j1"] / 1024, n, kb["compile-j" n] / 1024
        printf "; bar 512 MB + 24 B x %d records = %.0f MB\n", kept,
               512 + 24 * kept / 1048576
    }' "$out/table.txt" | tee "$out/summary.txt"
if [ "$cores" != 2 ]; then
    read -r s1 kb < "$out/c-j1.time"
    read -r s2 kb < "$out/c-j2.time"
    awk -v a="$s1" -v b="$s2" 'BEGIN {
        printf "compile-j2 / compile-j1 rows/s: %.2f (bar 1.7)\n", a / b }' |
        tee -a "$out/summary.txt"
fi
exit $status
