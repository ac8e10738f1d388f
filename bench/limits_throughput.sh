#!/usr/bin/env bash
# What per-key limits cost through the real gateway (issue 13), side by side in one run against
# the test upstream answering at once:
#   off         a key without limits or budget
#   in-process  a key with rpm + tpm + max_parallel, a per-model limit and a budget (limits never
#               reached), limits.backend: local
#   redis       the same key with fleet-wide limits in a local redis-server (limits.redis_url)
#   postgres    the same key with fleet-wide limits in a local PostgreSQL 15 (limits.backend:
#               postgres; $ORCHESTRA_PG_BIN, default /usr/lib/postgresql/15/bin)
# Scenarios: added latency at 1 connection (p50/p99), and saturation at 64 connections
# (requests/s; the share of `off` is the issue's "limits on vs off ≥ 90 %").
# Orchestra and the upstream share CPU 1; wrk, redis-server and PostgreSQL run on CPU 0. The three run in
# turn, ROUNDS times (default 3), and the shares use each one's best round, so that a machine
# busy with other work skews all three alike.
#
#   bench/limits_throughput.sh [build-dir] [seconds-per-run]
set -euo pipefail

build=${1:-build/release}
duration=${2:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
upstream_bin="$here/$build/orchestra_test_upstream"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools wrk taskset curl redis-server
need_binaries "$orchestra" "$upstream_bin"
pg_bin=${ORCHESTRA_PG_BIN:-/usr/lib/postgresql/15/bin}
[[ -x $pg_bin/postgres ]] || { echo "no PostgreSQL in $pg_bin (set ORCHESTRA_PG_BIN)" >&2; exit 1; }

tmp=$(mktemp -d)
chmod 755 "$tmp"  # PostgreSQL runs as another user when we are root
cleanup() {
  stop_postgres "$tmp/pg/data"
  stop_started
  rm -rf "$tmp"
}
trap cleanup EXIT

launch "$tmp/upstream.log" taskset -c 1 "$upstream_bin" --listen 127.0.0.1:0 --threads 1
up_port=$(port_of "$tmp/upstream.log")
redis_port=$(free_port)
launch "$tmp/redis.log" taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 \
  --save '' --appendonly no --dir "$tmp"
for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
pg_port=$(free_port)
mkdir -p "$tmp/pg"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$tmp/pg"; fi
as_postgres "$pg_bin/initdb" -D "$tmp/pg/data" -A trust -U postgres -E UTF8 --locale=C \
  --no-instructions >"$tmp/pg/initdb.log" 2>&1
launch "$tmp/postgres.log" as_postgres taskset -c 0 "$pg_bin/postgres" -D "$tmp/pg/data" \
  -p "$pg_port" -k "$tmp/pg" -c listen_addresses=127.0.0.1
for _ in $(seq 1 200); do "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.05; done

# start_orchestra <name> <limits yaml>
start_orchestra() {
  local name=$1 limits=$2
  cat >"$tmp/$name.yaml" <<CONF
server: {threads: 1, max_inflight: 100000}
observability: {access_log: false}
auth:
  keys:
    - {name: free, key_env: FREE_KEY, scopes: [user]}
    - name: limited
      key_env: LIMITED_KEY
      scopes: [user]
      limits: {rpm: 1000000000, tpm: 1000000000, max_parallel: 1000000, per_model: [{model: bench, rpm: 1000000000, tpm: 1000000000}]}
      budget: {usd: 1000000000, period: month}
providers:
  - {name: up, type: openai, base_url: "http://127.0.0.1:$up_port/v1", max_connections: 1024}
models:
  - {name: bench, targets: [{provider: up, model: gpt-test}], price: {input_per_mtok: 0.15, output_per_mtok: 0.6}}
storage: {path: $tmp/$name.db}
limits: $limits
CONF
  FREE_KEY=free-secret LIMITED_KEY=limited-secret \
    launch "$tmp/$name.log" taskset -c 1 "$orchestra" serve --config "$tmp/$name.yaml" --listen 127.0.0.1:0
}
start_orchestra local "{backend: local}"
local_port=$(port_of "$tmp/local.log")
start_orchestra fleet "{redis_url: 'redis://127.0.0.1:$redis_port/0'}"
fleet_port=$(port_of "$tmp/fleet.log")
start_orchestra pg "{backend: postgres, postgres_url: 'postgresql://postgres@127.0.0.1:$pg_port/postgres'}"
pg_port_orchestra=$(port_of "$tmp/pg.log")

write_lua() {
  local file=$1 secret=$2
  cat >"$file" <<EOF
wrk.method = "POST"
wrk.body = '{"model":"bench","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark in a few words."}],"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $secret"
EOF
}
write_lua "$tmp/free.lua" free-secret
write_lua "$tmp/limited.lua" limited-secret

# run <label> <port> <lua> <connections> <seconds>
run() {
  local label=$1 port=$2 lua=$3 conns=$4 secs=$5
  local out="$tmp/$label.wrk"
  taskset -c 0 wrk -t1 -c"$conns" -d"${secs}s" --latency --timeout 10s -s "$lua" \
    "http://127.0.0.1:$port/v1/chat/completions" >"$out" 2>&1
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$out")
  printf '  %-12s %10s req/s  p50 %9s  p99 %9s  %s\n' "$label" "$rps" "$p50" "$p99" "${errors:-}"
  echo "$rps" >"$tmp/$label.rps"
}

# Warm-up: pools, connections to Redis, page faults.
for port in "$local_port" "$fleet_port" "$pg_port_orchestra"; do
  taskset -c 0 wrk -t1 -c16 -d2s -s "$tmp/limited.lua" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
done

echo "POST /v1/chat/completions, ${duration}s per run; orchestra + upstream on CPU 1, wrk + redis + postgres on CPU 0"
for round in $(seq 1 "${ROUNDS:-3}"); do
  echo "round $round, 1 connection:"
  run "off-1-$round" "$local_port" "$tmp/free.lua" 1 "$duration"
  run "in-process-1-$round" "$local_port" "$tmp/limited.lua" 1 "$duration"
  run "redis-1-$round" "$fleet_port" "$tmp/limited.lua" 1 "$duration"
  run "postgres-1-$round" "$pg_port_orchestra" "$tmp/limited.lua" 1 "$duration"
  echo "round $round, saturation, 64 connections:"
  run "off-64-$round" "$local_port" "$tmp/free.lua" 64 "$duration"
  run "in-process-64-$round" "$local_port" "$tmp/limited.lua" 64 "$duration"
  run "redis-64-$round" "$fleet_port" "$tmp/limited.lua" 64 "$duration"
  run "postgres-64-$round" "$pg_port_orchestra" "$tmp/limited.lua" 64 "$duration"
done
best() { cat "$tmp/$1"-*.rps | sort -g | tail -1; }
off=$(best off-64)
echo "best of the rounds at 64 connections:"
for label in off-64 in-process-64 redis-64 postgres-64; do
  awk -v a="$(best "$label")" -v b="$off" -v l="$label" \
    'BEGIN {printf "  %-14s %10.0f req/s  %5.1f %% of off\n", l, a, 100 * a / b}'
done
