#!/usr/bin/env bash
# Stop the daemons that ci/slurm/up.sh started in STATE_DIR, by the pids in their pid files
# (never by name: other SLURMs or munged may run on the same machine).
#
#   ci/slurm/down.sh /tmp/slurm
set -euo pipefail

GRACE_S="${SLURM_STOP_GRACE_S:-10}"
DEFAULT_CONF=/etc/slurm/slurm.conf

say() { echo "down.sh: $*" >&2; }

alive() { kill -0 "$1" 2>/dev/null; }

# The pid file's process, if it still runs that daemon (a stale file's pid may be reused).
daemon_pid() {
    local pid_file="$1" daemon pid
    daemon="$(basename "$pid_file" .pid)"
    pid="$(cat "$pid_file" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$daemon" ]] &&
        echo "$pid"
    return 0
}

# SIGTERM, then SIGKILL: slurmd may ignore SIGTERM while it retries a controller that is gone.
stop_pid_file() {
    local pid_file="$1" pid
    [[ -f "$pid_file" ]] || return 0
    pid="$(daemon_pid "$pid_file")"
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $((GRACE_S * 10))); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            say "pid $pid ($(basename "$pid_file" .pid)) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
        alive "$pid" && { say "ERROR: pid $pid from $pid_file still running"; return 1; }
        say "stopped $(basename "$pid_file" .pid) (pid $pid)"
    fi
    rm -f "$pid_file"
}

# Cancel what still runs on this controller, so no job process outlives it.
cancel_jobs() {
    local conf="$1/slurm.conf"
    [[ -f "$conf" && -n "$(daemon_pid "$1/slurmctld.pid")" ]] || return 0
    export SLURM_CONF="$conf"
    timeout 10 scancel --user "$(id -un)" 2>/dev/null || return 0
    for _ in $(seq 50); do
        [[ -z "$(timeout 5 squeue -h -t running,completing -o %i 2>/dev/null)" ]] && return 0
        sleep 0.2
    done
    say "jobs still running after scancel; stopping the daemons anyway"
}

main() {
    [[ $# == 1 ]] || { say "usage: $0 STATE_DIR"; exit 1; }
    local state="$1" status=0
    [[ -d "$state" ]] || return 0
    cancel_jobs "$state"
    # Compute daemon first, so it does not spin retrying a controller that is gone.
    stop_pid_file "$state/slurmd.pid" || status=1
    stop_pid_file "$state/slurmctld.pid" || status=1
    # Only present when up.sh started munged itself.
    stop_pid_file "$state/munged.pid" || status=1
    # up.sh linked the default config path to ours; leave any other config alone.
    local ours
    ours="$(cd "$state" && pwd)/slurm.conf"
    if [[ -L "$DEFAULT_CONF" && "$(readlink "$DEFAULT_CONF")" == "$ours" ]]; then
        rm -f "$DEFAULT_CONF"
    fi
    return "$status"
}

main "$@"
