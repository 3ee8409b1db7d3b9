#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format-14 makes of it
# under .clang-format (CI runs it; `clang-format-14 -i FILE` fixes a file).
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z '*.cc' '*.h' | xargs -0 clang-format-14 --dry-run --Werror
echo "format: every C++ file is as clang-format-14 writes it"
