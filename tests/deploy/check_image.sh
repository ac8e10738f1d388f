#!/usr/bin/env bash
# The container image without a container engine.
#
#   check_image.sh BINARY      (CTest passes the Release build of orchestra)
#
# 1. deploy/Dockerfile, read statically: the runtime stage is distroless/static (no shared
#    libraries of its own) plus the build stage's /rootfs, which stage_rootfs.sh fills from
#    the binary that stage built; non-root user; ENTRYPOINT ["orchestra","serve"]; the
#    config path; .dockerignore lets in everything the build copies.
# 2. Every library `ldd BINARY` reports is provided: stage_rootfs.sh is run on a stripped
#    copy of BINARY (as the Dockerfile does) and each library must be in the result, at the
#    path the dynamic loader searches; the base image adds none.
# 3. The staged root filesystem runs on its own: in a chroot (root or a user namespace), the
#    binary starts, validates the shipped config, serves /startupz and /readyz as the
#    non-root user, and exits 0 on SIGTERM.
# 4. Size: the binary, its libraries and the base image stay within the 30 MiB budget; the
#    model files within their own 20 MiB.
# The model files (tokenizer ranks, word vectors) are staged from the repository's models/, as
# the image build stages the ones setup.sh fetched there: part 3 checks the server finds them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dockerfile="$root/deploy/Dockerfile"
binary=${1:?usage: check_image.sh BINARY}
[[ -x $binary ]] || { echo "FAIL: $binary is not an executable" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# has PATTERN TEXT: grep -q for PATTERN in TEXT (extra grep flags may precede PATTERN).
has() {
  local text=${*: -1}
  grep -q "${@:1:$#-1}" <<<"$text"
}

# --- 1. the Dockerfile -----------------------------------------------------------------

# Instructions with continuation lines joined, comments dropped.
mapfile -t instructions < <(sed -e '/^[[:space:]]*#/d' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta')
final_from=""
runtime=()
build=()
stage=""
for line in "${instructions[@]}"; do
  if [[ $line =~ ^FROM[[:space:]]+([^[:space:]]+)([[:space:]]+AS[[:space:]]+([a-z]+))? ]]; then
    final_from=${BASH_REMATCH[1]}
    stage=${BASH_REMATCH[3]}
    continue
  fi
  case $stage in
    runtime) runtime+=("$line") ;;
    build) build+=("$line") ;;
  esac
done
runtime_image=$(sed -n 's/^ARG RUNTIME_IMAGE=//p' "$dockerfile")
[[ $final_from == "\${RUNTIME_IMAGE}" && $stage == runtime ]] ||
  fail "the last stage must be 'FROM \${RUNTIME_IMAGE} AS runtime' (got '$final_from AS $stage')"

# What each possible base provides, by SONAME (distroless images, Debian 12).
case $runtime_image in
  gcr.io/distroless/static-debian12*) base_provides=() ;;
  gcr.io/distroless/base-debian12*) base_provides=(libc.so.6 libm.so.6 ld-linux-x86-64.so.2 ld-linux-aarch64.so.1 libssl.so.3 libcrypto.so.3) ;;
  gcr.io/distroless/cc-debian12*) base_provides=(libc.so.6 libm.so.6 ld-linux-x86-64.so.2 ld-linux-aarch64.so.1 libssl.so.3 libcrypto.so.3 libstdc++.so.6 libgcc_s.so.1) ;;
  *) fail "unknown runtime base '$runtime_image': add what it provides to this test" ;;
esac
pass "runtime base: $runtime_image (provides ${#base_provides[@]} shared libraries)"

runtime_text=$(printf '%s\n' "${runtime[@]}")
build_text=$(printf '%s\n' "${build[@]}")
check "runtime stage copies the staged root filesystem (COPY --from=build /rootfs/ /)" \
  has -x 'COPY --from=build /rootfs/ /' "$runtime_text"
check "build stage runs stage_rootfs.sh on the binary it built, with the Cloud Run config and models/" \
  has 'deploy/scripts/stage_rootfs.sh build/release/orchestra deploy/orchestra.cloudrun.yaml /rootfs models' "$build_text"
# The model files: fetched by setup.sh (scripts/models/, SHA-256 checked) in the build stage.
check "build stage copies scripts/models, which setup.sh runs to fetch the model files" \
  has -x 'COPY scripts/models scripts/models' "$build_text"
models_before_setup() {
  local copy setup
  copy=$(grep -n -x 'COPY scripts/models scripts/models' <<<"$build_text" | head -1 | cut -d: -f1)
  setup=$(grep -n 'scripts/setup.sh --build-only' <<<"$build_text" | head -1 | cut -d: -f1)
  [[ -n $copy && -n $setup && $copy -lt $setup ]]
}
check "scripts/models is copied before setup.sh runs" models_before_setup
check "the model downloads stay in a cache mount (ORCHESTRA_CACHE_DIR)" \
  has -e '--mount=type=cache,[^ ]*target=/root/.cache/orchestra' "$build_text"
