#!/usr/bin/env bash
# Every benchmark, one after the other (`make bench`). Figures are printed, never asserted: the
# machines are shared and noisy (DESIGN.md §5).
#
#   bench/run_all.sh [build-dir]
set -euo pipefail

build=${1:-build/release}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== cold start: exec to the first 200 from /startupz, 20 runs (target <= 8 ms)"
port=$((20000 + RANDOM % 20000))
(cd "$tmp" && "$here/$build/orchestra_bench_startup" 20 "$port" /startupz -- \
  "$here/$build/orchestra" serve --listen "127.0.0.1:$port") | tail -1

echo "== idle resident memory (target <= 15 MB)"
bench/idle_memory.sh "$build"

echo "== GET /healthz, Orchestra vs nginx"
bench/healthz_vs_nginx.sh "$build" 10 64

echo "== the gateway vs nginx as a reverse proxy"
bench/gateway_vs_nginx.sh "$build" 10

echo "== the gateway's instructions per proxied request (callgrind)"
bench/gateway_instructions.sh "$build"

echo "== coroutine frames on the proxied path against Asio's 1,020-byte recycling limit"
bench/frame_sizes.sh "$build" || true

echo "== memory endpoints on SQLite, Redis and PostgreSQL"
bench/storage_bench.sh "$build" 10 64

echo "== per-key limits: admission + settlement in process (target <= 2 us p50), in Redis and in PostgreSQL"
"$build/orchestra_bench_limits"
"$build/orchestra_bench_fleet_limits" 20000 | grep -v '^cmdstat\|^# Commandstats\|^$'
"$build/orchestra_bench_fleet_limits" 5000 postgres

echo "== per-key limits through the gateway: off, in process, in Redis (target >= 90 % of off)"
bench/limits_throughput.sh "$build" 10

echo "== vector index: search p50/p99 and recall at 100,000 384-d vectors, insert and build rates, memory"
"$build/orchestra_bench_vector" --benchmark_filter='^(Hnsw|Flat)'

echo "== documents through HTTP: ingest rate, search p50/p99 and memory at 100,000 chunks, start-up with them"
if [[ -x "$build/orchestra_bench_documents" ]]; then
  ORCHESTRA_BINARY="$here/$build/orchestra" "$build/orchestra_bench_documents" 100000 2000 2
else
  echo "(not built: it needs the tests, ORCHESTRA_BUILD_TESTS)"
fi
