package durable

import (
	"os"
	"sync"
)

// Syncer fsyncs a file that is being appended to in the background, so a
// slow disk (an SD card can stall an fsync for seconds) never holds up the
// writes behind it: once written, data survives the daemon being killed,
// and once synced, a power loss. Requests made while a sync runs coalesce
// into one more sync.
type Syncer struct {
	f    *os.File
	req  chan struct{}
	done chan struct{}

	mu  sync.Mutex
	err error
}

// NewSyncer starts a background syncer of f; end it with Stop.
func NewSyncer(f *os.File) *Syncer {
	s := &Syncer{f: f, req: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *Syncer) run() {
	defer close(s.done)
	for range s.req {
		if err := s.f.Sync(); err != nil {
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
		}
	}
}

// Kick asks for a sync of everything written so far.
func (s *Syncer) Kick() {
	select {
	case s.req <- struct{}{}:
	default: // one is pending already; it will cover this write too
	}
}

// Failed returns the first error a background sync met.
func (s *Syncer) Failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop waits for the background syncs to end; the caller then syncs
// synchronously before closing the file.
func (s *Syncer) Stop() error {
	close(s.req)
	<-s.done
	return s.Failed()
}
