#!/bin/sh
# bad_inputs.sh - a battery of malformed inputs for `shard compile`.
#
# Each input must end in a clear outcome: exit 0 with the bad rows counted
# by reason, or exit 1 with a one-line message naming the file; never a
# signal, a hang (each run is limited to 120 s) or a message of several
# lines.  Whenever a manifest is written its accounting must balance:
# rows_read = rows_kept + rows_invalid, the reasons add up to rows_invalid,
# records = kept + duplicate + near_duplicate + conflict, and the labels
# add up to kept.  The inputs are made here, at test time.
. tests/cli_lib.sh

D=$TMP/in
mkdir -p "$D"

# A few valid canonical rows, the base of several cases.
good() {
    i=0
    while [ $i -lt "$1" ]; do
        printf '{"prompt": "question %d", "response": "answer %d", ' $i $i
        printf '"label": "%s"}\n' "$([ $((i % 2)) -eq 0 ] && echo pos ||
                                        echo neg)"
        i=$((i + 1))
    done
}

# balanced DIR: the manifest's accounting adds up.
balanced() {
    json_get "$1/manifest.json" "(() => {
        const a = j.accounting;
        const reasons = Object.values(a.invalid_by_reason)
            .reduce((x, y) => x + y, 0);
        const labels = j.records.pos + j.records.neg + j.records.unl;
        return a.rows_read === a.rows_kept + a.rows_invalid &&
            reasons === a.rows_invalid &&
            a.records === a.kept + a.duplicate + a.near_duplicate +
                a.conflict && labels === a.kept;
    })() || process.exit(1)"
}

# run NAME EXPECT ARGS...: compiles with ARGS into $TMP/out-NAME.
# EXPECT is ok (exit 0, accounting balanced), fail (exit 1, one-line
# message naming an input) or either.
run() {
    case_name=$1 expect=$2
    shift 2
    out=$TMP/out-$case_name
    timeout 120 "$SHARD" compile -q --force "$@" -o "$out" \
        > "$TMP/stdout" 2> "$TMP/stderr"
    status=$?
    if [ $status -eq 124 ]; then
        fail "$case_name" "no result within 120 s"
        return
    fi
    if [ $status -gt 3 ]; then
        fail "$case_name" "exit status $status: $(tail -2 "$TMP/stderr")"
        return
    fi
    if grep -qv '^shard: ' "$TMP/stderr"; then
        fail "$case_name" "message not one line: $(head -3 "$TMP/stderr")"
        return
    fi
    case $expect:$status in
    ok:0 | either:0)
        if balanced "$out" > /dev/null 2>&1; then
            pass "$case_name"
        else
            fail "$case_name" "accounting does not balance"
        fi ;;
    fail:1 | either:1)
        if [ -s "$TMP/stderr" ] && [ ! -e "$out/manifest.json" ]; then
            pass "$case_name"
        else
            fail "$case_name" "exit 1 without a message, or with a manifest"
        fi ;;
    *)
        fail "$case_name" "exit status $status, expected $expect:" \
             "$(tail -2 "$TMP/stderr")" ;;
    esac
}

# reason DIR NAME N: the manifest counts N rows invalid for NAME.
reason() {
    json_get "$1/manifest.json" \
        "j.accounting.invalid_by_reason['$2'] === $3 || process.exit(1)"
}

# 1-2. Truncated compressed streams: an error naming the file, or with
# --keep-going a counted failed input.
good 2000 | gzip > "$D/full.gz"
head -c 4000 "$D/full.gz" > "$D/cut.jsonl.gz"
run truncated_gzip fail --format canonical "$D/cut.jsonl.gz"
check truncated_gzip_names_file grep -q 'cut.jsonl.gz' "$TMP/stderr"
run truncated_gzip_keep_going ok --keep-going --format canonical \
    "$D/cut.jsonl.gz"
check truncated_gzip_counted json_get "$TMP/out-truncated_gzip_keep_going/manifest.json" \
    "j.accounting.inputs_failed === 1 || process.exit(1)"
good 2000 | zstd -q > "$D/full.zst"
head -c 3000 "$D/full.zst" > "$D/cut.jsonl.zst"
run truncated_zstd fail --format canonical "$D/cut.jsonl.zst"

# 3. Random bytes, some of them newlines.
node -e "
    let x = 12345; const b = Buffer.alloc(1 << 20);
    for (let i = 0; i < b.length; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0; b[i] = x >>> 24;
    }
    require('fs').writeFileSync('$D/random.bin', b);"
