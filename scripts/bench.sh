#!/usr/bin/env bash
# Prints the benchmark figures on stdout, one line each:
#   bench <name> ours=<value> peer=<value> ratio=<ours/peer> unit=<unit>
# (peer and ratio only where there is a peer). Progress goes to stderr.
#
#   record_cpu_per_media_s     CPU seconds (user+sys) of classcapd per second of media recorded, replay
#                              profile: 720p30 H.264 passed through, 48 kHz mono speech to Opus 32 kb/s,
#                              fMP4 segments + HLS with fsync. Peer: ffmpeg doing the same (-c:v copy,
#                              libopus, -f hls -hls_segment_type fmp4) on the same input, as fast as it goes.
#                              Three runs of each, taken in turns; the medians are compared.
#                              classcapd links libopus 1.5.2 built from source (scripts/libopus.sh),
#                              ffmpeg Debian's libopus 1.3.1.
#   record_cpu_per_media_s_same_libopus
#                              the same, with ffmpeg run on classcapd's libopus (LD_LIBRARY_PATH to
#                              the shared build of scripts/libopus.sh): what the rest of each
#                              recording path costs, the encoder being equal.
#   record_cpu_per_media_s_live_same_libopus
#                              the same again, with ffmpeg's input fed to it in real time through named pipes
#                              (benchtool feed: one access unit every 1/30 s, 60 ms of sound at a time),
#                              so that both sides do the live job a camera and microphones ask for.
#   record_rss_mb              peak RSS (VmHWM) of classcapd, the highest of its three runs; peer: ffmpeg's
#                              maxrss (median).
#   tap_to_first_frame_ms      sim profile, 1280x720 30 fps: median over N record start/stop cycles of the
#                              daemon's "first picture after N ms" (start received -> first picture taken).
#   tap_to_first_frame_p90_ms  the 90th percentile of the same.
#
# Needs bin/classcapd and bin/classcapctl (make build), ffmpeg, ffprobe, espeak-ng and go
# (scripts/install-deps.sh). Knobs: BENCH_RECORD_SECONDS (30), BENCH_TAPS (20), BENCH_KEEP=1 keeps the
# work directory, BENCH_ONLY picks sections (comma-separated: record, taps, array, upload, remote, encode,
# live, glass; default all), e.g. BENCH_ONLY=record scripts/bench.sh for the two record_* lines alone.
set -euo pipefail
cd "$(dirname "$0")/.."

record_seconds=${BENCH_RECORD_SECONDS:-30}
only=${BENCH_ONLY:-record,taps,array,upload,remote,encode,live,glass}

# want SECTION succeeds when BENCH_ONLY selects SECTION.
want() { [[ ,$only, == *,$1,* ]]; }
tap_count=${BENCH_TAPS:-20}

bench_name=bench
# shellcheck source=scripts/bench-procs.sh
source scripts/bench-procs.sh
daemon_pid="" # the classcapd this script runs now, if any (also in pids)

for tool in ffmpeg ffprobe espeak-ng go; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/install-deps.sh installs it)"
done
for b in classcapd classcapctl; do
	[[ -x bin/$b ]] || die "bin/$b is missing: run make build (make bench builds first)"
done
[[ $record_seconds =~ ^[0-9]+$ && $record_seconds -ge 5 ]] || die "BENCH_RECORD_SECONDS=$record_seconds: want a whole number >= 5"
[[ $tap_count =~ ^[0-9]+$ && $tap_count -ge 1 ]] || die "BENCH_TAPS=$tap_count: want a whole number >= 1"
for sec in ${only//,/ }; do
	case $sec in
	record | taps | array | upload | remote | encode | live | glass) ;;
	*) die "BENCH_ONLY: unknown section \"$sec\" (record, taps, array, upload, remote, encode, live, glass)" ;;
	esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/classcap-bench.XXXXXX")

# stop_daemon ends the daemon this script started (bench-procs.sh's stop).
stop_daemon() {
	[[ -n $daemon_pid ]] || return 0
	stop "$daemon_pid"
	daemon_pid="" pids=()
}

log "work directory $work"
go build -o "$work/benchtool" ./scripts/benchtool || die "build scripts/benchtool"
bt="$work/benchtool"

# start_daemon CONFIG NAME starts classcapd and waits until it answers and
# its camera and microphone deliver.
start_daemon() {
	local cfg=$1 name=$2 socket=$3
	last_log="$work/$name.log"
	bin/classcapd -config "$cfg" >"$last_log" 2>&1 &
	daemon_pid=$!
	pids=("$daemon_pid")
	"$bt" ready -socket "$socket" -timeout 20s || die "classcapd ($name) did not come up"
	kill -0 "$daemon_pid" 2>/dev/null || die "classcapd ($name) exited"
}

