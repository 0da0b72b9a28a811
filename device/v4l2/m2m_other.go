//go:build !linux

package v4l2

import (
	"fmt"
	"image"
	"time"
)

// M2M is a memory-to-memory encoder; off Linux it cannot be opened.
type M2M struct{}

// OpenM2M is not supported off Linux.
func OpenM2M(cfg M2MConfig) (*M2M, error) {
	return nil, fmt.Errorf("v4l2 m2m %s: %w", cfg.Device, ErrUnsupported)
}

// ProbeM2M is not supported off Linux.
func ProbeM2M(path string) (M2MInfo, error) {
	return M2MInfo{}, fmt.Errorf("v4l2 m2m %s: %w", path, ErrUnsupported)
}

// FindEncoder finds nothing off Linux.
func FindEncoder(coded PixelFormat) (M2MInfo, error) {
	return M2MInfo{}, fmt.Errorf("%v encoder: %w (%w)", coded, ErrNoEncoder, ErrUnsupported)
}

func (m *M2M) Info() M2MInfo                                    { return M2MInfo{} }
func (m *M2M) SetControl(uint32, int32) error                   { return ErrUnsupported }
func (m *M2M) Submit(*image.YCbCr, uint64, time.Duration) error { return ErrUnsupported }
func (m *M2M) Receive(time.Duration) (Packet, bool, error)      { return Packet{}, false, ErrUnsupported }
func (m *M2M) Drain(time.Duration) ([]Packet, error)            { return nil, ErrUnsupported }
func (m *M2M) Close() error                                     { return nil }
