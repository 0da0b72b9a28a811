package pipeline

import (
	"testing"
	"time"
)

func TestFrameGrid(t *testing.T) {
	ms := time.Millisecond
	g := newFrameGrid(15) // 66.67 ms slots
	fps := 15.0
	period := time.Duration(float64(time.Second) / fps)
	for _, c := range []struct {
		in   time.Duration
		want time.Duration
		keep bool
	}{
		{0, 0, true},
		{70 * ms, period, true},      // late: rounded to its slot
		{90 * ms, 0, false},          // the same slot again: dropped
		{130 * ms, 2 * period, true}, // early: rounded to its slot
		{400 * ms, 6 * period, true}, // a missing slot is a gap, not a shift
		{1000*ms + 10*ms, 15 * period, true},
	} {
		got, keep := g.place(c.in)
		if keep != c.keep || keep && got != c.want {
			t.Errorf("place(%v) = %v, %v; want %v, %v", c.in, got, keep, c.want, c.keep)
		}
	}
	// Timestamps stay strictly increasing in whole frames whatever the jitter.
	g = newFrameGrid(30)
	var last time.Duration = -1
	for i := range 3000 {
		jitter := time.Duration((i*7919)%41-20) * ms // -20..20 ms
		pts, keep := g.place(time.Duration(i)*time.Second/30 + jitter)
		if !keep {
			continue
		}
		if pts <= last || pts-last < time.Second/30-time.Microsecond && last >= 0 {
			t.Fatalf("frame %d: pts %v after %v", i, pts, last)
		}
		last = pts
	}
	// No grid without a frame rate.
	if pts, keep := newFrameGrid(0).place(123 * ms); !keep || pts != 123*ms {
		t.Errorf("no grid: %v, %v", pts, keep)
	}
}
