#!/bin/sh
# bench_ingest.sh - `make bench-ingest`: the input layer on one corpus in
# several shapes (JSON lines, a compact and a pretty-printed JSON array,
# gzip, zstd, a tar of them), MB/s of row text and the ratio to plain JSON
# lines measured in the same run; then the peak memory of `shard compile`
# on a JSON array and on one three times larger, which must stay flat.
#
# Environment: BUILD, SHARD, SHARED_DATA; BENCH_MB, the size of the JSON
# lines corpus in MB (default 40), built from the LLaMA-Factory KTO demo
# with a counter in each response so that no two records are equal.
set -u

: "${BUILD:=build}" "${SHARD:=$BUILD/shard}" "${SHARED_DATA:=../shared/data}"
: "${BENCH_MB:=40}"
out=$BUILD/bench/ingest
drv=$BUILD/tests/bench/bench_ingest
mkdir -p "$out"
[ -x "$drv" ] || { echo "bench_ingest.sh: $drv missing" >&2; exit 1; }

# make_corpus MB NAME: JSON lines, compact array and pretty array.
make_corpus() {
    node -e "
const fs = require('fs');
const rows = JSON.parse(fs.readFileSync('$SHARED_DATA/llama-factory/kto_en_demo.json'));
const want = $1 * 1e6, l = fs.openSync('$out/$2.jsonl', 'w'),
      a = fs.openSync('$out/$2.json', 'w'), p = fs.openSync('$out/$2.pretty.json', 'w');
fs.writeSync(a, '['); fs.writeSync(p, '[\n');
for (let n = 0, i = 0; n < want; i++) {
    const r = structuredClone(rows[i % rows.length]);
    r.messages[r.messages.length - 1].content += ' #' + i;
    const s = JSON.stringify(r);
    fs.writeSync(l, s + '\n');
    fs.writeSync(a, (i ? ',' : '') + s);
    fs.writeSync(p, (i ? ',\n' : '') + JSON.stringify(r, null, 2));
    n += s.length + 1;
}
fs.writeSync(a, ']\n'); fs.writeSync(p, '\n]\n');"
}

make_corpus "$BENCH_MB" c
gzip -c "$out/c.jsonl" > "$out/c.jsonl.gz"
zstd -q -f "$out/c.jsonl" -o "$out/c.jsonl.zst"
(cd "$out" && tar cf c.tar c.jsonl.gz c.jsonl.zst)

echo "input layer, best of 3 passes (BENCH_MB=$BENCH_MB):"
(cd "$out" && "$OLDPWD/$drv" c.jsonl c.json c.pretty.json c.jsonl.gz \
    c.jsonl.zst c.tar) | tee "$out/speed.txt"
awk 'NR == 1 { base = $(NF - 1) }
     { printf "  %-20s %.2f x JSON lines\n", $1, $(NF - 1) / base }' \
    "$out/speed.txt"

# Peak memory of a compile: a corpus and one three times larger.
if ! [ -x /usr/bin/time ]; then
    echo "bench_ingest.sh: /usr/bin/time missing; no memory figures" >&2
    exit 0
fi
make_corpus $((BENCH_MB / 4)) small
make_corpus $((BENCH_MB * 3 / 4)) large
for n in small large; do
    rm -rf "$out/ds-$n"
    /usr/bin/time -f "%M" -o "$out/rss-$n" "$SHARD" compile -q --no-text \
        "$out/$n.pretty.json" -o "$out/ds-$n" || exit 1
done
echo "shard compile peak memory on a pretty JSON array:"
echo "  $(wc -c < "$out/small.pretty.json") bytes: $(cat "$out/rss-small") KB"
echo "  $(wc -c < "$out/large.pretty.json") bytes: $(cat "$out/rss-large") KB"
awk -v a="$(cat "$out/rss-small")" -v b="$(cat "$out/rss-large")" \
    'BEGIN { printf "  ratio %.2f for 3x the input\n", b / a }'
