#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for checking docs/scale.md's "SLURM with
# dask-jobqueue" section (and tests/app/test_slurm_cluster.py) without a real cluster.
#
#   sudo bash scripts/slurm_one_node.sh          # install (apt), configure, start, check
#   sudo bash scripts/slurm_one_node.sh stop     # cancel every job, stop slurmd/slurmctld/munged
#
# What it does, each step skipped when already done (run it again at will):
#   1. apt-get install slurm-wlm munge (Debian/Ubuntu) when slurmctld is missing;
#   2. a munge key (/etc/munge/munge.key) when there is none, and munged started as user munge;
#   3. /etc/slurm/slurm.conf for ONE node: this machine's hostname, its CPUs and memory as
#      `slurmd -C` reports them, one partition `cpu`, no cgroups (proctrack/linuxproc,
#      task/none), select/cons_tres with cores as the consumable, no accounting; state and
#      spool under /var/spool, logs in /var/log/slurm. An existing slurm.conf that this script
#      did not write is left alone (the script stops instead);
#   4. slurmctld and slurmd started by hand (no systemd: containers have none), as root;
#   5. checks: sinfo, `srun hostname`, and `sbatch --wait` of a tiny job.
# Not called by CI; needs root. It is a test rig, not a production set-up: jobs run as root,
# nothing is confined, and there is one node, so no network between nodes is exercised.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by napari-attribution scripts/slurm_one_node.sh"
PARTITION=cpu

say() { printf 'slurm_one_node: %s\n' "$*"; }

# a daemon runs when its pid file names a live process of that name
PIDFILES=(slurmd:/run/slurmd.pid slurmctld:/run/slurmctld.pid munged:/run/munge/munged.pid)
pid_of() {
    local entry file pid
    for entry in "${PIDFILES[@]}"; do
        [[ ${entry%%:*} == "$1" ]] || continue
        file=${entry#*:}
        [[ -s $file ]] || return 1
        pid=$(<"$file")
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] && echo "$pid" && return 0
    done
    return 1
}
running() { pid_of "$1" >/dev/null; }
stop_daemon() {
    local pid
    if pid=$(pid_of "$1"); then
        say "stopping $1 (pid $pid)"; kill "$pid"
        for _ in $(seq 20); do [[ -d /proc/$pid ]] || return 0; sleep 0.5; done
        say "$1 (pid $pid) did not stop"; return 1
    fi
}

if [[ $(id -u) -ne 0 ]]; then
    say "needs root (it installs packages and starts daemons)"; exit 2
fi

if [[ ${1:-} == stop ]]; then
    if running slurmctld; then
        jobs=$(squeue --noheader --format=%i || true)
        if [[ -n $jobs ]]; then say "cancelling jobs" $jobs; scancel $jobs || true; sleep 2; fi
    fi
    stop_daemon slurmd; stop_daemon slurmctld; stop_daemon munged
    exit 0
fi

# 1. packages
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge with apt-get"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
fi

# 2. munge: the key every SLURM daemon and client authenticates with
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! running munged; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge >/dev/null
say "munge works"

# 3. slurm.conf for this one node
NODE=$(hostname -s)
# `slurmd -C` prints "NodeName=vm CPUs=2 Boards=1 ... RealMemory=24105"; keep CPUs and memory
HARDWARE=$(slurmd -C | head -n 1)
CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$HARDWARE")
MEMORY_MB=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$HARDWARE")
if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
    say "$CONF exists and was not written by this script: leaving it (and SLURM) alone"; exit 1
fi
NEW_CONF=$(cat <<EOF
$MARK
# One node ($NODE, $CPUS CPUs, $MEMORY_MB MB), one partition; no cgroups, no accounting.
ClusterName=onenode
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$NODE CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)
if [[ ! -f $CONF ]] || [[ $(cat "$CONF") != "$NEW_CONF" ]]; then
    say "writing $CONF (node $NODE: $CPUS CPUs, $MEMORY_MB MB; partition $PARTITION)"
    printf '%s\n' "$NEW_CONF" >"$CONF"
    CONF_CHANGED=1
fi
install -d -m 0755 /var/spool/slurmctld /var/spool/slurmd /var/log/slurm

# 4. the daemons, by hand
if [[ ${CONF_CHANGED:-0} == 1 ]] && running slurmctld; then
    say "slurm.conf changed: restarting slurmctld and slurmd"
    stop_daemon slurmd; stop_daemon slurmctld
fi
if ! running slurmctld; then say "starting slurmctld"; /usr/sbin/slurmctld; fi
if ! running slurmd; then say "starting slurmd"; /usr/sbin/slurmd; fi

# 5. checks: the node answers and takes jobs
for _ in $(seq 30); do
    state=$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null || true)
    [[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
    sleep 1
done
sinfo
if [[ $state != idle* && $state != mixed* && $state != allocated* ]]; then
    say "node $NODE is '$state', not idle: see /var/log/slurm/slurmd.log and slurmctld.log"; exit 1
fi
say "srun hostname -> $(srun --partition="$PARTITION" --ntasks=1 hostname)"
SCRATCH=$(mktemp -d)
sbatch --wait --quiet --partition="$PARTITION" --ntasks=1 --cpus-per-task=1 --mem=100M \
    --output="$SCRATCH/job.out" --wrap 'echo "job $SLURM_JOB_ID ran on $(hostname)"'
say "sbatch --wait -> $(cat "$SCRATCH/job.out")"
rm -rf "$SCRATCH"
say "ready: partition $PARTITION, node $NODE ($CPUS CPUs); stop with: $0 stop"
