#!/usr/bin/env bash
# Lays out the runtime image's files under ROOTFS: the binary, every shared library that
# `ldd` reports for it (the C library and the dynamic loader included, each at the path
# ldd printed, which is on the loader's default search path), the libraries it loads at run
# time with dlopen (libpq, for PostgreSQL storage) with their own ldd closure, and the config.
#
#   stage_rootfs.sh BINARY CONFIG ROOTFS
#
# deploy/Dockerfile runs it in the build stage and copies ROOTFS onto distroless/static,
# which carries no C library of its own, so the image holds exactly what the binary loads.
# tests/deploy/ runs the same script against the Release build and executes the result in
# a chroot. Writes ROOTFS/usr/local/share/orchestra/libraries.txt, the list it copied.
#
# With MODELS (the models/ directory scripts/setup.sh fills, its files already checked by
# SHA-256 there), the data files the server loads — the tokenizer ranks (*.tiktoken) and the word
# vectors (word_vectors.bin) — go to ROOTFS/usr/share/orchestra/models, which the binary
# searches last (common/model_files.hpp), also when /proc is not mounted (a chroot). Each must
# be there.
#
#   stage_rootfs.sh BINARY CONFIG ROOTFS [MODELS]
set -euo pipefail
# A failing command under `set -e` otherwise ends the script without a word.
trap 'echo "stage_rootfs.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR

if [[ $# -ne 3 && $# -ne 4 ]]; then
  echo "usage: stage_rootfs.sh BINARY CONFIG ROOTFS [MODELS]" >&2
  exit 2
fi
binary=$1
config=$2
rootfs=$3
models=${4:-}
model_files=(cl100k_base.tiktoken o200k_base.tiktoken word_vectors.bin)
if [[ -n $models ]]; then
  for file in "${model_files[@]}"; do
    [[ -f $models/$file ]] || {
      echo "stage_rootfs.sh: $models/$file is missing (scripts/setup.sh installs it)" >&2
      exit 1
    }
  done
fi

[[ -x $binary ]] || { echo "stage_rootfs.sh: $binary is not an executable" >&2; exit 1; }
[[ -f $config ]] || { echo "stage_rootfs.sh: $config is not a file" >&2; exit 1; }
command -v ldd >/dev/null || { echo "stage_rootfs.sh: ldd is missing (package libc-bin)" >&2; exit 1; }

ldd_out=$(ldd "$binary" 2>&1) || {
  # A static binary makes ldd say so and exit 1; anything else is an error.
  if [[ $ldd_out == *"not a dynamic executable"* || $ldd_out == *"statically linked"* ]]; then
    ldd_out=""
  else
    printf 'stage_rootfs.sh: ldd failed:\n%s\n' "$ldd_out" >&2
    exit 1
  fi
}
if grep -q 'not found' <<<"$ldd_out"; then
  printf 'stage_rootfs.sh: unresolved libraries:\n%s\n' "$(grep 'not found' <<<"$ldd_out")" >&2
  exit 1
fi

# Loaded with dlopen, so invisible to ldd of the binary (storage/postgres/libpq_loader.hpp).
runtime_sonames=(libpq.so.5)
runtime_libs=()
for soname in "${runtime_sonames[@]}"; do
  # awk reads to the end: leaving early would kill ldconfig with SIGPIPE once its listing
  # outgrows the pipe buffer, and pipefail would end the script.
  path=$(ldconfig -p | awk -v n="$soname" '$1 == n && $NF ~ /^\// && path == "" { path = $NF } END { print path }')
  [[ -n $path ]] || { echo "stage_rootfs.sh: $soname is not installed (it is loaded at run time)" >&2; exit 1; }
  runtime_libs+=("$path")
  ldd_out+=$'\n'"$(ldd "$path")"
done

# "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
# the vDSO line has no path and is skipped.
mapfile -t libraries < <({ awk '$2 == "=>" && $3 ~ /^\// { print $3; next }
                                $1 ~ /^\// { print $1 }' <<<"$ldd_out"
                          printf '%s\n' "${runtime_libs[@]}"; } | sort -u)

mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/orchestra" "$rootfs/usr/local/share/orchestra"
install -m 0755 "$binary" "$rootfs/usr/local/bin/orchestra"
install -m 0644 "$config" "$rootfs/etc/orchestra/orchestra.yaml"
: >"$rootfs/usr/local/share/orchestra/libraries.txt"
for lib in "${libraries[@]}"; do
  mkdir -p "$rootfs$(dirname "$lib")"
  # -L: the SONAME path is usually a symlink; the image gets the file under that name.
  cp -L "$lib" "$rootfs$lib"
  echo "$lib" >>"$rootfs/usr/local/share/orchestra/libraries.txt"
done
if [[ -n $models ]]; then
  mkdir -p "$rootfs/usr/share/orchestra/models"
  for file in "${model_files[@]}"; do
    install -m 0644 "$models/$file" "$rootfs/usr/share/orchestra/models/$file"
  done
fi
echo "stage_rootfs.sh: staged the binary, ${#libraries[@]} libraries${models:+ and ${#model_files[@]} model files} under $rootfs"
