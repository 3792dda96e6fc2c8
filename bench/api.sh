#!/usr/bin/env bash
# The center over HTTP on 127.0.0.1: bookings/s through POST /api/v1/reservations vs the
# store alone, and p50/p99 of GET /programs and /availability serially and at an offered
# 500 requests/s (open loop). SQLite by default; --postgres for PostgreSQL
# (SLOTCAST_TEST_PG, see slotcast-testkit). Flags are passed through: --bookings N
# --clients C --store-concurrency C --rounds R --requests N --rate R --open-seconds S
# --max-seconds S.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -p slotcast-bench --bin api -- "$@"
