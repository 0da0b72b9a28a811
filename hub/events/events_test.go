package events

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func dev(id string) Event { return Event{Kind: KindDevice, Device: id} }

func next(t *testing.T, s *Sub) ([]Event, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, resync, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return evs, resync
}

func TestPendingEventsInOrderOncePerThing(t *testing.T) {
	b := NewBroker()
	s := b.Subscribe(8)
	defer s.Close()
	for _, id := range []string{"a", "b", "a", "c", "b"} {
		b.Publish(dev(id))
	}
	b.Publish(Event{Kind: KindLesson, Device: "a", Lesson: "l1"})
	evs, resync := next(t, s)
	want := []Event{dev("a"), dev("b"), dev("c"), {Kind: KindLesson, Device: "a", Lesson: "l1"}}
	if resync || fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("got %v resync %v; want %v", evs, resync, want)
	}
	b.Publish(dev("a")) // taken again after Next
	if evs, _ := next(t, s); len(evs) != 1 || evs[0] != dev("a") {
		t.Fatalf("after next: %v", evs)
	}
}

// TestStalledSubscriberBlocksNoOne: a subscriber that never reads neither
// blocks the publisher nor delays another subscriber; its queue is dropped
// and it is told to fetch everything again.
func TestStalledSubscriberBlocksNoOne(t *testing.T) {
	b := NewBroker()
	stalled := b.Subscribe(4)
	defer stalled.Close()
	reader := b.Subscribe(4)
	defer reader.Close()

	got := make(chan Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			evs, _, err := reader.Next(ctx)
			if err != nil {
				return
			}
			for _, e := range evs {
				got <- e
			}
		}
	}()
	// Each event waits until the reader has it: the stalled subscriber's
	// queue fills and overflows meanwhile, and nothing waits for it.
	const n = 1000
	for i := range n {
		e := dev(fmt.Sprint(i))
		b.Publish(e)
		select {
		case g := <-got:
			if g != e {
				t.Fatalf("reader got %v, want %v", g, e)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the reader did not get event %d", i)
		}
	}
	evs, resync := next(t, stalled)
	if !resync || len(evs) != 0 {
		t.Fatalf("stalled subscriber: %d events, resync %v; want a resync alone", len(evs), resync)
	}
	if d := stalled.Dropped(); d != n {
		t.Fatalf("dropped %d, want %d", d, n)
	}
	if reader.Dropped() != 0 {
		t.Fatalf("the reader lost %d events", reader.Dropped())
	}
	// After the resync the queue works again.
	b.Publish(dev("x"))
	if evs, resync := next(t, stalled); resync || len(evs) != 1 {
		t.Fatalf("after resync: %v %v", evs, resync)
	}
}

func TestCloseAndNilBroker(t *testing.T) {
	var nb *Broker
	nb.Publish(dev("a")) // dropped
	b := NewBroker()
	s := b.Subscribe(0)
	if b.Subscribers() != 1 {
		t.Fatal("not subscribed")
	}
	s.Close()
	if b.Subscribers() != 0 {
		t.Fatal("still subscribed")
	}
	b.Publish(dev("a"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Next(ctx); err == nil {
		t.Fatal("next on a closed subscriber with an ended context")
	}
}

func TestBrokerClose(t *testing.T) {
	b := NewBroker()
	s := b.Subscribe(0)
	b.Close()
	b.Close()
	select {
	case <-s.Done():
	default:
		t.Fatal("a subscription outlived its broker")
	}
	if _, _, err := s.Next(context.Background()); err != ErrClosed {
		t.Fatalf("next after close: %v", err)
	}
	late := b.Subscribe(0)
	if _, _, err := late.Next(context.Background()); err != ErrClosed {
		t.Fatalf("next on a subscription made after close: %v", err)
	}
	late.Close()
	b.Publish(dev("a"))
}
