package segment

import (
	"os"
	"sync"
)

// syncer fsyncs an open segment file in the background, so a slow disk
// (an SD card can stall an fsync for seconds) never holds up the writes
// behind it: once written, a fragment survives the daemon being killed, and
// once synced, a power loss. Requests made while a sync runs coalesce into
// one more sync.
type syncer struct {
	f    *os.File
	req  chan struct{}
	done chan struct{}

	mu  sync.Mutex
	err error
}

func newSyncer(f *os.File) *syncer {
	s := &syncer{f: f, req: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *syncer) run() {
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

// kick asks for a sync of everything written so far.
func (s *syncer) kick() {
	select {
	case s.req <- struct{}{}:
	default: // one is pending already; it will cover this write too
	}
}

// failed returns the first error a background sync met.
func (s *syncer) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// stop waits for the background syncs to end; the caller then syncs
// synchronously before closing the file.
func (s *syncer) stop() error {
	close(s.req)
	<-s.done
	return s.failed()
}
