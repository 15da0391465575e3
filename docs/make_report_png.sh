#!/usr/bin/env bash
# Regenerate docs/report.png: run the example project with --flop-html, screenshot the page.
# Needs the html extra (matplotlib) and chromium (apt-get install -y chromium).
# The example's classifier is over its latency budget on purpose, so pytest exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
(cd docs/report_example && python -m pytest -p no:cacheprovider -q --flop-html="$out/report.html")
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$out/profile" --screenshot="$PWD/docs/report.png" \
  --window-size=1280,1500 "file://$out/report.html" 2>/dev/null
rm -rf "$out"
ls -l docs/report.png
