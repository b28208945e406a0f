#!/usr/bin/env bash
# Installs OpenSSH (server and client) for the ssh plug-in's tests. Idempotent.
# The tests start their own sshd (own host key, own authorized_keys, a high port on 127.0.0.1) from
# tests/_sshd.ts, so no system-wide daemon is started or configured here; only /run/sshd, which sshd needs
# as its privilege-separation directory, is created.
set -euo pipefail
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v scp >/dev/null \
  || ! command -v ssh-keygen >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
fi
mkdir -p /run/sshd
chmod 0755 /run/sshd
echo "setup-sshd: $(/usr/sbin/sshd -V 2>&1 | head -1 || true) ready (tests start their own sshd)"
