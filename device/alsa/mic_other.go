//go:build !(linux && (amd64 || arm64 || arm))

package alsa

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/classcap/classcap/capture/media"
)

// device is never opened on this platform.
type device struct{}

func (*device) close() error { return nil }

// New fails with ErrUnsupported on this platform.
func New(cfg Config, log *slog.Logger) (*Mic, error) {
	return nil, fmt.Errorf("alsa %s: %w", cfg.Device, ErrUnsupported)
}

// Probe fails with ErrUnsupported on this platform.
func Probe(name string) (Caps, error) {
	return Caps{}, fmt.Errorf("alsa %s: %w", name, ErrUnsupported)
}

// Run fails with ErrUnsupported on this platform.
func (m *Mic) Run(ctx context.Context, sink func(media.PCM)) error {
	return fmt.Errorf("alsa %s: %w", m.cfg.Device, ErrUnsupported)
}

// Playback is not available on this platform.
type Playback struct{}

// NewPlayback fails with ErrUnsupported on this platform.
func NewPlayback(cfg Config, log *slog.Logger) (*Playback, error) {
	return nil, fmt.Errorf("alsa %s: %w", cfg.Device, ErrUnsupported)
}

// Params returns the zero Params.
func (p *Playback) Params() Params { return Params{} }

// Underruns returns 0.
func (p *Playback) Underruns() uint64 { return 0 }

// Write fails with ErrUnsupported.
func (p *Playback) Write(ctx context.Context, pcm media.PCM) error { return ErrUnsupported }

// Close does nothing.
func (p *Playback) Close() error { return nil }
