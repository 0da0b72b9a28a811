// Package button turns the raw edges of the record button into what a
// teacher means: a tap (press and release within the hold time) or a hold
// (pressed for at least the hold time; reported as soon as it is reached,
// while the finger is still down). Contact bounce is filtered by requiring a
// level to stay stable for the debounce time.
package button

import (
	"context"
	"time"
)

// Defaults for a wall-mounted arcade-style push button.
const (
	DefaultDebounce = 30 * time.Millisecond
	DefaultHold     = 2 * time.Second
)

// Edge is one raw level change of the button line.
type Edge struct {
	Pressed bool
	At      time.Time
}

// Kind is what a gesture means.
type Kind int

// The gestures.
const (
	Tap Kind = iota + 1
	Hold
)

func (k Kind) String() string {
	switch k {
	case Tap:
		return "tap"
	case Hold:
		return "hold"
	}
	return "unknown"
}

// Event is one recognised gesture.
type Event struct {
	Kind Kind
	At   time.Time     // when the gesture was recognised
	Held time.Duration // how long the button was down (at recognition)
}

// Classifier recognises taps and holds. Feed and Expire are pure: they take
// the time from their arguments, so tests drive them without a clock; Run
// wires them to a channel of edges and real timers.
type Classifier struct {
	Debounce time.Duration
	HoldTime time.Duration

	rawPressed  bool
	rawAt       time.Time
	pending     bool // a raw level change waits for the debounce time
	pressed     bool // the debounced level
	pressedAt   time.Time
	holdEmitted bool
}

// NewClassifier returns a classifier with the given times (zero: defaults).
func NewClassifier(debounce, hold time.Duration) *Classifier {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if hold <= 0 {
		hold = DefaultHold
	}
	return &Classifier{Debounce: debounce, HoldTime: hold}
}

// Feed takes one raw edge. It first expires everything due before the edge
// and returns those gestures; the edge itself only counts once its level has
// been stable for the debounce time (see Expire).
func (c *Classifier) Feed(e Edge) []Event {
	var out []Event
	for {
		d, ok := c.Deadline()
		if !ok || d.After(e.At) {
			break
		}
		out = append(out, c.Expire(d)...)
	}
	if e.Pressed == c.rawPressed && !c.pending {
		return out
	}
	c.rawPressed = e.Pressed
	c.rawAt = e.At
	c.pending = c.rawPressed != c.pressed
	return out
}

// Deadline is the next time Expire has work to do, and false when nothing is
// due until the next edge.
func (c *Classifier) Deadline() (time.Time, bool) {
	if c.pending {
		return c.rawAt.Add(c.Debounce), true
	}
	if c.pressed && !c.holdEmitted {
		return c.pressedAt.Add(c.HoldTime), true
	}
	return time.Time{}, false
}

// Expire advances the classifier to now and returns the gestures recognised.
func (c *Classifier) Expire(now time.Time) []Event {
	var out []Event
	if c.pending && !now.Before(c.rawAt.Add(c.Debounce)) {
		c.pending = false
		c.pressed = c.rawPressed
		if c.pressed {
			c.pressedAt = c.rawAt
			c.holdEmitted = false
		} else if !c.holdEmitted {
			out = append(out, Event{Kind: Tap, At: now, Held: c.rawAt.Sub(c.pressedAt)})
		}
	}
	if c.pressed && !c.holdEmitted && !now.Before(c.pressedAt.Add(c.HoldTime)) {
		c.holdEmitted = true
		out = append(out, Event{Kind: Hold, At: now, Held: now.Sub(c.pressedAt)})
	}
	return out
}

// Run classifies edges until ctx ends or edges is closed, calling emit for
// every gesture from Run's goroutine.
func (c *Classifier) Run(ctx context.Context, edges <-chan Edge, emit func(Event)) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if d, ok := c.Deadline(); ok {
			timer.Reset(time.Until(d))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-edges:
			if !ok {
				return nil
			}
			for _, ev := range c.Feed(e) {
				emit(ev)
			}
		case <-timer.C:
		}
		timer.Stop()
		for _, ev := range c.Expire(time.Now()) {
			emit(ev)
		}
	}
}
