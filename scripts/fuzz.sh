#!/usr/bin/env bash
# Fuzzes every libFuzzer target of the asan build for SECONDS each (default
# 60), starting from its seeds, as many targets at once as there are cores
# (each target is one single-threaded process); a crash fails the run and its
# input is kept under build/asan/fuzz-artifacts/ (add it to
# fuzz/regressions/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build/asan
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
declare -A seeds=([scenario]="scenarios tests/cli" [syscalls]=""
                 [config_dump]="fuzz/seeds/config_dump" [check_replay]="fuzz/seeds/check_replay")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs one target into its own scratch corpus; its exit status is libFuzzer's.
fuzz_one() {
  local target=$1 dirs=()
  mkdir -p "$work/$target"
  # libFuzzer stops on a corpus folder that does not exist (git keeps no
  # empty regressions folder).
  for d in fuzz/regressions/"$target" ${seeds[$target]}; do
    if [[ -d $d ]]; then dirs+=("$d"); fi
  done
  "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$target-" "$work/$target" \
    "${dirs[@]}" >"$artifacts/$target.log" 2>&1
}

targets=("${!seeds[@]}")
declare -A pids=()
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= $(nproc))); do wait -n || true; done
  echo "--- fuzz_$target for ${seconds}s"
  fuzz_one "$target" &
  pids[$target]=$!
done
failed=0
for target in "${targets[@]}"; do
  status=0
  wait "${pids[$target]}" || status=$?
  echo "--- fuzz_$target"
  grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|Test unit written)" \
    "$artifacts/$target.log" || true
  if ((status != 0)); then
    echo "fuzz_$target: crashed (exit $status); input in $artifacts"
    failed=1
  fi
done
exit "$failed"
