#!/bin/sh
# disk_full.sh - writing to a full file system: a compile into a small
# tmpfs fails with one line naming the file and "No space left on device",
# exits 1, and leaves no manifest and no partial file (what it completed
# before may stay, whole: shards that verify, the pairs table); commands
# that write to standard output fail cleanly on /dev/full.  The tmpfs part
# needs mount(2) (root in most containers); without it those checks are
# skipped and say so.
. tests/cli_lib.sh

HH=$SHARED_DATA/hh-rlhf/harmless-base-test.jsonl.gz

# tmpfs_compile NAME SIZE: compiles HH into a tmpfs of SIZE, then checks.
tmpfs_compile() {
    mnt=$TMP/mnt-$1
    mkdir -p "$mnt"
    if ! mount -t tmpfs -o "size=$2" tmpfs "$mnt" 2>/dev/null; then
        echo "SKIP cli/$script:$1: cannot mount a tmpfs here"
        return
    fi
    "$SHARD" compile -q "$HH" -o "$mnt/ds" 2> "$TMP/$1.err"
    status=$?
    leftovers=$(find "$mnt/ds" -type f \( -name '.*' -o -name '*.tmp' -o \
                -name manifest.json \) | wc -l)
    for f in $(find "$mnt/ds" -name '*.shard'); do
        "$SHARD" verify -q "$f" 2>/dev/null || leftovers=$((leftovers + 1))
    done
    umount "$mnt"
    if [ $status -ne 1 ]; then
        fail "$1" "exit status $status"
    elif ! grep -q "^shard: .*$mnt/ds/.*No space left on device" \
            "$TMP/$1.err" || [ "$(wc -l < "$TMP/$1.err")" -ne 1 ]; then
        fail "$1" "message: $(head -2 "$TMP/$1.err")"
    elif [ "$leftovers" -ne 0 ]; then
        fail "$1" "$leftovers partial files or a manifest left behind"
    else
        pass "$1"
    fi
}

# Full at once, while writing the first shard, and near the end (the
# dataset is about 2.4 MB: tokens, text, pairs table, keys, manifest).
tmpfs_compile full_at_start 16k
tmpfs_compile full_in_first_shard 600k
tmpfs_compile full_near_the_end 2300k

# Standard output on a full device.
"$SHARD" compile -q "$HH" -o "$TMP/ds"
for cmd in "cat $TMP/ds" "cat $TMP/ds --format tokens" \
           "inspect $TMP/ds --json"; do
    # shellcheck disable=SC2086 # the command is meant to split
    "$SHARD" $cmd > /dev/full 2> "$TMP/out.err"
    status=$?
    label=$(echo "$cmd" | sed "s|$TMP/||; s/ /_/g")
    if [ $status -eq 1 ] && grep -q '^shard: ' "$TMP/out.err"; then
        pass "stdout_full:$label"
    else
        fail "stdout_full:$label" "exit $status: $(head -1 "$TMP/out.err")"
    fi
done
echo '"hello"' | "$SHARD" tokenize > /dev/full 2> "$TMP/tok.err"
check stdout_full:tokenize test $? -eq 1
"$SHARD" export "$TMP/ds" --to jsonl -o /dev/full/x 2> "$TMP/exp.err"
check export_unwritable_path sh -c "test $? -eq 1 && grep -q '^shard: ' '$TMP/exp.err'"
