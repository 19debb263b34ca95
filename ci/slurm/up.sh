#!/usr/bin/env bash
# Start a real one-node SLURM (controller + compute daemon on 127.0.0.1, two fake GPUs) for tests
# and CI. Needs root on Debian/Ubuntu; no systemd needed. Installs the packages when missing.
#
#   eval "$(ci/slurm/up.sh /tmp/slurm)"     # prints `export SLURM_CONF=...` on stdout
#   sbatch --wrap hostname
#   ci/slurm/down.sh /tmp/slurm
#
# Everything (config, state, spool, pid files, logs) lives in STATE_DIR, except a symlink
# /etc/slurm/slurm.conf -> STATE_DIR/slurm.conf that down.sh removes. Progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
READY_TIMEOUT_S="${SLURM_READY_TIMEOUT_S:-30}"
DEFAULT_CONF=/etc/slurm/slurm.conf

say() { echo "up.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

require_root() {
    [[ "$(id -u)" == 0 ]] || die "must run as root (it installs packages and starts daemons)"
}

install_packages() {
    local missing=0 tool
    for tool in slurmctld slurmd sbatch munged; do
        command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || missing=1
    done
    ((missing)) || return 0
    command -v apt-get >/dev/null || die "SLURM is not installed and apt-get is unavailable"
    say "installing slurmctld slurmd slurm-client munge (log: $STATE/apt.log)"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages from starting their system services: we start our own daemons.
    local policy=/usr/sbin/policy-rc.d added=0 status=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1
    fi
    {
        apt-get update -q &&
            apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
    } >"$STATE/apt.log" 2>&1 || status=$?
    ((added)) && rm -f "$policy"
    ((status == 0)) || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get failed (exit $status)"; }
}

# munged is shared by every SLURM on the machine: reuse a working one, else start our own and
# record its pid so down.sh stops only what we started.
start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munge already running; reusing it"
        return 0
    fi
    [[ -s /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing (reinstall munge)"
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    local pid
    for _ in $(seq 50); do
        pid="$(cat /run/munge/munged.pid 2>/dev/null || true)"
        [[ -n "$pid" ]] && munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n | unmunge >/dev/null || die "munged started but 'munge -n | unmunge' fails"
    echo "$pid" >"$STATE/munged.pid"
}

write_config() {
    local host cpus memory_mb
    host="$(hostname -s)"
    cpus="$(nproc)"
    # Leave 1 GB to the system; a node claiming more than it has is marked invalid.
    memory_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024))
    sed -e "s|@HOST@|$host|g" -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$cpus|g" \
        -e "s|@MEMORY_MB@|$memory_mb|g" "$HERE/slurm.conf.in" >"$STATE/slurm.conf"
    # slurmd reads gres.conf from the directory of slurm.conf. Two fake GPUs, so that two
    # one-thread GPU jobs run at once on a 2-core machine (each needs a device file of its own).
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=/dev/null\nNodeName=%s Name=gpu File=/dev/zero\n' \
        "$host" "$host" >"$STATE/gres.conf"
}

# The plugin's job step drops SLURM_* variables (SLURM_CONF included) before its nested `srun`,
# which then reads the default config path: point that at ours, as on a real cluster.
link_default_config() {
    if [[ -e "$DEFAULT_CONF" && ! -L "$DEFAULT_CONF" ]]; then
        die "$DEFAULT_CONF exists (a real SLURM here?); this throwaway SLURM will not replace it"
    fi
    mkdir -p "$(dirname "$DEFAULT_CONF")"
    ln -sfn "$STATE/slurm.conf" "$DEFAULT_CONF"
}

# A SLURM already listening on the standard ports would answer our sinfo and fake a success.
refuse_busy_ports() {
    local port
    for port in 6817 6818; do
        if (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port is taken (another SLURM running? stop it with ci/slurm/down.sh DIR)"
        fi
    done
}

show_logs() {
    local log
    for log in "$STATE"/slurmctld.log "$STATE"/slurmd.log; do
        [[ -f "$log" ]] && { say "--- tail of $log"; tail -n 20 "$log" >&2; }
    done
    return 0
}

daemons_alive() {
    local daemon
    for daemon in slurmctld slurmd; do
        kill -0 "$(cat "$STATE/$daemon.pid" 2>/dev/null || echo none)" 2>/dev/null || return 1
    done
}

wait_until_idle() {
    local state=""
    for _ in $(seq $((READY_TIMEOUT_S * 5))); do
        state="$(sinfo -h -o %t 2>/dev/null || true)"
        [[ "$state" == idle ]] && daemons_alive && return 0
        sleep 0.2
    done
    show_logs
    die "node not idle after ${READY_TIMEOUT_S}s (sinfo says '${state:-nothing}'); logs above"
}

main() {
    [[ $# == 1 ]] || die "usage: $0 STATE_DIR"
    require_root
    mkdir -p "$1"
    STATE="$(cd "$1" && pwd)"
    # A rerun into the same directory: stop what is still running there, then start clean
    # (stale controller state can keep the node drained).
    "$HERE/down.sh" "$STATE" 2>/dev/null || true
    rm -rf "${STATE:?}"/ctld "${STATE:?}"/spool "$STATE"/*.log
    mkdir -p "$STATE/ctld" "$STATE/spool"

    install_packages
    refuse_busy_ports
    start_munge
    write_config
    link_default_config
    export SLURM_CONF="$STATE/slurm.conf"
    /usr/sbin/slurmctld -f "$SLURM_CONF" || { show_logs; die "slurmctld failed to start"; }
    /usr/sbin/slurmd -f "$SLURM_CONF" || { show_logs; die "slurmd failed to start"; }
    wait_until_idle
    say "SLURM ready: node $(hostname -s), $(nproc) CPUs, 2 fake GPUs, partition debug"
    echo "export SLURM_CONF=$SLURM_CONF"
}

main "$@"
