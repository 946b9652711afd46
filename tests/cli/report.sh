#!/bin/sh
# report.sh - compile --report FILE: the summary as JSON, replaced
# atomically, agreeing with `shard inspect --json` and with the inputs,
# and written for a failed compile too.
. tests/cli_lib.sh

PY=/usr/bin/python3
MIX=$TMP/mix
mkdir -p "$MIX"

# Bad rows, duplicates, conflicts, pairs and near duplicates in three
# schemas, and a gzip-compressed input.
{
    cat tests/data/dedup/conflicts.jsonl
    echo '{"prompt": "broken'
    echo '[1, 2]'
    cat tests/data/dedup/conflicts.jsonl
} > "$MIX/a-dedup.jsonl"
cp tests/data/dedup/near.jsonl "$MIX/b-near.jsonl"
cp tests/data/dedup/pairs.jsonl "$MIX/b-pairs.jsonl"
cp tests/data/formats/oasst.jsonl "$MIX/c-oasst.jsonl"
cp "$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz" "$MIX/d-hh.jsonl.gz"

echo '{"old": "report"}' > "$TMP/r.json"
"$SHARD" compile -q -j2 "$MIX" --near-dup 0.5 -o "$TMP/ds" \
    --report "$TMP/r.json" 2> "$TMP/ds.err"
check compiles test $? -eq 0
"$SHARD" inspect "$TMP/ds" --json > "$TMP/inspect.json"

# report_py NAME PYTHON: passes when the Python code, with the report as
# `r` and inspect's object as `i`, prints nothing; else what it printed.
report_py() {
    name=$1
    "$PY" - "$TMP/r.json" "$TMP/inspect.json" "$MIX" > "$TMP/$name.py" \
        2>&1 <<EOF
import gzip, json, os, sys
r = json.load(open(sys.argv[1]))
i = json.load(open(sys.argv[2]))
mix = sys.argv[3]
$2
EOF
    if [ $? -eq 0 ] && [ ! -s "$TMP/$name.py" ]; then
        pass "$name"
    else
        fail "$name" "$(head -3 "$TMP/$name.py" | tr '\n' ' ')"
    fi
}

report_py replaced_old_report '
if r.get("status") != "ok" or r.get("error") is not None:
    print("status", r.get("status"), r.get("error"))
if "old" in r:
    print("the old report is still there")'

check no_temporary_left sh -c "! ls '$TMP' | grep -q 'r.json.tmp'"

report_py agrees_with_inspect '
for k, v in i["accounting"].items():
    if r["accounting"][k] != v:
        print("accounting", k, r["accounting"][k], "!=", v)
for k in ("records", "tokens"):
    if r[k] != i[k]:
        print(k, r[k], "!=", i[k])
if r["accounting"]["pairs"] != i["pairs"]:
    print("pairs", r["accounting"]["pairs"], "!=", i["pairs"])
if r["tokens_total"] != sum(i["tokens"].values()):
    print("tokens_total", r["tokens_total"])
if i["accounting"]["duplicate"] == 0 or i["accounting"]["conflict"] == 0 \
        or i["accounting"]["rows_invalid"] == 0 \
        or r["accounting"]["near_duplicate"] == 0 \
        or r["accounting"]["pairs_duplicate"] == 0:
    print("the corpus no longer has drops of every kind")'

# Every row and record ends in one place, per input and in total; the
# bytes are the rows of JSON, line ends excluded.
report_py adds_up '
a = r["accounting"]
ins = r["inputs"]
names = sorted(os.listdir(mix))
if [os.path.basename(x["path"]) for x in ins] != names:
    print("inputs", [x["path"] for x in ins])
for x in ins:
    if x["rows_read"] != x["rows_kept"] + x["rows_invalid"]:
        print("input", x)
for k in ("rows_read", "rows_invalid", "records", "kept"):
    if sum(x[k] for x in ins) != a[k]:
        print("inputs sum", k)
if a["records"] != a["kept"] + a["duplicate"] + a["near_duplicate"] + \
        a["conflict"]:
    print("records", a)
if a["rows_invalid"] != sum(a["invalid_by_reason"].values()):
    print("reasons", a["invalid_by_reason"])
if sum(r["records"].values()) != a["kept"]:
    print("kept by label", r["records"])
n = 0
for name in names:
    op = gzip.open if name.endswith(".gz") else open
    for line in op(os.path.join(mix, name), "rb"):
        n += len(line.rstrip(b"\n"))
if r["bytes"] != n:
    print("bytes", r["bytes"], "!=", n)'

report_py costs '
if r["jobs"] != 2:
    print("jobs", r["jobs"])
s = r["seconds"]
if not (s["wall"] > 0 and s["cpu"] >= 0 and
        abs(s["cpu"] - s["user"] - s["system"]) < 0.01 and
        0 < s["key_sweep"] <= s["wall"]):
    print("seconds", s)
if not r["peak_rss_bytes"] > 1 << 20:
    print("peak_rss_bytes", r["peak_rss_bytes"])
t = r["throughput"]
want = r["accounting"]["rows_read"] / s["wall"]
if abs(t["rows_per_s"] - want) > 0.01 * want + 1:
    print("rows_per_s", t["rows_per_s"], want)
if not (t["mb_per_s"] > 0 and t["tokens_per_s"] > 0):
    print("throughput", t)'

# A compile that fails still reports how far it got, and why.
printf 'not json\n' > "$TMP/bad.jsonl"
"$SHARD" compile -q --strict "$TMP/bad.jsonl" -o "$TMP/strict" \
    --report "$TMP/r.json" 2> /dev/null
check failed_exit test $? -eq 3
report_py failed_report '
if r["status"] != "failed" or "--strict" not in r["error"]:
    print("status", r["status"], r["error"])
if r["accounting"]["invalid_by_reason"]["bad_json"] != 1 or r["inputs"]:
    print("accounting", r["accounting"], r["inputs"])'

"$SHARD" compile -q "$MIX" -o "$TMP/ds2" \
    --report "$TMP/no/such/dir/r.json" 2> "$TMP/unwritable.err"
rc=$?
check unwritable_fails sh -c "test $rc -eq 1 &&
    grep -q 'report .*no/such/dir' '$TMP/unwritable.err'"

# What is not a regular file is written to, never replaced: a pipe
# through /dev/stdout; a symbolic link still points at the report.
"$SHARD" compile -q tests/data/dedup/conflicts.jsonl -o "$TMP/ds3" \
    --report /dev/stdout | "$PY" -c 'import json, sys
sys.exit(json.load(sys.stdin)["status"] != "ok")'
check report_to_a_pipe test $? -eq 0 -a -L /dev/stdout
ln -s r.json "$TMP/link.json"
"$SHARD" compile -q tests/data/dedup/conflicts.jsonl -o "$TMP/ds4" \
    --report "$TMP/link.json"
check symlink_kept sh -c "test -L '$TMP/link.json' &&
    grep -q '\"ok\"' '$TMP/r.json'"
