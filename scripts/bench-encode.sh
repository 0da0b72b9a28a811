#!/usr/bin/env bash
# Prints one benchmark line on stdout (progress on stderr):
#   bench encode_cpu_per_media_s ours=<v> peer=<v> ratio=<ours/peer> unit=cpu_s_per_media_s
#
# CPU seconds (user+sys) per second of media of the raw-camera path with the software encoder:
# 1280x720 YUYV frames read from a file (made by ffmpeg: testsrc2 with noise, 30 fps), converted
# to I420 as the V4L2 camera does, encoded by openh264 at 2.5 Mb/s and written as fMP4 segments by
# the recorder's segment writer (scripts/benchencode). Peer, in the same run on the same file:
# ffmpeg -c:v libx264 -preset ultrafast -tune zerolatency at 2.5 Mb/s into fMP4 HLS segments.
# Each side runs 3 times; the median counts. Both outputs are checked with ffprobe.
#
# Needs ffmpeg, ffprobe and go (scripts/install-deps.sh). Knobs: BENCH_ENCODE_SECONDS (6; the
# frame file is 1.8 MB per frame, 330 MB for 6 s), BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${BENCH_ENCODE_SECONDS:-6}
log() { printf 'bench-encode: %s\n' "$*" >&2; }
die() { printf 'bench-encode: FAILED: %s\n' "$*" >&2; exit 1; }
for tool in ffmpeg ffprobe go; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/install-deps.sh installs it)"
done
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 ]] || die "BENCH_ENCODE_SECONDS=$seconds: want a whole number >= 1"

work=$(mktemp -d "${TMPDIR:-/tmp}/classcap-bench-encode.XXXXXX")
cleanup() { if [[ -n ${BENCH_KEEP:-} ]]; then log "work directory kept: $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

go build -o "$work/benchtool" ./scripts/benchtool || die "build scripts/benchtool"
go build -o "$work/benchencode" ./scripts/benchencode || die "build scripts/benchencode"
bt="$work/benchtool"

frames="$work/frames.yuyv"
log "making ${seconds} s of 1280x720 30 fps YUYV frames"
ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=6:allf=t" \
	-t "$seconds" -pix_fmt yuyv422 -f rawvideo "$frames" || die "ffmpeg: make $frames"

# media_s DIR: the duration ffprobe reads from DIR's segments, checking the codec.
media_s() {
	local dir=$1 codec all="$1/all.mp4"
	cat "$dir/init.mp4" "$dir"/seg_*.m4s >"$all" || die "$dir: no init.mp4 or segments"
	codec=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 "$all") ||
		die "ffprobe cannot read $all"
	[[ $codec == h264 ]] || die "$all: codec \"$codec\", want h264"
	ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$all" |
		awk '{ printf "%.3f", $1 / 30 }'
}

ours=() peer=()
for i in 1 2 3; do
	out="$work/ours$i"
	"$bt" rusage -o "$work/ours$i.rusage" -- "$work/benchencode" -in "$frames" -width 1280 -height 720 -fps 30 \
		-bitrate-kbps 2500 -out "$out" >/dev/null || die "benchencode run $i"
	m=$(media_s "$out")
	read -r cpu _ <"$work/ours$i.rusage"
	ours+=("$(awk -v c="$cpu" -v m="$m" 'BEGIN { printf "%.4f", c / m }')")
	log "ours run $i: ${cpu} s CPU for ${m} s of media"

	out="$work/peer$i"
	mkdir -p "$out"
	"$bt" rusage -o "$work/peer$i.rusage" -- ffmpeg -hide_banner -loglevel error -nostdin -y \
		-f rawvideo -pix_fmt yuyv422 -video_size 1280x720 -framerate 30 -i "$frames" \
		-c:v libx264 -preset ultrafast -tune zerolatency -b:v 2500k -g 60 -pix_fmt yuv420p \
		-f hls -hls_segment_type fmp4 -hls_time 4 -hls_playlist_type vod \
		-hls_fmp4_init_filename init.mp4 -hls_segment_filename "$out/seg_%05d.m4s" "$out/index.m3u8" ||
		die "ffmpeg (peer) run $i"
	m=$(media_s "$out")
	read -r cpu _ <"$work/peer$i.rusage"
	peer+=("$(awk -v c="$cpu" -v m="$m" 'BEGIN { printf "%.4f", c / m }')")
	log "ffmpeg run $i: ${cpu} s CPU for ${m} s of media"
done
o=$(printf '%s\n' "${ours[@]}" | "$bt" quantile -p 0.5)
p=$(printf '%s\n' "${peer[@]}" | "$bt" quantile -p 0.5)
"$bt" line -name encode_cpu_per_media_s -ours "$(printf '%.4f' "$o")" -peer "$(printf '%.4f' "$p")" -unit cpu_s_per_media_s
