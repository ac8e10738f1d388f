#!/usr/bin/env bash
# User-space instructions per proxied POST /v1/chat/completions, counted by callgrind: the
# deterministic figure behind the gateway's CPU work (wall-clock CPU on a shared machine drifts
# by tens of percent between runs; this does not). Runs Orchestra under valgrind twice, idle and
# under `wrk -c4` for 10 s against the test upstream, and prints (loaded - idle) / requests.
# The route is an OpenAI-compatible one with the access log off, as in gateway_vs_nginx.sh.
# Load shedding by event-loop delay is set out of reach: under valgrind every request is slow
# enough to trip it, and the shed requests would be counted as proxied.
#
#   bench/gateway_instructions.sh [build-dir]
#
# Needs valgrind and wrk. Takes about a minute. `callgrind_annotate <file>` on the kept profile
# (printed at the end) shows where the instructions go.
set -euo pipefail

build=${1:-build/release}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
upstream_bin="$here/$build/orchestra_test_upstream"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools valgrind callgrind_annotate wrk curl
need_binaries "$orchestra" "$upstream_bin"

tmp=$(mktemp -d)
cleanup() {
  stop_started
  rm -rf "$tmp"
}
trap cleanup EXIT

launch "$tmp/upstream.log" "$upstream_bin" --listen 127.0.0.1:0 --threads 1
up_port=$(port_of "$tmp/upstream.log")
cat >"$tmp/orchestra.yaml" <<CONF
server: {threads: 1, max_inflight: 100000, max_loop_delay: 0s}  # valgrind runs ~50x slower
observability: {access_log: false}
providers:
  - {name: up, type: openai, base_url: "http://127.0.0.1:$up_port/v1"}
models:
  - {name: bench, targets: [{provider: up, model: gpt-test}]}
storage: {path: $tmp/orchestra.db}
CONF
cat >"$tmp/bench.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"bench","stream":false,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark in a few words."}],"temperature":0.2,"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
LUA

# profile <name> <load: yes|no>: prints "<instructions> <requests>".
profile() {
  local name=$1 load=$2 log="$tmp/$1.log" requests=0
  valgrind --tool=callgrind --callgrind-out-file="$tmp/$name.out" \
    "$orchestra" serve --config "$tmp/orchestra.yaml" --listen 127.0.0.1:0 >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local port
  port=$(port_of "$log")
  # The first requests pay one-time costs (connections, metric cells); both runs get them.
  for _ in 1 2 3; do
    curl -fs -o /dev/null -H 'Content-Type: application/json' \
      -d '{"model":"bench","messages":[{"role":"user","content":"warm"}]}' \
      "http://127.0.0.1:$port/v1/chat/completions"
  done
  if [[ $load == yes ]]; then
    requests=$(wrk -t1 -c4 -d10s -s "$tmp/bench.lua" "http://127.0.0.1:$port/v1/chat/completions" |
      awk '/requests in/ {print $1}')
  else
    sleep 10
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  local total
  total=$(callgrind_annotate "$tmp/$name.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$total $requests"
}

read -r idle _ < <(profile idle no)
read -r loaded requests < <(profile loaded yes)
echo "requests: $requests under callgrind"
echo "instructions per proxied request: $(((loaded - idle) / requests))"
kept=$(mktemp /tmp/orchestra-callgrind.XXXXXX)
cp "$tmp/loaded.out" "$kept"
echo "profile kept in $kept"
