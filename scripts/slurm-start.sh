#!/usr/bin/env bash
# Installs (once) and starts a single-node Slurm on this machine for the
# Slurm executor's tests: munged, slurmctld and slurmd as plain background
# daemons, state under $MPX_SLURM_DIR (default /tmp/mpx-slurm). Needs root
# and Debian's packages. Follows ../shared/SLURM.md: the config is written
# before any client runs (else clients hang on DNS), daemons start with no
# inherited descriptors, the scheduler has no batch delay, finished jobs
# stay visible for an hour (no sacct), and a failed parent cancels its
# dependents. scripts/slurm-stop.sh stops exactly these daemons.
set -euo pipefail
dir=${MPX_SLURM_DIR:-/tmp/mpx-slurm}
mkdir -p "$dir"/{state,spool,log}

# Already up (a config to ask with, and an idle node): nothing to do.
if [ -f /etc/slurm/slurm.conf ] && command -v sinfo >/dev/null \
   && timeout 10 sinfo -h -o '%t' 2>/dev/null | grep -q idle; then
  echo "slurm-start: already up"
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  # The packages try to start their services on install: forbid that.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

host=$(hostname -s)
node=$(slurmd -C 2>/dev/null | head -1 | sed "s/^NodeName=[^ ]*/NodeName=$host/")
# Advertise 8 CPUs so array tasks run side by side on a 2-core machine
# (SlurmdParameters=config_overrides lets the node claim more than it has).
node=$(echo "$node" | sed -E 's/CPUs=[0-9]+/CPUs=8/; s/Boards=[0-9]+ //; s/SocketsPerBoard=[0-9]+/Sockets=1/; s/CoresPerSocket=[0-9]+/CoresPerSocket=8/; s/ThreadsPerCore=[0-9]+/ThreadsPerCore=1/')
mkdir -p /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=mpx
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=3600
MaxArraySize=10001
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# munge: a key, and its runtime folders.
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chmod 400 /etc/munge/munge.key
chown -R root:root /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true

# Start each daemon with no inherited descriptors beyond stdio.
start() { setsid "$@" </dev/null >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- & }
start munged --force --pid-file="$dir/munged.pid" --socket=/run/munge/munge.socket.2
sleep 0.5
start slurmctld -D
start slurmd -D

# Wait (bounded) for the node to be idle, then warm the scheduler up.
for _ in $(seq 1 100); do
  if sinfo -h -o '%t' 2>/dev/null | grep -q idle; then break; fi
  sleep 0.2
done
sinfo -h -o '%t' | grep -q idle || { echo "slurm-start: the node never became idle; see $dir/log" >&2; exit 1; }
timeout 60 srun -N1 true
echo "slurm-start: single-node Slurm up ($host), state in $dir"
