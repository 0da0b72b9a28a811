#!/usr/bin/env bash
# Prints the benchmark figures, one line each:
#   bench <name> ours=<value> peer=<value> ratio=<ours/peer> unit=<unit>
# Placeholder: no figure is measured yet. Lines starting with "#" are not figures.
set -euo pipefail
cd "$(dirname "$0")/.."

cat <<'TXT'
# bench: no figures are measured yet; not measured:
#   encode throughput (frames/s, 720p H.264)
#   segment write and fsync latency (ms)
#   button press to first recorded frame (ms)
#   CPU and memory of classcapd while recording (%, MiB)
#   upload throughput to the hub (MB/s)
TXT
