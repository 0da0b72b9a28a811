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
