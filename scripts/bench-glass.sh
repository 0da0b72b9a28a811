#!/usr/bin/env bash
# Glass-to-glass latency of the live view, one "bench" line (scripts/bench.sh runs it):
#   live_glass_to_glass_ms   median over N pictures (default 100) of the time from the sim camera taking a
#                            picture to headless Chromium presenting it in the hub page's live view: the
#                            camera burns its capture wall clock (ms) into the picture as blocks, the page
#                            reads them back from each decoded picture (requestVideoFrameCallback, canvas)
#                            and takes Date.now() minus that (same machine, same clock). Path: classcapd
#                            (sim 1280x720 30 fps, openh264) -> WebRTC over loopback, negotiated through the
#                            hub's WHEP endpoint -> Chromium's decoder -> the page. No peer.
# Needs go and Debian's chromium (scripts/install-deps.sh). Knobs: BENCH_GLASS_FRAMES (100),
# BENCH_GLASS_SIZE (1280x720).
set -euo pipefail
cd "$(dirname "$0")/.."

frames=${BENCH_GLASS_FRAMES:-100}
size=${BENCH_GLASS_SIZE:-1280x720}

log() { printf 'bench-glass: %s\n' "$*" >&2; }
die() {
	printf 'bench-glass: FAILED: %s\n' "$*" >&2
	exit 1
}

command -v go >/dev/null 2>&1 || die "go is not installed"
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is missing (scripts/install-deps.sh installs it)"
[[ $frames =~ ^[0-9]+$ && $frames -ge 10 ]] || die "BENCH_GLASS_FRAMES=$frames: want a whole number >= 10"
[[ $size =~ ^[0-9]+x[0-9]+$ ]] || die "BENCH_GLASS_SIZE=$size: want WxH"

log "live view of a sim box at $size 30 fps in headless Chromium, $frames pictures"
out=$(CLASSCAP_BENCH_GLASS=$frames CLASSCAP_BENCH_GLASS_SIZE=$size \
	go test -count=1 -timeout 10m -run '^TestLiveGlassToGlass$' -v ./cmd/classcap-hub 2>&1) ||
	die "the glass-to-glass test failed:
$(tail -n 40 <<<"$out")"
grep -E '^\s+weblive_test.go:[0-9]+: [0-9]+x[0-9]+: ' <<<"$out" | sed 's/^ *weblive_test.go:[0-9]*: /bench-glass: /' >&2 || true
line=$(grep -E '^bench live_glass_to_glass_ms ' <<<"$out") || die "no bench line in the test's output"
echo "$line"
