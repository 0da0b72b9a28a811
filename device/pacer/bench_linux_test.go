package pacer

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkUntil sleeps to a deadline 5 ms after the last one, as a
// capture loop does; cpu-us/op is what one wake-up costs the process
// (user+system), to compare with BenchmarkGoTimer.
func BenchmarkUntil(b *testing.B) {
	p := New(context.Background())
	defer p.Close()
	due := time.Now()
	c0 := cpuTime()
	for b.Loop() {
		due = due.Add(5 * time.Millisecond)
		if err := p.Until(due); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0)
}

func BenchmarkGoTimer(b *testing.B) {
	t := time.NewTimer(time.Hour)
	due := time.Now()
	c0 := cpuTime()
	for b.Loop() {
		due = due.Add(5 * time.Millisecond)
		t.Reset(time.Until(due))
		<-t.C
	}
	reportCPU(b, c0)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, c0 time.Duration) {
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-us/op")
}
