#!/usr/bin/env bash
# POST /memory/store and POST /memory/retrieve through HTTP on each storage backend (SQLite,
# Redis, PostgreSQL, Firestore), side by side in one run, and redis-benchmark SET/GET against the
# same Redis as the reference for the Redis backend.
#
#   bench/storage_bench.sh [build-dir] [duration-seconds] [connections]
#
# Defaults: build/release, 10 s, 64 connections. Everything the benchmark talks to (Orchestra,
# redis-server, PostgreSQL) is pinned to CPU 1; the load generators (wrk with bench/lua/memory.lua,
# redis-benchmark) to CPU 0. Each wrk run is preceded by a 2 s warm-up; the store run comes first
# so that the retrieve run finds most of its keys. Values are ~100-byte JSON objects over 10,000
# keys (redis-benchmark: 100-byte values, -r 10000, no pipelining).
#
# Durability of the three: SQLite runs as Orchestra configures it (WAL, synchronous=NORMAL: an
# acknowledged write survives a crash of the process, not of the machine); PostgreSQL with
# synchronous_commit=off (the same class); Redis with its defaults (no AOF).
#
# Firestore runs against the emulator (`gcloud emulators firestore start`, in a session of its
# own, killed whole at the end), which is NOT the service: one in-memory JVM on this machine, no
# replication, no network between Orchestra and the database, and slow itself (it spends ~10x
# the CPU Orchestra does per request). Its rows use $FIRESTORE_CONNECTIONS (default 8)
# connections: at 64 the emulator falls behind and most calls time out in Orchestra's queue
# (503). They show what the path through Orchestra's REST client costs, not what Cloud
# Firestore answers in. Skipped, with a message, when gcloud or the emulator is missing.
#
# The servers are started here, in a temp directory, on free ports; PostgreSQL as the postgres
# user when run as root. Needs wrk, redis-server, redis-benchmark, taskset, curl and
# PostgreSQL 15 ($ORCHESTRA_PG_BIN, default /usr/lib/postgresql/15/bin).
set -euo pipefail

build=${1:-build/release}
duration=${2:-10}
connections=${3:-64}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
lua="$here/bench/lua/memory.lua"
pg_bin=${ORCHESTRA_PG_BIN:-/usr/lib/postgresql/15/bin}

# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools wrk redis-server redis-cli redis-benchmark taskset curl
need_binaries "$orchestra"
[[ -x $pg_bin/postgres ]] || { echo "no PostgreSQL in $pg_bin (set ORCHESTRA_PG_BIN)" >&2; exit 1; }

tmp=$(mktemp -d)
chmod 755 "$tmp"  # PostgreSQL runs as another user when we are root
firestore_session=""
cleanup() {
  # gcloud, its shell and the JVM: the whole session the emulator was started in.
  if [[ -n $firestore_session ]]; then pkill -KILL -s "$firestore_session" 2>/dev/null || true; fi
  stop_postgres "$tmp/pg/data"
  stop_started
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 300); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$what did not come up" >&2
  exit 1
}

# --- Redis ------------------------------------------------------------------------------------
redis_port=$(free_port)
mkdir -p "$tmp/redis"
taskset -c 1 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$tmp/redis" --logfile "$tmp/redis/redis.log" &
pids+=($!)
wait_for redis redis-cli -p "$redis_port" ping

# --- PostgreSQL -------------------------------------------------------------------------------
pg_port=$(free_port)
mkdir -p "$tmp/pg"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$tmp/pg"; fi
as_postgres "$pg_bin/initdb" -D "$tmp/pg/data" -A trust -U postgres -E UTF8 --locale=C \
  --no-instructions >"$tmp/pg/initdb.log" 2>&1
as_postgres taskset -c 1 "$pg_bin/postgres" -D "$tmp/pg/data" -p "$pg_port" -k "$tmp/pg" \
  -c listen_addresses=127.0.0.1 -c synchronous_commit=off >"$tmp/pg/postgres.log" 2>&1 &
pids+=($!)
wait_for postgres "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"
as_postgres "$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres \
  -c "CREATE DATABASE orchestra_bench" >/dev/null

