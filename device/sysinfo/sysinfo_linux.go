//go:build linux

package sysinfo

import (
	"time"

	"golang.org/x/sys/unix"
)

func diskUsage(path string) (Disk, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Disk{}, err
	}
	return Disk{
		FreeBytes:  st.Bavail * uint64(st.Bsize),
		TotalBytes: st.Blocks * uint64(st.Bsize),
	}, nil
}

// Clock reports whether the kernel's clock is synchronised (adjtimex: the
// STA_UNSYNC flag is clear, as chrony, ntpd and systemd-timesyncd leave it),
// and the wall time is plausible.
func Clock() ClockState {
	if time.Now().Before(minPlausibleWall) {
		return ClockState{Synced: false, Source: "wall time before 2024"}
	}
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return ClockState{Synced: false, Source: "adjtimex: " + err.Error()}
	}
	if state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0 {
		return ClockState{Synced: false, Source: "kernel clock not synchronised"}
	}
	return ClockState{Synced: true, Source: "kernel clock synchronised"}
}

// BootTime returns the time since boot, including suspend (CLOCK_BOOTTIME).
// Within one boot it measures how long the daemon was down.
func BootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