# div A B FORMAT prints A/B with the printf FORMAT; fails when B is 0.
div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b == 0) exit 1; printf f "\n", a / b }'; }

# probe_hls DIR checks that ffprobe reads DIR/index.m3u8 as fMP4 HLS with
# H.264 and Opus, and prints its duration in seconds.
probe_hls() {
	local pl=$1/index.m3u8 codecs
	[[ -s $pl ]] || die "$pl is missing"
	grep -q '^#EXT-X-MAP:' "$pl" || die "$pl has no EXT-X-MAP: not fMP4 HLS"
	codecs=$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$pl" | sed "/^$/d" | sort -u | paste -sd, -) ||
		die "ffprobe cannot read $pl"
	[[ $codecs == "h264,opus" ]] || die "$pl: ffprobe finds codecs \"$codecs\", want h264 and opus"
	ffprobe -v error -show_entries format=duration -of csv=p=0 "$pl" || die "ffprobe: no duration in $pl"
}

if want record; then
# --- inputs: 720p30 H.264 (~2.5 Mb/s, no B-frames, keyframe every 60) and
# 48 kHz mono speech over a little room noise, both record_seconds long.
log "making ${record_seconds} s of 720p30 H.264 and 48 kHz speech"
video="$work/in.h264"
audio="$work/in.wav"
ffmpeg -hide_banner -loglevel error -nostdin -y \
	-f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=6:allf=t" -t "$record_seconds" \
	-c:v libx264 -preset veryfast -b:v 2500k -maxrate 2500k -bufsize 5000k \
	-bf 0 -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
	-bsf:v h264_mp4toannexb -f h264 "$video" || die "ffmpeg: make $video"
espeak-ng -s 150 -w "$work/speech.wav" \
	"Good morning, everyone. Today we are going to look at fractions, and how they relate to division.
	Take out your notebooks, and write down the first problem on the board. If you have three pizzas
	and four friends, how much pizza does each friend get? Talk to your partner for a minute, then we
	will share our answers." || die "espeak-ng: make speech"
ffmpeg -hide_banner -loglevel error -nostdin -y \
	-stream_loop -1 -i "$work/speech.wav" \
	-f lavfi -i "anoisesrc=color=pink:amplitude=0.01:sample_rate=48000" \
	-filter_complex "[0:a]aresample=48000,aformat=channel_layouts=mono[s];[s][1:a]amix=inputs=2:duration=first:normalize=0[a]" \
	-map "[a]" -t "$record_seconds" -ar 48000 -ac 1 -c:a pcm_s16le "$audio" || die "ffmpeg: make $audio"
video_kbps=$(awk -v b="$(stat -c %s "$video")" -v s="$record_seconds" 'BEGIN { printf "%.0f", b * 8 / s / 1000 }')
log "input video ${video_kbps} kb/s"

# --- ours and the peer, three runs each, taken in turns so that a change in
# how busy the machine is falls on both; the medians are compared.
# ours: classcapd, replay profile, recording record_seconds in real time.
record_ours() {
	local run=$1
	local box="$work/replay$run"
	local sock="$box/classcapd.sock"
	cat >"$work/replay$run.toml" <<EOF
[device]
id = "bench-replay"
data_dir = "$box"
[hardware]
profile = "replay"
[hardware.replay]
video = "$video"
audio = "$audio"
fps = 30
pace = "realtime"
[audio]
bitrate_kbps = 32
complexity = 10
[recording]
segment_seconds = 4
min_free_mb = 100
EOF
	start_daemon "$work/replay$run.toml" "replay$run" "$sock"
	# For the log only: what the daemon spends idle (camera and microphones
	# running, nothing recorded) over 5 s.
	local idle0 cpu0 cpu1 rss started lesson_id media probed per_s
	idle0=$("$bt" cpu "$daemon_pid") || die "read classcapd's CPU time"
	sleep 5
	cpu0=$("$bt" cpu "$daemon_pid") || die "read classcapd's CPU time"
	log "classcapd run $run idle: $(div "$(awk -v a="$idle0" -v b="$cpu0" 'BEGIN { print b - a }')" 5 "%.4f") CPU s per s"
	started=$(bin/classcapctl -socket "$sock" record start) || die "record start (replay)"
	lesson_id=$(sed -n 's/^recording lesson \([^ ]*\) .*/\1/p' <<<"$started")
	[[ -n $lesson_id ]] || die "record start answered \"$started\": no lesson id"
	"$bt" hold -socket "$sock" -pid "$daemon_pid" -for "${record_seconds}s" || die "recording did not last ${record_seconds} s"
	bin/classcapctl -socket "$sock" record stop >/dev/null || die "record stop (replay)"
	cpu1=$("$bt" cpu "$daemon_pid") || die "read classcapd's CPU time"
	rss=$("$bt" hwm "$daemon_pid") || die "read classcapd's peak RSS"
	stop_daemon
	media=$("$bt" lesson "$box/lessons/$lesson_id/lesson.json") || die "read lesson $lesson_id"
	probed=$(probe_hls "$box/lessons/$lesson_id")
	log "classcapd run $run: lesson $lesson_id: ${media} s in lesson.json, ${probed} s by ffprobe; CPU ${cpu0} s -> ${cpu1} s, peak RSS ${rss} MB"
	per_s=$(div "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" "$media" "%.4f") ||
		die "lesson $lesson_id has no media duration"
	ours_cpus+=("$per_s")
	ours_rsss+=("$rss")
	last_log=""
}

