#!/usr/bin/env bash
# The soak (issue 10): mixed traffic for a long time against one Orchestra and the test upstream,
# with Orchestra's resident memory and open file descriptors sampled every second. Pass = both
# flat after the warm-up.
#
#   bench/soak.sh [build-dir] [minutes] [connections] [warm-up-minutes]
#   (defaults: build/release, 30, 4, 5)
#
# Traffic (bench/lua/soak.lua, `wrk -t<connections> -c<connections>`, one connection per wrk
# thread, no pause between requests: the upstream's 20 ms latency sets the pace): chat, streams,
# embeddings, memory store/retrieve/delete over 2,000 keys, and chats and streams through one
# model per upstream misbehaviour the test upstream plays (tests/support/upstream/directives.hpp).
# Beside it, a client that goes away: every 200 ms a curl abandons a stream or a slow chat after
# 100-300 ms (cancellations).
#
# Each chat carries a token that the test upstream echoes: a 200 answer without its own token
# (another request's answer) is counted as MIXED and fails the run.
#
# Samples go to <tmp>/samples.csv (seconds,rss_kib,fds), kept with the logs when
# SOAK_KEEP=<dir> is set. The verdict compares the median of the first minute after the warm-up
# with the median of the last minute: RSS may grow by at most max(5 %, 4 MiB), descriptors by
# at most 8 (connections in flight at the sampled moment). Exit status 1 when it fails.
set -euo pipefail

