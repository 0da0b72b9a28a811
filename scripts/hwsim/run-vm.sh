#!/bin/bash
# run-vm.sh - boot a throw-away QEMU VM (Debian kernel + busybox initramfs) with
# simulated capture-box hardware (gpio-sim GPIO; vivid V4L2 and snd-aloop/snd-dummy ALSA
# from the Debian kernel), run one command inside, and return that command's exit status.
# Run scripts/hwsim/prepare.sh first (once): it fetches the kernel and builds gpio-sim.
#
# usage: run-vm.sh [-b FILE]... [-f SRC:DST]... [-m MODLIST] [-p 'MOD PARAMS']... [-s DIR]
#                  [-a kvm|tcg] [-t TIMEOUT] [-M MEM] [-l LOG] [-q] [-G] -- COMMAND...
#   -b FILE     put FILE into the VM as /bin/<basename>; dynamic ELF => its ldd libs come too
#   -f SRC:DST  copy a file or directory SRC to DST inside the VM
#   -m LIST     comma list of modules to load (deps resolved via modules.dep)
#               default: vivid,snd-aloop,snd-dummy,gpio-sim,9p,9pnet_virtio,virtio_pci
#   -p 'M ARGS' module parameters, e.g. -p 'vivid n_devs=1 node_types=0x1'
#   -s DIR      share host DIR read-write into the VM at /host (virtio-9p); results go there
#   -a ACCEL    tcg (default) or kvm. On nested virtualisation KVM can be far slower than
#               TCG, so TCG is the default; use -a kvm where KVM is real hardware.
#   -t SECS     host-side timeout (default 120) -> exit 124
#   -M MEM      guest memory (default 512M)
#   -l LOG      full serial console log (default: a temporary file, removed)
#   -q          don't echo the console to stdout (log file only)
#   -G          do NOT create the default gpio-sim chip (chip0: bank0 with 2 lines)
# Inside the VM: PID1 is /init (busybox sh); COMMAND runs via 'sh -c' in / with
# HWSIM_GPIOCHIP (e.g. gpiochip0) and HWSIM_GPIOSYS (sysfs dir of the sim chip) exported.
# gpio-sim chip0 bank0: line 0 "button", line 1 "led"; $HWSIM_GPIOSYS/sim_gpioN/pull sets
# what the outside world does to input line N, sim_gpioN/value shows the level of line N.
# Exit status: the command's status (0-127); 124 = timeout; 125 = VM/harness error.
# Environment: CLASSCAP_HWSIM_CACHE (as prepare.sh), HWSIM_KERNEL, HWSIM_BUSYBOX.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CLASSCAP_HWSIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/classcap-hwsim}
[ -s "$CACHE/READY" ] || { echo "run-vm.sh: $CACHE is not prepared; run $HERE/prepare.sh" >&2; exit 125; }
KDIR=$CACHE/kernel
KV=$(cat "$CACHE/READY")
# The uncompressed vmlinux ELF (QEMU boots it via PVH: no BIOS or decompressor, about 3 s
# faster under TCG); HWSIM_KERNEL=path overrides (a bzImage works too).
KERNEL=${HWSIM_KERNEL:-$CACHE/vmlinux-$KV}
[ -s "$KERNEL" ] || KERNEL=$KDIR/boot/vmlinuz-$KV
MODROOT=$KDIR/lib/modules/$KV
BUSYBOX=${HWSIM_BUSYBOX:-/bin/busybox}
MODS=vivid,snd-aloop,snd-dummy,gpio-sim,9p,9pnet_virtio,virtio_pci
ACCEL=tcg
TIMEOUT=120 MEM=512M SHARE= LOG= QUIET=0 GPIOSIM=1
BINS=() FILES=() PARAMS=()
while getopts "b:f:m:p:s:a:t:M:l:qGh" o; do
  case $o in
    b) BINS+=("$OPTARG");; f) FILES+=("$OPTARG");; m) MODS=$OPTARG;; p) PARAMS+=("$OPTARG");;
    s) SHARE=$(cd "$OPTARG" && pwd);; a) ACCEL=$OPTARG;; t) TIMEOUT=$OPTARG;; M) MEM=$OPTARG;;
    l) LOG=$OPTARG;; q) QUIET=1;; G) GPIOSIM=0;; *) sed -n '2,28p' "$0"; exit 125;;
  esac
done
shift $((OPTIND-1)); [ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "run-vm.sh: no command given" >&2; exit 125; }
CMD="$*"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/classcap-hwsim-vm.XXXXXX"); trap 'rm -rf "$WORK"' EXIT
LOG=${LOG:-$WORK/console.log}
R=$WORK/root
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,host,etc,lib/modules/$KV}
cp "$BUSYBOX" "$R/bin/busybox"; ln -s busybox "$R/bin/sh"

