#!/usr/bin/env bash
# Seats granted per second on PostgreSQL (Store::take_seat, as a center replica grants
# live play) vs the raw conditional UPDATE alone, same database, same run. Flags are
# passed through: --requests N --concurrency C --rounds R. PostgreSQL: SLOTCAST_TEST_PG.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -p slotcast-bench --bin seats -- "$@"
