// Package pace limits a byte rate: a token bucket shared by every transfer
// that takes from it, so a bandwidth cap holds however many run at once.
package pace

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Limiter lets through at most Rate bytes per second on average, with
// bursts of up to Burst bytes. A nil *Limiter lets everything through.
type Limiter struct {
	mu    sync.Mutex
	rate  float64 // bytes per second
	burst float64
	avail float64
	last  time.Time
	now   func() time.Time
}

// New returns a limiter of bytesPerSecond (> 0) with a burst of a tenth of
// a second's worth (at least 16 KiB).
func New(bytesPerSecond int64) *Limiter {
	if bytesPerSecond <= 0 {
		panic(fmt.Sprintf("pace: rate %d", bytesPerSecond))
	}
	burst := max(float64(bytesPerSecond)/10, 16<<10)
	return &Limiter{rate: float64(bytesPerSecond), burst: burst, avail: burst, now: time.Now}
}

// WaitN blocks until n bytes may pass, or ctx ends.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() {
		l.avail = min(l.burst, l.avail+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	l.avail -= float64(n) // may go negative: later callers wait for it
	wait := time.Duration(0)
	if l.avail < 0 {
		wait = time.Duration(-l.avail / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if wait == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
