#!/usr/bin/env bash
# Idle resident memory: starts `orchestra serve` on its embedded defaults, sends a few probes so
# every worker has run, waits, and prints VmRSS (and the peak, VmHWM).
#
#   bench/idle_memory.sh [build-dir]
set -euo pipefail

build=${1:-build/release}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
[[ -x $orchestra ]] || { echo "no binary at $orchestra (make build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

cd "$tmp"
"$orchestra" serve --listen 127.0.0.1:0 >"$tmp/log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(grep -m1 -oE '"address":"[0-9.]+:[0-9]+' "$tmp/log" | grep -oE '[0-9]+$' || true)
  [[ -n $port ]] && break
  sleep 0.05
done
[[ -n $port ]] || { cat "$tmp/log" >&2; exit 1; }
for _ in $(seq 1 20); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null; done
sleep 2
awk '/VmRSS|VmHWM/ {printf "%s %s %s\n", $1, $2, $3}' "/proc/$pid/status"
