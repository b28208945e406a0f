#!/usr/bin/env bash
# Installs and starts a one-node Slurm cluster on this machine (node "localhost", partition "debug") with
# munge authentication, for the slurm plug-in's tests. Idempotent: installs only what is missing, writes the
# configuration only when it differs, starts only daemons that are not running, then waits until the node
# is idle. `--no-install` skips apt-get (used by tests/_slurm.ts when the binaries are already there).
set -euo pipefail
install=1
[ "${1:-}" = "--no-install" ] && install=0
# Test files running in parallel may call this at the same time: one at a time.
mkdir -p /run/lock
exec 9>/run/lock/shoal-setup-slurm.lock
flock 9

if [ "$install" = 1 ] && { ! command -v sbatch >/dev/null || [ ! -x /usr/sbin/slurmctld ] \
  || [ ! -x /usr/sbin/slurmd ] || [ ! -x /usr/sbin/munged ]; }; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi
for b in sbatch srun scancel squeue sinfo /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged; do
  command -v "$b" >/dev/null || { echo "setup-slurm: $b is missing" >&2; exit 1; }
done

# munge: a key, its directories, the daemon.
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
  rm -f /run/munge/munged.pid
  # 9>&-: the daemon must not inherit (and hold forever) the lock of this script.
  runuser -u munge -- /usr/sbin/munged 9>&-
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
fi

# slurm.conf: one node named localhost, NodeHostname = this machine's hostname.
cpus=$(nproc)
mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
conf_dir=/etc/slurm
mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$conf_dir/slurm.conf.new" <<CONF
# Written by shoal's .ci/setup-slurm.sh: a one-node cluster for tests.
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
KillWait=5
MinJobAge=60
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
CONF
changed=0
if ! cmp -s "$conf_dir/slurm.conf.new" "$conf_dir/slurm.conf"; then
  mv "$conf_dir/slurm.conf.new" "$conf_dir/slurm.conf"
  changed=1
else
  rm -f "$conf_dir/slurm.conf.new"
fi
# Slurm 22.05 knows no "CgroupPlugin=disabled"; proctrack/linuxproc needs no cgroup.conf at all.
[ "$(cat "$conf_dir/cgroup.conf" 2>/dev/null)" = "CgroupPlugin=disabled" ] && rm -f "$conf_dir/cgroup.conf"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ "$changed" = 1 ]; then
  running /run/slurmd.pid && kill "$(cat /run/slurmd.pid)" || true
  running /run/slurmctld.pid && kill "$(cat /run/slurmctld.pid)" || true
  for _ in $(seq 50); do
    running /run/slurmd.pid || running /run/slurmctld.pid || break
    sleep 0.1
  done
fi
running /run/slurmctld.pid || /usr/sbin/slurmctld 9>&-
running /run/slurmd.pid || /usr/sbin/slurmd -N localhost 9>&-

# Wait for the node to be usable (idle, mixed or allocated), resuming it if it came up down/drained.
for i in $(seq 150); do
  state=$(sinfo -h -N -n localhost -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle* | mix* | alloc*) echo "setup-slurm: node localhost is $state"; exit 0 ;;
    down* | drain*) [ $((i % 10)) = 0 ] && scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.2
done
echo "setup-slurm: node localhost did not become idle (state: ${state:-none}); see /var/log/slurm/" >&2
exit 1
