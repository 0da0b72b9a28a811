#!/usr/bin/env bash
# Upload figures for make bench (scripts/bench.sh runs this), one line each:
#   upload_goodput_loopback_mbps  our tus client sending 64 MiB to the hub's ingest (tusd, filestore, SHA-256
#                                 check before finish) on loopback; peer: curl doing the same tus exchange (POST,
#                                 one PATCH) with the same bytes to the same server in the same run. Median of 3.
#   upload_goodput_shaped_mbps    the same through a TCP proxy paced to 80 Mbit/s (16 MiB per run).
#   stop_to_verified_s            a 10-minute lesson (150 segments of 4 s at 2.6 Mbit/s, random bytes) whose
#                                 segments appear 20x faster than real time while the uploader runs; seconds
#                                 from the stop (lesson complete) to the hub's verified ack of lesson.json.
# Needs go and curl. Knobs: BENCH_UPLOAD_MB (64), BENCH_UPLOAD_PACE (20), BENCH_KEEP=1 keeps the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null 2>&1 || { echo "bench: FAILED: curl is not installed" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/classcap-bench-upload.XXXXXX")
cleanup() { if [[ -n ${BENCH_KEEP:-} ]]; then echo "bench: work directory kept: $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
go build -o "$work/uploadbench" ./scripts/uploadbench
"$work/uploadbench" -work "$work" -size-mb "${BENCH_UPLOAD_MB:-64}" -pace "${BENCH_UPLOAD_PACE:-20}"
