#!/usr/bin/env bash
# Live view CPU on the box, one "bench" line each (scripts/bench.sh runs it):
#   live_box_cpu_0viewers   CPU of classcapd (user+sys, percent of one core) while it records, sim profile
#                           1280x720 30 fps into openh264, 4 microphones into Opus: nobody watching;
#   live_box_cpu_1viewers   the same with 1 Go WebRTC viewer (pion, scripts/livebench) watching through
#                           the hub's WHEP endpoint and reading everything the box sends;
#   live_box_cpu_3viewers   the same with 3 such viewers.
# The hub (embedded broker) runs beside the box; viewers connect over loopback.
# Needs bin/classcapd, bin/classcap-hub (make build) and go. Knobs: BENCH_LIVE_SECONDS (20, each
# measurement), BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${BENCH_LIVE_SECONDS:-20}

bench_name=bench-live
# shellcheck source=scripts/bench-procs.sh
source scripts/bench-procs.sh

command -v go >/dev/null 2>&1 || die "go is not installed"
for b in classcapd classcap-hub; do
	[[ -x bin/$b ]] || die "bin/$b is missing: run make build (make bench builds first)"
done
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 5 ]] || die "BENCH_LIVE_SECONDS=$seconds: want a whole number >= 5"

work=$(mktemp -d "${TMPDIR:-/tmp}/classcap-bench-live.XXXXXX")
[[ -d $work ]] || die "mktemp failed"

log "work directory $work"
go build -o "$work/" ./scripts/benchtool ./scripts/hubbench ./scripts/livebench ||
	die "build scripts/benchtool, scripts/hubbench and scripts/livebench"
bt="$work/benchtool"
hb="$work/hubbench"
lb="$work/livebench"

# --- the hub, on free ports (port 0; the addresses are read from its log).
cat >"$work/hub.toml" <<END_HUB
[hub]
data_dir = "$work/hub"
http_listen = "127.0.0.1:0"
[broker]
listen = "127.0.0.1:0"
END_HUB
last_log="$work/hub.log"
bin/classcap-hub -config "$work/hub.toml" >"$last_log" 2>&1 &
pids+=("$!")
for ((i = 0; i < 300; i++)); do
	grep -q 'msg="serving HTTP"' "$last_log" 2>/dev/null && break
	kill -0 "${pids[0]}" 2>/dev/null || die "the hub exited"
	sleep 0.1
done
http=$(sed -n 's/.*msg="serving HTTP" addr=\([^ ]*\).*/\1/p' "$last_log" | head -1)
broker=$(sed -n 's/.*msg="serving HTTP" .* broker=\([^ ]*\).*/\1/p' "$last_log" | head -1)
[[ -n $http && -n $broker ]] || die "no HTTP or broker address in the hub's log"
hubctl=(bin/classcap-hub -config "$work/hub.toml")
token=$("${hubctl[@]}" token create -role coach -name bench) || die "token create"
mkdir -p "$work/box"
"${hubctl[@]}" device add bench-live >"$work/box/mqtt-password" || die "device add bench-live"

# --- the box: classcapd, sim profile (720p30), live view on loopback.
cat >"$work/box.toml" <<END_BOX
[device]
id = "bench-live"
data_dir = "$work/box"
log_level = "warn"
[hardware]
profile = "sim"
[hardware.sim]
width = 1280
height = 720
fps = 30.0
mic_channels = 4
[recording]
segment_seconds = 4
min_free_mb = 100
veto_seconds = 0
[live]
allow = "recording"
loopback = true
interfaces = ["lo"]
[uplink]
broker = "$broker"
username = "bench-live"
password_file = "$work/box/mqtt-password"
END_BOX
last_log="$work/box.log"
bin/classcapd -config "$work/box.toml" >"$last_log" 2>&1 &
box_pid=$!
pids+=("$box_pid")
"$hb" online -hub "http://$http" -token "$token" -device bench-live -timeout 60s ||
	die "the box did not come online at the hub"
curl -fsS -X POST -H "Authorization: Bearer $token" "http://$http/api/v1/devices/bench-live/record/start" >/dev/null ||
	die "record start"

# cpu_percent: classcapd's CPU over $seconds s, percent of one core.
cpu_percent() {
	local c0 c1
	c0=$("$bt" cpu "$box_pid") || die "read classcapd's CPU time"
	sleep "$seconds"
	c1=$("$bt" cpu "$box_pid") || die "read classcapd's CPU time"
	awk -v a="$c0" -v b="$c1" -v s="$seconds" 'BEGIN { printf "%.1f", (b - a) * 100 / s }'
}

for n in 0 1 3; do
	viewers_pid=""
	if ((n > 0)); then
		last_log="$work/viewers$n.log"
		"$lb" watch -hub "http://$http" -token "$token" -device bench-live -n "$n" >"$last_log" 2>&1 &
		viewers_pid=$!
		pids+=("$viewers_pid")
		until grep -q '^ready ' "$last_log" 2>/dev/null; do
			kill -0 "$viewers_pid" 2>/dev/null || die "the viewers gave up"
			sleep 0.2
		done
	else
		sleep 3 # the recording settles
	fi
	log "measuring classcapd's CPU for $seconds s with $n viewers"
	pct=$(cpu_percent)
	if [[ -n $viewers_pid ]]; then
		stop "$viewers_pid"
		unset 'pids[${#pids[@]}-1]'
		sed 's/^/    /' "$work/viewers$n.log" >&2
	fi
	log "$n viewers: classcapd ${pct}% of one core"
	"$bt" line -name "live_box_cpu_${n}viewers" -ours "$pct" -unit percent_core
done
