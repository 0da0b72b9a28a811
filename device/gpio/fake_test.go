package gpio

import (
	"errors"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// fakePin is a periph pin driven by the test: levels sent on edges become
// the pin's level as WaitForEdge takes them (as periph's gpiotest.Pin does).
type fakePin struct {
	name  string
	edges chan gpio.Level

	mu     sync.Mutex
	level  gpio.Level
	halted bool
}

var _ gpio.PinIO = (*fakePin)(nil)

func (p *fakePin) String() string   { return p.name }
func (p *fakePin) Name() string     { return p.name }
func (p *fakePin) Number() int      { return 0 }
func (p *fakePin) Function() string { return "" }

func (p *fakePin) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.halted = true
	return nil
}

func (p *fakePin) In(gpio.Pull, gpio.Edge) error { return nil }

func (p *fakePin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

func (p *fakePin) WaitForEdge(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-p.edges:
		p.mu.Lock()
		p.level = l
		p.mu.Unlock()
		return true
	case <-t.C:
		return false
	}
}

func (p *fakePin) Pull() gpio.Pull        { return gpio.PullNoChange }
func (p *fakePin) DefaultPull() gpio.Pull { return gpio.PullNoChange }

func (p *fakePin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.halted {
		return errors.New("fake pin: halted")
	}
	p.level = l
	return nil
}

func (p *fakePin) PWM(gpio.Duty, physic.Frequency) error { return errors.New("fake pin: no PWM") }

func (p *fakePin) isHalted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.halted
}
