// Package led shows the box's state on its status LED. A Pattern is a
// repeating list of steps; each pattern has an RGB form and a one-colour form
// (for boxes wired with a single LED). A Driver plays the current pattern on
// an Output in its own goroutine; the daemon only ever says which pattern.
package led

import (
	"context"
	"sync"
	"time"
)

// Color is an RGB LED colour with each channel on or off.
type Color struct{ R, G, B bool }

// The colours an RGB LED with on/off channels can show.
var (
	Off    = Color{}
	Red    = Color{R: true}
	Green  = Color{G: true}
	Blue   = Color{B: true}
	Yellow = Color{R: true, G: true}
	Cyan   = Color{G: true, B: true}
	Purple = Color{R: true, B: true}
	White  = Color{R: true, G: true, B: true}
	// On is the lit state of a one-colour LED.
	On = Color{R: true}
)

func (c Color) String() string {
	switch c {
	case Off:
		return "off"
	case Red:
		return "red"
	case Green:
		return "green"
	case Blue:
		return "blue"
	case Yellow:
		return "yellow"
	case Cyan:
		return "cyan"
	case Purple:
		return "purple"
	}
	return "white"
}

// Step is one part of a pattern: a colour shown for a time.
type Step struct {
	Color Color
	For   time.Duration
}

// Pattern is a named, repeating LED animation. A pattern whose step list has
// one entry is solid.
type Pattern struct {
	Name string
	RGB  []Step
	Mono []Step
}

func solid(c Color) []Step { return []Step{{c, 0}} }

func blink(c Color, hz float64) []Step {
	half := time.Duration(float64(time.Second) / hz / 2)
	return []Step{{c, half}, {Off, half}}
}

// The patterns, documented in docs/hardware.md.
var (
	Idle      = Pattern{Name: "idle", RGB: solid(Green), Mono: solid(Off)}
	Recording = Pattern{Name: "recording", RGB: solid(Red), Mono: solid(On)}
	Stopping  = Pattern{Name: "stopping", RGB: blink(Red, 4), Mono: blink(On, 4)}
	Error     = Pattern{Name: "error", RGB: blink(Yellow, 1), Mono: []Step{
		{On, 150 * time.Millisecond}, {Off, 150 * time.Millisecond},
		{On, 150 * time.Millisecond}, {Off, 550 * time.Millisecond}}}
	Pending  = Pattern{Name: "remote-start-pending", RGB: blink(Red, 2), Mono: blink(On, 2)}
	Identify = Pattern{Name: "identify", RGB: blink(White, 3), Mono: blink(On, 3)}
	// EnrollRefused: the hub refused the box's claim (expired, used up,
	// revoked, unknown) or its certificate; shown while the box is idle.
	EnrollRefused = Pattern{Name: "enroll-refused", RGB: []Step{
		{Purple, 200 * time.Millisecond}, {Off, 200 * time.Millisecond},
		{Purple, 200 * time.Millisecond}, {Off, 1400 * time.Millisecond}}, Mono: []Step{
		{On, 100 * time.Millisecond}, {Off, 100 * time.Millisecond},
		{On, 100 * time.Millisecond}, {Off, 100 * time.Millisecond},
		{On, 100 * time.Millisecond}, {Off, 1500 * time.Millisecond}}}
	Dark = Pattern{Name: "off", RGB: solid(Off), Mono: solid(Off)}
	// WatchedRecording: recording while someone watches live; the "on air"
	// light winks blue (one-colour: off) once a second.
	WatchedRecording = Pattern{Name: "watched-recording", RGB: []Step{
		{Red, 700 * time.Millisecond}, {Blue, 300 * time.Millisecond}}, Mono: []Step{
		{On, 850 * time.Millisecond}, {Off, 150 * time.Millisecond}}}
	// Watched: someone watches live while nothing records (live.allow =
	// "always"): slow blue blink (one-colour: a short flash once a second).
	Watched = Pattern{Name: "watched", RGB: blink(Blue, 1), Mono: []Step{
		{On, 150 * time.Millisecond}, {Off, 850 * time.Millisecond}}}
)

// Output is the physical (or simulated) LED.
type Output interface {
	Set(Color) error
}

// Driver plays patterns on an Output.
type Driver struct {
	out  Output
	mono bool

	mu      sync.Mutex
	pattern Pattern
	color   Color
	changed chan struct{}
}

// NewDriver returns a driver for out; mono selects the one-colour forms.
func NewDriver(out Output, mono bool) *Driver {
	return &Driver{out: out, mono: mono, pattern: Dark, changed: make(chan struct{}, 1)}
}

// Show switches to pattern p (a no-op when it is already showing).
func (d *Driver) Show(p Pattern) {
	d.mu.Lock()
	same := d.pattern.Name == p.Name
	d.pattern = p
	d.mu.Unlock()
	if same {
		return
	}
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// Replace switches from pattern from to pattern to only if from is showing,
// in one step, so a status shown only while idle never hides a state the
// recorder set meanwhile. It reports whether it switched.
func (d *Driver) Replace(from, to Pattern) bool {
	d.mu.Lock()
	ok := d.pattern.Name == from.Name && from.Name != to.Name
	if ok {
		d.pattern = to
	}
	d.mu.Unlock()
	if ok {
		select {
		case d.changed <- struct{}{}:
		default:
		}
	}
	return ok
}

// Current returns the pattern being played and the colour lit right now.
func (d *Driver) Current() (Pattern, Color) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pattern, d.color
}

func (d *Driver) steps() []Step {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mono {
		return d.pattern.Mono
	}
	return d.pattern.RGB
}

func (d *Driver) set(c Color) error {
	d.mu.Lock()
	d.color = c
	d.mu.Unlock()
	return d.out.Set(c)
}

// Run plays patterns until ctx ends, then turns the LED off. An Output error
// is returned (a vanished GPIO chip); the caller decides whether to retry.
func (d *Driver) Run(ctx context.Context) error {
	defer d.out.Set(Off)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		steps := d.steps()
	play:
		for i := 0; ; i = (i + 1) % len(steps) {
			if err := d.set(steps[i].Color); err != nil {
				return err
			}
			wait := steps[i].For
			if len(steps) == 1 || wait <= 0 {
				wait = time.Hour
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-d.changed:
				timer.Stop()
				break play
			case <-timer.C:
			}
		}
	}
}
