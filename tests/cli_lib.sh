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
