#!/usr/bin/env bash
# GET /healthz on Orchestra versus nginx answering `return 200`, side by side in one run:
# each server pinned to CPU 1 with one worker, wrk pinned to CPU 0 (keep-alive, 64
# connections). Prints requests/s and latency percentiles for both.
#
#   bench/healthz_vs_nginx.sh [build-dir] [duration-seconds] [connections]
set -euo pipefail

build=${1:-build/release}
duration=${2:-10}
connections=${3:-64}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools wrk nginx taskset
need_binaries "$orchestra"

tmp=$(mktemp -d)
cleanup() {
  stop_started
  rm -rf "$tmp"
}
trap cleanup EXIT

nginx_port=$(free_port)
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
error_log $tmp/nginx/logs/error.log warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /healthz { default_type application/json; return 200 '{"status":"ok"}'; }
  }
}
CONF
taskset -c 1 nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
nginx_pid=$!

orch_port=$(free_port)
(cd "$tmp" && exec taskset -c 1 "$orchestra" serve --listen "127.0.0.1:$orch_port") >"$tmp/orchestra.log" 2>&1 &
pids+=($!)
orch_pid=$!

wait_up() {
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "server on port $1 did not come up" >&2
  exit 1
}
wait_up "$nginx_port"
wait_up "$orch_port"


run() {
  local name=$1 port=$2 pid=$3
  # warm-up, then the measured run
  taskset -c 0 wrk -t1 -c"$connections" -d2s "http://127.0.0.1:$port/healthz" >/dev/null
  local before after
  before=$(cpu_ticks "$pid")
  taskset -c 0 wrk -t1 -c"$connections" -d"${duration}s" --latency "http://127.0.0.1:$port/healthz" \
    >"$tmp/$name.wrk"
  after=$(cpu_ticks "$pid")
  local rps p50 p99 requests cpu_us
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/$name.wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$tmp/$name.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$tmp/$name.wrk")
  requests=$(awk '/requests in/ {print $1}' "$tmp/$name.wrk")
  cpu_us=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
  printf '%-10s %12s req/s   p50 %8s   p99 %8s   cpu/req %5s us\n' "$name" "$rps" "$p50" "$p99" "$cpu_us"
}

echo "GET /healthz, wrk -t1 -c$connections -d${duration}s, servers on CPU 1, wrk on CPU 0"
run nginx "$nginx_port" "$nginx_pid"
run orchestra "$orch_port" "$orch_pid"
