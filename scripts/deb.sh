#!/usr/bin/env bash
# Builds the Debian packages of one architecture from binaries already built:
#
#   scripts/deb.sh ARCH BINDIR OUTDIR [VERSION]
#
# ARCH is a Debian architecture (amd64, arm64, armhf); BINDIR holds classcapd,
# classcapctl and classcap-hub for it. Writes two packages into OUTDIR:
#   classcap_<version>_<arch>.deb      the box: classcapd, classcapctl, the unit,
#                                       udev rules, /etc/classcap/classcapd.toml,
#                                       the "classcap" user (video, audio, gpio)
#   classcap-hub_<version>_<arch>.deb  the hub: classcap-hub, its unit and config,
#                                       the "classcap-hub" user
# VERSION defaults to `git describe`; a leading "v" is dropped and a version
# that does not start with a digit becomes 0~g<version>. Needs dpkg-deb.
set -euo pipefail

if (($# < 3 || $# > 4)); then
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
arch=$1 bindir=$2 outdir=$3
version=${4:-$(git -C "$(dirname "$0")/.." describe --always --dirty 2>/dev/null || echo dev)}
version=${version#v}
[[ $version =~ ^[0-9] ]] || version="0~g$version"
version=${version//-/.}   # "-" would split the Debian revision off

case "$arch" in
amd64 | arm64 | armhf) ;;
*)
	echo "deb.sh: unknown architecture \"$arch\" (known: amd64, arm64, armhf)" >&2
	exit 2
	;;
esac
for b in classcapd classcapctl classcap-hub; do
	if [[ ! -x $bindir/$b ]]; then
		echo "deb.sh: $bindir/$b is missing or not executable" >&2
		exit 1
	fi
done
command -v dpkg-deb >/dev/null || {
	echo "deb.sh: dpkg-deb not found (Debian package dpkg)" >&2
	exit 1
}

src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$outdir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# control NAME DESCRIPTION: the DEBIAN/control file of a package.
control() {
	cat <<CONTROL
Package: $1
Version: $version
Architecture: $arch
Maintainer: classcap <classcap@localhost>
Section: video
Priority: optional
Depends: adduser, libc6, libstdc++6
Homepage: https://github.com/classcap/classcap
Description: $2
CONTROL
}

# --- the box ---------------------------------------------------------------
box=$work/classcap
install -d -m 0755 "$box/DEBIAN" "$box/usr/bin" "$box/usr/lib/systemd/system" \
	"$box/usr/lib/udev/rules.d" "$box/etc/classcap" "$box/usr/share/doc/classcap/examples"
install -m 0755 "$bindir/classcapd" "$bindir/classcapctl" "$box/usr/bin/"
install -m 0644 "$src/systemd/classcapd.service" "$box/usr/lib/systemd/system/"
install -m 0644 "$src/systemd/60-classcap.rules" "$box/usr/lib/udev/rules.d/"
install -m 0640 "$src/systemd/classcapd.toml" "$box/etc/classcap/classcapd.toml"
install -m 0644 "$src/systemd/classcapd.toml" "$box/usr/share/doc/classcap/examples/classcapd.toml"
control classcap "classroom capture box daemon
 classcapd records lessons from a USB camera and a microphone array into
 fragmented MP4 segments that survive power loss, with one button and a
 status LED; classcapctl talks to it." >"$box/DEBIAN/control"
echo /etc/classcap/classcapd.toml >"$box/DEBIAN/conffiles"
cat >"$box/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# classcap: create the "classcap" system user in the device groups only, let it
# read its configuration, apply the udev rules, and start the daemon.
set -e
if [ "$1" = configure ]; then
	for g in video audio gpio; do
		getent group "$g" >/dev/null || addgroup --system "$g"
	done
	if ! getent passwd classcap >/dev/null; then
		adduser --system --group --home /var/lib/classcap --no-create-home \
			--shell /usr/sbin/nologin classcap
	fi
	for g in video audio gpio; do
		adduser classcap "$g" >/dev/null
	done
	chgrp classcap /etc/classcap/classcapd.toml
	chmod 0640 /etc/classcap/classcapd.toml
	if command -v udevadm >/dev/null 2>&1 && [ -d /run/udev ]; then
		udevadm control --reload-rules || true
		udevadm trigger --subsystem-match=gpio --subsystem-match=video4linux \
			--subsystem-match=media --subsystem-match=sound || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		systemctl enable classcapd.service
		systemctl restart classcapd.service || true
	fi
fi
POSTINST
cat >"$box/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
# classcap: stop the daemon before its files go; an open lesson is closed cleanly.
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl disable --now classcapd.service || true
fi
PRERM
cat >"$box/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
# classcap: lessons in /var/lib/classcap are never deleted by the package, not
# even on purge: they leave the box only once the hub has verified them.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
POSTRM
chmod 0755 "$box/DEBIAN/postinst" "$box/DEBIAN/prerm" "$box/DEBIAN/postrm"
dpkg-deb --root-owner-group -Zxz --build "$box" "$outdir/classcap_${version}_${arch}.deb" >/dev/null

# --- the hub ---------------------------------------------------------------
hub=$work/classcap-hub
install -d -m 0755 "$hub/DEBIAN" "$hub/usr/bin" "$hub/usr/lib/systemd/system" "$hub/etc/classcap" \
	"$hub/usr/share/doc/classcap-hub/examples"
install -m 0755 "$bindir/classcap-hub" "$hub/usr/bin/"
install -m 0644 "$src/systemd/classcap-hub.service" "$hub/usr/lib/systemd/system/"
install -m 0640 "$src/systemd/classcap-hub.toml" "$hub/etc/classcap/classcap-hub.toml"
install -m 0644 "$src/systemd/classcap-hub.toml" "$hub/usr/share/doc/classcap-hub/examples/classcap-hub.toml"
control classcap-hub "classcap district hub
 classcap-hub coordinates classcap boxes over MQTT (embedded broker),
 enrolls them, ingests their uploads and serves lessons." >"$hub/DEBIAN/control"
echo /etc/classcap/classcap-hub.toml >"$hub/DEBIAN/conffiles"
cat >"$hub/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# classcap-hub: create the "classcap-hub" system user, let it read its
# configuration, and start the hub.
set -e
if [ "$1" = configure ]; then
	if ! getent passwd classcap-hub >/dev/null; then
		adduser --system --group --home /var/lib/classcap-hub --no-create-home \
			--shell /usr/sbin/nologin classcap-hub
	fi
	chgrp classcap-hub /etc/classcap/classcap-hub.toml
	chmod 0640 /etc/classcap/classcap-hub.toml
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		systemctl enable classcap-hub.service
		systemctl restart classcap-hub.service || true
	fi
fi
POSTINST
cat >"$hub/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl disable --now classcap-hub.service || true
fi
PRERM
chmod 0755 "$hub/DEBIAN/postinst" "$hub/DEBIAN/prerm"
dpkg-deb --root-owner-group -Zxz --build "$hub" "$outdir/classcap-hub_${version}_${arch}.deb" >/dev/null

echo "$outdir/classcap_${version}_${arch}.deb"
echo "$outdir/classcap-hub_${version}_${arch}.deb"
