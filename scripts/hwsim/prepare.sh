#!/usr/bin/env bash
# prepare.sh - get everything scripts/hwsim/run-vm.sh needs to boot a throw-away
# QEMU VM with simulated GPIO (gpio-sim), once; later runs only check it is there
# and touch neither the network nor apt.
#
#   scripts/hwsim/prepare.sh        prepare (no-op when the cache is ready)
#   scripts/hwsim/prepare.sh -f     throw the cache away and prepare again (a newer kernel)
#
# What it does:
#   1. scripts/install-deps.sh hwsim: qemu-system-x86, busybox-static, cpio, kmod, make, gcc
#      (missing ones only).
#   2. apt-get download (no install on this machine) of the kernel image package that
#      linux-image-amd64 depends on, its linux-headers (+ -common, linux-kbuild) and
#      linux-source-6.1 of the same version; unpacked with dpkg-deb -x.
#   3. Builds gpio-sim out of tree (Debian does not enable CONFIG_GPIO_SIM) from the
#      source package's drivers/gpio/gpio-sim.c and kernel/irq/irq_sim.c, linked into one
#      module, with two edits to irq_sim.c: its EXPORT_SYMBOL_GPL lines go, and
#      handle_simple_irq(irq_to_desc(irqnum)) becomes
#      generic_handle_domain_irq(work_ctx->domain, offset) (irq_to_desc is not exported
#      in 6.1). Installs it as extra/gpio-sim.ko and runs depmod on the unpacked tree.
#   4. Extracts the uncompressed vmlinux from vmlinuz (QEMU boots it via PVH: faster).
#
# Cache: $CLASSCAP_HWSIM_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/classcap-hwsim.
# Layout: kernel/ (boot/, lib/modules/KV/), vmlinux-KV, debs/, build/, READY (holds KV).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CLASSCAP_HWSIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/classcap-hwsim}
FORCE=0
case "${1:-}" in
-f) FORCE=1 ;;
"") ;;
*) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

log() { echo "hwsim-prepare: $*" >&2; }

"$HERE/../install-deps.sh" hwsim

mkdir -p "$CACHE"
# One preparer at a time (two checkouts sharing the cache).
exec 9>"$CACHE/.lock"
flock 9

if ((FORCE)); then
	rm -rf "$CACHE/kernel" "$CACHE/build" "$CACHE/debs" "$CACHE"/vmlinux-* "$CACHE/READY"
fi

if [ -s "$CACHE/READY" ]; then
	KV=$(cat "$CACHE/READY")
	if [ -s "$CACHE/vmlinux-$KV" ] && [ -f "$CACHE/kernel/lib/modules/$KV/extra/gpio-sim.ko" ]; then
		echo "$CACHE"
		exit 0
	fi
	rm -f "$CACHE/READY"
fi

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }

# ---- which kernel: the image package linux-image-amd64 depends on ----
image_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | sed -n 1p; }
IMG=$(image_pkg)
if [ -z "$IMG" ]; then
	as_root apt-get update -q >&2
	IMG=$(image_pkg)
