#!/usr/bin/env bash
# clang-tidy (.clang-tidy's short check list, every finding an error) over
# the translation units of src/ and bench/ in the tsa preset, compiled with
# clang 14's -Wthread-safety -Werror=thread-safety, so the same pass is their
# thread-safety analysis. tests/ is left out on purpose: the asan and tsan
# builds compile it with clang and the same -Werror=thread-safety, and its
# gtest-heavy units would double this step's time in CI. Needs only the
# configure step (compile_commands.json), no build.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset tsa >/dev/null
jobs=$(nproc)
run-clang-tidy-14 -p build/tsa -quiet -j "$jobs" "$PWD/(src|bench)/" > build/tsa/clang-tidy.log 2>&1 || {
  grep -E 'error:|warning:' build/tsa/clang-tidy.log | sort -u
  echo "tidy: clang-tidy found the above (whole log: build/tsa/clang-tidy.log)"
  exit 1
}
echo "tidy: clang-tidy and the thread-safety analysis are clean over $(grep -cE '"file": "'"$PWD"'/(src|bench)/' build/tsa/compile_commands.json) translation units"
