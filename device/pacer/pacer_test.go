package pacer

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntilReturnsNotBeforeDeadline(t *testing.T) {
	p := New(context.Background())
	defer p.Close()
	start := time.Now()
	for i := 1; i <= 20; i++ {
		due := start.Add(time.Duration(i) * 2 * time.Millisecond)
		if err := p.Until(due); err != nil {
			t.Fatalf("sleep %d: %v", i, err)
		}
		if now := time.Now(); now.Before(due) {
			t.Fatalf("sleep %d returned %v before its deadline", i, due.Sub(now))
		}
	}
}

func TestUntilPastDeadline(t *testing.T) {
	p := New(context.Background())
	defer p.Close()
	if err := p.Until(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := p.Until(time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func TestCancelEndsSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := New(ctx)
	defer p.Close()
	done := make(chan error, 1)
	go func() { done <- p.Until(time.Now().Add(time.Hour)) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not end an hour-long sleep")
	}
	// Every later sleep ends at once.
	if err := p.Until(time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: got %v, want context.Canceled", err)
	}
}

func TestUsesTimerfd(t *testing.T) {
	p := New(context.Background())
	defer p.Close()
	if p.sys == nil && timerfdExpected {
		t.Fatal("no timerfd on Linux")
	}
}
