#!/usr/bin/env bash
# The response cache's tiers, measured by Orchestra itself: x-orchestra-overhead-us (its own time,
# without the upstream's) of a miss, of a hit from the shared Redis tier and of a hit from the
# in-process tier. Two instances (A and B, one worker each) share one redis-server in front of
# the test upstream: N distinct prompts through A (misses: a memory miss, a Redis GET, the
# upstream, a detached Redis SET), the same through B (hits from Redis, kept in memory), then
# through B again (hits from memory).
#
#   bench/cache_tiers.sh [build-dir] [requests]
#
# Defaults: build/release, 500. Prints p50 and p99 per phase. One curl per request: the figure is
# the server's header, so the client's cost does not count. Needs redis-server and curl.
set -euo pipefail

build=${1:-build/release}
n=${2:-500}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
upstream="$here/$build/orchestra_test_upstream"

# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools redis-server curl
need_binaries "$orchestra" "$upstream"

tmp=$(mktemp -d)
trap 'stop_started; rm -rf "$tmp"' EXIT

redis_port=$(free_port)
launch "$tmp/redis.log" redis-server --port "$redis_port" --save '' --appendonly no \
  --dir "$tmp"
launch "$tmp/upstream.log" "$upstream" --listen 127.0.0.1:0
upstream_port=$(port_of "$tmp/upstream.log")
for _ in $(seq 1 100); do
  grep -q "Ready to accept" "$tmp/redis.log" && break
  sleep 0.05
done

start_instance() {
  local name=$1
  cat >"$tmp/$name.yaml" <<YAML
server: {listen: "127.0.0.1:0", threads: 1}
providers:
  - {name: up, type: openai, base_url: 'http://127.0.0.1:$upstream_port/v1', api_key_env: UP_KEY}
models:
  - {name: cached, targets: [{provider: up, model: echo-1}], cache_ttl: 600s}
cache: {redis_url: 'redis://127.0.0.1:$redis_port/0'}
YAML
  UP_KEY=x launch "$tmp/$name.log" "$orchestra" serve --config "$tmp/$name.yaml"
}
start_instance a
start_instance b
port_a=$(port_of "$tmp/a.log")
port_b=$(port_of "$tmp/b.log")

# Sends prompt 1..n to a port; writes "<cache header> <overhead us>" lines to a file.
run() {
  local port=$1 out=$2 i
  : >"$out"
  for i in $(seq 1 "$n"); do
    curl -s -o /dev/null -D - -H 'content-type: application/json' \
      -d "{\"model\":\"cached\",\"messages\":[{\"role\":\"user\",\"content\":\"prompt $i\"}]}" \
      "http://127.0.0.1:$port/v1/chat/completions" |
      tr -d '\r' | awk -F': ' 'tolower($1)=="x-orchestra-cache"{c=$2} tolower($1)=="x-orchestra-overhead-us"{o=$2} END{print c, o}' >>"$out"
  done
}

report() {
  local label=$1 file=$2 expected=$3
  local wrong
  wrong=$(awk -v e="$expected" '$1!=e' "$file" | wc -l)
  awk '{print $2}' "$file" | sort -n | awk -v label="$label" -v wrong="$wrong" -v e="$expected" '
    {v[NR]=$1} END {
      printf "%-34s p50 %5d us   p99 %5d us   (%d requests, %d not %s)\n", label,
             v[int(NR*0.5)+1], v[int(NR*0.99)+1], NR, wrong, e }'
}

run "$port_a" "$tmp/miss"
sleep 0.5  # the detached writes
run "$port_b" "$tmp/redis_hit"
run "$port_b" "$tmp/memory_hit"
echo "x-orchestra-overhead-us, one worker per instance, loopback Redis, $n requests per row:"
report "miss (memory, Redis GET, upstream)" "$tmp/miss" miss
report "hit from Redis (other instance)" "$tmp/redis_hit" hit
report "hit from memory" "$tmp/memory_hit" hit
