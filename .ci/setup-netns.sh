#!/usr/bin/env bash
# iproute2 for the partition tests (network namespaces, veth pairs, a bridge); they need root.
set -euo pipefail
if ! command -v ip >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq iproute2 >/dev/null
fi
ip -V