# ---- modules: resolve dependency order from modules.dep ----
[ -f "$MODROOT/modules.dep" ] || depmod -b "$KDIR" "$KV"
declare -A SEEN; ORDER=()
modpath() { grep -E "(^|/)${1//[-_]/[-_]}\.ko(\.xz|\.zst)?:" "$MODROOT/modules.dep" | head -1 | cut -d: -f1; }
addmod() {  # $1 = relative path
  local p=$1 deps d i
  [ -n "${SEEN[$p]:-}" ] && return; SEEN[$p]=1
  deps=($(grep -E "^$p:" "$MODROOT/modules.dep" | cut -d: -f2))
  for ((i=${#deps[@]}-1; i>=0; i--)); do addmod "${deps[$i]}"; done
  ORDER+=("$p")
}
for m in ${MODS//,/ }; do
  p=$(modpath "$m"); [ -n "$p" ] || { echo "run-vm.sh: module $m not found in $MODROOT" >&2; exit 125; }
  addmod "$p"
done
: > "$R/etc/modorder"
for p in "${ORDER[@]}"; do
  mkdir -p "$R/lib/modules/$KV/$(dirname "$p")"; cp "$MODROOT/$p" "$R/lib/modules/$KV/$p"
  n=$(basename "$p"); n=${n%%.ko*}; args=
  for pa in "${PARAMS[@]+"${PARAMS[@]}"}"; do
    [ "${pa%% *}" = "$n" -o "${pa%% *}" = "${n//-/_}" ] && args=${pa#* }
  done
  echo "/lib/modules/$KV/$p $args" >> "$R/etc/modorder"
done

# ---- user binaries/files ----
copylibs() { ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' | while read -r l; do
  mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; done; }
for b in "${BINS[@]+"${BINS[@]}"}"; do
  cp -L "$b" "$R/bin/"; copylibs "$b"
done
for f in "${FILES[@]+"${FILES[@]}"}"; do
  mkdir -p "$R$(dirname "${f#*:}")"; cp -a "${f%%:*}" "$R${f#*:}"
  [ -f "${f%%:*}" ] && copylibs "${f%%:*}"
done
[ -d "$R/lib/x86_64-linux-gnu" ] && mkdir -p "$R/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/" 2>/dev/null
printf '%s\n' "$CMD" > "$R/etc/cmd"
echo "$GPIOSIM" > "$R/etc/gpiosim"

cat > "$R/init" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
fail() { echo "HWSIM_ERR: $*"; echo "HWSIM_EXIT=125"; printf '\175' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null; poweroff -f; }
while read -r ko args; do
  insmod $ko $args || fail "insmod $ko"
done < /etc/modorder
mount -t configfs none /sys/kernel/config 2>/dev/null
mount -t debugfs none /sys/kernel/debug 2>/dev/null
if grep -q 9p /proc/filesystems && [ -e /sys/bus/virtio/drivers/9pnet_virtio ]; then
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 host /host 2>/dev/null
fi
if [ "$(cat /etc/gpiosim)" = 1 ] && [ -d /sys/kernel/config/gpio-sim ]; then
  G=/sys/kernel/config/gpio-sim/chip0
  mkdir $G $G/bank0 && echo 2 > $G/bank0/num_lines && echo capture-box > $G/bank0/label &&
  mkdir $G/bank0/line0 $G/bank0/line1 && echo button > $G/bank0/line0/name &&
  echo led > $G/bank0/line1/name && echo 1 > $G/live || fail "gpio-sim setup"
  export HWSIM_GPIOCHIP=$(cat $G/bank0/chip_name)
  export HWSIM_GPIOSYS=/sys/devices/platform/$(cat $G/dev_name)/$HWSIM_GPIOCHIP
fi
echo "HWSIM_READY uptime=$(cut -d' ' -f1 /proc/uptime)"
cd /
sh -c "$(cat /etc/cmd)"
rc=$?
sync
echo "HWSIM_EXIT=$rc"
[ $rc -gt 127 ] && rc=127
# isa-debug-exit: qemu exits with (rc<<1)|1
printf "\\$(printf %o $rc)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initrd.gz"

case $ACCEL in
  kvm) ACC=(-enable-kvm -cpu host,-arch-capabilities);;  # plain "host" aborts here (MSR 0x10a)
  *)   ACC=(-accel tcg -cpu max);;
esac
VIRTFS=()
[ -n "$SHARE" ] && VIRTFS=(-virtfs "local,path=$SHARE,mount_tag=host,security_model=none,id=host")
T0=$(date +%s%N)
if [ $QUIET = 1 ]; then
  timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${ACC[@]}" -m "$MEM" -smp 2 -nographic -no-reboot \
    -kernel "$KERNEL" -initrd "$WORK/initrd.gz" -nic none \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 "${VIRTFS[@]+"${VIRTFS[@]}"}" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check rdinit=/init" < /dev/null > "$LOG" 2>&1
  QS=$?
else
  timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${ACC[@]}" -m "$MEM" -smp 2 -nographic -no-reboot \
    -kernel "$KERNEL" -initrd "$WORK/initrd.gz" -nic none \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 "${VIRTFS[@]+"${VIRTFS[@]}"}" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check rdinit=/init" < /dev/null 2>&1 | tee "$LOG"
  QS=${PIPESTATUS[0]}
fi
T1=$(date +%s%N)
echo "run-vm.sh: accel=$ACCEL qemu-status=$QS wall=$(( (T1 - T0) / 1000000 ))ms $(grep -ao 'HWSIM_READY.*' "$LOG" | tr -d '\r')" >&2
[ $QS = 124 -o $QS = 137 ] && { echo "run-vm.sh: TIMEOUT after ${TIMEOUT}s" >&2; exit 124; }
if [ $((QS & 1)) = 1 ]; then exit $((QS >> 1)); fi
RC=$(grep -ao 'HWSIM_EXIT=[0-9]*' "$LOG" | tail -1 | cut -d= -f2 | tr -d '\r')
exit "${RC:-125}"
