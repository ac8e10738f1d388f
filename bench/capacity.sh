#!/usr/bin/env bash
# Capacity per vCPU (docs/DEPLOY.md "Concurrency and autoscaling"): how many requests in flight
# one vCPU of Orchestra carries when the model takes its time. One worker thread pinned to CPU 1
# (one vCPU); the test upstream answers every request after 1 s (a short model call); wrk on
# CPU 0 holds N connections, each always with one request in flight, for N in a rising series.
# For each N: requests/s, p50 and p99 (minus the upstream's 1 s: Orchestra's own added time),
# errors, and Orchestra's CPU use (share of its one vCPU, from /proc/<pid>/stat). The capacity
# per vCPU is the largest N whose CPU use stays under Cloud Run's 60 % scaling point with an
# added p99 under 50 ms and no error.
#
#   bench/capacity.sh [build-dir] [seconds-per-run] [connections...]
set -euo pipefail

build=${1:-build/release}
duration=${2:-15}
shift $(($# > 2 ? 2 : $#))
series=("$@")
((${#series[@]})) || series=(250 500 1000 2000)
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
upstream_bin="$here/$build/orchestra_test_upstream"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools wrk taskset curl
need_binaries "$orchestra" "$upstream_bin"
ulimit -n 65536 2>/dev/null || true

tmp=$(mktemp -d)
cleanup() {
  stop_started
  rm -rf "$tmp"
}
trap cleanup EXIT

launch "$tmp/upstream.log" taskset -c 0 "$upstream_bin" --listen 127.0.0.1:0 --threads 1 --latency 1s
up_port=$(port_of "$tmp/upstream.log")
cat >"$tmp/orchestra.yaml" <<CONF
server: {threads: 1}
observability: {access_log: false}
providers:
  - {name: up, type: openai, base_url: "http://127.0.0.1:$up_port/v1", max_connections: 4096}
models:
  - {name: bench, targets: [{provider: up, model: gpt-test}], timeout: 30s}
storage: {path: $tmp/orchestra.db}
CONF
launch "$tmp/orchestra.log" taskset -c 1 "$orchestra" serve --config "$tmp/orchestra.yaml" --listen 127.0.0.1:0
orch_pid=${pids[-1]}
orch_port=$(port_of "$tmp/orchestra.log")
cat >"$tmp/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"bench","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark in a few words."}],"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
LUA
url="http://127.0.0.1:$orch_port/v1/chat/completions"
taskset -c 0 wrk -t1 -c100 -d3s --timeout 10s -s "$tmp/chat.lua" "$url" >/dev/null

hz=$(getconf CLK_TCK)
echo "POST /v1/chat/completions, upstream answering after 1 s; Orchestra: 1 worker on CPU 1; ${duration}s per run"
printf '  %6s %10s %10s %12s %8s  %s\n' "in flight" "req/s" "p50" "p99 - 1 s" "cpu" "errors"
for conns in "${series[@]}"; do
  out="$tmp/run-$conns.wrk"
  before=$(cpu_ticks "$orch_pid")
  start=$(date +%s.%N)
  taskset -c 0 wrk -t1 -c"$conns" -d"${duration}s" --latency --timeout 10s -s "$tmp/chat.lua" "$url" >"$out" 2>&1
  end=$(date +%s.%N)
  after=$(cpu_ticks "$orch_pid")
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  added=$(awk -v v="$p99" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    ms = (u == "s") ? n * 1000 : (u == "us") ? n / 1000 : (u == "m") ? n * 60000 : n;
    printf "%.1fms", ms - 1000 }')
  cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v s="$start" -v e="$end" 'BEGIN {printf "%.1f%%", t / hz / (e - s) * 100}')
  errors=$(awk '/Non-2xx|Socket errors|timeout/ {printf "%s ", $0}' "$out")
  printf '  %9s %10s %10s %12s %8s  %s\n' "$conns" "$rps" "$p50" "$added" "$cpu" "${errors:-none}"
done
