#!/usr/bin/env bash
# Runs a box with simulated hardware and a hub on this machine (make run).
#
# Writes run/box.toml and run/hub.toml, starts bin/classcap-hub in the
# background (log: run/hub.log), registers the box with it (its MQTT password
# in run/box/mqtt-password, an admin token in run/hub/token), and runs
# bin/classcapd in the foreground, connected to the hub's embedded broker.
# Ctrl-C stops both. Lessons and the hub's registry stay in run/ between runs.
#
# CLASSCAP_HUB_LISTEN overrides the hub's HTTP address (127.0.0.1:8080),
# CLASSCAP_BROKER_LISTEN its MQTT address (127.0.0.1:1883).
set -euo pipefail
cd "$(dirname "$0")/.."

hub_listen=${CLASSCAP_HUB_LISTEN:-127.0.0.1:8080}
broker_listen=${CLASSCAP_BROKER_LISTEN:-127.0.0.1:1883}

for b in classcapd classcapctl classcap-hub; do
	if [[ ! -x bin/$b ]]; then
		echo "run-local: bin/$b is missing; build first: make build (or use make run)" >&2
		exit 1
	fi
done

mkdir -p run/box run/hub

# Paths are relative to the repository root, where both programs run.
cat >run/box.toml <<EOF
# Written by scripts/run-local.sh on every run; edits are overwritten.
[device]
id = "sim-101"
data_dir = "run/box"
log_level = "info"

[hardware]
profile = "sim"            # synthetic camera, microphone array, button and LED

[hardware.sim]
width = 1280
height = 720
fps = 30.0
mic_channels = 4

[recording]
segment_seconds = 4.0
visibility = "private"
min_free_mb = 100

[live]
allow = "recording"        # live view (WHEP at the hub) while a lesson records
loopback = true            # a viewer on this machine: offer loopback ICE candidates too

[uplink]
broker = "tcp://$broker_listen"   # the hub's embedded broker
username = "sim-101"
password_file = "run/box/mqtt-password"   # from: classcap-hub device add sim-101
EOF

cat >run/hub.toml <<EOF
# Written by scripts/run-local.sh on every run; edits are overwritten.
[hub]
data_dir = "run/hub"
http_listen = "$hub_listen"

[broker]
listen = "$broker_listen"
EOF

bin/classcap-hub -config run/hub.toml -check >/dev/null
bin/classcapd -config run/box.toml -check >/dev/null

hub_pid=
stop_hub() {
	if [[ -n $hub_pid ]] && kill -0 "$hub_pid" 2>/dev/null; then
		kill -TERM "$hub_pid" 2>/dev/null || true
		wait "$hub_pid" 2>/dev/null || true
		echo "run-local: hub stopped"
	fi
}
trap stop_hub EXIT

bin/classcap-hub -config run/hub.toml >run/hub.log 2>&1 &
hub_pid=$!

# Wait until the hub serves HTTP (it logs the line below), at most 10 s.
for ((i = 0; i < 100; i++)); do
	if grep -q 'msg="serving HTTP"' run/hub.log 2>/dev/null; then
		break
	fi
	if ! kill -0 "$hub_pid" 2>/dev/null; then
		echo "run-local: the hub exited; its log (run/hub.log):" >&2
		cat run/hub.log >&2
		exit 1
	fi
	sleep 0.1
done
if ! grep -q 'msg="serving HTTP"' run/hub.log; then
	echo "run-local: the hub did not start serving within 10 s; see run/hub.log" >&2
	exit 1
fi

# Register the box with the hub once (the registry and the password file
# stay in run/), and keep an admin token for classcapctl -hub.
hubctl="bin/classcap-hub -config run/hub.toml"
if [[ ! -s run/box/mqtt-password ]]; then
	if ! pw=$($hubctl device add sim-101 2>run/hub-verb.err); then
		echo "run-local: device add sim-101: $(cat run/hub-verb.err)" >&2
		echo "run-local: (the hub knows sim-101 but run/box/mqtt-password is gone: remove run/hub/ to start over)" >&2
		exit 1
	fi
	(umask 077 && printf '%s\n' "$pw" >run/box/mqtt-password)
fi
if [[ ! -s run/hub/token ]]; then
	tok=$($hubctl token create -role admin -name make-run)
	(umask 077 && printf '%s\n' "$tok" >run/hub/token)
fi
rm -f run/hub-verb.err

ctl="bin/classcapctl -socket run/box/classcapd.sock"
rctl="bin/classcapctl -hub http://$hub_listen -token \$(cat run/hub/token)"
lines=(
	"classcap on this machine: box \"sim-101\" (simulated hardware) + hub"
	""
	"In another terminal, from $(pwd):"
	"  tap the button:  $ctl sim press"
	"  state:           $ctl status"
	"  lessons:         $ctl lessons"
	"  export one:      $ctl export ID out.mp4"
	""
	"Remotely, through the hub (as a coach would):"
	"  boxes:           $rctl devices"
	"  start:           $rctl record start -device sim-101 -visibility coaching"
	"                   (the LED asks the teacher first: 'sim hold 2' within 10 s declines)"
	"  stop:            $rctl record stop -device sim-101"
	"  lessons:         $rctl lessons"
	"  live view:       while recording, 'Watch live' on http://$hub_listen/ (WHEP: POST /live/sim-101/whep)"
	"  who watched:     $rctl views -device sim-101"
	""
	"Lessons on disk:   run/box/lessons/<id>/ (init.mp4, seg_*.m4s, index.m3u8)"
	"Hub:               http://$hub_listen (API: docs/protocol.md; log: run/hub.log)"
	"MQTT broker:       tcp://$broker_listen (the hub's, embedded)"
	"Stop:              Ctrl-C here stops the box and the hub"
)
width=0
for l in "${lines[@]}"; do
	((${#l} > width)) && width=${#l}
done
border=$(printf '%*s' $((width + 2)) '' | tr ' ' '-')
echo "+$border+"
for l in "${lines[@]}"; do
	printf '| %-*s |\n' "$width" "$l"
done
echo "+$border+"

status=0
bin/classcapd -config run/box.toml || status=$?
exit "$status"
