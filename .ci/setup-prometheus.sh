#!/bin/sh
# Installs Debian's prometheus for the metrics test (tests/metrics_test.ts).
# Idempotent; the tests start their own server on a temporary config and data dir.
set -eu
if command -v prometheus >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 || {
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends prometheus >/dev/null
}
command -v prometheus >/dev/null
