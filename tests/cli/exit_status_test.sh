#!/usr/bin/env bash
# vfiomm's exit statuses (src/tools/vfiomm_main.cc): 0 on success, 2 on bad
# input — a scenario file that does not parse, an unknown design, devices the
# kernel refuses (in-process for `run`, in child processes for `compare`) —
# and the message on stderr.
# Usage: exit_status_test.sh VFIOMM SMALL_SCENARIO REFUSED_SCENARIO
set -uo pipefail
vfiomm=$1 small=$2 refused=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

expect() {  # expect STATUS STDERR_PATTERN -- ARGS...
  local want=$1 pattern=$2
  shift 3
  "$vfiomm" "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [[ $got -ne $want ]]; then
    echo "FAIL: vfiomm $* exited $got, expected $want"; cat "$tmp/err"; failures=$((failures + 1))
  elif [[ -n $pattern ]] && ! grep -q -- "$pattern" "$tmp/err"; then
    echo "FAIL: vfiomm $*: stderr lacks '$pattern'"; cat "$tmp/err"; failures=$((failures + 1))
  else
    echo "ok: vfiomm $* -> $got"
  fi
}

printf 'name: broken\ncolour: blue\n' >"$tmp/broken.yaml"
expect 0 '' -- compare "$small" --designs huge-fault,address-space --jobs 2
expect 2 'broken.yaml:2:1: unknown key' -- compare "$tmp/broken.yaml"
expect 2 'broken.yaml:2:1: unknown key' -- validate "$tmp/broken.yaml"
expect 2 "unknown design 'nope'" -- compare "$small" --designs nope
expect 2 'the kernel refuses device' -- run "$refused" --design huge-fault
expect 2 'the kernel refuses device' -- compare "$refused" --designs huge-fault,prefault --jobs 2
# Off a terminal there is no progress bar: stderr holds no carriage return.
"$vfiomm" compare "$small" --designs prefault --jobs 1 >/dev/null 2>"$tmp/err"
if grep -q $'\r' "$tmp/err"; then echo "FAIL: a progress bar was drawn off a terminal"; failures=$((failures + 1)); fi
exit $((failures > 0))
