#!/usr/bin/env bash
# Builds libopus from its release source for one target, as a static library
# the daemon links (go build -tags opussrc), and as a shared one that
# make bench lends ffmpeg for a like-for-like comparison:
#
#   scripts/libopus.sh [amd64|arm64|armv7]   (default: this machine's GOARCH)
#
# prints the directory it installed into: build/opus/linux-<arch>/ with
# lib/libopus.a (and, for this machine's architecture, lib/libopus.so*).
#
# The source is Debian's copy of the release tarball (deb.debian.org, the
# package archive every build machine already reaches), checked against the
# SHA-256 below, which is the one Debian's signed source index lists. It is
# downloaded once into build/opus/src/. Nothing is built again when the
# library for this version is already there.
#
# Why not the libopus 1.3.1 that mediadevices bundles: its ARM libraries have
# no NEON code and its x86 one never selects its SSE4.1 code, so every
# encode on the Pi ran plain C. 1.5.2 is built here with run-time CPU
# detection and the SIMD paths of each target (x86 SSE4.1/AVX2, ARM NEON).
# docs/decisions.md has the measurements.
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.5.2
sha256=65c1d2f78b9f2fb20082c38cbe47c951ad5839345876e46941612ee87f9a7ce1
url=http://deb.debian.org/debian/pool/main/o/opus/opus_${version}.orig.tar.gz

die() {
	echo "libopus.sh: $*" >&2
	exit 1
}

arch=${1:-$(go env GOARCH)}
case $arch in
amd64) host="" ;;
arm64) host=aarch64-linux-gnu ;;
arm | armv7) arch=armv7 host=arm-linux-gnueabihf ;;
*) die "unknown target \"$arch\" (amd64, arm64 or armv7)" ;;
esac

top=$PWD/build/opus
out=$top/linux-$arch
stamp=$out/.version
if [[ -f $stamp && $(<"$stamp") == "$version" && -f $out/lib/libopus.a ]]; then
	echo "$out"
	exit 0
fi

for tool in curl tar make sha256sum "${host:+$host-}gcc"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/install-deps.sh${host:+ cross} installs it)"
done

tarball=$top/src/opus_${version}.orig.tar.gz
if [[ ! -f $tarball ]] || ! echo "$sha256  $tarball" | sha256sum -c --status; then
	mkdir -p "$top/src"
	echo "libopus.sh: downloading $url" >&2
	curl -fsSL --retry 3 -o "$tarball.tmp" "$url" || die "download $url failed"
	echo "$sha256  $tarball.tmp" | sha256sum -c --status ||
		die "$url: SHA-256 is not $sha256 (refusing to build it)"
	mv "$tarball.tmp" "$tarball"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/classcap-opus.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
src=$work/opus-$version

# Shared library only for this machine: it is for ffmpeg here, not for the box.
shared=--disable-shared
[[ -z $host ]] && shared=--enable-shared
echo "libopus.sh: building libopus $version for linux-$arch" >&2
(
	cd "$src"
	./configure ${host:+--host=$host} --prefix="$out" --enable-static "$shared" \
		--disable-doc --disable-extra-programs CFLAGS="-O2 -fPIC"
	make -j"$(nproc)"
	rm -rf "$out"
	make install
) >"$work/build.log" 2>&1 || {
	tail -n 30 "$work/build.log" >&2
	die "building libopus $version for linux-$arch failed (log above)"
}
# The summary names the SIMD paths built in; keep it beside the library.
sed -n '/Intrinsics Optimizations/p;/Run-time CPU detection/p' "$work/build.log" >"$out/simd.txt"
echo "$version" >"$stamp"
echo "$out"
