#!/usr/bin/env bash
# Keeps docs/CONFIG.md complete: every configuration key that `orchestra check-config` prints
# must appear in it, written as its full dotted path in backticks (`server.max_inflight`,
# `models[].retry.attempts`, `storage.checkpoints.keep_last`; list items are `[]`).
#
#   tests/docs/check_config_docs.sh <orchestra binary> <CONFIG.md>
#
# Each *.yaml fixture next to this script sets every section (and, between them, every key),
# so check-config prints every key path it knows. As a second net, every key name that
# src/config/loader.cpp asks for must be a component of some documented path, which catches a key
# the loader reads but check-config does not print. Exits 1 listing what is missing.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <orchestra binary> <CONFIG.md>" >&2
  exit 2
fi
orchestra=$1
doc=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
loader="$here/../../src/config/loader.cpp"

[[ -x $orchestra ]] || { echo "FAIL: no executable at $orchestra" >&2; exit 1; }
[[ -r $doc ]] || { echo "FAIL: cannot read $doc" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The key file an auth key of the fixtures reads (check-config reads every key source).
printf 'docs-test-key\n' >"$tmp/key"

# The YAML that check-config prints (yaml-cpp's block style, two-space indents, flow maps and
# sequences on one line) as dotted paths, one per line. Only leaves are printed. The children
# of free-form maps (header names under providers[].headers) are user data, not keys.
to_paths() {
  awk '
    function indent_of(line) { match(line, /^ */); return RLENGTH }
    function pop_to(n) { while (depth > 0 && ind[depth] >= n) depth-- }
    function parent() { return depth > 0 ? path[depth] : "" }
    function join(p, k) { return p == "" ? k : p "." k }
    function flow_keys(p, text,    body, parts, i, k) {
      body = text
      sub(/^\{/, "", body); sub(/\}[[:space:]]*$/, "", body)
      split(body, parts, /, /)
      for (i in parts) {
        k = parts[i]; sub(/:.*/, "", k)
        if (k != "") print join(p, k)
      }
    }
    BEGIN { depth = 0; skip = -1 }
    /^[[:space:]]*$/ { next }
    {
      n = indent_of($0)
      if (skip >= 0) { if (n > skip) next; skip = -1 }
      rest = substr($0, n + 1)
      if (rest ~ /^- /) {                      # a list item: its keys sit two columns in
        pop_to(n)
        item = parent() "[]"
        depth++; ind[depth] = n; path[depth] = item
        rest = substr(rest, 3); n += 2
        if (rest ~ /^\{/) { flow_keys(path[depth], rest); next }
        if (rest !~ /:/) next                  # a scalar item
      }
      pop_to(n)
      if (rest ~ /^\[/ || rest ~ /^\{\}/) next # an empty or flow sequence of scalars
      key = rest; sub(/:.*/, "", key)
      value = rest; sub(/^[^:]*:[ ]?/, "", value)
      p = join(parent(), key)
      if (p ~ /(^|\.)headers$/) { print p; skip = n; next }
      if (value == "") { depth++; ind[depth] = n; path[depth] = p; next }
      if (value ~ /^\{/) { flow_keys(p, value); next }
      print p
    }
  '
}

missing=()
checked=0
shopt -s nullglob
fixtures=("$here"/*.yaml)
[[ ${#fixtures[@]} -gt 0 ]] || { echo "FAIL: no fixture in $here" >&2; exit 1; }

for fixture in "${fixtures[@]}"; do
  config="$tmp/$(basename "$fixture")"
  sed "s#@KEY_FILE@#$tmp/key#g" "$fixture" >"$config"
  # A clean environment: no ORCHESTRA_* or $PORT from the caller may change what is printed.
  if ! env -i PATH="$PATH" DOCS_TEST_OPS_KEY=docs-test-ops-key \
    "$orchestra" check-config --config "$config" >"$tmp/out.yaml" 2>"$tmp/err"; then
    echo "FAIL: orchestra check-config rejected $(basename "$fixture"):" >&2
    cat "$tmp/err" >&2
    exit 1
  fi
  to_paths <"$tmp/out.yaml" | sort -u >"$tmp/paths"
  if [[ ! -s $tmp/paths ]]; then
    echo "FAIL: no key paths read from the check-config output of $(basename "$fixture")" >&2
    exit 1
  fi
  while IFS= read -r key_path; do
    checked=$((checked + 1))
    grep -qF -- "\`$key_path\`" "$doc" || missing+=("$key_path")
  done <"$tmp/paths"
done

# Every key name the loader asks for (Section::String("listen", ...), Child("retry"), ...) must
# be a component of at least one documented path.
names_checked=0
if [[ -r $loader ]]; then
  while IFS= read -r name; do
    names_checked=$((names_checked + 1))
    grep -qE -- "\`([a-z0-9_]+(\[\])?\.)*${name}(\[\])?(\.[][a-z0-9_.]+)?\`" "$doc" || missing+=("(loader key) $name")
  done < <(grep -oE '\.(String|Bool|Int|Double|Dur|Size|Choice|StringList|StringMap|Child|Has|List)\("[a-z0-9_]+"' \
    "$loader" | sed -E 's/.*\("([a-z0-9_]+)"/\1/' | sort -u)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "FAIL: $doc does not document these configuration keys (write each as \`path\`):" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "OK: $checked key paths from ${#fixtures[@]} fixture(s) and $names_checked loader key names are documented in $doc"
