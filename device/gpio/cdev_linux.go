//go:build linux

package gpio

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"sync"
	"time"

	"github.com/warthog618/go-gpiocdev"
	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// consumer is the label the kernel shows for our lines (gpioinfo).
const consumer = "classcapd"

// OpenButton requests the button line as an input with both edges, the
// configured bias and kernel debounce, and reports its edges with the
// kernel's timestamps (see Edges).
func OpenButton(cfg ButtonConfig) (*Button, error) {
	if err := checkBias(cfg.Bias); err != nil {
		return nil, err
	}
	if cfg.Debounce < 0 {
		return nil, fmt.Errorf("gpio: negative debounce %v", cfg.Debounce)
	}
	p := &cdevPin{chip: cfg.Chip, offset: cfg.Line, input: true,
		events: make(chan gpiocdev.LineEvent, 64), halted: make(chan struct{})}
	opts := []gpiocdev.LineReqOption{
		gpiocdev.WithConsumer(consumer),
		gpiocdev.AsInput,
		gpiocdev.WithBothEdges,
		gpiocdev.WithMonotonicEventClock,
		gpiocdev.WithEventHandler(p.handle),
	}
	switch cfg.Bias {
	case BiasPullUp:
		opts = append(opts, gpiocdev.WithPullUp)
		p.pull = gpio.PullUp
	case BiasPullDown:
		opts = append(opts, gpiocdev.WithPullDown)
		p.pull = gpio.PullDown
	case BiasNone:
		opts = append(opts, gpiocdev.WithBiasDisabled)
		p.pull = gpio.Float
	default:
		p.pull = gpio.PullNoChange
	}
	if cfg.Debounce > 0 {
		opts = append(opts, gpiocdev.WithDebounce(cfg.Debounce))
	}
	l, err := gpiocdev.RequestLine(cfg.Chip, cfg.Line, opts...)
	if err != nil {
		return nil, requestError("button", cfg.Chip, []int{cfg.Line}, err)
	}
	p.line = l
	return NewButton(p, cfg.ActiveLow), nil
}

// OpenLED requests the LED lines as outputs, driven to "off".
func OpenLED(cfg LEDConfig) (*LED, error) {
	if err := checkLEDLines(len(cfg.Lines)); err != nil {
		return nil, err
	}
	off := 0
	if cfg.ActiveLow {
		off = 1
	}
	var pins []gpio.PinOut
	closeAll := func() {
		for _, p := range pins {
			_ = p.Halt()
		}
	}
	for _, n := range cfg.Lines {
		l, err := gpiocdev.RequestLine(cfg.Chip, n, gpiocdev.WithConsumer(consumer), gpiocdev.AsOutput(off))
		if err != nil {
			closeAll()
			return nil, requestError("LED", cfg.Chip, cfg.Lines, err)
		}
		pins = append(pins, &cdevPin{chip: cfg.Chip, offset: n, line: l, halted: make(chan struct{})})
	}
	return NewLED(pins, cfg.ActiveLow)
}

// requestError says which chip and lines failed, and spells out the common
// cause of a missing chip.
func requestError(what, chip string, lines []int, err error) error {
	name := fmt.Sprintf("%s:%s", chip, joinInts(lines))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("gpio: open %s %s: GPIO chip %q not found (gpioinfo lists the chips): %w", what, name, chip, err)
	}
	return fmt.Errorf("gpio: open %s %s: %w", what, name, err)
}

func joinInts(v []int) string {
	var b []byte
	for i, n := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(b)
}

// monoToTime converts a CLOCK_MONOTONIC reading (the kernel's edge event
// timestamp) to a time.Time. Go's monotonic clock on Linux is
// CLOCK_MONOTONIC too, so the event time is "now" moved back by the age of
// the event: t = time.Now() - (clock_gettime(CLOCK_MONOTONIC) - ts). The
// result keeps Go's monotonic reading, so t.Sub and time.Since against other
// time.Now values are exact to within the few hundred nanoseconds between
// the two clock reads; its wall-clock part is the wall time at the event
// (as of now: a later wall-clock step does not move it).
func monoToTime(ts time.Duration) time.Time {
	var mono unix.Timespec
	now := time.Now()
	if ts <= 0 || unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono) != nil {
		return now
	}
	age := time.Duration(mono.Nano()) - ts
	if age < 0 {
		age = 0
	}
	return now.Add(-age)
}

// cdevPin is one requested line of the character device as a periph pin.
// Lines are configured when requested, so In only accepts what was asked.
type cdevPin struct {
	chip   string
	offset int
	line   *gpiocdev.Line
	input  bool
	pull   gpio.Pull

	events   chan gpiocdev.LineEvent
	halted   chan struct{}
	haltOnce sync.Once
	haltErr  error

	mu       sync.Mutex
	lastLvl  gpio.Level
	lastTime time.Time
}

var _ gpio.PinIO = (*cdevPin)(nil)

// handle runs on go-gpiocdev's watcher goroutine.
func (p *cdevPin) handle(ev gpiocdev.LineEvent) {
	select {
	case p.events <- ev:
	case <-p.halted:
	}
}

func (p *cdevPin) String() string   { return p.chip + ":" + strconv.Itoa(p.offset) }
func (p *cdevPin) Name() string     { return p.String() }
func (p *cdevPin) Number() int      { return p.offset }
func (p *cdevPin) Function() string { return map[bool]string{true: "In", false: "Out"}[p.input] }

// Halt releases the line; a blocked WaitForEdge returns false.
func (p *cdevPin) Halt() error {
	p.haltOnce.Do(func() {
		close(p.halted)
		if err := p.line.Close(); err != nil {
			p.haltErr = err
		}
	})
	return p.haltErr
}

func (p *cdevPin) In(pull gpio.Pull, edge gpio.Edge) error {
	if !p.input || edge != gpio.BothEdges || (pull != gpio.PullNoChange && pull != p.pull) {
		return fmt.Errorf("gpio: %s: lines are configured when opened", p)
	}
	return nil
}

func (p *cdevPin) Read() gpio.Level {
	v, err := p.line.Value()
	return gpio.Level(err == nil && v == 1)
}

func (p *cdevPin) WaitForEdge(timeout time.Duration) bool {
	var after <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		after = t.C
	}
	select {
	case ev := <-p.events:
		p.mu.Lock()
		p.lastLvl = gpio.Level(ev.Type == gpiocdev.LineEventRisingEdge)
		p.lastTime = monoToTime(ev.Timestamp)
		p.mu.Unlock()
		return true
	case <-p.halted:
		return false
	case <-after:
		return false
	}
}

// LastEdge returns the level and kernel time of the edge the last
// WaitForEdge returned.
func (p *cdevPin) LastEdge() (gpio.Level, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastLvl, p.lastTime
}

func (p *cdevPin) Pull() gpio.Pull        { return p.pull }
func (p *cdevPin) DefaultPull() gpio.Pull { return gpio.PullNoChange }

func (p *cdevPin) Out(l gpio.Level) error {
	if p.input {
		return fmt.Errorf("gpio: %s is an input", p)
	}
	v := 0
	if l {
		v = 1
	}
	return p.line.SetValue(v)
}

func (p *cdevPin) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("gpio: %s: PWM not supported", p)
}
