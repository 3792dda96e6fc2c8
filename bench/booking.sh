#!/usr/bin/env bash
# Bookings committed per second through the store vs a raw INSERT baseline, on SQLite
# and PostgreSQL. Flags are passed through: --bookings N --concurrency C --rounds R
# --sqlite-only. PostgreSQL: SLOTCAST_TEST_PG (admin URL), see slotcast-testkit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -p slotcast-bench --bin booking -- "$@"
