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
  libhnswlib-dev libgtest-dev libgmock-dev libbenchmark-dev
)
# Java runs the Firestore emulator. The emulator itself ships with the Google Cloud CLI
# (google-cloud-cli-firestore-emulator), which is not a Debian package: without it the Firestore
# tests skip, saying so.
# clang and its runtime libraries (libFuzzer, ASan, UBSan) build the fuzz targets of tests/fuzz
# (`make fuzz`; `make test` runs each briefly).
# HAProxy fronts three instances in the fleet-wide limits test (tests/integration/fleet_limits_test.cpp).
test_packages=(
  prometheus redis-server postgresql openssl curl procps haproxy
  shellcheck yamllint clang-format openjdk-17-jre-headless clang libclang-rt-14-dev
)
bench_packages=(wrk nginx-light hyperfine python3 valgrind)

wanted=("${build_packages[@]}")
if [[ $mode != build ]]; then wanted+=("${test_packages[@]}"); fi
if [[ $mode == bench ]]; then wanted+=("${bench_packages[@]}"); fi
# Node.js runs the Terraform structural checks (HCL parser from npm) and, in every mode, fetches
# and converts the model files of the tokenizer and the local provider (scripts/models/).
# Machines that carry NodeSource's nodejs already have npm; only a machine without node gets
# Debian's pair.
if ! command -v node >/dev/null 2>&1; then wanted+=(nodejs npm); fi

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
# npm tools of the tests, pinned by their lock files: tests/deploy (HCL parser, Kubernetes
# schemas), tests/unit/tokens (js-tiktoken, the reference the tokenizer is compared with) and
# tests/docs (OpenAPI validators for /openapi.json, the OpenAI SDK that runs the README's
# JavaScript example).
# Installed again whenever a lock file changed since the last install.
npm_tools() {
  local dir=$1 lock stamp
  lock=$dir/package-lock.json
  stamp=$dir/node_modules/.orchestra-lock.sha256
  [[ -f $lock ]] || return 0
  local want
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  [[ -f $stamp && $(cat "$stamp") == "$want" ]] && return 0
  echo "setup.sh: installing npm tools for ${dir#"$here"/}"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
}
if [[ $mode != build ]]; then
  npm_tools "$here/tests/deploy"
  npm_tools "$here/tests/unit/tokens"
  npm_tools "$here/tests/docs"
fi

# Data files into models/ (checked by SHA-256, kept out of git): the tokenizer ranks and the
# local provider's word vectors. The binary finds them at run time (common/model_files.hpp).
# Every mode: the container build needs them too, so it copies scripts/models before this.
for fetch in tiktoken.sh word_vectors.sh; do
  script=$here/scripts/models/$fetch
  [[ -x $script ]] || {
    echo "setup.sh: $script is missing (a container build must copy scripts/models too)" >&2
    exit 1
  }
  "$script"
done
