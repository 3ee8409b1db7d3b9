#!/usr/bin/env bash
# Runs a libFuzzer binary once over every file of the given folders (its
# seed corpus and its regressions): exit 0 when none crashes.
set -euo pipefail
fuzzer=$1
shift
files=()
for dir in "$@"; do
  [[ -d $dir ]] || continue
  while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$dir" -type f -print0)
done
if ((${#files[@]} == 0)); then
  echo "run_corpus: no inputs"
  exit 0
fi
exec "$fuzzer" -runs=0 "${files[@]}"