check "ORCHESTRA_CACHE_DIR names that cache mount" has 'ORCHESTRA_CACHE_DIR=/root/.cache/orchestra' "$build_text"
check "build stage builds the orchestra target in build/release" \
  has 'cmake --build build/release --target orchestra' "$build_text"
check "build stage installs dependencies with scripts/setup.sh --build-only" \
  has 'scripts/setup.sh --build-only' "$build_text"
check "BuildKit cache mount for apt" has -e '--mount=type=cache,[^ ]*target=/var/cache/apt' "$build_text"
check "BuildKit cache mount for ccache" has -e '--mount=type=cache,[^ ]*target=/root/.cache/ccache' "$build_text"
for variant in amd64/baseline amd64/tuned arm64/baseline arm64/tuned; do
  check "compiler flags for $variant" has "$variant)" "$build_text"
done
check "per-architecture flags reach CMake (ORCHESTRA_ARCH_FLAGS)" has 'ORCHESTRA_ARCH_FLAGS=' "$build_text"
check 'ENTRYPOINT ["orchestra","serve"]' has -x 'ENTRYPOINT \["orchestra","serve"\]' "$runtime_text"
user=$(sed -n 's/^USER //p' <<<"$runtime_text" | tail -1)
non_root() { [[ -n $user && $user != 0* && $user != root* ]]; }
check "runs as a non-root user ('$user')" non_root
check "ORCHESTRA_CONFIG points at the staged config" has 'ORCHESTRA_CONFIG=/etc/orchestra/orchestra.yaml' "$runtime_text"
# distroless has no /usr/lib/ssl, where OpenSSL looks by default.
check "SSL_CERT_FILE names the base image's CA bundle" has 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' "$runtime_text"

# .dockerignore is an allowlist: every context path the Dockerfile copies must be let in.
while read -r src; do
  src=${src%/}
  grep -qxE "!$src/?" "$root/.dockerignore" || fail ".dockerignore keeps out '$src', which the Dockerfile copies"
done < <(printf '%s\n' "${instructions[@]}" | awk '$1 == "COPY" && $2 !~ /^--from/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }')
pass ".dockerignore admits what the build copies"

# --- 2. the binary's libraries are all provided ----------------------------------------

cp "$binary" "$work/orchestra"
strip --strip-unneeded "$work/orchestra" 2>/dev/null || echo "note: strip unavailable; sizing the unstripped binary"
rootfs="$work/rootfs"
models_dir="$root/models"
bash "$root/deploy/scripts/stage_rootfs.sh" "$work/orchestra" "$root/deploy/orchestra.cloudrun.yaml" "$rootfs" \
  "$models_dir" >/dev/null || {
  echo "FAIL: stage_rootfs.sh could not stage the binary and $models_dir (run scripts/setup.sh)" >&2
  exit 1
}
staged_models="$rootfs/usr/share/orchestra/models"
for file in cl100k_base.tiktoken o200k_base.tiktoken word_vectors.bin; do
  if cmp -s "$models_dir/$file" "$staged_models/$file"; then continue; fi
  fail "model file $file is not staged in /usr/share/orchestra/models"
done
pass "model files staged: $(cd "$staged_models" && printf '%s ' *)"

