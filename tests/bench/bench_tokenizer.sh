#!/bin/sh
# bench_tokenizer.sh - `make bench-tokenizer`: our tokenizer against npm
# tiktoken and npm tokenizers (HF) on one mixed corpus, in one run, one
# thread each; then one-megabyte single pieces against our mixed speed.
#
# Environment: BUILD (default build); BENCH_MB, the corpus size in MB
# (default 8).  Needs the bench driver ($BUILD/tests/bench/bench_tokenizer),
# the rank files (make vocab), node and the npm packages
# (tests/install-npm.sh).  Prints a table; the ids of every implementation
# are compared document by document and mismatches are counted.
set -u

: "${BUILD:=build}" "${BENCH_MB:=8}"
out=$BUILD/bench
drv=$BUILD/tests/bench/bench_tokenizer
npm=$BUILD/npm/node_modules
res=$out/results.txt
mkdir -p "$out"
: > "$res"

fail() {
    echo "bench_tokenizer.sh: $*" >&2
    exit 1
}

[ -x "$drv" ] || fail "$drv missing (make bench-tokenizer builds it)"
command -v node >/dev/null 2>&1 || fail "node not found"

corpus=$out/corpus-${BENCH_MB}mb.txt
if ! [ -s "$corpus" ] || [ tests/bench/make_corpus.py -nt "$corpus" ]; then
    /usr/bin/python3 tests/bench/make_corpus.py "$corpus" "$BENCH_MB" ||
        fail "corpus generation failed"
fi

echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo |
    sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus: $corpus, $(wc -c < "$corpus") bytes"
echo

# run LOG-NAME LABEL command...: runs one encoder and keeps its result
# line, with the tokenizer field replaced by LABEL unless LABEL is -.
run() {
    run_log=$out/$1.err
    run_label=$2
    shift 2
    if run_line=$("$@" 2>"$run_log"); then
        [ "$run_label" = - ] ||
            run_line=$(echo "$run_line" | awk -v l="$run_label" '{$2 = l} 1')
        echo "$run_line" | tee -a "$res"
    else
        echo "skipped: $(head -1 "$run_log")"
    fi
}

compare() { # name-a ids-a name-b ids-b
    if [ -s "$2" ] && [ -s "$4" ]; then
        node tests/bench/bench_ref.mjs compare "$1" "$2" "$3" "$4" |
            tee -a "$res"
    fi
}

echo "== mixed corpus, MB/s single thread (name encoding what bytes" \
     "tokens seconds MB/s)"
for enc in cl100k_base o200k_base r50k_base; do
    run "ours-$enc" - "$drv" corpus "$enc" "$corpus" "$out/ours-$enc.ids"
    run "tiktoken-$enc" - node tests/bench/bench_ref.mjs tiktoken "$enc" \
        "$corpus" "$out/tiktoken-$enc.ids"
    compare "ours-$enc" "$out/ours-$enc.ids" \
        "tiktoken-$enc" "$out/tiktoken-$enc.ids"
done

# The tokenizer.json files: HF on them, and ours when it can open them.
for tok in llama3 gpt4o; do
    json=$npm/@lenml/tokenizer-$tok/models/tokenizer.json
    run "hf-$tok" - node tests/bench/bench_ref.mjs hf "$json" "$tok" \
        "$corpus" "$out/hf-$tok.ids"
    run "ours-$tok" "$tok" "$drv" corpus "$json" "$corpus" \
        "$out/ours-$tok.ids"
    compare "ours-$tok" "$out/ours-$tok.ids" "hf-$tok" "$out/hf-$tok.ids"
done
# gpt4o's tokenizer.json is o200k_base: HF on it must match tiktoken.
compare hf-gpt4o "$out/hf-gpt4o.ids" tiktoken-o200k_base \
    "$out/tiktoken-o200k_base.ids"

echo
echo "== one piece of 1 MiB of each shape, timed in turns with the corpus"
for enc in cl100k_base o200k_base r50k_base llama3 gpt4o; do
    spec=$enc
    case $enc in
    llama3 | gpt4o) spec=$npm/@lenml/tokenizer-$enc/models/tokenizer.json ;;
    esac
    "$drv" pieces "$spec" "$corpus" letter letters base64 punct space cjk \
        digits 2>"$out/pieces-$enc.err" |
        awk -v l="$enc" '$3 == "mixed" { $3 = "mixed-in-turns" } { $2 = l } 1' \
        > "$out/pieces-$enc"
    if [ -s "$out/pieces-$enc" ]; then
        tee -a "$res" < "$out/pieces-$enc"
    else
        echo "skipped: $(head -1 "$out/pieces-$enc.err")"
    fi
done

echo
echo "== summary"
awk '
    $3 == "mixed" { speed[$1 " " $2] = $7 }
    $3 == "mixed-in-turns" { turns[$2] = $7 }
    $3 ~ /^long:/ { long[$2] = long[$2] " " substr($3, 6) "=" $7 }
    $1 == "compare" { bad += $4 }
    END {
        split("cl100k_base o200k_base r50k_base llama3 gpt4o", enc, " ")
        for (i = 1; i <= 5; i++) {
            e = enc[i]; o = speed["ours " e]; t = speed["tiktoken-npm " e]
            if (o == "")
                continue
            printf "%s: ours %.1f MB/s", e, o
            bar = ""
            if (t > 0 && i <= 2)
                bar = o / t >= 8 ? " (bar 8x: met)" : " (bar 8x: NOT met)"
            if (t > 0)
                printf ", tiktoken-npm %.2f MB/s, ratio %.1fx%s", t, o / t,
                       bar
            printf "\n"
            n = split(long[e], l, " ")
            if (n > 0)
                printf "    mixed timed in turns with the pieces: %.1f MB/s\n",
                       turns[e]
            worst = 1e9
            for (k = 1; k <= n; k++) {
                split(l[k], kv, "=")
                r = kv[2] / turns[e]
                barred = kv[1] ~ /^(letter|letters|base64|punct|cjk)$/
                printf "    1 MB %-8s %6.1f MB/s = %.2f of mixed%s\n",
                       kv[1], kv[2], r, barred ? "" : " (not in the bar)"
                if (barred && r < worst)
                    worst = r
            }
            verdict = worst >= 0.5 ? "met" : "NOT met"
            if (n > 0)
                printf "    slowest of letter, letters, base64, punct, " \
                       "cjk: %.2f of mixed (bar 0.5: %s)\n", worst, verdict
        }
        for (k in speed)
            if (k ~ /^hf-tokenizers-npm /) {
                split(k, kk, " ")
                o = speed["ours " kk[2]]
                printf "%s: hf-tokenizers-npm %.2f MB/s", kk[2], speed[k]
                if (o > 0)
                    printf ", ours %.1f MB/s, ratio %.1fx", o, o / speed[k]
                printf "\n"
            }
        printf "id mismatches: %d documents\n", bad
    }' "$res"
