#!/usr/bin/env bash
# Sets up, builds and runs every test under the given presets (default:
# release). Presets: release, asan, tsan (CMakePresets.json).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
presets=("$@")
((${#presets[@]})) || presets=(release)
for p in "${presets[@]}"; do
  echo "=== preset $p"
  cmake --preset "$p" >/dev/null
  cmake --build --preset "$p"
  ctest --preset "$p"
done