fi
[ -n "$IMG" ] || { log "cannot resolve linux-image-amd64 (apt sources?)"; exit 1; }
KV=${IMG#linux-image-}                   # 6.1.0-56-amd64
ABI=${KV%-amd64}                          # 6.1.0-56
VER=$(apt-cache show --no-all-versions "$IMG" | sed -n 's/^Version: //p' | sed -n 1p)   # 6.1.192-2
MAJ=$(echo "$KV" | cut -d. -f1-2)         # 6.1
log "kernel $KV (package version $VER)"

# ---- download (cached .debs) ----
DEBS=$CACHE/debs
mkdir -p "$DEBS"
want=("$IMG=$VER" "linux-headers-$KV=$VER" "linux-headers-$ABI-common=$VER" "linux-kbuild-$MAJ=$VER" "linux-source-$MAJ=$VER")
for w in "${want[@]}"; do
	name=${w%%=*}
	if ! ls "$DEBS/${name}_"*.deb >/dev/null 2>&1; then
		log "downloading $w"
		(cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$w" >&2)
	fi
done
deb() { ls "$DEBS/${1}_"*.deb | sed -n 1p; }

# ---- unpack the kernel image (not installed on this machine) ----
rm -rf "$CACHE/kernel" "$CACHE/build"
mkdir -p "$CACHE/kernel" "$CACHE/build/root" "$CACHE/build/src"
dpkg-deb -x "$(deb "$IMG")" "$CACHE/kernel"
# ---- headers: the arch tree includes the -common tree and kbuild by absolute path ----
H=$CACHE/build/root
for p in "linux-headers-$KV" "linux-headers-$ABI-common" "linux-kbuild-$MAJ"; do
	dpkg-deb -x "$(deb "$p")" "$H"
done
KB=$H/usr/src/linux-headers-$KV
# Absolute links (scripts, tools) and includes of /usr/src/... point into the unpacked root.
find "$KB" "$H/usr/src/linux-headers-$ABI-common" -maxdepth 2 -type l | while read -r l; do
	t=$(readlink "$l")
	case $t in /*) ln -sfn "$H$t" "$l" ;; esac
done
grep -rl --include=Makefile '/usr/src/linux-headers-' "$KB" | while read -r f; do
	sed -i "s#\([^/]\)/usr/src/linux-headers-#\1$H/usr/src/linux-headers-#g; s#^include /usr/src/#include $H/usr/src/#" "$f"
done

# ---- gpio-sim sources from linux-source ----
S=$CACHE/build/src
dpkg-deb --fsys-tarfile "$(deb "linux-source-$MAJ")" | tar -x -C "$S" "./usr/src/linux-source-$MAJ.tar.xz"
tar -xJf "$S/usr/src/linux-source-$MAJ.tar.xz" -C "$S" \
	"linux-source-$MAJ/drivers/gpio/gpio-sim.c" "linux-source-$MAJ/drivers/gpio/gpiolib.h" \
	"linux-source-$MAJ/kernel/irq/irq_sim.c"
rm -rf "$S/usr"
M=$CACHE/build/gpio-sim
mkdir -p "$M"
cp "$S/linux-source-$MAJ/drivers/gpio/gpio-sim.c" "$M/gpio-sim-main.c"
cp "$S/linux-source-$MAJ/drivers/gpio/gpiolib.h" "$M/gpiolib.h"
cp "$S/linux-source-$MAJ/kernel/irq/irq_sim.c" "$M/irq_sim.c"
sed -i '/EXPORT_SYMBOL_GPL/d' "$M/irq_sim.c"
sed -i 's/handle_simple_irq(irq_to_desc(irqnum))/generic_handle_domain_irq(work_ctx->domain, offset)/' "$M/irq_sim.c"
grep -q 'generic_handle_domain_irq(work_ctx->domain, offset)' "$M/irq_sim.c" ||
	{ log "irq_sim.c: the handle_simple_irq edit did not apply"; exit 1; }
printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' > "$M/Kbuild"
log "building gpio-sim.ko"
make -s -C "$KB" M="$M" modules >&2
install -D -m 0644 "$M/gpio-sim.ko" "$CACHE/kernel/lib/modules/$KV/extra/gpio-sim.ko"
depmod -b "$CACHE/kernel" "$KV"

# ---- uncompressed vmlinux for QEMU's PVH entry ----
Z=$CACHE/kernel/boot/vmlinuz-$KV
off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$Z" | sed -n 1p | cut -d: -f1)
[ -n "$off" ] || { log "no xz stream in $Z"; exit 1; }
{ tail -c +$((off + 1)) "$Z" || true; } | xz -dc --single-stream > "$CACHE/vmlinux-$KV.tmp"
mv "$CACHE/vmlinux-$KV.tmp" "$CACHE/vmlinux-$KV"

echo "$KV" > "$CACHE/READY"
log "ready: $CACHE"
echo "$CACHE"
