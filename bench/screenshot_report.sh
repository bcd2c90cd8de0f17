#!/usr/bin/env bash
# Render an HTML report in headless Chromium and save a full-page screenshot, to check
# by eye that every chart shows (campaign retention, retention curves, the value matrix).
#
#   bench/screenshot_report.sh REPORT.html OUT.png [WIDTHxHEIGHT]
#
# Needs Chromium (Debian: apt-get install -y chromium). The page is opened from the
# file system with no network; churnkit's HTML allows no external request anyway.
set -euo pipefail
html=${1:?usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]}
out=${2:?usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]}
size=${3:-1400x4000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z "$browser" ]]; then
  echo "no Chromium found: apt-get install -y chromium" >&2
  exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --user-data-dir="$profile" --window-size="${size/x/,}" \
  --screenshot="$out" "file://$(realpath "$html")" >/dev/null 2>&1
echo "$out"
