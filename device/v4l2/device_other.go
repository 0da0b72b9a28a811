//go:build !linux

package v4l2

import (
	"fmt"
	"log/slog"
	"time"
)

// Probe is not supported off Linux.
func Probe(path string) (DeviceInfo, error) {
	return DeviceInfo{}, fmt.Errorf("v4l2 %s: %w", path, ErrUnsupported)
}

// List is not supported off Linux.
func List() ([]DeviceInfo, error) { return nil, ErrUnsupported }

func epochMonotonic(time.Time) (time.Duration, error) { return 0, ErrUnsupported }

func openSource(path string, _ Choice, _ *slog.Logger) (frameSource, error) {
	return nil, fmt.Errorf("v4l2 %s: %w", path, ErrUnsupported)
}
