#!/usr/bin/env bash
# vfiomm's exit statuses (src/tools/main.cc): 0 on success, 2 on bad
# input — a scenario file that does not parse, an unknown design, devices the
# kernel refuses (in-process for `run`, in child processes for `compare`) —
# and the message on stderr.
# Also (issue 17, issue 13 item 7): every command line CLI11 refuses is
# bad input; hostile scenario files and output paths.
# Usage: exit_status_test.sh VFIOMM SMALL_SCENARIO REFUSED_SCENARIO LONG_SCENARIO
set -uo pipefail
vfiomm=$1 small=$2 refused=$3 long=$4
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

# Issue 13 item 7: CLI11's parse errors exit 2 (not CLI11's own codes) with
# CLI11's message; --help and --version are not errors.
expect 2 '--design is required' -- run "$small"
expect 2 'scenario is required' -- validate
expect 2 'not expected: --bogus' -- compare --bogus
expect 2 'jobs' -- compare --jobs many
expect 0 '' -- --help
expect 0 '' -- --version

# Issue 17 finding 3: a scenario that is not UTF-8 is refused with
# file:line:column by validate, and by compare before anything is written.
printf 'name: caf\xe9\n' >"$tmp/latin1.yaml"
expect 2 'latin1.yaml:1:10: byte 0xe9' -- validate "$tmp/latin1.yaml"
expect 2 'latin1.yaml:1:10: byte 0xe9' -- compare "$tmp/latin1.yaml" --json "$tmp/latin1.json"
[[ -e $tmp/latin1.json ]] && { echo "FAIL: compare of a refused scenario wrote its JSON"; failures=$((failures + 1)); }

# A file name that is not UTF-8 reaches the JSON as U+FFFD, not as a crash.
cp "$small" "$tmp/caf"$'\xe9'.yaml
expect 0 '' -- compare "$tmp/caf"$'\xe9'.yaml --designs huge-fault,prefault --jobs 2 --json "$tmp/latin1-name.json"
grep -q "caf"$'\xef\xbf\xbd'".yaml" "$tmp/latin1-name.json" ||
  { echo "FAIL: the JSON lacks the file name with U+FFFD"; failures=$((failures + 1)); }

# Finding 9: endless or non-file input.
expect 2 '/dev/zero: longer than the 16 MiB' -- validate /dev/zero
expect 2 'is a directory' -- validate "$tmp"

# Finding 10: what the kernel would refuse is refused by validate.
expect 2 'refused_device.yaml:8:9: the kernel refuses device' -- validate "$refused"

# Finding 4: an output path that cannot be written is refused before the
# run (the long scenario would run for many minutes).
expect 2 'cannot write the JSON' -- compare "$long" --designs huge-fault,prefault --json "$tmp/no/such/dir/x.json"
expect 2 'cannot write the report .*: Is a directory' -- run "$long" --design huge-fault --report "$tmp"
expect 2 'cannot write the trace' -- run "$long" --design huge-fault --trace "$tmp/no/t.json"
expect 2 'cannot write the ftrace' -- compare "$long" --designs huge-fault,prefault --ftrace "$tmp/no/f.txt"
expect 2 'cannot write the CSV' -- sweep --sizes 64K --csv "$tmp/no/x.csv"
expect 2 'cannot write the JSON' -- explain --bar-size 2M --json "$tmp/no/x.json"
# A full device is a failure, not silence; what was not written says so,
# and the previous file stays.
echo previous >"$tmp/previous.html"
expect 2 'writing the JSON /dev/full failed: No space left on device' -- \
  run "$small" --design huge-fault --json /dev/full --report "$tmp/previous.html"
grep -q 'the report .*previous.html was not written; the previous one is left as it was' "$tmp/err" ||
  { echo "FAIL: stderr does not say the report was left as it was"; failures=$((failures + 1)); }
[[ $(cat "$tmp/previous.html") == previous ]] || { echo "FAIL: the previous report changed"; failures=$((failures + 1)); }
"$vfiomm" designs >/dev/full 2>"$tmp/err"
got=$?
if [[ $got -ne 2 ]] || ! grep -q 'writing the standard output failed' "$tmp/err"; then
  echo "FAIL: vfiomm designs >/dev/full exited $got"; cat "$tmp/err"; failures=$((failures + 1))
fi
# /dev/stdout redirected to a file: the JSON follows the table in it.
"$vfiomm" run "$small" --design huge-fault --json /dev/stdout >"$tmp/both.txt" 2>"$tmp/err"
if ! grep -q '^scenario report-small' "$tmp/both.txt" || ! grep -q '"schema_version"' "$tmp/both.txt"; then
  echo "FAIL: --json /dev/stdout > FILE lost the table or the JSON"; cat "$tmp/err"; failures=$((failures + 1))
fi
# A complete run replaces the file whole and leaves no temporary file.
expect 0 '' -- run "$small" --design huge-fault --report "$tmp/previous.html" --json "$tmp/new.json"
grep -q '<html' "$tmp/previous.html" || { echo "FAIL: the report was not replaced"; failures=$((failures + 1)); }
left=$(ls -A "$tmp" | grep '^\.' || true)
[[ -z $left ]] || { echo "FAIL: temporary files left: $left"; failures=$((failures + 1)); }
exit $((failures > 0))
