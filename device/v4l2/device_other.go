//go:build !linux

package v4l2

import (
	"context"
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

type frameHandler func(data []byte, pts time.Duration, l frameLayout) error

func capture(_ context.Context, path string, _ Choice, _, _ time.Duration, _ *slog.Logger, _ frameHandler) error {
	return fmt.Errorf("v4l2 %s: %w", path, ErrUnsupported)
}
