#!/usr/bin/env bash
# Issue 17 finding 5: SIGINT or SIGTERM sent to vfiomm's pid (as a
# supervisor does) in the middle of a run that writes files. vfiomm must
# exit with 128 + the signal's number, leave no process behind, remove its
# temporary files (output files' temporary names) and leave the previous
# output files as they were.
# Usage: interrupt_test.sh VFIOMM LONG_SCENARIO
set -uo pipefail
# Job control: a background job's SIGINT is then not ignored (vfiomm keeps
# a signal ignored from the start ignored, as nohup expects).
set -m
vfiomm=$1 long=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The pids of the live children of process $1.
# (cat goes on past a process that vanished since the glob; the last ") "
# ends the command name, which may hold anything.)
children() {
  cat /proc/[0-9]*/stat 2>/dev/null | sed -n 's/^\([0-9]*\) (.*) [A-Za-z] \([0-9]*\) .*/\1 \2/p' |
    while read -r p pp; do [[ $pp == "$1" ]] && echo "$p"; done
}

# interrupt SIGNAL -- ARGS...: runs vfiomm ARGS in the background with
# outputs in $tmp/out (out.json holding "previous"), waits (bounded poll)
# until the output JSON's temporary name is there (opened before the run
# starts), sends SIGNAL, and checks what is left.
interrupt() {
  local sig=$1
  shift 2
  rm -rf "$tmp/out" "$tmp/tmpdir"
  mkdir -p "$tmp/out" "$tmp/tmpdir"
  echo previous >"$tmp/out/out.json"
  TMPDIR=$tmp/tmpdir "$vfiomm" "$@" --json "$tmp/out/out.json" --report "$tmp/out/report.html" \
    --trace "$tmp/out/trace.json" >"$tmp/stdout" 2>"$tmp/stderr" &
  local pid=$! kids="" i before=$failures
  going() {
    kids=$(children "$pid")
    compgen -G "$tmp/out/.out.json.*" >/dev/null
  }
  for ((i = 0; i < 600; i++)); do
    if going || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  if ! going; then
    fail "vfiomm $* did not get going after $i polls (children: ${kids:-none})"; cat "$tmp/stderr"; kill -KILL "$pid"; wait "$pid"
    return
  fi
  kill -"$sig" "$pid"
  wait "$pid"
  local got=$? expect
  expect=$((128 + $(kill -l "$sig")))
  [[ $got -eq $expect ]] || fail "vfiomm $* exited $got after SIG$sig, expected $expect"
  local k
  for k in $kids; do
    if [[ -e /proc/$k ]]; then fail "process $k started by vfiomm $* survived SIG$sig"; kill -KILL "$k"; fi
  done
  [[ $(cat "$tmp/out/out.json") == previous ]] || fail "vfiomm $*: out.json changed"
  local left
  left=$(cd "$tmp/out" && ls -A)
  [[ $left == out.json ]] || fail "vfiomm $* left in the output directory: $(echo $left)"
  left=$(ls -A "$tmp/tmpdir")
  [[ -z $left ]] || fail "vfiomm $* left in TMPDIR: $left"
  grep -q "interrupted by SIG$sig" "$tmp/stderr" || fail "vfiomm $*: stderr does not say it was interrupted"
  grep -q "out.json was not written; the previous one is left as it was" "$tmp/stderr" ||
    fail "vfiomm $*: stderr does not say out.json was left as it was"
  ((failures == before)) && echo "ok: SIG$sig to vfiomm $* -> $got"
}

# compare runs its designs on threads of one process: no child to reap.
interrupt INT -- compare "$long" --designs huge-fault,prefault --jobs 2
interrupt TERM -- compare "$long" --designs huge-fault,address-space --jobs 2
interrupt INT -- run "$long" --design huge-fault
exit $((failures > 0))
