#!/usr/bin/env bash
# The gateway benchmark (issue 3), side by side in one run against the test upstream:
#   direct      wrk → orchestra_test_upstream
#   nginx       wrk → nginx (proxy_pass, upstream keep-alive) → upstream
#   orchestra   wrk → orchestra (an OpenAI-compatible route) → upstream
# wrk runs on CPU 0; the servers and the upstream share CPU 1, one worker each.
#
# Scenarios:
#   1. added latency at 1 and 8 connections (p50/p99 minus direct), upstream answering at once;
#   2. saturation at 64 connections: requests/s and the proxy's own CPU per request
#      (from /proc/<pid>/stat over the run);
#   3. upstream adding 20 ms, 256 connections: throughput as a share of direct;
#   4. 1,000 concurrent streaming requests: errors and orchestra's peak resident memory.
#
#   bench/gateway_vs_nginx.sh [build-dir] [seconds-per-run]
set -euo pipefail

build=${1:-build/release}
duration=${2:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
upstream_bin="$here/$build/orchestra_test_upstream"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools wrk nginx taskset curl
need_binaries "$orchestra" "$upstream_bin"

tmp=$(mktemp -d)
cleanup() {
  stop_started
  rm -rf "$tmp"
}
trap cleanup EXIT

write_lua() {
  local file=$1 model=$2 stream=$3
  cat >"$file" <<EOF
wrk.method = "POST"
wrk.body = '{"model":"$model","stream":$stream,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark in a few words."}],"temperature":0.2,"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
EOF
}

# run <label> <url> <lua> <connections> <seconds> [pid-for-cpu]
run() {
  local label=$1 url=$2 lua=$3 conns=$4 secs=$5 pid=${6:-}
  local out="$tmp/$label.wrk" before=0 after=0
  [[ -n $pid ]] && before=$(cpu_ticks "$pid")
  taskset -c 0 wrk -t1 -c"$conns" -d"${secs}s" --latency --timeout 10s -s "$lua" "$url" >"$out" 2>&1
  [[ -n $pid ]] && after=$(cpu_ticks "$pid")
  local rps p50 p99 requests errors cpu_us="-"
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  requests=$(awk '/requests in/ {print $1}' "$out")
  errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$out")
  if [[ -n $pid && ${requests:-0} -gt 0 ]]; then
    local hz
    hz=$(getconf CLK_TCK)
    cpu_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
  fi
  printf '  %-12s %10s req/s  p50 %9s  p99 %9s  cpu/req %6s us  %s\n' \
    "$label" "$rps" "$p50" "$p99" "$cpu_us" "${errors:-}"
}

# --- processes -----------------------------------------------------------------------------
launch "$tmp/upstream.log" taskset -c 1 "$upstream_bin" --listen 127.0.0.1:0 --threads 1
launch "$tmp/upstream-slow.log" taskset -c 1 "$upstream_bin" --listen 127.0.0.1:0 --threads 1 --latency 20ms
up_port=$(port_of "$tmp/upstream.log")
slow_port=$(port_of "$tmp/upstream-slow.log")

nginx_port=$(free_port)
nginx_slow_port=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
error_log $tmp/nginx/error.log warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream fast { server 127.0.0.1:$up_port; keepalive 256; }
  upstream slow { server 127.0.0.1:$slow_port; keepalive 512; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / { proxy_pass http://fast; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
  server {
    listen 127.0.0.1:$nginx_slow_port;
    location / { proxy_pass http://slow; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
CONF
taskset -c 1 nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
nginx_pid=$!

# Like for like: nginx runs with access_log off, so Orchestra does too (ACCESS_LOG=true to keep
# it; it costs about a tenth of Orchestra's user-space work per request).
cat >"$tmp/orchestra.yaml" <<CONF
server: {threads: 1, max_inflight: 100000}
observability: {access_log: ${ACCESS_LOG:-false}}
providers:
  - {name: up, type: openai, base_url: "http://127.0.0.1:$up_port/v1", max_connections: 1024}
  - {name: slow, type: openai, base_url: "http://127.0.0.1:$slow_port/v1", max_connections: 1024}
models:
  - {name: bench, targets: [{provider: up, model: gpt-test}]}
  - {name: bench-slow, targets: [{provider: slow, model: gpt-test}]}
  - {name: bench-stream, targets: [{provider: slow, model: "gpt-test+chunks=20+chunk_delay=50ms"}], timeout: 60s}
storage: {path: $tmp/orchestra.db}
CONF
launch "$tmp/orchestra.log" taskset -c 1 "$orchestra" serve --config "$tmp/orchestra.yaml" --listen 127.0.0.1:0
orch_pid=${pids[-1]}
orch_port=$(port_of "$tmp/orchestra.log")
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$nginx_port/v1/models" >/dev/null 2>&1 && break; sleep 0.05; done

write_lua "$tmp/direct.lua" gpt-test false
write_lua "$tmp/bench.lua" bench false
write_lua "$tmp/slow.lua" bench-slow false
write_lua "$tmp/stream.lua" bench-stream true

direct="http://127.0.0.1:$up_port/v1/chat/completions"
via_nginx="http://127.0.0.1:$nginx_port/v1/chat/completions"
via_orchestra="http://127.0.0.1:$orch_port/v1/chat/completions"

# Warm-up: pools, caches, page faults.
taskset -c 0 wrk -t1 -c64 -d2s -s "$tmp/bench.lua" "$via_orchestra" >/dev/null
taskset -c 0 wrk -t1 -c64 -d2s -s "$tmp/direct.lua" "$via_nginx" >/dev/null

echo "POST /v1/chat/completions (non-streaming), ${duration}s per run; servers on CPU 1, wrk on CPU 0"
for conns in 1 8; do
  echo "$conns connection(s):"
  run "direct" "$direct" "$tmp/direct.lua" "$conns" "$duration"
  run "nginx" "$via_nginx" "$tmp/direct.lua" "$conns" "$duration"
  run "orchestra" "$via_orchestra" "$tmp/bench.lua" "$conns" "$duration"
done
echo "saturation, 64 connections (cpu/req: the proxy process alone):"
run "direct" "$direct" "$tmp/direct.lua" 64 "$duration"
run "nginx" "$via_nginx" "$tmp/direct.lua" 64 "$duration" "$nginx_pid"
run "orchestra" "$via_orchestra" "$tmp/bench.lua" 64 "$duration" "$orch_pid"

echo "upstream adding 20 ms, 256 connections:"
run "direct" "http://127.0.0.1:$slow_port/v1/chat/completions" "$tmp/direct.lua" 256 "$duration"
run "nginx" "http://127.0.0.1:$nginx_slow_port/v1/chat/completions" "$tmp/direct.lua" 256 "$duration"
run "orchestra" "$via_orchestra" "$tmp/slow.lua" 256 "$duration"

echo "1000 concurrent streams (20 chunks, 50 ms apart, ~1 s each):"
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$orch_pid/status")
run "orchestra" "$via_orchestra" "$tmp/stream.lua" 1000 "$duration"
peak=$(awk '/VmHWM/ {print $2}' "/proc/$orch_pid/status")
printf '  orchestra resident memory: %s KiB before, peak %s KiB\n' "$rss_before" "$peak"