mapfile -t needed < <(ldd "$binary" | awk '$2 == "=>" { print $3; next } $1 ~ /^\// { print $1 }' | sort -u)
((${#needed[@]} > 0)) || fail "ldd reported no libraries for $binary"
for lib in "${needed[@]}"; do
  soname=$(basename "$lib")
  if [[ -f $rootfs$lib ]]; then
    continue
  elif printf '%s\n' "${base_provides[@]}" | grep -qx "$soname"; then
    continue
  fi
  fail "$lib (needed by the binary) is neither staged nor in $runtime_image"
done
pass "all ${#needed[@]} libraries ldd reports are provided: $(printf '%s ' "${needed[@]##*/}")"

# --- 3. the staged root filesystem runs on its own -------------------------------------

chroot_cmd=()
userspec=()
if [[ $(id -u) == 0 ]] && command -v chroot >/dev/null; then
  chroot_cmd=("$(command -v chroot)")
  userspec=(--userspec=65532:65532)
elif command -v unshare >/dev/null && unshare -r true 2>/dev/null; then
  chroot_cmd=("$(command -v unshare)" -r "$(command -v chroot)")
fi

if ((${#chroot_cmd[@]} == 0)); then
  echo "SKIPPED (part 3): running the staged filesystem needs root or user namespaces; parts 1, 2 and 4 ran."
else
  # What the runtime stage adds on top: the data directory, owned by the runtime user.
  mkdir -p "$rootfs/var/lib/orchestra" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  ((${#userspec[@]} == 0)) || chown 65532:65532 "$rootfs/var/lib/orchestra"
  in_image=(env -i ORCHESTRA_CONFIG=/etc/orchestra/orchestra.yaml)
  binary_in_image=/usr/local/bin/orchestra
  if version=$("${in_image[@]}" "${chroot_cmd[@]}" "$rootfs" "$binary_in_image" version 2>&1); then
    pass "staged binary runs with only staged libraries: $version"
  else
    fail "staged binary does not start: $version"
  fi

  if out=$("${in_image[@]}" ORCHESTRA_API_KEY=test-key "${chroot_cmd[@]}" "${userspec[@]}" "$rootfs" \
    "$binary_in_image" check-config 2>&1); then
    pass "shipped config is valid with ORCHESTRA_API_KEY set"
  else
    fail "shipped config rejected: $out"
  fi
  if out=$("${in_image[@]}" "${chroot_cmd[@]}" "${userspec[@]}" "$rootfs" "$binary_in_image" check-config 2>&1); then
    fail "shipped config accepted without ORCHESTRA_API_KEY: the image would serve without keys"
  else
    check "without ORCHESTRA_API_KEY the shipped config is refused, naming it" has ORCHESTRA_API_KEY "$out"
  fi
  out=$("${in_image[@]}" ORCHESTRA_API_KEY=test-key PORT=9999 "${chroot_cmd[@]}" "$rootfs" \
    "$binary_in_image" check-config 2>&1) || true
  check "\$PORT replaces the shipped listen port" has 'listen: 0.0.0.0:9999' "$out"

  if command -v curl >/dev/null; then
    log="$work/serve.log"
    # env, unshare and chroot exec in turn, so $! is the server itself.
    "${in_image[@]}" ORCHESTRA_API_KEY=test-key ORCHESTRA_SERVER_LISTEN=127.0.0.1:0 \
      "${chroot_cmd[@]}" "${userspec[@]}" "$rootfs" "$binary_in_image" serve >"$log" 2>&1 &
    server_pid=$!
    address=""
    for _ in $(seq 100); do
      address=$(sed -n '/"message":"listening"/s/.*"address":"\([^"]*\)".*/\1/p' "$log" | head -1)
      [[ -n $address ]] && break
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.05
    done
    if [[ -z $address ]]; then
      fail "server in the staged filesystem did not start listening: $(cat "$log")"
    else
      for probe in startupz readyz healthz; do
        if body=$(curl -fsS --max-time 5 "http://$address/$probe" 2>&1); then
          pass "GET /$probe in the staged filesystem: $body"
        else
          fail "GET /$probe failed: $body"
        fi
      done
      # The model files are found where the image puts them: the background preload reports
      # both loaded, and the tokenizer counts ("hello world" is 2 tokens of o200k_base).
      loaded=""
      for _ in $(seq 200); do
        loaded=$(grep '"message":"model files loaded"' "$log" | head -1 || true)
        [[ -n $loaded ]] && break
        sleep 0.05
      done
      check "preload found the tokenizer ranks in the image" has '"tokenizer":"ok"' "$loaded"
      check "preload found the word vectors in the image" \
        has '"word_vectors":"semantic: .* from /usr/share/orchestra/models/word_vectors.bin"' "$loaded"
      if body=$(curl -fsS --max-time 5 -H 'Authorization: Bearer test-key' \
        -H 'Content-Type: application/json' -d '{"encoding":"o200k_base","prompt":"hello world"}' \
        "http://$address/utils/token_counter" 2>&1); then
        check "POST /utils/token_counter in the staged filesystem: $body" has '"total_tokens":2' "$body"
      else
        fail "POST /utils/token_counter failed: $body"
      fi
      kill -TERM "$server_pid"
      status=0
      wait "$server_pid" || status=$?
      server_pid=""
      if ((status == 0)); then pass "SIGTERM: drained and exited 0"; else
        fail "SIGTERM: exit $status: $(tail -3 "$log")"
      fi
    fi
  else
    echo "SKIPPED (part 3, serving): curl is not installed"
  fi
fi

# --- 4. size ---------------------------------------------------------------------------

# distroless/static-debian12 is about 2 MiB (tzdata, CA certificates, /etc/passwd); the
# allowance is rounded up. The budget is DESIGN.md's: image <= 30 MB.
# The model files are data with a budget of their own (docs/DEPLOY.md, "Image").
base_allowance=$((5 * 1024 * 1024 / 2))
budget=$((30 * 1024 * 1024))
models_budget=$((20 * 1024 * 1024))
models_size=$(du -sb "$staged_models" | cut -f1)
staged=$(($(du -sb "$rootfs" | cut -f1) - models_size))
binary_size=$(stat -c %s "$work/orchestra")
total=$((staged + base_allowance))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "size: staged $(mib "$staged") (stripped binary $(mib "$binary_size"), libraries $(mib $((staged - binary_size)))) + base $(mib $base_allowance) = $(mib $total) of $(mib $budget); model files $(mib "$models_size") of $(mib $models_budget); image $(mib $((total + models_size)))"
if ((total <= budget)); then pass "image (code) within budget"; else fail "image over budget: $(mib $total) > $(mib $budget)"; fi
if ((models_size <= models_budget)); then pass "model files within budget"; else
  fail "model files over budget: $(mib "$models_size") > $(mib $models_budget)"
fi

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
