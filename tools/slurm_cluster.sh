#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the tests that need a real queue (pytest -m slurm)
# and for trying --launcher slurm by hand:
#
#   bash tools/slurm_cluster.sh start     # install (root + apt), write slurm.conf, start munge + daemons
#   bash tools/slurm_cluster.sh status    # sinfo / squeue
#   bash tools/slurm_cluster.sh stop      # cancel every job, stop the daemons by their pid files
#
# Two partitions on the one node: `low` (the default, PriorityTier 1) and `high` (PriorityTier 2); a
# job in `high` preempts one in `low`, which receives its --signal (USR2, submitit's) during GraceTime
# and is requeued (PreemptMode=REQUEUE). Job accounting (slurmdbd + MariaDB) is not set up: sacct
# answers "accounting storage is disabled", submitit logs "Bypassing sacct error" and reads the job
# state from squeue / its result file instead. Everything lives in $SEED_SLURM_DIR (default
# /tmp/seed-slurm): config, state, spool, logs, pid files. Facts and pitfalls:
# ../shared/INSTALL-NOTES.md ("A real single-node SLURM cluster").
set -euo pipefail
DIR="${SEED_SLURM_DIR:-/tmp/seed-slurm}"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"
PACKAGES=(slurmctld slurmd slurm-client munge)

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "slurm_cluster.sh: SLURM is not installed and this is not root with apt-get;" \
            "install ${PACKAGES[*]} (Debian / Ubuntu) or use your site's cluster" >&2
        exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; }
}

write_conf() {
    mkdir -p "$DIR"/{state,spool,log}
    local host node_line
    host="$(hostname -s)"
    # slurmd -C: this machine's CPUs, sockets, cores and memory; the memory a little below the real figure
    node_line="$(slurmd -C | head -1)"
    local memory
    memory="$(echo "$node_line" | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p')"
    node_line="$(echo "$node_line" | sed -E "s/RealMemory=[0-9]+/RealMemory=$((memory * 9 / 10))/")"
    cat >"$CONF" <<EOF
ClusterName=seedtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobRequeue=1
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=sched_interval=2,bf_interval=2
SlurmctldParameters=preempt_send_user_signal
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=low Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=30
PartitionName=high Nodes=$host MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    install
    write_conf
    mkdir -p /run/munge
    chown munge:munge /run/munge 2>/dev/null || true
    pgrep -x munged >/dev/null || runuser -u munge -- munged --force
    running "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    running "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 1 60); do  # the node comes up idle within seconds
        if sinfo -h -o "%t" 2>/dev/null | grep -qx "idle"; then
            echo "SLURM up: SLURM_CONF=$CONF (partitions low, high); stop: bash tools/slurm_cluster.sh stop"
            return
        fi
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
        sleep 0.5
    done
    echo "slurm_cluster.sh: the node did not come up idle; logs in $DIR/log" >&2
    sinfo >&2 || true
    exit 1
}

stop() {
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    for daemon in slurmd slurmctld; do
        if running "$DIR/$daemon.pid"; then kill "$(cat "$DIR/$daemon.pid")"; fi
    done
    echo "SLURM stopped (munged left running)"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) sinfo && squeue ;;
*)
    echo "usage: bash tools/slurm_cluster.sh start|stop|status" >&2
    exit 2
    ;;
esac
