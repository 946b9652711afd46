# cli_lib.sh - helpers for the CLI tests; sourced, not run.
#
# Each check prints "PASS <script>:<name>" or "FAIL <script>:<name>: why".

: "${BUILD:=build}" "${SHARD:=$BUILD/shard}" "${SHARED_DATA:=../shared/data}"
script=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shard-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS cli/$script:$1"; }
fail() { echo "FAIL cli/$script:$1: $2"; }

# check NAME COMMAND...: passes when COMMAND exits 0.
check() {
    name=$1
    shift
    if "$@" > "$TMP/check.out" 2>&1; then
        pass "$name"
    else
        fail "$name" "$(tail -3 "$TMP/check.out" | tr '\n' ' ')"
    fi
}

# same NAME DIR1 DIR2: passes when the two datasets hold the same files,
# byte for byte.
same() {
    if [ ! -f "$2/manifest.json" ] || [ ! -f "$3/manifest.json" ]; then
        fail "$1" "no dataset in $2 or $3"
        return
    fi
    (cd "$2" && find . -type f | sort) > "$TMP/$1.files1"
    (cd "$3" && find . -type f | sort) > "$TMP/$1.files2"
    if ! cmp -s "$TMP/$1.files1" "$TMP/$1.files2"; then
        fail "$1" "different file lists in $2 and $3"
        return
    fi
    while read -r f; do
        if ! cmp -s "$2/$f" "$3/$f"; then
            fail "$1" "$f differs"
            return
        fi
    done < "$TMP/$1.files1"
    pass "$1"
}

# A JSON query through node: json_get FILE EXPR, with the object as `j`.
json_get() {
    node -e "const j = JSON.parse(require('fs').readFileSync('$1', 'utf8'));
             console.log($2)"
}

# Where `shard` looks up vocabularies by name (see shard(1), ENVIRONMENT).
if [ -n "${SHARD_CACHE_DIR:-}" ]; then
    VOCAB=$SHARD_CACHE_DIR/tokenizers
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    VOCAB=$XDG_CACHE_HOME/shard/tokenizers
else
    VOCAB=$HOME/.cache/shard/tokenizers
fi

# ref_spec MODEL: what the reference scripts take for a tokenizer: the
# tokenizer.json path for the tokenizer.json names, else the name.
ref_spec() {
    case $1 in
    llama3 | qwen3 | gpt4o) echo "$VOCAB/$1.json" ;;
    *) echo "$1" ;;
    esac
}
