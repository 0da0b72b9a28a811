package sim

import (
	"context"
	"time"

	"github.com/classcap/classcap/device/button"
)

// Button is the virtual record button: Press makes the same edges a finger
// on a real button makes, so the same debounce and tap/hold code runs.
type Button struct {
	edges chan button.Edge
}

// NewButton returns a virtual button.
func NewButton() *Button { return &Button{edges: make(chan button.Edge, 16)} }

// Edges returns the button's raw level changes.
func (b *Button) Edges() <-chan button.Edge { return b.edges }

// Press holds the button down for hold (a tap when short) and releases it;
// it returns after the release.
func (b *Button) Press(ctx context.Context, hold time.Duration) error {
	if hold <= 0 {
		hold = 150 * time.Millisecond
	}
	select {
	case b.edges <- button.Edge{Pressed: true, At: time.Now()}:
	case <-ctx.Done():
		return ctx.Err()
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	// Always release, even when the caller gave up: a button is never
	// left stuck down.
	b.edges <- button.Edge{Pressed: false, At: time.Now()}
	return ctx.Err()
}
