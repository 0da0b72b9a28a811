#!/usr/bin/env bash
# Microphone-array figures (capture/array), one line each on stdout:
#   bench array_gain_db_<room>         SNR gain of the whole chain over the best single microphone, dB;
#                                      peer: ffmpeg afftdn on that microphone (the better of its defaults
#                                      and nr=20:nf=-40:tn=1). Rooms: diffuse, directional, fan (free field),
#                                      reverb_diffuse, reverb_directional (reverberant, below).
#   bench array_segsnr_gain_db_<room>  the same in segmental SNR.
#   bench beam_gain_db_<room>          the delay-and-sum beamformer alone (its own direction estimate).
#   bench mvdr_beam_gain_db_<room>     the MVDR beamformer alone; peer: delay-and-sum alone.
#   bench mvdr_array_gain_db_<room>    the whole chain with beam = "mvdr"; peer: the chain with delay-and-sum.
#   bench array_cpu_percent_4ch_48k    CPU of the whole chain, percent of one core, 4 channels at 48 kHz.
#   bench mvdr_array_cpu_percent_4ch_48k  the same with the MVDR beam; peer: with delay-and-sum.
# The rooms: espeak-ng speech (a talker at 60°) and noise rendered to the 4-microphone linear preset with
# per-microphone fractional delays, 5 dB SNR at each microphone. Free-field rooms: no reflections; diffuse
# noise independent at each microphone, a directional noise source or a fan at 150°. Reverberant rooms: a
# 9 x 7 x 3 m classroom, RT60 0.6 s, the array on a wall at 2.2 m and the talker 3 m away, by image sources
# to each microphone; reverb_diffuse adds a diffuse noise field (coherent between microphones at low
# frequencies, as in a room), reverb_directional pink noise from a point at 150°, reverberant too. In a
# reverberant room the speech counted as signal is the direct path and the reflections within 50 ms of
# it at the microphone measured (an output: at the best microphone); the late reverberation counts as
# noise, so these gains are over a best microphone that already has it, and no output escapes it without
# dereverberating. How SNR is measured: capture/array/room.
# Knobs: BENCH_ARRAY_SECONDS (20), BENCH_ARRAY_GEOMETRY (linear4), BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'bench-array: FAILED: %s\n' "$*" >&2; exit 1; }
for tool in ffmpeg espeak-ng go; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/install-deps.sh installs it)"
done
seconds=${BENCH_ARRAY_SECONDS:-20}
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 5 ]] || die "BENCH_ARRAY_SECONDS=$seconds: want a whole number >= 5"

work=$(mktemp -d "${TMPDIR:-/tmp}/classcap-bench-array.XXXXXX")
cleanup() {
	if [[ -n ${BENCH_KEEP:-} ]]; then
		printf 'bench-array: work directory kept: %s\n' "$work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

go build -o "$work/arraybench" ./scripts/arraybench || die "build scripts/arraybench"
espeak-ng -s 150 -w "$work/speech.wav" \
	"Good morning, everyone. Today we are going to look at fractions, and how they relate to division.
	Take out your notebooks, and write down the first problem on the board. If you have three pizzas
	and four friends, how much pizza does each friend get? Talk to your partner for a minute, then we
	will share our answers." || die "espeak-ng: make speech"
ffmpeg -hide_banner -loglevel error -nostdin -y -i "$work/speech.wav" \
	-af "aresample=48000,aformat=channel_layouts=mono,volume=-6dB" -f f32le "$work/speech.f32" ||
	die "ffmpeg: convert speech"
"$work/arraybench" ${BENCH_ARRAY_FLAGS:-} -speech "$work/speech.f32" -seconds "$seconds" -work "$work" \
	-geometry "${BENCH_ARRAY_GEOMETRY:-linear4}" || die "arraybench"