run random_bytes either --format canonical "$D/random.bin"

# 4. One line of 100 MB: over the row limit, skipped without holding it.
node -e "
    const fs = require('fs'), fd = fs.openSync('$D/long.jsonl', 'w');
    fs.writeSync(fd, '{\"prompt\": \"p\", \"response\": \"');
    const chunk = 'x'.repeat(1 << 20);
    for (let i = 0; i < 100; i++) fs.writeSync(fd, chunk);
    fs.writeSync(fd, '\", \"label\": \"neg\"}\n');
    fs.closeSync(fd);"
good 3 >> "$D/long.jsonl"
run line_100mb ok --format canonical "$D/long.jsonl"
check line_100mb_over_limit reason "$TMP/out-line_100mb" over_limit 1
# (Sanitizers keep freed memory in quarantine: no bound to check there.)
if [ -z "${SHARD_SANITIZED:-}" ] &&
   /usr/bin/time -f %M -o "$TMP/rss" "$SHARD" compile -q --force \
        --format canonical "$D/long.jsonl" -o "$TMP/rss-out" 2>/dev/null; then
    kb=$(tail -1 "$TMP/rss")
    check line_100mb_memory_bounded test "$kb" -lt 200000
fi

# 5. JSON nested a million deep, as a row and inside a field.
node -e "
    const n = 1000000;
    require('fs').writeFileSync('$D/deep.jsonl', '['.repeat(n) +
        ']'.repeat(n) + '\n{\"prompt\": \"p\", \"response\": ' +
        '['.repeat(n) + ']'.repeat(n) + ', \"label\": \"pos\"}\n');"
run nested_million ok --format canonical "$D/deep.jsonl"

# 6. NUL bytes, inside a string and between rows.
{ good 2; printf '{"prompt": "a\0b", "response": "c", "label": "pos"}\n';
  printf '\0\0\0\n'; good 1; } > "$D/nul.jsonl"
run nul_bytes ok --format canonical "$D/nul.jsonl"

# 7. UTF-16 text with a byte order mark.
good 3 | iconv -f UTF-8 -t UTF-16 > "$D/utf16.jsonl"
run utf16 either --format canonical "$D/utf16.jsonl"

# 8. Lone surrogate escapes, raw invalid UTF-8, overlong encodings.
{ printf '{"prompt": "\\ud800", "response": "r", "label": "pos"}\n'
  printf '{"prompt": "\\udc00x", "response": "r", "label": "pos"}\n'
  printf '{"prompt": "\377\376", "response": "r", "label": "pos"}\n'
  printf '{"prompt": "\300\257", "response": "r", "label": "pos"}\n'
  printf '{"prompt": "\355\240\200", "response": "r", "label": "pos"}\n'
  good 1; } > "$D/utf8.jsonl"
run bad_utf8 ok --format canonical "$D/utf8.jsonl"
check bad_utf8_counted reason "$TMP/out-bad_utf8" bad_utf8 5

# 9. Duplicate keys: the first wins, the row is valid.
printf '{"prompt": "a", "prompt": "b", "response": "r", "label": "neg", "label": "pos"}\n' \
    > "$D/dupkeys.jsonl"
run duplicate_keys ok --format canonical "$D/dupkeys.jsonl"

# 10. Numbers out of range.
{ printf '{"prompt": "a", "response": "r", "label": "pos", "reward": 1e400}\n'
  printf '{"prompt": "a", "response": "r", "label": 99999999999999999999999}\n'
  printf '{"prompt": "a", "response": "r", "label": -1e-400}\n'
  good 1; } > "$D/numbers.jsonl"
run numbers_out_of_range ok --format canonical "$D/numbers.jsonl"

# 11. Empty files: zero bytes, a BOM alone, blank lines alone.
: > "$D/empty.jsonl"
printf '\357\273\277' > "$D/bom.jsonl"
printf '\r\n\n  \r\n' > "$D/blank.jsonl"
run empty_files ok --format canonical "$D/empty.jsonl" "$D/bom.jsonl" \
    "$D/blank.jsonl"
check empty_files_no_rows json_get "$TMP/out-empty_files/manifest.json" \
    "j.accounting.rows_read === 0 || process.exit(1)"

