#!/usr/bin/env bash
# Sets up, builds (release) and runs vfiomm with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release --target vfiomm >/dev/null
exec ./build/release/vfiomm "$@"
