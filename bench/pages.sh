#!/usr/bin/env bash
# The hottest pages, GET / and GET /guide: slotcast against nginx serving the same bytes
# as static files, in the same run on 127.0.0.1 — throughput (closed loop, ratio against
# nginx; goal >= 0.5) and p99 latency at a fixed 500 requests/s (open loop; goal < 10 ms).
# Installs nginx when absent. Flags are passed through: --connections N --seconds S
# --rate R --open-seconds S --programs N --nginx-workers W.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
exec cargo run --release -p slotcast-bench --bin pages -- "$@"
