#!/bin/sh
# install-npm.sh DIR - installs the reference tokenizer, the npm package
# tiktoken@1.0.22 (tiktoken's Rust core built to WASM), under DIR so that
# DIR/node_modules/tiktoken exists.  Does nothing when that version is
# already there.  Needs npm and the npm registry.
set -eu

version=1.0.22

if [ $# -ne 1 ]; then
    echo "usage: install-npm.sh DIR" >&2
    exit 2
fi
dir=$1
manifest=$dir/node_modules/tiktoken/package.json

if [ -f "$manifest" ] &&
   grep -q "\"version\": *\"$version\"" "$manifest"; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "install-npm.sh: npm not found (apt-get install npm)" >&2
    exit 1
fi

mkdir -p "$dir"
if ! npm install --prefix "$dir" --no-audit --no-fund --silent \
        "tiktoken@$version" >&2; then
    echo "install-npm.sh: npm install tiktoken@$version into $dir failed" >&2
    exit 1
fi

if ! [ -f "$manifest" ]; then
    echo "install-npm.sh: $manifest missing after npm install" >&2
    exit 1
fi
