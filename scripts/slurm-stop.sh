#!/usr/bin/env bash
# Stops the daemons scripts/slurm-start.sh started (by their pid files).
dir=${MPX_SLURM_DIR:-/tmp/mpx-slurm}
scancel --user=root 2>/dev/null || true
for name in slurmd slurmctld munged; do
  pidfile="$dir/$name.pid"
  [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
done
pkill -x slurmd 2>/dev/null || true
pkill -x slurmctld 2>/dev/null || true
echo "slurm-stop: stopped"
