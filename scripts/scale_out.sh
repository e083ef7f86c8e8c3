#!/usr/bin/env bash
# Scale-out on one machine (issue #19 point 5): `tether bench resume-throughput --nodes 1` and
# `--nodes 2` run alternately, ROUNDS times each, against PostgreSQL on this host whose
# processes are capped to PG_CPU cores by a cgroup (v1, cpu controller), so that the database
# stands in for one on a machine of its own: the nodes and the bench get the rest of the cores.
# Builds nothing. Prints one JSON line per run (the bench's, plus `pg_cpu` and
# `pg_throttled_ms`: how long the cap held PostgreSQL back during that run, from the cgroup's
# cpu.stat). Needs root and /sys/fs/cgroup/cpu; PostgreSQL is put back in the root cgroup on
# exit, whatever happens.
#
#   TETHER=target/release/tether PG=postgres://postgres@127.0.0.1:5432/test PG_CPU=0.5 ROUNDS=3 \
#       scripts/scale_out.sh [more bench args, e.g. --n 1000 --concurrency 32]
#
# PG_CPU: cores PostgreSQL may use (0.5 = half a core; `none`: no cap, nothing is moved).
# Bench args pass through: `--affinity` sends each run's resume and wait to the node that
# started it (what cross-node resumes cost is the difference), `--count-notifies` counts the
# notifications (one more listener: leave it off for CPU figures). Nothing else should use
# the machine meanwhile: the rates are wall clock, and the nodes, the bench and PostgreSQL
# share its cores.
# db_cpu_ms in the lines counts every `postgres` process on the host: nothing else should use
# this PostgreSQL server meanwhile (other sessions' backends are counted, and capped too).
set -euo pipefail

TETHER=${TETHER:-target/release/tether}
PG=${PG:-postgres://postgres@127.0.0.1:5432/test}
PG_CPU=${PG_CPU:-0.5}
ROUNDS=${ROUNDS:-3}
ROOT=/sys/fs/cgroup/cpu
CG=$ROOT/tether-pg
PERIOD_US=100000

die() { echo "scale_out.sh: $*" >&2; exit 2; }

[ -x "$TETHER" ] || die "no tether binary at $TETHER (cargo build --release -p tether-cli, or set TETHER)"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$ROUNDS'"
pgrep -x postgres >/dev/null || die "no postgres process on this host (the cap needs PostgreSQL here)"

# Put every process of the cgroup back in the root cgroup and remove it. New backends are
# forked by the postmaster, so it goes first: after it, none is born inside the cgroup.
restore() {
    [ -d "$CG" ] || return 0
    local postmaster tries=0
    postmaster=$(pgrep -o -x postgres || true)
    [ -n "$postmaster" ] && echo "$postmaster" >"$ROOT/cgroup.procs" 2>/dev/null || true
    # (cgroup files report a size of 0: `[ -s ]` cannot tell an empty one; read them.)
    while [ -n "$(cat "$CG/cgroup.procs")" ] && [ $tries -lt 50 ]; do
        for pid in $(cat "$CG/cgroup.procs"); do
            echo "$pid" >"$ROOT/cgroup.procs" 2>/dev/null || true
        done
        tries=$((tries + 1))
    done
    if rmdir "$CG" 2>/dev/null; then
        echo "scale_out.sh: PostgreSQL is back in the root cpu cgroup; $CG removed" >&2
    else
        echo "scale_out.sh: could not remove $CG (processes left: $(tr '\n' ' ' <"$CG/cgroup.procs"))" >&2
    fi
}

# The cgroup's throttled time so far, in ms (0 without a cap).
throttled_ms() {
    if [ -r "$CG/cpu.stat" ]; then
        awk '$1 == "throttled_time" { printf "%d", $2 / 1000000 }' "$CG/cpu.stat"
    else
        echo 0
    fi
}

if [ "$PG_CPU" != none ]; then
    [ "$(id -u)" = 0 ] || die "moving PostgreSQL into a cgroup needs root"
    [ -w "$ROOT/cgroup.procs" ] || die "$ROOT is not a writable cgroup v1 cpu hierarchy"
    quota=$(awk -v c="$PG_CPU" -v p=$PERIOD_US 'BEGIN { if (c + 0 > 0) printf "%d", c * p }')
    [ -n "$quota" ] && [ "$quota" -ge 1000 ] ||
        die "PG_CPU must be a number of cores above 0.01 (e.g. 0.5) or 'none', not '$PG_CPU'"
    trap restore EXIT
    trap 'exit 130' INT TERM HUP
    mkdir -p "$CG"
    echo $PERIOD_US >"$CG/cpu.cfs_period_us"
    echo "$quota" >"$CG/cpu.cfs_quota_us"
    # The postmaster first (its later children are born in the cgroup), then the others; a
    # backend that ends in between is skipped.
    for pid in $(pgrep -o -x postgres) $(pgrep -x postgres); do
        echo "$pid" >"$CG/cgroup.procs" 2>/dev/null || true
    done
    for pid in $(pgrep -x postgres); do
        grep -qx "[0-9]*:cpu:/tether-pg" "/proc/$pid/cgroup" 2>/dev/null ||
            { [ -e "/proc/$pid" ] && die "postgres process $pid is not in $CG"; }
    done
    echo "scale_out.sh: $(wc -l <"$CG/cgroup.procs") postgres processes capped at $PG_CPU core(s)" \
        "(cfs_quota_us=$quota per ${PERIOD_US} us)" >&2
fi

for round in $(seq 1 "$ROUNDS"); do
    for nodes in 1 2; do
        t0=$(throttled_ms)
        line=$("$TETHER" bench resume-throughput --db "$PG" --mode http --nodes "$nodes" "$@")
        t1=$(throttled_ms)
        echo "scale_out.sh: round $round, $nodes node(s) done" >&2
        # The cap and the throttling go in the line, so it stands on its own.
        printf '%s\n' "$line" |
            sed "s/^{/{\"pg_cpu\":\"$PG_CPU\",\"pg_throttled_ms\":$((t1 - t0)),/"
    done
done
