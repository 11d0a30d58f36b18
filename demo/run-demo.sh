#!/usr/bin/env bash
# The quick start on local folders: two good files are archived, a broken one lands in
# error/ with its report, and the Odoo operations (dry run) are printed.
set -euo pipefail
bin=${1:-target/debug/edi-bridge}
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
run="$here/run"

rm -rf "$run"
mkdir -p "$run/partner/out/products" "$run/partner/out/stock"
cp "$top/samples/products-1.xml" "$top/samples/products-broken.xml" "$run/partner/out/products/"
cp "$top/samples/STOCK_20261127_0800.xml" "$run/partner/out/stock/"

echo "== The partner's inboxes before the run"
(cd "$run/partner" && find out -type f | sort)
echo
echo "== edi-bridge run --once (dry run: the Odoo operations it would send, one JSON line each)"
status=0
EDI_BRIDGE_LOG=${EDI_BRIDGE_LOG:-warn} "$top/$bin" --config "$here/edi-bridge.toml" run --once || status=$?
echo
echo "== The partner's folders after the run (exit status $status: 1 because a file went to error/)"
(cd "$run/partner" && find out -type f | sort)
echo
report=$(find "$run/partner/out/products/error" -name '*.error.txt' | head -n 1)
echo "== The error report: ${report#"$run/partner/"}"
cat "$report"
