#!/usr/bin/env bash
# Starts and stops the local cluster the `cluster` and `migrate` scenarios run against
# (docs/benchmarks.md): two or three `peace` processes on 127.0.0.1 configured by
# crates/bench/config/cluster-node-{1,2,3}.toml, sharing one PostgreSQL database.
#
#   crates/bench/cluster.sh start [NODES]   # NODES = 2 or 3 (default 3); waits until formed
#   crates/bench/cluster.sh stop            # SIGTERM to the nodes this script started
#   crates/bench/cluster.sh status
#
# PEACE (the binary; default: the release build in $CARGO_TARGET_DIR or target/) and
# PGURL (the maintenance URL used to create the database) can be overridden. Logs and
# PID files go to target/bench/cluster/.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
config="$root/crates/bench/config"
run="$root/target/bench/cluster"
peace="${PEACE:-${CARGO_TARGET_DIR:-$root/target}/release/peace}"
pgurl="${PGURL:-postgres://postgres@127.0.0.1:5432/postgres}"
database="peace_bench_cluster"
# Longest the cluster may take to form (join grace, first table, rebalancing).
form_timeout_secs=60

http_port() { echo "1849$1"; }

# The JSON of node $1's own cluster view, or nothing while it is not serving.
view() { curl -sf --max-time 2 "http://127.0.0.1:$(http_port "$1")/api/v1/cluster" || true; }

wait_until() { # description, command...
    local what="$1"; shift
    local deadline=$((SECONDS + form_timeout_secs))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            echo "timed out waiting for $what (logs in $run)" >&2
            exit 1
        fi
        sleep 0.2
    done
}

serving() { [[ -n "$(view "$1")" ]]; }

# Every one of the $1 nodes is up in node 1's view and owns shards.
formed() {
    local want="$1"
    view 1 | jq -e --argjson n "$want" \
        '[.nodes[] | select(.status == "up" and .shards > 0)] | length == $n' >/dev/null 2>&1
}

start() {
    local nodes="${1:-3}"
    [[ "$nodes" == 2 || "$nodes" == 3 ]] || { echo "NODES is 2 or 3" >&2; exit 2; }
    [[ -x "$peace" ]] || { echo "no binary at $peace: cargo build --release --bin peace" >&2; exit 1; }
    mkdir -p "$run"
    if ! psql "$pgurl" -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
        psql "$pgurl" -qc "CREATE DATABASE $database"
    fi
    for i in $(seq 1 "$nodes"); do
        if [[ -f "$run/node-$i.pid" ]] && kill -0 "$(cat "$run/node-$i.pid")" 2>/dev/null; then
            echo "node-$i runs already (pid $(cat "$run/node-$i.pid")); stop it first" >&2
            exit 1
        fi
        "$peace" --config "$config/cluster-node-$i.toml" serve >"$run/node-$i.log" 2>&1 &
        echo $! >"$run/node-$i.pid"
        # Node 1 alone first: it migrates the database before the others touch it.
        if ((i == 1)); then wait_until "node-1 to serve" serving 1; fi
    done
    wait_until "$nodes nodes with shards" formed "$nodes"
    echo "cluster of $nodes formed:"
    status
}

stop() {
    for pidfile in "$run"/node-*.pid; do
        [[ -f "$pidfile" ]] || continue
        local pid
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            # SIGTERM drains the node first (at most drain_timeout_secs).
            for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
        rm -f "$pidfile"
    done
}

status() {
    view 1 | jq -r '.nodes[] | "\(.name)\t\(.status)\tshards \(.shards // "-")\tusers \(.entities.user // "-")\t\(.http_addr // "")"'
}

case "${1:-}" in
    start) start "${2:-3}" ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start [2|3] | stop | status" >&2; exit 2 ;;
esac
