#!/usr/bin/env bash
# Installs and starts a one-host Son of Grid Engine (Debian's gridengine-master, -exec and -client) on this
# machine for the sge plug-in's tests: cell "default", queue "shoal.q" with 8 slots on this host, parallel
# environment "shoal" (qrsh -inherit allowed), a scheduler that runs every second, jobs as root allowed.
# Idempotent: installs only what is missing, changes only settings that differ, starts only daemons that
# are not running, then waits until the queue instance takes jobs. No systemd: the daemons are started
# directly. `--no-install` skips apt-get (tests/_sge.ts uses it when the binaries are already there).
set -euo pipefail
install=1
[ "${1:-}" = "--no-install" ] && install=0
# Test files running in parallel may call this at the same time: one at a time.
mkdir -p /run/lock
exec 9>/run/lock/shoal-setup-sge.lock
flock 9

host=$(hostname)
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
if [ "$install" = 1 ] && { ! command -v qsub >/dev/null || [ ! -x /usr/sbin/sge_qmaster ] \
  || [ ! -x /usr/sbin/sge_execd ]; }; then
  export DEBIAN_FRONTEND=noninteractive
  # The packages' own set-up (init_cluster: spool, global configuration, sgeadmin as manager) runs at
  # install when these are answered.
  debconf-set-selections <<SEL
gridengine-common shared/gridenginemaster string $host
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridengineconfig boolean true
gridengine-client shared/gridenginemaster string $host
gridengine-client shared/gridenginecell string default
gridengine-client shared/gridengineconfig boolean true
gridengine-master shared/gridenginemaster string $host
gridengine-master shared/gridenginecell string default
gridengine-master shared/gridengineconfig boolean true
SEL
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends gridengine-master gridengine-exec gridengine-client >/dev/null
fi
for b in qsub qstat qdel qconf qrsh /usr/sbin/sge_qmaster /usr/sbin/sge_execd; do
  command -v "$b" >/dev/null || { echo "setup-sge: $b is missing" >&2; exit 1; }
done

common=$SGE_ROOT/$SGE_CELL/common
if [ ! -s "$common/bootstrap" ] || [ ! -e /var/spool/gridengine/spooldb/sge ]; then
  /usr/share/gridengine/scripts/init_cluster "$SGE_ROOT" "$SGE_CELL" /var/spool/gridengine/spooldb sgeadmin
fi
[ "$(cat "$common/act_qmaster" 2>/dev/null)" = "$host" ] || echo "$host" >"$common/act_qmaster"
# Grid Engine compares a client's resolved name with the name it gives: where this host's name resolves
# to 127.0.0.1, whose first name is "localhost", every request is refused ("access denied") unless the
# names sharing its address are aliases of it.
ip=$(getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }')
aliases=$(awk -v ip="$ip" -v host="$host" '$1 == ip { for (i = 2; i <= NF; i++) if ($i != host) print $i }' \
  /etc/hosts | sort -u | tr '\n' ' ')
want="$host ${aliases% }"
restart=0
[ "$(cat "$common/host_aliases" 2>/dev/null)" = "${want% }" ] || {
  echo "${want% }" >"$common/host_aliases"
  restart=1 # daemons that a package script started before this refuse every request
}
mkdir -p /var/run/gridengine && chown sgeadmin:sgeadmin /var/run/gridengine

