#!/bin/bash
# `systemd-analyze verify` on deploy/'s systemd units, failing on any warning (verify itself exits
# 0 on unknown keys). The units name /usr/local/bin/edi-bridge, which a build machine does not
# have: they are checked from a copy whose ExecStart= names BIN (default: the built binary).
# Used by `make verify-units` and tests/deploy.rs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-}"
if [ -z "$bin" ]; then
  for b in "$here/../target/release/edi-bridge" "$here/../target/debug/edi-bridge"; do
    [ -x "$b" ] && { bin="$(cd "$(dirname "$b")" && pwd)/edi-bridge"; break; }
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "verify-units: no edi-bridge binary (build it first)" >&2; exit 2; }
command -v systemd-analyze >/dev/null || {
  echo "verify-units: systemd-analyze is not installed (Debian: apt-get install systemd)" >&2
  exit 3
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
units=()
for unit in "$here"/*.service "$here"/*.timer; do
  sed "s#/usr/local/bin/edi-bridge#${bin}#g" "$unit" > "$tmp/$(basename "$unit")"
  units+=("$tmp/$(basename "$unit")")
done
out="$(cd "$tmp" && systemd-analyze verify "${units[@]}" 2>&1)" || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
  echo "$out" >&2
  exit 1
fi
echo "verify-units: ${#units[@]} units clean: $(cd "$here" && ls *.service *.timer | tr '\n' ' ')"
