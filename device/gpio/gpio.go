// Package gpio drives the box's record button and status LED through the
// Linux GPIO character device (/dev/gpiochipN), for hardware.profile "auto".
//
// The rest of the code sees periph.io's pin interfaces (gpio.PinIn for the
// button, gpio.PinOut for each LED line): NewButton and NewLED work on any
// such pin, which is how the tests drive them with fake pins.
// OpenButton and OpenLED request real lines through go-gpiocdev (uAPI v2:
// edge events with kernel timestamps, bias, kernel debounce) and wrap them as
// those pins.
//
// Lines are requested as the wiring is (physical levels); active-low is
// applied here, so Edge.Pressed and the colour channels are logical: with
// ActiveLow, a low button line is pressed and a lit LED channel drives its
// line low.
package gpio

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/classcap/classcap/device/button"
	"github.com/classcap/classcap/device/led"
	"periph.io/x/conn/v3/gpio"
)

// Bias values of ButtonConfig.Bias.
const (
	BiasPullUp   = "pull-up"
	BiasPullDown = "pull-down"
	BiasNone     = "none" // bias disabled: an external resistor sets the idle level
	BiasAsIs     = ""     // leave the line's bias as it is
)

// ErrUnsupported is returned by OpenButton and OpenLED where there is no
// GPIO character device (not Linux).
var ErrUnsupported = errors.New("gpio: GPIO character device not supported on this platform")

// ButtonConfig names the button line and how it is wired.
type ButtonConfig struct {
	Chip      string // "gpiochip0", or a path such as "/dev/gpiochip4"
	Line      int    // line offset on the chip
	ActiveLow bool   // pressed pulls the line low
	Bias      string // BiasPullUp, BiasPullDown, BiasNone or BiasAsIs
	// Debounce asks the kernel to filter contact bounce (0: none). The
	// kernel reports an edge once the level has been stable this long.
	Debounce time.Duration
}

// LEDConfig names the LED lines and how they are wired.
type LEDConfig struct {
	Chip      string
	Lines     []int // one line: a one-colour LED; three lines: red, green, blue
	ActiveLow bool  // a lit LED drives its line low (common-anode wiring)
}

func checkBias(b string) error {
	switch b {
	case BiasPullUp, BiasPullDown, BiasNone, BiasAsIs:
		return nil
	}
	return fmt.Errorf("gpio: bias %q: want %q, %q or %q", b, BiasPullUp, BiasPullDown, BiasNone)
}

func checkLEDLines(n int) error {
	if n != 1 && n != 3 {
		return fmt.Errorf("gpio: LED needs 1 line (one colour) or 3 lines (red, green, blue), got %d", n)
	}
	return nil
}

// pressed maps a physical button level to the logical state.
func pressed(l gpio.Level, activeLow bool) bool {
	return bool(l) != activeLow
}

// physical maps a logical on/off to the level to drive.
func physical(on, activeLow bool) gpio.Level {
	return gpio.Level(on != activeLow)
}

// levels returns the line levels that show c on an LED of n lines (1 or 3):
// a one-colour LED is lit when any channel is on.
func levels(c led.Color, n int, activeLow bool) []gpio.Level {
	if n == 1 {
		return []gpio.Level{physical(c.R || c.G || c.B, activeLow)}
	}
	return []gpio.Level{physical(c.R, activeLow), physical(c.G, activeLow), physical(c.B, activeLow)}
}

// edgeSource is a pin that knows the level and time of the edge its last
// WaitForEdge returned (the character device's pins: the kernel's event, not
// a later Read).
type edgeSource interface {
	LastEdge() (gpio.Level, time.Time)
}

// pollEvery bounds how long Close waits for a pin whose WaitForEdge cannot be
// interrupted by Halt.
const pollEvery = 100 * time.Millisecond

// Button reports the level changes of the record button.
type Button struct {
	pin       gpio.PinIn
	activeLow bool
	edges     chan button.Edge
	done      chan struct{}
	exited    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewButton reads edges from pin, which must already be an input with both
// edges enabled. The current level is the starting state: nothing is
// reported for it.
func NewButton(pin gpio.PinIn, activeLow bool) *Button {
	b := &Button{
		pin:       pin,
		activeLow: activeLow,
		edges:     make(chan button.Edge, 16),
		done:      make(chan struct{}),
		exited:    make(chan struct{}),
	}
	last := pressed(pin.Read(), activeLow)
	go b.run(last)
	return b
}

// Edges returns the button's logical level changes (Pressed after
// active-low). It is closed by Close.
//
// With OpenButton, Edge.At is when the kernel saw the edge: the event's
// CLOCK_MONOTONIC timestamp moved onto time.Now's base, i.e. time.Now()
// minus the event's age (clock_gettime(CLOCK_MONOTONIC) - timestamp). Go's
// monotonic clock is CLOCK_MONOTONIC on Linux and At keeps its monotonic
// reading, so At.Sub and time.Since against time.Now values are exact to
// within a microsecond. With other pins At is when the edge was read.
func (b *Button) Edges() <-chan button.Edge { return b.edges }

func (b *Button) run(last bool) {
	defer close(b.exited)
	defer close(b.edges)
	src, timed := b.pin.(edgeSource)
	for {
		select {
		case <-b.done:
			return
		default:
		}
		if !b.pin.WaitForEdge(pollEvery) {
			continue
		}
		var l gpio.Level
		var at time.Time
		if timed {
			l, at = src.LastEdge()
		} else {
			l, at = b.pin.Read(), time.Now()
		}
		p := pressed(l, b.activeLow)
		if p == last {
			continue // a repeated level (a fake, or an edge lost to a slow reader)
		}
		last = p
		select {
		case b.edges <- button.Edge{Pressed: p, At: at}:
		case <-b.done:
			return
		}
	}
}

// Close stops reporting, releases the line and closes Edges.
func (b *Button) Close() error {
	b.closeOnce.Do(func() {
		close(b.done)
		if err := b.pin.Halt(); err != nil {
			b.closeErr = fmt.Errorf("gpio: close button %s: %w", b.pin, err)
		}
		<-b.exited
	})
	return b.closeErr
}

// LED is a status LED of one colour (one line) or RGB (three lines).
type LED struct {
	pins      []gpio.PinOut
	activeLow bool
	mu        sync.Mutex
}

var _ led.Output = (*LED)(nil)

// NewLED drives an LED on pins: one pin for a one-colour LED, three for red,
// green and blue. The pins must already be outputs.
func NewLED(pins []gpio.PinOut, activeLow bool) (*LED, error) {
	if err := checkLEDLines(len(pins)); err != nil {
		return nil, err
	}
	return &LED{pins: pins, activeLow: activeLow}, nil
}

// Mono reports whether the LED has a single colour.
func (l *LED) Mono() bool { return len(l.pins) == 1 }

// Set shows c (a one-colour LED is lit when any channel of c is on).
func (l *LED) Set(c led.Color) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, lv := range levels(c, len(l.pins), l.activeLow) {
		if err := l.pins[i].Out(lv); err != nil {
			return fmt.Errorf("gpio: set LED %s to %s: %w", l.pins[i], c, err)
		}
	}
	return nil
}

// Close releases the lines.
func (l *LED) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, p := range l.pins {
		if err := p.Halt(); err != nil {
			errs = append(errs, fmt.Errorf("gpio: close LED %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
