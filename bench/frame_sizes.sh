#!/usr/bin/env bash
# Coroutine frames on the proxied path against Asio's recycling limit (docs/ARCHITECTURE.md,
# "coroutine frames"): a frame over 1,020 bytes is a glibc aligned_alloc/free per request
# (about 1,000 instructions) instead of a recycled block. Runs Orchestra with an aligned_alloc
# probe (bench/frames/aligned_alloc_probe.c, LD_PRELOAD) against the test upstream, sends N
# sequential chat completions (non-streamed, then streamed), and lists the allocations made
# about once per request: after the first request every frame that fits is recycled, so what
# repeats N times is over the limit. "in X" names the function that was running: the frame is
# that of the coroutine X calls.
#
# The budget is the non-streamed path's (it is the one a request pays in full): a stream may
# have one frame over the limit (HttpProvider::Stream, 1,088 bytes measured), one allocation
# against the tens of chunk writes of any real stream.
#
#   bench/frame_sizes.sh [build-dir] [requests]
#
# Needs cc, addr2line and curl. Exits 1 when a frame of the non-streamed path is over the limit.
set -euo pipefail

build=${1:-build/release}
requests=${2:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
orchestra="$here/$build/orchestra"
upstream_bin="$here/$build/orchestra_test_upstream"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
need_tools cc addr2line curl
need_binaries "$orchestra" "$upstream_bin"

tmp=$(mktemp -d)
cleanup() {
  stop_started
  rm -rf "$tmp"
}
trap cleanup EXIT

cc -O2 -shared -fPIC -o "$tmp/probe.so" "$here/bench/frames/aligned_alloc_probe.c" -ldl
launch "$tmp/upstream.log" "$upstream_bin" --listen 127.0.0.1:0 --threads 1
up_port=$(port_of "$tmp/upstream.log")
cat >"$tmp/orchestra.yaml" <<CONF
server: {threads: 1}
observability: {access_log: false}
providers:
  - {name: up, type: openai, base_url: "http://127.0.0.1:$up_port/v1"}
models:
  - {name: bench, targets: [{provider: up, model: gpt-test}]}
storage: {path: $tmp/orchestra.db}
CONF

run() {
  local stream=$1 log="$tmp/orchestra-$1.log"
  PROBE_MIN_BYTES=900 LD_PRELOAD="$tmp/probe.so" "$orchestra" serve --config "$tmp/orchestra.yaml" \
    --listen 127.0.0.1:0 >"$log" 2>&1 &
  local pid=$!
  local port
  port=$(port_of "$log")
  # One request first: connections, metric cells and the recycling cache warm up.
  for i in $(seq 0 "$requests"); do
    if [[ $i == 1 ]]; then
      { grep -c PROBE "$log" || true; } >"$tmp/skip-$stream"
    fi
    curl -fs -o /dev/null -H 'Content-Type: application/json' \
      -d "{\"model\":\"bench\",\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
      "http://127.0.0.1:$port/v1/chat/completions"
  done
  kill -TERM "$pid"
  wait "$pid" || true
  tail -n +"$(($(cat "$tmp/skip-$stream") + 1))" <(grep PROBE "$log")
}

over=0
for stream in false true; do
  echo "== stream: $stream ($requests requests; allocations over 900 bytes made once per request or more)"
  while read -r count size address; do
    where=$(addr2line -f -C -e "$orchestra" "$address" | head -1 | cut -c1-110)
    flag=""
    if ((size > 1020)); then
      flag="  <- over 1,020 bytes"
      [[ $stream == false ]] && over=1
    fi
    printf '%4d x %5d bytes  in %s%s\n' "$count" "$size" "$where" "$flag"
  done < <(run "$stream" | awk '{print $2, $3}' | sort | uniq -c |
    awk -v n="$requests" '$1 >= n {print $1, $2, $3}')
done
if ((over)); then
  echo "a frame of the non-streamed proxied path is over Asio's recycling limit"
  exit 1
fi
echo "every frame of the non-streamed proxied path is within Asio's recycling limit"
