// Package sysinfo reads the host facts the box reports and acts on: free disk
// space, whether the wall clock is synchronised (a Pi boots at 1970 with no
// RTC), the boot id and boot-time clock (to measure gaps across a daemon
// restart), and the SoC temperature.
package sysinfo

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// minPlausibleWall is a wall time no synced clock can be before; a Pi that
// has not synced yet reports 1970 or its last fake-hwclock save.
var minPlausibleWall = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// WallPlausible reports whether the wall clock could be right: not before
// 2024. A Pi without a clock battery boots at 1970 (or, with fake-hwclock,
// at its last shutdown: plausible, if stale) until it is synced.
func WallPlausible() bool { return !time.Now().Before(minPlausibleWall) }

// ClockState says whether wall time can be trusted.
type ClockState struct {
	Synced bool   // the kernel says NTP discipline is active, and the time is plausible
	Source string // how it was decided
}

// BootID returns the kernel's random id of the current boot.
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Temperature returns the SoC temperature in degrees Celsius from the first
// thermal zone, and false when the host has none.
func Temperature() (float64, bool) {
	b, err := os.ReadFile("/sys/class/thermal/thermal_zone0/temp")
	if err != nil {
		return 0, false
	}
	milli, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return float64(milli) / 1000, true
}

// Disk is the space of the file system holding a path.
type Disk struct {
	FreeBytes  uint64 // available to an unprivileged writer
	TotalBytes uint64
}

// DiskUsage reports the file system space at path.
func DiskUsage(path string) (Disk, error) {
	d, err := diskUsage(path)
	if err != nil {
		return Disk{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	return d, nil
}
