#!/usr/bin/env bash
# Runs one fuzz target: its regressions replayed (each must pass), then its seed corpus and
# `seconds` of fuzzing. New inputs go to <work>/<name>/corpus (kept between runs: `make fuzz`
# builds on what earlier runs found), a crash's input to <work>/<name>/. Exit status non-zero
# when an input crashed or broke an invariant.
#
#   run_fuzzer.sh <binary> <tests/fuzz directory> <work directory> <seconds> [libFuzzer flags...]
#
# $ORCHESTRA_FUZZ_SECONDS, when set, replaces <seconds>; $ORCHESTRA_FUZZ_RUNS, when set, also
# stops the run after that many executions (the long runs: 10 million or 30 minutes).
set -euo pipefail

binary=$1
source_dir=$2
work_dir=$3
seconds=${ORCHESTRA_FUZZ_SECONDS:-$4}
shift 4
name=$(basename "$binary")

regressions=$source_dir/regressions/$name
seeds=$source_dir/corpus/$name
corpus=$work_dir/$name/corpus
mkdir -p "$corpus"

# Deep recursion is a finding too (ASan reports the overflow); leaks are checked at exit.
flags=(-timeout=20 -rss_limit_mb=2560 -malloc_limit_mb=2560 -print_final_stats=1
  "-artifact_prefix=$work_dir/$name/")

if [[ -d $regressions ]] && compgen -G "$regressions/*" >/dev/null; then
  echo "== $name: replaying $(find "$regressions" -type f | wc -l) regression inputs"
  "$binary" "${flags[@]}" "$@" "$regressions"/*
fi

runs=()
[[ -n ${ORCHESTRA_FUZZ_RUNS:-} ]] && runs=("-runs=$ORCHESTRA_FUZZ_RUNS")
echo "== $name: seeds, then ${seconds}s of fuzzing"
dirs=("$corpus")
[[ -d $seeds ]] && dirs+=("$seeds")
exec "$binary" "${flags[@]}" "-max_total_time=$seconds" "${runs[@]}" "$@" "${dirs[@]}"
