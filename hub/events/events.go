// Package events tells the hub's listeners (the API's event stream) that
// something a person sees has changed: a box's record (state, online,
// registration) or a lesson (reported, stopped, a file uploaded and
// verified). The parts that learn of a change (the registry when a write
// commits, the ingest when a file is verified) publish to one Broker; each
// subscriber has a bounded queue of pending changes, one entry per thing
// changed, so a burst about one box costs one entry and a subscriber that
// stops reading never blocks a publisher: when its queue is full it is
// emptied and the subscriber is told to fetch everything again.
package events

import (
	"context"
	"errors"
	"sync"
)

// Kinds of Event.
const (
	KindDevice = "device" // a box's record: its state, online, added
	KindLesson = "lesson" // a lesson's record or what the hub holds of it
)

// Event names what changed, not how: a subscriber reads the current value.
type Event struct {
	Kind   string
	Device string
	Lesson string // KindLesson: the lesson id
}

// ErrClosed is returned by Next once the broker is closed.
var ErrClosed = errors.New("events: broker closed")

// DefaultQueue is a subscriber's queue length when Subscribe is given 0.
const DefaultQueue = 256

// Broker fans events out to subscribers. The zero value is not usable:
// make one with NewBroker. Its methods are safe for concurrent use; a nil
// *Broker drops what is published.
type Broker struct {
	mu     sync.Mutex
	subs   map[*Sub]struct{}
	closed bool
}

// NewBroker returns a broker without subscribers.
func NewBroker() *Broker { return &Broker{subs: map[*Sub]struct{}{}} }

// Publish queues e for every subscriber. It never waits for one.
func (b *Broker) Publish(e Event) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.put(e)
	}
}

// Close ends every subscription (their Done channels close), and those
// made later: the hub is stopping.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for s := range b.subs {
		close(s.done)
		delete(b.subs, s)
	}
}

// Subscribers returns how many subscribers there are.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Subscribe adds a subscriber whose queue holds at most queue distinct
// events (DefaultQueue when queue <= 0). Close it when done.
func (b *Broker) Subscribe(queue int) *Sub {
	if queue <= 0 {
		queue = DefaultQueue
	}
	s := &Sub{b: b, max: queue, set: map[Event]struct{}{}, ready: make(chan struct{}, 1), done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.done)
	} else {
		b.subs[s] = struct{}{}
	}
	return s
}

// Sub is one subscriber's queue.
type Sub struct {
	b     *Broker
	max   int
	ready chan struct{} // a token when the queue has something or overflowed
	done  chan struct{} // closed when the broker closes

	mu       sync.Mutex
	pending  []Event // in the order first published since the last Next
	set      map[Event]struct{}
	overflow bool // events were dropped since the last Next
	dropped  int  // events dropped over the subscription's life
}

func (s *Sub) put(e Event) {
	s.mu.Lock()
	switch {
	case s.overflow:
		s.dropped++ // the subscriber fetches everything anyway
	default:
		if _, ok := s.set[e]; ok {
			break // already pending: it reads the latest value
		}
		if len(s.pending) == s.max {
			s.dropped += len(s.pending) + 1
			s.pending, s.overflow = nil, true
			clear(s.set)
			break
		}
		s.pending = append(s.pending, e)
		s.set[e] = struct{}{}
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Done returns a channel closed when the broker is closed: the subscriber
// is to end.
func (s *Sub) Done() <-chan struct{} { return s.done }

// Ready returns a channel that receives when something may be pending:
// then call Take.
func (s *Sub) Ready() <-chan struct{} { return s.ready }

// Take returns the pending events in order, or resync true when some were
// dropped (the subscriber missed changes and must fetch everything again),
// and empties the queue.
func (s *Sub) Take() (evs []Event, resync bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs, resync = s.pending, s.overflow
	s.pending, s.overflow = nil, false
	clear(s.set)
	return evs, resync
}

// Next waits until something is pending or ctx ends, and takes it.
func (s *Sub) Next(ctx context.Context) (evs []Event, resync bool, err error) {
	for {
		if evs, resync = s.Take(); resync || len(evs) > 0 {
			return evs, resync, nil
		}
		select {
		case <-s.ready:
		case <-s.done:
			return nil, false, ErrClosed
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Dropped returns how many events were dropped for this subscriber.
func (s *Sub) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close removes the subscriber.
func (s *Sub) Close() {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
}
