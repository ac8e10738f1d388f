#!/usr/bin/env bash
# Checks that the test upstream is never the bottleneck of a benchmark: wrk (one core) against
# orchestra_test_upstream answering a POST chat completion, then against nginx `return 200`,
# both servers pinned to the other core. Prints throughput and the server's CPU per request.
#
#   tests/support/upstream/compare_with_nginx.sh [path/to/orchestra_test_upstream] [rounds]
#
# Needs wrk and nginx (nginx-light). DURATION (default 5s) and CONNECTIONS (64) override.
set -euo pipefail

upstream_bin=${1:-build/release/orchestra_test_upstream}
rounds=${2:-3}
duration=${DURATION:-5s}
connections=${CONNECTIONS:-64}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

cat >"$work/chat.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"gpt-test","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark in a few words."}],"temperature":0.2,"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-test"
EOF

cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:18480;
    location / { return 200 '{"ok":true}'; }
  }
}
EOF

taskset -c 1 "$upstream_bin" --listen 127.0.0.1:18481 >"$work/upstream.out" 2>&1 &
upstream_pid=$!
taskset -c 1 nginx -c "$work/nginx.conf" -p "$work" >"$work/nginx.out" 2>&1 &
sleep 0.5
nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
hz=$(getconf CLK_TCK)

# user and system CPU ticks of a process
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

# measure <label> <server pid> <url> [wrk script]
measure() {
  local label=$1 pid=$2 url=$3 script=${4:-}
  local before after out requests rps
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 0 wrk -t1 -c"$connections" -d"$duration" ${script:+-s "$script"} "$url")
  after=$(cpu_ticks "$pid")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  awk -v l="$label" -v r="$rps" -v b="$before" -v a="$after" -v n="$requests" -v hz="$hz" '
    BEGIN {
      split(b, x, " "); split(a, y, " ")
      u = (y[1] - x[1]) * 1e6 / hz / n; s = (y[2] - x[2]) * 1e6 / hz / n
      printf "%-36s %8.0f req/s  CPU/request %5.2f us (user %4.2f, kernel %5.2f)\n", l, r, u + s, u, s
    }'
  grep -E "Non-2xx|Socket errors" <<<"$out" || true
}

for round in $(seq 1 "$rounds"); do
  echo "round $round"
  measure "upstream POST /v1/chat/completions" "$upstream_pid" \
    http://127.0.0.1:18481/v1/chat/completions "$work/chat.lua"
  measure "nginx return 200 (GET)" "$nginx_worker" http://127.0.0.1:18480/
  measure "nginx return 200 (same POST)" "$nginx_worker" http://127.0.0.1:18480/ "$work/chat.lua"
done
