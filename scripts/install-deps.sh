#!/usr/bin/env bash
# Installs the Debian packages classcap needs to build and test, and only the
# ones that are missing. Safe to run again and again: with everything
# present it changes nothing and does not touch the network.
#
#   scripts/install-deps.sh          build + test: C compilers (cgo codecs), ffmpeg (ffprobe judges media),
#                                    chromium (the hub's web page)
#   scripts/install-deps.sh cross    also the arm64 and armv7 cross compilers (make build-arm64/-armv7)
#                                    and qemu-user, which runs their test binaries (make test-arm)
#   scripts/install-deps.sh hwsim    also QEMU and busybox for the GPIO tests in a VM (scripts/hwsim/)
#
# Runs as root, or through sudo when it is not root. Never asks questions.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Packages every build and test needs.
packages=(
	gcc            # cgo: mediadevices' opus and openh264 bindings
	g++            # cgo: openh264's C++ bridge
	make
	git            # version string: git describe
	ffmpeg         # ffprobe and ffmpeg judge every media file in tests
	espeak-ng      # make bench: speech-like test audio
	systemd        # systemd-analyze verify/security check the unit files in tests (no systemd as PID 1 needed)
	mosquitto      # a real MQTT broker (and mosquitto_passwd) for the box link and hub tests
	curl           # make bench: the peer of the upload goodput figures
	chromium       # the hub's web page is tested in headless Chromium (cmd/classcap-hub/web_test.go)
	chromium-driver
	ca-certificates
)

for arg in "$@"; do
	case "$arg" in
	cross)
		packages+=(
			gcc-aarch64-linux-gnu g++-aarch64-linux-gnu       # Raspberry Pi 4/5, 64-bit OS
			gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf   # Raspberry Pi OS 32-bit (armv7)
			qemu-user                                         # make test-arm: ARM test binaries here
		)
		;;
	hwsim)
		packages+=(
			qemu-system-x86 busybox-static cpio   # throw-away VM with a busybox initramfs
			kmod xz-utils                         # depmod on the unpacked kernel; vmlinux extraction
		)
		;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "install-deps: unknown argument \"$arg\" (known: cross, hwsim)" >&2
		exit 2
		;;
	esac
done

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: this script needs Debian or Ubuntu (dpkg, apt-get); install by hand: ${packages[*]}" >&2
	exit 1
fi

installed() {
	dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
	if ((EUID == 0)); then
		as_root=()
	elif command -v sudo >/dev/null 2>&1; then
		as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
	else
		echo "install-deps: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	"${as_root[@]}" apt-get update -q
	"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
	for p in "${missing[@]}"; do
		if ! installed "$p"; then
			echo "install-deps: $p is still not installed" >&2
			exit 1
		fi
	done
fi

# Go is not taken from Debian (bookworm's is too old): check it is there.
if ! command -v go >/dev/null 2>&1; then
	echo "install-deps: go is not on PATH; install Go $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod") or newer from https://go.dev/dl/" >&2
	exit 1
fi
