package sim

import (
	"sync"

	"github.com/classcap/classcap/device/led"
)

// LED is the virtual status LED: it remembers the colour it shows.
type LED struct {
	mu    sync.Mutex
	color led.Color
	sets  int
}

// Set shows c.
func (l *LED) Set(c led.Color) error {
	l.mu.Lock()
	l.color = c
	l.sets++
	l.mu.Unlock()
	return nil
}

// Color returns the colour shown now.
func (l *LED) Color() led.Color {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.color
}

var _ led.Output = (*LED)(nil)
