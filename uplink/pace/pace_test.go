package pace

import (
	"context"
	"testing"
	"time"
)

func TestWaitsForTheRate(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(100 << 10) // burst 16 KiB
	l.now = func() time.Time { return now }
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.WaitN(ctx, 16<<10); err != nil {
		t.Fatalf("burst: %v", err)
	}
	// Over budget: the next 100 KiB must wait about a second; a cancelled
	// context ends the wait.
	cancel()
	if err := l.WaitN(ctx, 100<<10); err == nil {
		t.Fatal("WaitN over budget with a cancelled context returned nil")
	}
	// A second later the debt is paid.
	now = now.Add(time.Second + 10*time.Millisecond)
	if err := l.WaitN(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	var nilLimiter *Limiter
	if err := nilLimiter.WaitN(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
}
