#!/usr/bin/env bash
# Renders the HTML report of a real `vfiomm compare` in headless Chromium
# (issue 7) and checks that the page loads without console messages and
# that every chart is there and drew something.
#
# Usage: chromium_report_test.sh VFIOMM_BINARY SCENARIO.yaml
# Exit status: 0 pass, 1 fail, 77 skipped (no chromium: scripts/setup.sh
# installs it).
set -euo pipefail

vfiomm=$1
scenario=$2
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
  echo "SKIP: chromium is not installed (scripts/setup.sh installs it)"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

"$vfiomm" compare "$scenario" --report "$work/report.html" >"$work/table.txt" ||
  fail "vfiomm compare exited with $?"
[[ -s $work/report.html ]] || fail "no report written"

# Root needs --no-sandbox; a private profile keeps runs independent.
chrome=("$browser" --headless --disable-gpu --no-sandbox --user-data-dir="$work/profile"
  --enable-logging=stderr --v=0)
status=0
timeout 120 "${chrome[@]}" --dump-dom "file://$work/report.html" >"$work/dom.html" 2>"$work/chromium.log" ||
  status=$?
((status == 0)) || { cat "$work/chromium.log"; fail "chromium --dump-dom exited with $status"; }

# Chromium logs every console message of the page as "...:CONSOLE(line)] ...",
# an uncaught exception as "Uncaught ...". The page has no script, so any of
# them is an error. (dbus and GPU complaints of a headless container are
# not the page's and are ignored.)
if grep -E ':CONSOLE|Uncaught' "$work/chromium.log"; then
  fail "the page logged console messages"
fi

# The parsed DOM has the charts: page sizes, modelled time and one
# timeline per design, each with data points.
mapfile -t points < <(grep -o '<svg class="chart" data-points="[0-9]*"' "$work/dom.html" | grep -o '[0-9]*"$' | tr -d '"')
designs=$("$vfiomm" designs | wc -l)
((${#points[@]} == 2 + designs)) || fail "expected $((2 + designs)) charts, found ${#points[@]}"
for n in "${points[@]}"; do
  ((n > 0)) || fail "a chart drew no data points (data-points=$n)"
done
grep -q '<table class="metrics">' "$work/dom.html" || fail "no comparison table"

# And it paints: a screenshot of a real page is far from empty.
timeout 120 "${chrome[@]}" --window-size=1280,2400 --screenshot="$work/shot.png" \
  "file://$work/report.html" >/dev/null 2>>"$work/chromium.log" || fail "chromium --screenshot failed"
size=$(stat -c %s "$work/shot.png")
((size > 20000)) || fail "screenshot is only $size bytes"

echo "PASS: ${#points[@]} charts (data points: ${points[*]}), screenshot $size bytes"
