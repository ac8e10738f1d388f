#!/usr/bin/env bash
# Helpers the benchmark scripts share; sourced, not run.
#   need_tools TOOL...     exits with a clear message when a tool is missing
#   need_binaries FILE...  exits when a build output is missing
#   pids, stop_started     the background processes a script started; stop_started ends them
#   launch LOG CMD...      starts CMD in the background, output to LOG, its pid in `pids`
#   port_of LOG            waits for a "listening <addr>" or JSON "address" line; prints the port
#   free_port              a port that was free a moment ago on 127.0.0.1
#   cpu_ticks PID          user + system clock ticks the process has used

need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh --bench)" >&2; exit 1; }
  done
}

need_binaries() {
  local bin
  for bin in "$@"; do
    [[ -x $bin ]] || { echo "no $bin (make build)" >&2; exit 1; }
  done
}

pids=()
stop_started() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

launch() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  pids+=($!)
}

port_of() {
  local log=$1 port
  for _ in $(seq 1 400); do
    port=$(grep -m1 -oE '(listening |"address":")[0-9.]+:[0-9]+' "$log" 2>/dev/null | grep -oE '[0-9]+$' || true)
    if [[ -n $port ]]; then
      echo "$port"
      return 0
    fi
    sleep 0.05
  done
  echo "did not start; log $log:" >&2
  cat "$log" >&2
  exit 1
}

# Runs a PostgreSQL program as the postgres user when we are root (PostgreSQL refuses root).
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Stops the postmaster of data directory $1 (started with as_postgres, so not a child of this
# shell when we are root: stopped by its own pid) and waits up to 10 s for it to be gone.
stop_postgres() {
  local pidfile=$1/postmaster.pid pid
  [[ -f $pidfile ]] || return 0
  pid=$(head -1 "$pidfile")
  kill -INT "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
}

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
