#!/bin/sh
# Installs Debian's chromium for the dashboard test (tests/ui_test.ts).
# Idempotent; the tests start their own browser (headless, through playwright-core).
set -eu
if command -v chromium >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends chromium >/dev/null
}
command -v chromium >/dev/null
