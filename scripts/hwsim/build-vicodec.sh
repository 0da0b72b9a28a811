#!/usr/bin/env bash
# build-vicodec.sh - build the kernel's virtual memory-to-memory codec (vicodec) and the
# mem2mem framework it needs (v4l2-mem2mem) for the hwsim kernel, once, and print the
# directory holding v4l2-mem2mem.ko and vicodec.ko.
#
# Debian's amd64 kernel enables neither (CONFIG_V4L2_MEM2MEM_DEV, CONFIG_VIDEO_VICODEC),
# so both are built out of tree from linux-source of the same version (already in the
# cache of scripts/hwsim/prepare.sh), against its headers. In the VM:
#   run-vm.sh -m videobuf2-vmalloc,videobuf2-v4l2 -f DIR/v4l2-mem2mem.ko:/lib/v4l2-mem2mem.ko \
#     -f DIR/vicodec.ko:/lib/vicodec.ko -- 'insmod /lib/v4l2-mem2mem.ko && insmod /lib/vicodec.ko multiplanar=1 && ...'
# vicodec gives three nodes: a stateful encoder (raw in, FWHT out), a stateful and a
# stateless decoder.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CLASSCAP_HWSIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/classcap-hwsim}
log() { echo "build-vicodec: $*" >&2; }

"$HERE/prepare.sh" >/dev/null
KV=$(cat "$CACHE/READY")
OUT=$CACHE/vicodec-$KV
exec 9>"$CACHE/.vicodec.lock"
flock 9
if [ -f "$OUT/vicodec.ko" ] && [ -f "$OUT/v4l2-mem2mem.ko" ]; then
	echo "$OUT"
	exit 0
fi

MAJ=$(echo "$KV" | cut -d. -f1-2)
DEB=$(ls "$CACHE/debs/linux-source-${MAJ}_"*.deb | sed -n 1p)
KB=$CACHE/build/root/usr/src/linux-headers-$KV
[ -n "$DEB" ] && [ -d "$KB" ] || { log "no linux-source deb or headers in $CACHE (run prepare.sh -f)"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/classcap-vicodec.XXXXXX")
trap 'rm -rf "$W"' EXIT
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$W" "./usr/src/linux-source-$MAJ.tar.xz"
S=linux-source-$MAJ
tar -xJf "$W/usr/src/$S.tar.xz" -C "$W" "$S/drivers/media/v4l2-core/v4l2-mem2mem.c" "$S/drivers/media/test-drivers/vicodec"
M=$W/mod
mkdir -p "$M"
cp "$W/$S/drivers/media/v4l2-core/v4l2-mem2mem.c" "$W/$S/drivers/media/test-drivers/vicodec/"*.[ch] "$M/"
printf 'obj-m := v4l2-mem2mem.o vicodec.o\nvicodec-y := vicodec-core.o codec-fwht.o codec-v4l2-fwht.o\n' > "$M/Kbuild"
log "building v4l2-mem2mem.ko and vicodec.ko for $KV"
make -s -C "$KB" M="$M" modules >&2 2> >(grep -v 'Skipping BTF' >&2)
mkdir -p "$OUT.tmp"
cp "$M/v4l2-mem2mem.ko" "$M/vicodec.ko" "$OUT.tmp/"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "$OUT"
