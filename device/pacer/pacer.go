// Package pacer puts a capture loop to sleep until its next frame or block
// is due, as a device interrupt would wake it. The simulated and replayed
// sources wake 30 times a second for pictures and 50 times for sound, all
// day long, so what one wake-up costs matters more than anything else they
// do while nothing is recorded.
//
// On Linux a Pacer sleeps on a timerfd read through the runtime's network
// poller: the kernel wakes the loop at the deadline to the nanosecond, once.
// A Go timer costs about twice as many thread wake-ups: the poller's
// millisecond timeout wakes a little early, then once more, and every
// blocking system call on the way wakes the runtime's monitor thread. The
// timerfd is armed and drained with raw system calls, which the monitor
// does not watch. Elsewhere (or when no timerfd can be made) a Pacer is a
// plain Go timer.
package pacer

import (
	"context"
	"time"
)

// Pacer sleeps one goroutine until deadlines. It is not safe for concurrent
// use.
type Pacer struct {
	ctx   context.Context
	sys   *sysPacer // nil: Go timer
	timer *time.Timer
}

// New returns a pacer whose sleeps end early, with ctx.Err(), once ctx
// ends. Close releases it.
func New(ctx context.Context) *Pacer {
	p := &Pacer{ctx: ctx}
	if s, err := newSys(ctx); err == nil {
		p.sys = s
	} else {
		p.timer = time.NewTimer(time.Hour)
		p.timer.Stop()
	}
	return p
}

// Until returns at t, or at once when t has passed; it returns ctx.Err()
// when the context ends first.
func (p *Pacer) Until(t time.Time) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	if p.sys != nil {
		if err := p.sys.sleep(d); err == nil || p.ctx.Err() != nil {
			return p.ctx.Err()
		}
		// The timerfd failed: carry on with a Go timer.
		p.sys.close()
		p.sys = nil
		p.timer = time.NewTimer(time.Hour)
		p.timer.Stop()
		if d = time.Until(t); d <= 0 {
			return nil
		}
	}
	p.timer.Reset(d)
	select {
	case <-p.ctx.Done():
		p.timer.Stop()
		return p.ctx.Err()
	case <-p.timer.C:
		return nil
	}
}

// Close releases the pacer.
func (p *Pacer) Close() {
	if p.sys != nil {
		p.sys.close()
		p.sys = nil
	}
	if p.timer != nil {
		p.timer.Stop()
	}
}
