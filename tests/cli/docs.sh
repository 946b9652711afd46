#!/bin/sh
# docs.sh - the man page is generated from its markdown source, and every
# subcommand and option the CLI offers is documented there.
. tests/cli_lib.sh

awk -f docs/md2man.awk docs/shard.1.md > "$TMP/shard.1"
check man_page_up_to_date cmp -s "$TMP/shard.1" docs/shard.1

missing=""
for cmd in compile inspect verify cat export merge; do
    grep -q "^### $cmd" docs/shard.1.md || missing="$missing $cmd"
    for opt in $("$SHARD" $cmd --help | grep -oE -- '--[a-z-]+' | sort -u); do
        case $opt in --help|--quiet|--verbose) continue ;; esac
        grep -q -- "$opt" docs/shard.1.md || missing="$missing $cmd$opt"
    done
done
if [ -z "$missing" ]; then pass every_option_documented
else fail every_option_documented "undocumented:$missing"; fi
