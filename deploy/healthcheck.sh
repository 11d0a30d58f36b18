#!/bin/bash
# The container's health check: GET /healthz on [server] listen, healthy only on 200.
# Bash only (no curl in the slim image): EDI_BRIDGE_HEALTH_HOST (127.0.0.1) and
# EDI_BRIDGE_HEALTH_PORT (8480) say where edi-bridge listens inside the container.
set -u
host="${EDI_BRIDGE_HEALTH_HOST:-127.0.0.1}"
port="${EDI_BRIDGE_HEALTH_PORT:-8480}"
exec 3<>"/dev/tcp/${host}/${port}" || { echo "healthz: nothing listens on ${host}:${port}"; exit 1; }
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
IFS= read -r -t 4 status <&3 || { echo "healthz: no answer from ${host}:${port}"; exit 1; }
status="${status%$'\r'}"
case "$status" in
  "HTTP/"*" 200"*) exit 0 ;;
  *)
    # The body says why (e.g. 503 with the reason the scheduler is stuck).
    body="$(timeout 2 cat <&3 | sed '1,/^\r\{0,1\}$/d' | head -c 300)"
    echo "healthz: ${status}${body:+: ${body}}"
    exit 1 ;;
esac
