#!/usr/bin/env bash
# Glass-to-glass latency in a real headless Chromium playing slotcast's program page with
# its own player: the live fMP4 stream through MSE (Chromium's default) and LL-HLS (the
# player's fallback where MediaSource is missing, played by Chromium's built-in HLS), each
# against nginx-rtmp's HLS in the same Chromium, in the same run, on 127.0.0.1. Frames carry
# their number as blocks read off the screen. Needs ffmpeg, chromium, chromium-driver,
# nginx and libnginx-mod-rtmp (apt-get install ffmpeg chromium chromium-driver nginx
# libnginx-mod-rtmp). The marker clip is encoded once into $HOME/.cache/slotcast/bench.
#
#   bench/glass.sh [--seconds 25] [--warm 5] [--shots /tmp] [--nginx-only]
#
# If slotcastd does not build, nginx is still measured and the summary says why slotcast
# was not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${CARGO_TARGET_DIR:-target}

cargo build --release -p slotcast-bench --bin glass
slotcastd=()
if [[ " $* " == *" --nginx-only "* ]]; then
    :
elif cargo build --release -p slotcastd; then
    slotcastd=(--slotcastd "$target/release/slotcastd")
else
    echo "glass.sh: slotcastd did not build; measuring nginx only" >&2
    slotcastd=(--nginx-only)
fi
exec "$target/release/glass" "${slotcastd[@]}" "$@"
