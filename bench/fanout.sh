#!/usr/bin/env bash
# One 2.5 Mbit/s ingest to N viewers: slotcast's stream node (HTTP-FLV, fMP4; latency also
# LL-HLS) against nginx with Debian's libnginx-mod-rtmp (RTMP play; latency also its HLS),
# in the same run, on 127.0.0.1. Prints a table per N with ratios against nginx and the
# goals met or missed. Needs ffmpeg, nginx and libnginx-mod-rtmp (apt-get install ffmpeg
# nginx libnginx-mod-rtmp). The source is encoded once into $HOME/.cache/slotcast/bench.
#
#   bench/fanout.sh [--n 100,500,1000,2000] [--seconds 20] [--probes 5]
#                   [--latency-seconds 20] [--nginx-only] [--check-parsers]
#
# If slotcastd does not build, or its stream node does not accept the publish, nginx is
# still measured and the summary says why slotcast was not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${CARGO_TARGET_DIR:-target}

cargo build --release -p slotcast-bench --bin fanout
slotcastd=()
if [[ " $* " == *" --nginx-only "* || " $* " == *" --check-parsers "* ]]; then
    :
elif cargo build --release -p slotcastd; then
    slotcastd=(--slotcastd "$target/release/slotcastd")
else
    echo "fanout.sh: slotcastd did not build; measuring nginx only" >&2
    slotcastd=(--nginx-only)
fi

# 2000 viewers and their servers' sockets, plus probes.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 20000 || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10000 ]; then
    echo "fanout.sh: ulimit -n is $(ulimit -n); N = 2000 needs about 10000" >&2
fi
exec "$target/release/fanout" "${slotcastd[@]}" "$@"
