#!/usr/bin/env bash
# Fuzzes every libFuzzer target of the asan build for SECONDS each (default
# 60), starting from its seeds; a crash fails the run and its input is kept
# under build/asan/fuzz-artifacts/ (add it to fuzz/regressions/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build/asan
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
declare -A seeds=([scenario]="scenarios tests/cli" [syscalls]=""
                 [config_dump]="fuzz/seeds/config_dump" [check_replay]="fuzz/seeds/check_replay")
for target in "${!seeds[@]}"; do
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
  echo "--- fuzz_$target for ${seconds}s"
  # libFuzzer stops on a corpus folder that does not exist (git keeps no
  # empty regressions folder).
  dirs=()
  for d in fuzz/regressions/"$target" ${seeds[$target]}; do
    if [[ -d $d ]]; then dirs+=("$d"); fi
  done
  status=0
  "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$target-" "$corpus" \
    "${dirs[@]}" >"$artifacts/$target.log" 2>&1 || status=$?
  grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|Test unit written)" \
    "$artifacts/$target.log" || true
  rm -rf "$corpus"
  trap - EXIT
  if ((status != 0)); then
    echo "fuzz_$target: crashed (exit $status); input in $artifacts"
    exit 1
  fi
done
