#!/usr/bin/env bash
# Installs the BPE ranks of the cl100k_base and o200k_base tokenizers (src/tokens) into models/.
#
# They come from the js-tiktoken npm package, pinned and checked by SHA-256, which ships them in a
# compact form (dist/ranks/<name>.js: `export default {"bpe_ranks": "! <first rank> <base64 of
# each token's bytes> ...", ...}`). They are converted into tiktoken's text format, one
# "<base64> <rank>" per line, which gives files byte-identical to the ones OpenAI publishes: their
# SHA-256 (the expected_hash in tiktoken's openai_public.py) is checked as well.
#
# Idempotent: does nothing when both files are there with the right hash. Needs npm and node
# (scripts/setup.sh installs them) and the npm registry, unless the package is in the cache.
#
#   scripts/models/tiktoken.sh [models dir]     default: <repository>/models
#   ORCHESTRA_CACHE_DIR   where the package is kept (default: <repository>/.cache)
set -euo pipefail

version=1.0.21
tarball_sha256=3b1f24b185565ca9a8d8f51466dfc4f99d67f1f05bc009258710ddb7a8d810fa
names=(cl100k_base o200k_base)
declare -A file_sha256=(
  [cl100k_base]=223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7
  [o200k_base]=446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d
)

repo=$(cd "$(dirname "$0")/../.." && pwd)
models=${1:-$repo/models}
cache=${ORCHESTRA_CACHE_DIR:-$repo/.cache}/npm

sha256() { sha256sum "$1" | cut -d' ' -f1; }

up_to_date() {
  local name
  for name in "${names[@]}"; do
    [[ -f $models/$name.tiktoken && $(sha256 "$models/$name.tiktoken") == "${file_sha256[$name]}" ]] ||
      return 1
  done
}

if up_to_date; then exit 0; fi
for tool in npm node; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "tiktoken.sh: $tool is needed (scripts/setup.sh installs it)" >&2
    exit 1
  }
done

mkdir -p "$cache" "$models"
tarball=$cache/js-tiktoken-$version.tgz
if [[ ! -f $tarball || $(sha256 "$tarball") != "$tarball_sha256" ]]; then
  echo "tiktoken.sh: fetching js-tiktoken@$version"
  rm -f "$tarball"
  npm pack "js-tiktoken@$version" --pack-destination "$cache" --silent --no-fund >/dev/null
fi
actual=$(sha256 "$tarball")
if [[ $actual != "$tarball_sha256" ]]; then
  echo "tiktoken.sh: $tarball has SHA-256 $actual, expected $tarball_sha256" >&2
  rm -f "$tarball"
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
members=()
for name in "${names[@]}"; do members+=("package/dist/ranks/$name.js"); done
tar -xzf "$tarball" -C "$work" "${members[@]}"

for name in "${names[@]}"; do
  node - "$work/package/dist/ranks/$name.js" "$work/$name.tiktoken" <<'JS'
const fs = require("fs");
const [source, target] = process.argv.slice(2);
const text = fs.readFileSync(source, "utf8");
const { bpe_ranks: ranks } = JSON.parse(text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1));
const lines = [];
for (const line of ranks.split("\n")) {
  if (!line) continue;
  const [, first, ...tokens] = line.split(" ");
  tokens.forEach((token, i) => lines.push(`${token} ${Number(first) + i}\n`));
}
fs.writeFileSync(target, lines.join(""));
JS
  actual=$(sha256 "$work/$name.tiktoken")
  if [[ $actual != "${file_sha256[$name]}" ]]; then
    echo "tiktoken.sh: converted $name.tiktoken has SHA-256 $actual, expected ${file_sha256[$name]}" >&2
    exit 1
  fi
  # Same file system as the target, then an atomic rename: a reader never sees half a file.
  cp "$work/$name.tiktoken" "$models/.$name.tiktoken.tmp"
  mv -f "$models/.$name.tiktoken.tmp" "$models/$name.tiktoken"
  echo "tiktoken.sh: installed $models/$name.tiktoken"
done