# peer: ffmpeg on the same input, as fast as it goes. With LIBDIR, ffmpeg
# loads libopus from there; its figures go to same_cpus. With LIVE set, the
# input reaches ffmpeg through named pipes in real time (benchtool feed: an
# access unit every 1/30 s, 60 ms of sound at a time, as the daemon's
# replay source delivers them), so that it does the daemon's real-time job;
# its figures go to live_cpus.
record_peer() {
	local run=$1 libdir=${2:-} live=${3:-}
	local name="peer$run${libdir:+-same}${live:+-live}"
	local out="$work/$name" cpu rss peer_media per_s feeder=""
	local input=(-f h264 -framerate 30 -i "$video" -i "$audio")
	mkdir -p "$out"
	if [[ -n $live ]]; then
		mkfifo "$out/video.fifo" "$out/audio.fifo"
		"$bt" feed -video "$video" -audio "$audio" -video-to "$out/video.fifo" -audio-to "$out/audio.fifo" \
			-fps 30 -block 60ms &
		feeder=$!
		pids+=("$feeder")
		input=(-f h264 -framerate 30 -i "$out/video.fifo" -f s16le -ar 48000 -ac 1 -i "$out/audio.fifo")
	fi
	LD_LIBRARY_PATH=$libdir "$bt" rusage -o "$work/$name.rusage" -- ffmpeg -hide_banner -loglevel error -nostdin -y \
		"${input[@]}" -map 0:v -map 1:a \
		-c:v copy -bsf:v setts=ts=N:time_base=1/30 \
		-c:a libopus -b:a 32k -compression_level 10 -application voip -ac 1 \
		-f hls -hls_segment_type fmp4 -hls_time 4 -hls_playlist_type vod \
		-hls_fmp4_init_filename init.mp4 -hls_segment_filename "$out/seg_%05d.m4s" "$out/index.m3u8" ||
		die "ffmpeg (peer${libdir:+, libopus from $libdir}${live:+, fed in real time}) run $run"
	if [[ -n $feeder ]]; then
		wait "$feeder" || die "benchtool feed (run $run) failed"
		unset 'pids[-1]'
	fi
	peer_media=$(probe_hls "$out")
	read -r cpu rss <"$work/$name.rusage"
	per_s=$(div "$cpu" "$peer_media" "%.4f") || die "peer output has no duration"
	if [[ -n $live ]]; then
		live_cpus+=("$per_s")
		log "ffmpeg run $run fed in real time, libopus from $libdir: ${cpu} s CPU for ${peer_media} s of media"
		return
	fi
	if [[ -n $libdir ]]; then
		same_cpus+=("$per_s")
		log "ffmpeg run $run with libopus from $libdir: ${cpu} s CPU for ${peer_media} s of media"
		return
	fi
	peer_cpus+=("$per_s")
	peer_rsss+=("$rss")
	log "ffmpeg run $run: ${cpu} s CPU for ${peer_media} s of media, peak RSS ${rss} MB"
}

