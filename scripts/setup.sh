#!/usr/bin/env bash
# Installs the Debian packages Orchestra needs to build, test or benchmark.
# Idempotent and non-interactive: it asks dpkg what is missing and runs `apt-get update`
# at most once, only when something has to be installed.
#
#   scripts/setup.sh               build + test dependencies (what `make test` needs)
#   scripts/setup.sh --build-only  only what compiling the binary needs (the container build)
#   scripts/setup.sh --bench       test dependencies plus the load tools under bench/
set -euo pipefail

mode="test"
case "${1:-}" in
  "") ;;
  --build-only) mode=build ;;
  --bench) mode=bench ;;
  -h | --help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "setup.sh: unknown option '$1' (try --help)" >&2
    exit 2
    ;;
esac

# GoogleTest and Google Benchmark are here too: `make run` configures the same build directory
# that `make test` later builds the tests in.
build_packages=(
  g++ cmake ninja-build ccache pkg-config make git ca-certificates
  libboost1.81-dev libssl-dev libyaml-cpp-dev libsqlite3-dev libhiredis-dev libpq-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
test_packages=(
  prometheus redis-server postgresql openssl curl procps
  shellcheck yamllint clang-format
)
bench_packages=(wrk nginx-light hyperfine python3 valgrind)

wanted=("${build_packages[@]}")
if [[ $mode != build ]]; then wanted+=("${test_packages[@]}"); fi
if [[ $mode == bench ]]; then wanted+=("${bench_packages[@]}"); fi
# Node.js runs the Terraform structural checks (HCL parser from npm). Machines that carry
# NodeSource's nodejs already have npm; only a machine without node gets Debian's pair.
if [[ $mode != build ]] && ! command -v node >/dev/null 2>&1; then wanted+=(nodejs npm); fi

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
  echo "setup.sh: installing ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm tools for the deployment tests, pinned by their lock file.
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ $mode != build && -f $here/tests/deploy/package-lock.json && ! -d $here/tests/deploy/node_modules ]]; then
  echo "setup.sh: installing npm tools for tests/deploy"
  npm ci --prefix "$here/tests/deploy" --no-audit --no-fund --loglevel=error
fi
