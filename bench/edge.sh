#!/usr/bin/env bash
# Fan-out through an edge node against the origin alone (HTTP-FLV), in one invocation: a
# center on a fresh PostgreSQL database, an origin node publishing the program and an edge
# node relaying it, on 127.0.0.1. For each N, N viewers play from the origin, then N from
# the edge; prints delivered Gbit per CPU second of each (through the edge: the origin's
# and the edge's CPU) and the ratio. Needs ffmpeg (the source is encoded once into
# $HOME/.cache/slotcast/bench) and PostgreSQL at $SLOTCAST_TEST_PG
# (default postgres://slotcast:slotcast@127.0.0.1:5432/postgres, a role that may create
# databases).
#
#   bench/edge.sh [--n 100,500,1000,2000] [--seconds 20] [--settle 4]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${CARGO_TARGET_DIR:-target}
pg=${SLOTCAST_TEST_PG:-postgres://slotcast:slotcast@127.0.0.1:5432/postgres}

cargo build --release -p slotcast-bench --bin fanout
cargo build --release -p slotcastd
db="slotcast_edge_bench_$$"
psql -qX "$pg" -c "CREATE DATABASE $db"
trap 'psql -qX "$pg" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT

ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 20000 || true
"$target/release/fanout" --slotcastd "$target/release/slotcastd" --edge-db "${pg%/*}/$db" "$@"