# The shared libopus that scripts/libopus.sh built beside the daemon's, and
# proof that ffmpeg's libavcodec picks it up.
opus_lib=$PWD/build/opus/linux-$(go env GOARCH)/lib
[[ -f $opus_lib/libopus.so.0 ]] || die "$opus_lib/libopus.so.0 is missing: run make build (scripts/libopus.sh)"
LD_LIBRARY_PATH=$opus_lib ldd "$(command -v ffmpeg)" | grep -q "libopus.so.0 => $opus_lib/" ||
	die "ffmpeg does not load libopus from $opus_lib"
log "classcapd links $(bin/classcapd -version | sed -n 2p); ffmpeg links $(ldd "$(command -v ffmpeg)" | awk '/libopus/ {print $3}')"


ours_cpus=()
ours_rsss=()
peer_cpus=()
peer_rsss=()
same_cpus=()
live_cpus=()
for run in 1 2 3; do
	log "run $run of 3: classcapd recording ${record_seconds} s, then ffmpeg, then ffmpeg on classcapd's libopus, as fast as it goes and fed in real time"
	record_ours "$run"
	record_peer "$run"
	record_peer "$run" "$opus_lib"
	record_peer "$run" "$opus_lib" live
done
median() { printf '%s\n' "$@" | "$bt" quantile -p 0.5; }
ours_cpu=$(printf '%.4f' "$(median "${ours_cpus[@]}")")
ours_rss=$(printf '%.1f' "$(printf '%s\n' "${ours_rsss[@]}" | sort -g | tail -n 1)") # the highest peak
peer_cpu=$(printf '%.4f' "$(median "${peer_cpus[@]}")")
peer_rss=$(printf '%.1f' "$(median "${peer_rsss[@]}")")
same_cpu=$(printf '%.4f' "$(median "${same_cpus[@]}")")
live_cpu=$(printf '%.4f' "$(median "${live_cpus[@]}")")
log "CPU s per media s, run by run: classcapd ${ours_cpus[*]}; ffmpeg ${peer_cpus[*]}; ffmpeg on classcapd's libopus ${same_cpus[*]}; the same fed in real time ${live_cpus[*]}"

"$bt" line -name record_cpu_per_media_s -ours "$ours_cpu" -peer "$peer_cpu" -unit cpu_s_per_media_s
"$bt" line -name record_cpu_per_media_s_same_libopus -ours "$ours_cpu" -peer "$same_cpu" -unit cpu_s_per_media_s
"$bt" line -name record_cpu_per_media_s_live_same_libopus -ours "$ours_cpu" -peer "$live_cpu" -unit cpu_s_per_media_s
"$bt" line -name record_rss_mb -ours "$ours_rss" -peer "$peer_rss" -unit MB

fi

if want taps; then
# --- tap to first frame: sim profile, default 1280x720 30 fps.
box="$work/sim"
sock="$box/classcapd.sock"
cat >"$work/sim.toml" <<EOF
[device]
id = "bench-sim"
data_dir = "$box"
[hardware]
profile = "sim"
[recording]
segment_seconds = 4
min_free_mb = 100
EOF
log "classcapd (sim): ${tap_count} record start/stop cycles"
start_daemon "$work/sim.toml" sim "$sock"
"$bt" taps -socket "$sock" -n "$tap_count" -hold 1s -gap 1s >"$work/taps.txt" || die "record start/stop cycles"
cached=$(grep -c 'from_cache=true' "$last_log" || true)
stop_daemon
log "first-picture latencies (ms): $(paste -sd' ' "$work/taps.txt"); ${cached} of ${tap_count} started from the cached keyframe"
p50=$("$bt" quantile -p 0.5 <"$work/taps.txt")
p90=$("$bt" quantile -p 0.9 <"$work/taps.txt")
"$bt" line -name tap_to_first_frame_ms -ours "$(printf '%.2f' "$p50")" -unit ms
"$bt" line -name tap_to_first_frame_p90_ms -ours "$(printf '%.2f' "$p90")" -unit ms
fi
if want array; then scripts/bench-array.sh || die "scripts/bench-array.sh (microphone-array figures)"; fi
if want upload; then scripts/bench-upload.sh || die "scripts/bench-upload.sh (upload figures)"; fi
if want remote; then scripts/bench-remote.sh || die "remote-start latency (scripts/bench-remote.sh)"; fi
if want encode; then scripts/bench-encode.sh || die "scripts/bench-encode.sh (encode_cpu_per_media_s)"; fi
if want live; then scripts/bench-live.sh || die "scripts/bench-live.sh (live_box_cpu_*viewers)"; fi
if want glass; then scripts/bench-glass.sh || die "scripts/bench-glass.sh (live_glass_to_glass_ms)"; fi
