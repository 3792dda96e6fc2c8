#!/usr/bin/env bash
# The center over HTTP on 127.0.0.1: bookings/s through POST /api/v1/reservations vs the
# store alone, and p50/p99 of GET /programs and /availability under 200 keep-alive
# connections. SQLite by default; --postgres for PostgreSQL (SLOTCAST_TEST_PG, see
# slotcast-testkit). Flags are passed through: --bookings N --clients C
# --store-concurrency C --rounds R --requests N --connections N --max-seconds S.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -p slotcast-bench --bin api -- "$@"