build=${1:-build/release}
minutes=${2:-30}
conns=${3:-4}
warmup=${4:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
upstream_bin="$here/$build/orchestra_test_upstream"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools wrk curl awk
need_binaries "$orchestra" "$upstream_bin"
((minutes > warmup + 1)) || { echo "the run must be longer than the warm-up plus a minute" >&2; exit 2; }

tmp=$(mktemp -d)
cancel_pid=""
sampler_pid=""
stop_pid() {
  if [[ -n $1 ]]; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
# shellcheck disable=SC2317  # run by the trap
cleanup() {
  stop_pid "$cancel_pid"
  stop_pid "$sampler_pid"
  stop_started
  if [[ -n ${SOAK_KEEP:-} ]]; then
    mkdir -p "$SOAK_KEEP"
    cp "$tmp"/*.csv "$tmp"/*.log "$tmp"/*.txt "$SOAK_KEEP"/ 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

launch "$tmp/upstream.log" "$upstream_bin" --listen 127.0.0.1:0 --threads 1
up_port=$(port_of "$tmp/upstream.log")

# `append` without a delay: the unrequested response arrives with the answer and is caught. With
# a delay it may arrive while the connection already carries the next request, which no client
# can tell from that request's answer (docs/OPERATIONS.md, "Upstream misbehaviour"); a soak with
# append_delay shows exactly that (MIXED: "appended: not your answer").
#
# One model per misbehaviour, tried once, with a circuit breaker that never opens (the faults
# must keep reaching the upstream) and short timeouts (a stalled answer costs 1 s, not 60).
fault() {
  local name=$1 directives=$2
  echo "  - {name: soak-fault-$name, targets: [{provider: faulty, model: \"gpt-test+latency=20ms+$directives\"}], retry: {attempts: 1}, timeout: 2s, circuit_breaker: {failures: 1000000, min_requests: 1000000, failure_rate: 1.0}}"
}
{
  cat <<CONF
server: {threads: 2, max_inflight: 100000}
observability: {access_log: false}
providers:
  - {name: up, type: openai, base_url: "http://127.0.0.1:$up_port/v1"}
  - {name: faulty, type: openai, base_url: "http://127.0.0.1:$up_port/v1", first_byte_timeout: 1s}
storage: {path: $tmp/orchestra.db}
models:
  - {name: soak-chat, targets: [{provider: up, model: "gpt-test+latency=20ms"}]}
  - {name: soak-stream, targets: [{provider: up, model: "gpt-test+chunks=8+chunk_delay=20ms"}]}
  - {name: soak-slow-stream, targets: [{provider: up, model: "gpt-test+chunks=50+chunk_delay=20ms"}]}
  - {name: soak-slow-chat, targets: [{provider: up, model: "gpt-test+latency=2s"}]}
  - {name: soak-embed, targets: [{provider: up, model: "embed-test+latency=20ms"}]}
CONF
  fault interim "interim=103"
  fault long "length_delta=-10"
  fault short "length_delta=10"
  fault gzip "encoding=gzip"
  fault deflate "encoding=deflate"
  fault br "encoding=br"
  fault reset "reset"
  fault reset-body "reset_at=body"
  fault drip "drip=1ms"
  fault big-head "header_bytes=100000"
  fault bad-chunk "bad_chunk"
  fault http09 "http09"
  fault html "html"
  fault status500 "status=500"
  fault status429 "status=429+retry_after=1"
  fault append "append"
  fault cut "cut=2"
} >"$tmp/orchestra.yaml"

launch "$tmp/orchestra.log" "$orchestra" serve --config "$tmp/orchestra.yaml" --listen 127.0.0.1:0
orch_pid=${pids[-1]}
orch_port=$(port_of "$tmp/orchestra.log")
base="http://127.0.0.1:$orch_port"

# Every kind once before the clock starts: a configuration or routing mistake shows here.
curl -fsS -o /dev/null "$base/readyz"

sample() {
  local start=$SECONDS rss fds
  echo "seconds,rss_kib,fds" >"$tmp/samples.csv"
  while kill -0 "$orch_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$orch_pid/status" 2>/dev/null || echo "")
    fds=$(find "/proc/$orch_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    [[ -n $rss ]] && echo "$((SECONDS - start)),$rss,$fds" >>"$tmp/samples.csv"
    sleep 1
  done
}
sample &
sampler_pid=$!

cancel() {
  local body n=0
  while :; do
    if ((n % 2 == 0)); then
      body='{"model":"soak-slow-stream","stream":true,"messages":[{"role":"user","content":"hello"}]}'
    else
      body='{"model":"soak-slow-chat","messages":[{"role":"user","content":"hello"}]}'
    fi
    curl -sS -o /dev/null --max-time "0.$((1 + RANDOM % 3))" -H 'Content-Type: application/json' \
      -d "$body" "$base/v1/chat/completions" 2>/dev/null || echo >>"$tmp/cancelled.txt"
    n=$((n + 1))
    sleep 0.2
  done
}
cancel &
cancel_pid=$!

echo "soak: ${minutes} min, $conns connections, warm-up ${warmup} min; orchestra pid $orch_pid on port $orch_port"
wrk -t"$conns" -c"$conns" -d"${minutes}m" --timeout 10s --latency -s "$here/bench/lua/soak.lua" \
  "$base" | tee "$tmp/wrk.txt"

stop_pid "$cancel_pid"
cancel_pid=""
sleep 2  # the last in-flight requests end; then the idle figures
stop_pid "$sampler_pid"
sampler_pid=""
alive=yes
kill -0 "$orch_pid" 2>/dev/null || alive=no

metrics=$(curl -fsS "$base/metrics" 2>/dev/null | wc -c || echo 0)
echo "orchestra alive at the end: $alive; /metrics is $metrics bytes"
echo "cancelled requests (curl gave up mid-request): $(wc -l <"$tmp/cancelled.txt" 2>/dev/null || echo 0)"
echo "error/fatal log lines: $(grep -ciE '"level":"(error|fatal)"' "$tmp/orchestra.log" || true)"

verdict=0
awk -F, -v warm=$((warmup * 60)) -v total=$((minutes * 60)) '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  NR == 1 { next }
  { if ($2 > peak) peak = $2; if ($3 > fdpeak) fdpeak = $3 }
  $1 < 60 { r0[++n0] = $2; f0[n0] = $3 }
  $1 >= warm && $1 < warm + 60 { r1[++n1] = $2; f1[n1] = $3 }
  $1 >= total - 60 && $1 < total { r2[++n2] = $2; f2[n2] = $3 }
  END {
    if (n1 == 0 || n2 == 0) { print "not enough samples"; exit 1 }
    a = median(r1, n1); b = median(r2, n2); fa = median(f1, n1); fb = median(f2, n2)
    printf "RSS (KiB, median per minute): first minute %d, after warm-up %d, last minute %d, peak %d\n", median(r0, n0), a, b, peak
    printf "fds (median per minute): first minute %d, after warm-up %d, last minute %d, peak %d\n", median(f0, n0), fa, fb, fdpeak
    allowed = a * 0.05; if (allowed < 4096) allowed = 4096
    ok = (b - a <= allowed) && (fb - fa <= 8)
    printf "growth after warm-up: RSS %+d KiB (allowed %d), fds %+d (allowed 8): %s\n", b - a, allowed, fb - fa, ok ? "PASS" : "FAIL"
    exit ok ? 0 : 1
  }' "$tmp/samples.csv" >"$tmp/verdict.txt" || verdict=$?
cat "$tmp/verdict.txt"
[[ $alive == yes ]] || verdict=1
if grep -q MIXED "$tmp/wrk.txt"; then
  echo "FAIL: a request got another request's answer (MIXED above)"
  verdict=1
fi
exit "$verdict"
