#!/bin/sh
# Installs Debian's curl: the collectives tests and bench run hundreds of shell tasks that speak the task
# API with `curl --unix-socket` (a compiled shoal helper per task would cost ≈ 40 MB each). Idempotent.
set -eu
if command -v curl >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends curl ca-certificates >/dev/null 2>&1 || {
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends curl ca-certificates >/dev/null
}
command -v curl >/dev/null
