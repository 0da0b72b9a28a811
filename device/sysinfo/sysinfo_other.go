//go:build !linux

package sysinfo

import (
	"errors"
	"time"
)

func diskUsage(string) (Disk, error) { return Disk{}, errors.New("not supported on this platform") }

// Clock reports the wall clock as unsynchronised: only Linux can tell.
func Clock() ClockState { return ClockState{Source: "unsupported platform"} }

// BootTime is not available off Linux.
func BootTime() time.Duration { return 0 }