alive() { qconf -sh >/dev/null 2>&1; }
pid_of() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && cat "$1"; }
qmaster_pid=/var/spool/gridengine/qmaster/qmaster.pid
if [ "$restart" = 1 ]; then
  for f in "$qmaster_pid" /var/spool/gridengine/execd/*/execd.pid; do
    pid=$(pid_of "$f") || continue
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
fi
# A qmaster that is still shutting down is waited for, then started anew.
end=$((SECONDS + 90))
until alive; do
  pid_of "$qmaster_pid" >/dev/null || /usr/sbin/sge_qmaster 9>&-
  [ $SECONDS -lt $end ] || {
    echo "setup-sge: sge_qmaster does not answer; see /var/spool/gridengine/qmaster/messages" >&2
    exit 1
  }
  sleep 0.5
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# set_conf SHOW_CMD MODIFY_CMD FILE key=value…: rewrites the keys that differ, then loads the file.
set_conf() {
  local show=$1 modify=$2 file=$3 changed=0 kv k val
  shift 3
  $show >"$file"
  for kv in "$@"; do
    k=${kv%%=*} val=${kv#*=}
    if ! grep -qE "^$k +$val\$" "$file"; then
      sed -i -E "s|^$k +.*|$k $val|" "$file"
      changed=1
    fi
  done
  [ "$changed" = 0 ] || $modify "$file" >/dev/null
}
# Jobs as root (CI runs as root); load reports often enough for a test to see the host.
mkdir -p "$tmp/conf"
set_conf "qconf -sconf global" "qconf -Mconf" "$tmp/conf/global" \
  min_uid=0 min_gid=0 load_report_time=00:00:05 max_unheard=00:01:00
# Schedule every second, not every 15 s; a busy machine's load must not hold jobs back.
set_conf "qconf -ssconf" "qconf -Msconf" "$tmp/sched" schedule_interval=0:0:1 flush_submit_sec=1 \
  flush_finish_sec=1 job_load_adjustments=NONE load_adjustment_decay_time=0:0:0

qconf -sh 2>/dev/null | grep -qx "$host" || qconf -ah "$host" >/dev/null
qconf -ss 2>/dev/null | grep -qx "$host" || qconf -as "$host" >/dev/null
if ! qconf -se "$host" >/dev/null 2>&1; then
  printf '%s\n' "hostname $host" "load_scaling NONE" "complex_values NONE" "user_lists NONE" \
    "xuser_lists NONE" "projects NONE" "xprojects NONE" "usage_scaling NONE" "report_variables NONE" \
    >"$tmp/exechost"
  qconf -Ae "$tmp/exechost" >/dev/null
fi
if ! qconf -sp shoal >/dev/null 2>&1; then
  cat >"$tmp/pe" <<'PE'
pe_name            shoal
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $fill_up
control_slaves     TRUE
job_is_first_task  FALSE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
PE
  qconf -Ap "$tmp/pe" >/dev/null
fi
if ! qconf -sq shoal.q >/dev/null 2>&1; then
  cat >"$tmp/queue" <<QUEUE
qname                 shoal.q
hostlist              $host
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               shoal
rerun                 FALSE
slots                 8
tmpdir                /tmp
shell                 /bin/bash
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
QUEUE
  qconf -Aq "$tmp/queue" >/dev/null
fi

# The execution daemon; then wait until the queue instance is up (a load reported, no alarm or
# unknown state), clearing an error state left by an earlier run.
execd_running=0
for f in /var/spool/gridengine/execd/*/execd.pid; do pid_of "$f" >/dev/null && execd_running=1; done
[ "$execd_running" = 1 ] || /usr/sbin/sge_execd 9>&-
for i in $(seq 150); do
  line=$(qstat -f -q shoal.q 2>/dev/null | awk -v q="shoal.q@" 'index($1, q) == 1' | head -1)
  states=$(awk '{ print $6 }' <<<"$line")
  load=$(awk '{ print $4 }' <<<"$line")
  if [ -n "$line" ] && [ -z "$states" ] && [ "$load" != "-NA-" ]; then
    echo "setup-sge: queue instance $(awk '{ print $1 }' <<<"$line") takes jobs"
    exit 0
  fi
  case "$states" in *E*) [ $((i % 10)) = 0 ] && qmod -c "shoal.q@$host" >/dev/null 2>&1 || true ;; esac
  case "$states" in *d*) qmod -e "shoal.q@$host" >/dev/null 2>&1 || true ;; esac
  sleep 0.2
done
echo "setup-sge: queue shoal.q@$host did not come up (${line:-no queue instance}); see" \
  "/var/spool/gridengine/qmaster/messages and /var/spool/gridengine/execd/*/messages" >&2
exit 1
