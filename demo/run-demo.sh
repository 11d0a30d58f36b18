#!/usr/bin/env bash
# The quick start on local folders, as a dry run: the Odoo operations are printed, each file's
# would-be outcome is shown (three good files would be archived, a broken one would go to error/
# with the report shown), the delivery confirmations it would send are among the operations, the delivery order the export flow would publish is printed, and the
# partner's files stay where they are.
set -euo pipefail
bin=${1:-target/debug/edi-bridge}
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
run="$here/run"

rm -rf "$run"
mkdir -p "$run/partner/out/products" "$run/partner/out/stock" "$run/partner/out/shipped"
cp "$top/samples/products-1.xml" "$top/samples/products-broken.xml" "$run/partner/out/products/"
cp "$top/samples/STOCK_20261127_0800.xml" "$run/partner/out/stock/"
cp "$top/samples/SHIPPED_20261129_1630.xml" "$run/partner/out/shipped/"

echo "== The partner's inboxes before the run"
(cd "$run/partner" && find out -type f | sort)
echo
echo "== edi-bridge run --once (dry run): the Odoo operations it would send, one JSON line each"
echo "   (upserts of products, stock levels, confirm_delivery for the shipped delivery orders),"
echo "   the delivery order document the export flow would publish, then what would become of"
echo "   each file and record"
status=0
EDI_BRIDGE_LOG=${EDI_BRIDGE_LOG:-warn} "$top/$bin" --config "$here/edi-bridge.toml" run --once || status=$?
echo
echo "== The partner's folders after the dry run: nothing moved, nothing published (exit status $status: 1 because a file would go to error/)"
(cd "$run/partner" && find . -type f | sort)
