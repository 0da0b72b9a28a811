#!/usr/bin/env bash
# Remote-start latency through the hub, one "bench" line each (scripts/bench.sh runs it):
#   remote_start_p50_ms          median over N remote starts (default 200) of the time from the hub API call
#                                (POST /api/v1/devices/ID/record/start) to its answer, which the box sends
#                                once its first frame is recorded; one simulated box (classcapd, sim
#                                profile, veto window 0) on the hub's embedded broker; each start is
#                                followed by a remote stop.
#   remote_start_p99_ms          the 99th percentile of the same.
#   remote_start_p50_ms_500dev   the same with 500 more devices connected to the broker: lightweight fake
#   remote_start_p99_ms_500dev   boxes (MQTT clients subscribed to their commands, each publishing a
#                                retained state every 5 s).
# Needs bin/classcapd, bin/classcap-hub (make build) and go. Knobs: BENCH_REMOTE_STARTS (200),
# BENCH_REMOTE_DEVICES (500), BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

starts=${BENCH_REMOTE_STARTS:-200}
devices=${BENCH_REMOTE_DEVICES:-500}

bench_name=bench-remote
# shellcheck source=scripts/bench-procs.sh
source scripts/bench-procs.sh

command -v go >/dev/null 2>&1 || die "go is not installed"
for b in classcapd classcap-hub; do
	[[ -x bin/$b ]] || die "bin/$b is missing: run make build (make bench builds first)"
done
[[ $starts =~ ^[0-9]+$ && $starts -ge 1 ]] || die "BENCH_REMOTE_STARTS=$starts: want a whole number >= 1"
[[ $devices =~ ^[0-9]+$ ]] || die "BENCH_REMOTE_DEVICES=$devices: want a whole number"

work=$(mktemp -d "${TMPDIR:-/tmp}/classcap-bench-remote.XXXXXX")
[[ -d $work ]] || die "mktemp failed"

log "work directory $work"
go build -o "$work/" ./scripts/benchtool ./scripts/hubbench || die "build scripts/benchtool and scripts/hubbench"
bt="$work/benchtool"
hb="$work/hubbench"

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
hub_pid=$!
pids+=("$hub_pid")
for ((i = 0; i < 300; i++)); do
	grep -q 'msg="serving HTTP"' "$last_log" 2>/dev/null && break
	kill -0 "$hub_pid" 2>/dev/null || die "the hub exited"
	sleep 0.1
done
http=$(sed -n 's/.*msg="serving HTTP" addr=\([^ ]*\).*/\1/p' "$last_log" | head -1)
broker=$(sed -n 's/.*msg="serving HTTP" .* broker=\([^ ]*\).*/\1/p' "$last_log" | head -1)
[[ -n $http && -n $broker ]] || die "no HTTP or broker address in the hub's log"
log "hub on http://$http, broker $broker"
hubctl=(bin/classcap-hub -config "$work/hub.toml")
token=$("${hubctl[@]}" token create -role coach -name bench) || die "token create"
mkdir -p "$work/box"
"${hubctl[@]}" device add bench-box >"$work/box/mqtt-password" || die "device add bench-box"

# --- the box: classcapd, sim profile, no veto window.
cat >"$work/box.toml" <<END_BOX
[device]
id = "bench-box"
data_dir = "$work/box"
log_level = "warn"
[hardware]
profile = "sim"
[recording]
segment_seconds = 4
min_free_mb = 100
veto_seconds = 0
[uplink]
broker = "$broker"
username = "bench-box"
password_file = "$work/box/mqtt-password"
END_BOX
last_log="$work/box.log"
bin/classcapd -config "$work/box.toml" >"$last_log" 2>&1 &
pids+=("$!")
"$hb" online -hub "http://$http" -token "$token" -device bench-box -timeout 60s ||
	die "the box did not come online at the hub"

# measure SUFFIX: N remote starts; prints the p50 and p99 lines.
measure() {
	local suffix=$1 out="$work/starts$1.txt"
	log "$starts remote starts (and stops)${suffix:+ with $devices more devices}"
	"$hb" starts -hub "http://$http" -token "$token" -device bench-box -n "$starts" >"$out" || die "remote starts"
	local p50 p99
	p50=$("$bt" quantile -p 0.5 <"$out")
	p99=$("$bt" quantile -p 0.99 <"$out")
	log "remote start ms: p50 $p50, p99 $p99, max $(sort -n "$out" | tail -1)"
	"$bt" line -name "remote_start_p50_ms$suffix" -ours "$(printf '%.2f' "$p50")" -unit ms
	"$bt" line -name "remote_start_p99_ms$suffix" -ours "$(printf '%.2f' "$p99")" -unit ms
}

measure ""

if ((devices > 0)); then
	log "registering and connecting $devices fake devices"
	last_log="$work/fakes.log"
	"$hb" fakes -socket "$work/hub/hub.sock" -broker "$broker" -n "$devices" -every 5s >"$last_log" 2>&1 &
	fakes_pid=$!
	pids+=("$fakes_pid")
	until grep -q '^ready ' "$last_log" 2>/dev/null; do
		kill -0 "$fakes_pid" 2>/dev/null || die "the fake devices gave up"
		sleep 0.5
	done
	measure "_${devices}dev"
fi
