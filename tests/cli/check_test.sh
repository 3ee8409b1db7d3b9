#!/usr/bin/env bash
# `vfiomm check` (issue 15): exit 0 with no violation, 1 with one (and a
# replay file that `--replay` turns into the same failure), 2 on bad input;
# the same inputs print the same figures.
# Also the bounded run CI makes: every correct design passes pct schedules of
# every check scenario.
# Usage: check_test.sh VFIOMM CHECK_SCENARIO_DIR
set -uo pipefail
vfiomm=$1 dir=$2
scenario=$dir/fault-vs-disable.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

expect() {  # expect STATUS PATTERN -- ARGS...: PATTERN is looked for in stdout and stderr
  local want=$1 pattern=$2
  shift 3
  "$vfiomm" "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [[ $got -ne $want ]]; then
    echo "FAIL: vfiomm $* exited $got, expected $want"; cat "$tmp/out" "$tmp/err"; failures=$((failures + 1))
  elif [[ -n $pattern ]] && ! grep -q -- "$pattern" "$tmp/out" "$tmp/err"; then
    echo "FAIL: vfiomm $*: output lacks '$pattern'"; cat "$tmp/out" "$tmp/err"; failures=$((failures + 1))
  else
    echo "ok: vfiomm $* -> $got"
  fi
}

mutated=(check "$scenario" --design address-space --mutate fault-without-memory-lock --strategy pct --schedules 2000 --seed 1)
expect 0 'no violation' -- check "$scenario" --design address-space --schedules 50
expect 1 'shrunk from [0-9]* choices / [0-9]* preemptions to' -- "${mutated[@]}" --replay-out "$tmp/replay.json" --trace "$tmp/found.trace"
grep -A1 -- 'VIOLATION' "$tmp/out" >"$tmp/found"
expect 1 'reproduces the recorded failure' -- check --replay "$tmp/replay.json" --trace "$tmp/replayed.trace"
grep -A1 -- 'VIOLATION' "$tmp/out" >"$tmp/replayed"
if ! cmp -s "$tmp/found" "$tmp/replayed"; then
  echo "FAIL: the replay did not reproduce the failure"; cat "$tmp/found" "$tmp/replayed"; failures=$((failures + 1))
fi
# The trace of the failing schedule is a function of it.
if ! cmp -s "$tmp/found.trace" "$tmp/replayed.trace" || ! grep -q '"traceEvents"' "$tmp/found.trace"; then
  echo "FAIL: the replay's trace differs from the found schedule's"; failures=$((failures + 1))
fi

expect 2 "unknown strategy 'nope'" -- check "$scenario" --design address-space --strategy nope
expect 2 "unknown mutation 'nope'" -- check "$scenario" --design address-space --mutate nope
expect 2 "unknown design 'nope'" -- check "$scenario" --design nope
expect 2 'give a scenario and --design' -- check "$scenario"
expect 2 'cannot read the replay file' -- check --replay "$tmp/missing.json"
echo '{"vfiomm_check_replay": 1}' >"$tmp/bad.json"
expect 2 'not a replay file' -- check --replay "$tmp/bad.json"

# Same inputs, same schedules: everything but the time is identical.
for run in 1 2; do
  "$vfiomm" check "$scenario" --design huge-fault --schedules 100 --seed 9 | grep -v '^time:' >"$tmp/run$run"
done
if ! cmp -s "$tmp/run1" "$tmp/run2"; then
  echo "FAIL: two runs with the same seed differ"; diff "$tmp/run1" "$tmp/run2"; failures=$((failures + 1))
fi
# Two jobs: the same figures and the same first failure as one.
for jobs in 1 2; do
  "$vfiomm" check "$scenario" --design address-space --mutate zap-before-memory-lock --strategy random \
    --schedules 500 --seed 3 --jobs $jobs | grep -v '^time:' >"$tmp/jobs$jobs"
done
if ! cmp -s "$tmp/jobs1" "$tmp/jobs2" || ! grep -q VIOLATION "$tmp/jobs1"; then
  echo "FAIL: --jobs 2 reports otherwise than --jobs 1"; diff "$tmp/jobs1" "$tmp/jobs2"; failures=$((failures + 1))
fi
expect 2 '--jobs must be at least 1' -- check "$scenario" --design address-space --jobs 0

for sc in "$dir"/*.yaml; do
  for design in address-space fill-vma huge-fault prefault; do
    expect 0 'no violation' -- check "$sc" --design "$design" --strategy pct --schedules 200 --seed 2
  done
done

exit $((failures != 0))
