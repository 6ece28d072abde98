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
# and is requeued (PreemptMode=REQUEUE). Job accounting is real: slurmdbd on a MariaDB server of its
# own (data in $DIR/mysql, TCP on 127.0.0.1 only), so `sacct` answers and submitit reads job states
# as on a site's cluster. Everything lives in $SEED_SLURM_DIR (default /tmp/seed-slurm): config,
# state, spool, database, logs, pid files. Ports: $SEED_SLURM_PORT (default 6817) for slurmctld, +1
# slurmd, +2 slurmdbd, +3 MariaDB (a second cluster beside the first needs another dir and port).
# Facts and pitfalls: ../shared/INSTALL-NOTES.md ("A real single-node SLURM cluster").
set -euo pipefail
DIR="${SEED_SLURM_DIR:-/tmp/seed-slurm}"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"
PORT="${SEED_SLURM_PORT:-6817}"
DB_PORT=$((PORT + 3))
DB_PASS=seedtest # a throwaway database on 127.0.0.1 holding only this test cluster's job records
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null; then
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
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
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

wait_for() { # wait_for SECONDS COMMAND...: until the command succeeds
    local tries=$(($1 * 4))
    shift
    for _ in $(seq 1 "$tries"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

start_accounting() {
    local sql=(mariadb --socket="$DIR/mysqld.sock")
    if [ ! -d "$DIR/mysql/mysql" ]; then
        mariadb-install-db --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=normal \
            >"$DIR/log/mariadb-install.log" 2>&1
    fi
    if ! running "$DIR/mariadb.pid"; then
        mariadbd --user=root --datadir="$DIR/mysql" --socket="$DIR/mysqld.sock" --port="$DB_PORT" \
            --bind-address=127.0.0.1 --pid-file="$DIR/mariadb.pid" --log-error="$DIR/log/mariadb.log" \
            >/dev/null 2>&1 &
    fi
    if ! wait_for 30 "${sql[@]}" -e "select 1"; then
        echo "slurm_cluster.sh: MariaDB did not start; see $DIR/log/mariadb.log" >&2
        exit 1
    fi
    "${sql[@]}" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    printf '%s\n' "AuthType=auth/munge" "DbdHost=localhost" "DbdAddr=127.0.0.1" "DbdPort=$((PORT + 2))" \
        "SlurmUser=root" "StorageType=accounting_storage/mysql" "StorageHost=127.0.0.1" \
        "StoragePort=$DB_PORT" "StorageUser=slurm" "StoragePass=$DB_PASS" "StorageLoc=slurm_acct_db" \
        "PidFile=$DIR/slurmdbd.pid" "LogFile=$DIR/log/slurmdbd.log" >"$DIR/slurmdbd.conf"
    chmod 600 "$DIR/slurmdbd.conf" # slurmdbd refuses a readable file: it holds the password
    running "$DIR/slurmdbd.pid" || slurmdbd # reads slurmdbd.conf beside $SLURM_CONF
    if ! wait_for 30 sacctmgr -n show cluster; then
        echo "slurm_cluster.sh: slurmdbd did not answer; see $DIR/log/slurmdbd.log" >&2
        exit 1
    fi
    sacctmgr -n show cluster format=cluster | grep -qw seedtest || sacctmgr -i add cluster seedtest >/dev/null
}

start() {
    install
    write_conf
    mkdir -p /run/munge
    chown munge:munge /run/munge 2>/dev/null || true
    pgrep -x munged >/dev/null || runuser -u munge -- munged --force
    start_accounting
    running "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    running "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 1 60); do  # the node comes up idle within seconds
        if sinfo -h -o "%t" 2>/dev/null | grep -qx "idle"; then
            echo "SLURM up: SLURM_CONF=$CONF (partitions low, high; sacct answers); stop: bash tools/slurm_cluster.sh stop"
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
    for daemon in slurmd slurmctld slurmdbd mariadb; do
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
