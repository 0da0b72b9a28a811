// Package systemd holds the appliance's system files: the unit files of
// classcapd and classcap-hub, the udev rules that give the box's groups the
// camera, sound and GPIO devices, and the example configurations the Debian
// packages install (scripts/deb.sh). It has no code; its tests check the
// units with systemd-analyze and the packages by unpacking them.
package systemd