# --- The Firestore emulator --------------------------------------------------------------------
backends=(sqlite redis postgres)
gcloud=$(command -v gcloud || true)
if [[ -n $gcloud && -d $(dirname "$(readlink -f "$gcloud")")/../platform/cloud-firestore-emulator ]] &&
  command -v java >/dev/null; then
  firestore_port=$(free_port)
  mkdir -p "$tmp/gcloud"
  # setsid execs in place (a background job is no group leader): $! is the session id.
  setsid taskset -c 1 env CLOUDSDK_CONFIG="$tmp/gcloud" CLOUDSDK_CORE_DISABLE_PROMPTS=1 \
    CLOUDSDK_CORE_CHECK_GCE_METADATA=false CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true \
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true \
    "$gcloud" emulators firestore start --host-port="127.0.0.1:$firestore_port" \
    >"$tmp/firestore-emulator.log" 2>&1 &
  firestore_session=$!
  disown "$firestore_session"  # cleanup kills it: no job notice
  for _ in $(seq 1 1200); do
    curl -fs "http://127.0.0.1:$firestore_port/" >/dev/null 2>&1 && break
    sleep 0.05
  done
  curl -fs "http://127.0.0.1:$firestore_port/" >/dev/null || { echo "the Firestore emulator did not come up" >&2; exit 1; }
  # The JVM's first real answers take seconds: warm it before Orchestra's start-up ping.
  documents="http://127.0.0.1:$firestore_port/v1/projects/demo-warmup/databases/(default)/documents"
  for _ in $(seq 1 60); do
    curl -fs -m 10 -H 'Content-Type: application/json' -d '{"documents":["projects/demo-warmup/databases/(default)/documents/w/u"]}' \
      "$documents:batchGet" >/dev/null && break
    sleep 0.5
  done
  backends+=(firestore)
else
  echo "*** no Firestore emulator (gcloud with google-cloud-cli-firestore-emulator, and java): firestore skipped" >&2
fi

# --- Orchestra, one per backend ---------------------------------------------------------------
declare -A port
start_orchestra() {
  local name=$1 storage=$2
  mkdir -p "$tmp/$name"
  printf 'storage:\n%s\n' "$storage" >"$tmp/$name/orchestra.yaml"
  port[$name]=$(free_port)
  (cd "$tmp/$name" && exec env ${firestore_port:+FIRESTORE_EMULATOR_HOST=127.0.0.1:$firestore_port} \
    taskset -c 1 "$orchestra" serve --config "$tmp/$name/orchestra.yaml" \
    --listen "127.0.0.1:${port[$name]}" >"$tmp/$name/orchestra.log" 2>&1) &
  pids+=($!)
  wait_for "orchestra ($name)" curl -fs "http://127.0.0.1:${port[$name]}/readyz"
}
start_orchestra sqlite "  backend: sqlite
  path: $tmp/sqlite/data/orchestra.db"
start_orchestra redis "  backend: redis
  url: redis://127.0.0.1:$redis_port/0"
start_orchestra postgres "  backend: postgres
  url: postgresql://postgres@127.0.0.1:$pg_port/orchestra_bench"
if [[ -n $firestore_session ]]; then
  start_orchestra firestore "  backend: firestore
  firestore: {project: demo-orchestra-bench}"
fi

# --- Runs -------------------------------------------------------------------------------------
row() {
  printf '%-10s %-18s %12s %10s %10s %10s\n' "$@"
}

run_wrk() {
  local name=$1 op=$2 out="$tmp/$1-$2.wrk"
  local url="http://127.0.0.1:${port[$name]}"
  # The emulator's JVM needs longer to warm up than the native servers, and fewer connections.
  local warmup=2 c=$connections label=$1
  if [[ $name == firestore ]]; then
    warmup=8
    c=${FIRESTORE_CONNECTIONS:-8}
    label="firestore*"
  fi
  taskset -c 0 wrk -t1 -c"$c" -d"${warmup}s" -s "$lua" "$url" -- "$op" >/dev/null
  taskset -c 0 wrk -t1 -c"$c" -d"${duration}s" --latency -s "$lua" "$url" -- "$op" >"$out"
  local rps p50 p99 bad
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  bad=$(awk '/Non-2xx/ {print $NF}' "$out")
  row "$label" "/memory/$op" "$rps" "$p50" "$p99" "${bad:-0}"
}

run_redis_benchmark() {
  # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
  # "p99_latency_ms","max_latency_ms"
  local requests=$((duration * 20000))
  taskset -c 0 redis-benchmark -p "$redis_port" -t set,get -c "$connections" -n "$requests" \
    -d 100 -r 10000 -P 1 --csv >"$tmp/redis-benchmark.csv"
  tr -d '"' <"$tmp/redis-benchmark.csv" | awk -F, 'NR > 1 {
      printf "%-10s %-18s %12.0f %8.3fms %8.3fms %10s\n", "redis", "redis-benchmark " $1, $2, $5, $7, "-"
    }'
}

echo "storage benchmark: wrk -t1 -c$connections -d${duration}s (after a 2 s warm-up); servers on CPU 1, load on CPU 0"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
row backend operation "req/s" p50 p99 non-2xx
for name in "${backends[@]}"; do
  run_wrk "$name" store
  run_wrk "$name" retrieve
done
run_redis_benchmark
if [[ -n $firestore_session ]]; then
  echo "* firestore: the emulator (not the service), with ${FIRESTORE_CONNECTIONS:-8} connections"
fi