# 12. A tar whose member names climb out of the directory: members are
# read as data, nothing is written outside the output.
mkdir -p "$TMP/tarsrc/sub"
good 4 > "$TMP/tarsrc/sub/rows.jsonl"
(cd "$TMP/tarsrc/sub" &&
 tar -cf "$D/hostile.tar" --transform 's,^,../../../,' rows.jsonl \
     2>/dev/null)
run tar_hostile_path ok --format canonical "$D/hostile.tar"
check tar_hostile_path_nothing_outside test ! -e "$TMP/../../rows.jsonl"
check tar_hostile_path_rows json_get \
    "$TMP/out-tar_hostile_path/manifest.json" \
    "j.accounting.rows_read === 4 || process.exit(1)"

# 13. Zip bombs: 1 GB of one letter in about 1 MB, one endless line that
# is skipped as over the limit; 1 GB of zeros, which libarchive reads as
# an empty tar archive (a tar ends at two zero blocks).
head -c 1073741824 /dev/zero | tr '\0' a | gzip -1 > "$D/bomb.jsonl.gz"
run zip_bomb_gzip ok --format canonical "$D/bomb.jsonl.gz"
check zip_bomb_over_limit reason "$TMP/out-zip_bomb_gzip" over_limit 1
head -c 1073741824 /dev/zero | gzip -1 > "$D/zeros.jsonl.gz"
run zip_bomb_zeros either --format canonical "$D/zeros.jsonl.gz"
(cd "$D" && head -c 104857600 /dev/zero > zeros.jsonl &&
 zip -q bomb.zip zeros.jsonl 2>/dev/null && rm -f zeros.jsonl)
if [ -f "$D/bomb.zip" ]; then
    run zip_bomb_zip ok --format canonical --max-row-bytes 1M "$D/bomb.zip"
fi

# 14. A JSON array cut short, and one with garbage after it.
printf '[{"prompt": "a", "response": "r", "label": "pos"}, {"prompt": "b", "resp' \
    > "$D/cut_array.json"
printf '[{"prompt": "a", "response": "r", "label": "pos"}] trailing\n' \
    > "$D/trailing_array.json"
run json_array_cut ok --format canonical "$D/cut_array.json" \
    "$D/trailing_array.json"

# 15. A million tiny rows that are not records.
node -e "require('fs').writeFileSync('$D/tiny.jsonl', '{}\n'.repeat(1e6))"
run million_empty_objects ok --format canonical "$D/tiny.jsonl"
check million_empty_objects_counted reason \
    "$TMP/out-million_empty_objects" missing_field 1000000

# 16. Wrong types everywhere.
{ printf '{"prompt": 1, "response": "r", "label": "pos"}\n'
  printf '{"prompt": "p", "response": {"x": 1}, "label": "pos"}\n'
  printf '{"prompt": "p", "response": "r", "label": [1]}\n'
  printf '[1, 2, 3]\n"a string"\nnull\n42\n'; } > "$D/types.jsonl"
run wrong_types ok --format canonical "$D/types.jsonl"

# 17. Garbage compressed: xz of random bytes; gzip of a gzip.
xz -c "$D/random.bin" > "$D/random.xz"
good 5 | gzip | gzip > "$D/double.gz"
run compressed_garbage either --format canonical "$D/random.xz"
run gzip_of_gzip either --format canonical "$D/double.gz"

# 18. Concatenated gzip members: all rows are read.
{ good 3 | gzip; good 4 | gzip; } > "$D/members.jsonl.gz"
run gzip_members ok --format canonical "$D/members.jsonl.gz"
check gzip_members_all_rows json_get "$TMP/out-gzip_members/manifest.json" \
    "j.accounting.rows_read === 7 || process.exit(1)"

# 19. An input that does not exist, and a directory with nothing in it.
run missing_file fail --format canonical "$D/no-such-file.jsonl"
check missing_file_named grep -q 'no-such-file.jsonl' "$TMP/stderr"
mkdir -p "$D/emptydir"
run empty_directory either --format canonical "$D/emptydir"

# 20. Format auto on garbage: it says what it did, and counts the rows.
run auto_on_random either "$D/random.bin"

# 21. Control characters and CR alone in rows.
printf '{"prompt": "a\\u0000\\u001f", "response": "r\\r", "label": "pos"}\r\r\n' \
    > "$D/controls.jsonl"
run control_characters ok --format canonical "$D/controls.jsonl"
