#!/bin/sh
# Installs Debian's redis-server for bench/kv_all_to_all.ts (its baseline). Idempotent; the bench starts
# its own server on a private Unix socket, so the system service is not needed.
set -eu
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends redis-server >/dev/null 2>&1 || {
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends redis-server >/dev/null
}
command -v redis-server >/dev/null
