#!/usr/bin/env bash
# Installs every Debian 12 package vfiomm needs, and only what is missing.
# Safe to run twice. Uses sudo when not root.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang-14 libclang-rt-14-dev lld-14
  # The hygiene gates of .ci/run: scripts/format_check.sh and clang-tidy.
  clang-format-14 clang-tidy-14
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libyaml-cpp-dev nlohmann-json3-dev libfmt-dev
  libexpected-dev librapidcheck-dev
  # The browser test of the HTML report (tests/report/chromium_report_test.sh)
  # and a font for its text.
  chromium fonts-dejavu-core
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
