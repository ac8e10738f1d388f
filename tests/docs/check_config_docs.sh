#!/usr/bin/env bash
# Keeps docs/CONFIG.md complete: every configuration key that `orchestra check-config --keys`
# lists (the schema in src/config/loader.cpp, where each key is declared once) must appear in
# it, written as its full dotted path in backticks (`server.max_inflight`,
# `models[].retry.attempts`, `storage.checkpoints.keep_last`; list items are `[]`). The
# fixtures next to this script must also pass `check-config`, so the documented examples of
# every section stay valid.
#
#   tests/docs/check_config_docs.sh <orchestra binary> <CONFIG.md>
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <orchestra binary> <CONFIG.md>" >&2
  exit 2
fi
orchestra=$1
doc=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[[ -x $orchestra ]] || { echo "FAIL: no executable at $orchestra" >&2; exit 1; }
[[ -r $doc ]] || { echo "FAIL: cannot read $doc" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'docs-test-key\n' >"$tmp/key"

# A clean environment: no ORCHESTRA_* or $PORT from the caller may change what is printed.
run() { env -i PATH="$PATH" DOCS_TEST_OPS_KEY=docs-test-ops-key "$orchestra" "$@"; }

run check-config --keys >"$tmp/keys" 2>"$tmp/err" || {
  echo "FAIL: orchestra check-config --keys failed:" >&2
  cat "$tmp/err" >&2
  exit 1
}
[[ -s $tmp/keys ]] || { echo "FAIL: check-config --keys listed nothing" >&2; exit 1; }

shopt -s nullglob
for fixture in "$here"/*.yaml; do
  sed "s#@KEY_FILE@#$tmp/key#g" "$fixture" >"$tmp/config.yaml"
  run check-config --config "$tmp/config.yaml" >/dev/null 2>"$tmp/err" || {
    echo "FAIL: orchestra check-config rejected $(basename "$fixture"):" >&2
    cat "$tmp/err" >&2
    exit 1
  }
done

missing=()
while IFS= read -r key_path; do
  grep -qF -- "\`$key_path\`" "$doc" || missing+=("$key_path")
done <"$tmp/keys"
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "FAIL: $doc does not document these configuration keys (write each as \`path\`):" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "OK: the $(wc -l <"$tmp/keys") configuration keys are documented in $doc"
