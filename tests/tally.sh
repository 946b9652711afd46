#!/bin/sh
# tally.sh FILE... - counts the PASS, FAIL and SKIP lines of test logs,
# lists the failures and ends with "N passed, N failed" (", N skipped");
# exits 1 when a test failed or none passed.
set -u
passed=$(cat "$@" | grep -ac '^PASS ')
failed=$(cat "$@" | grep -ac '^FAIL ')
skipped=$(cat "$@" | grep -ac '^SKIP ')
if [ "$failed" -gt 0 ]; then
    echo
    echo "failures:"
    cat "$@" | grep -a '^FAIL ' | sed 's/^/  /'
fi
echo
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
