// Package stream fans the encoded media out to its readers: the recorder,
// and later live viewers. Each reader has its own bounded queue. A lossless
// reader (the recorder) is waited for, so a lesson never loses a frame to
// queueing; a lossy reader (a live viewer) drops and counts what it cannot
// take, so a stalled viewer never slows the recording.
package stream

import (
	"sync"
	"sync/atomic"

	"github.com/classcap/classcap/capture/media"
)

// Stream is the fan-out point of one box's media. Writes come from the
// capture goroutines; readers come and go.
type Stream struct {
	mu      sync.RWMutex
	readers map[*Reader]struct{}

	videoUnits   atomic.Uint64
	audioPackets atomic.Uint64
}

// New returns a stream with no readers.
func New() *Stream { return &Stream{readers: map[*Reader]struct{}{}} }

// Reader receives the stream's media on its channels.
type Reader struct {
	Video <-chan media.AccessUnit
	Audio <-chan media.AudioPacket

	name     string
	lossless bool
	video    chan media.AccessUnit
	audio    chan media.AudioPacket
	done     chan struct{}
	once     sync.Once
	s        *Stream
	dropped  atomic.Uint64
}

// Subscribe adds a reader with queues of the given sizes (in access units;
// audio gets three times as many places, Opus packets being 20 ms).
func (s *Stream) Subscribe(name string, lossless bool, queue int) *Reader {
	r := &Reader{
		name:     name,
		lossless: lossless,
		video:    make(chan media.AccessUnit, queue),
		audio:    make(chan media.AudioPacket, 3*queue),
		done:     make(chan struct{}),
		s:        s,
	}
	r.Video, r.Audio = r.video, r.audio
	s.mu.Lock()
	s.readers[r] = struct{}{}
	s.mu.Unlock()
	return r
}

// Close removes the reader; writers blocked on it are released.
func (r *Reader) Close() {
	r.once.Do(func() {
		close(r.done)
		r.s.mu.Lock()
		delete(r.s.readers, r)
		r.s.mu.Unlock()
	})
}

// Dropped returns how many units and packets this reader lost.
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Name returns the reader's name.
func (r *Reader) Name() string { return r.name }

func send[T any](r *Reader, ch chan T, v T) {
	if r.lossless {
		select {
		case ch <- v:
		case <-r.done:
		}
		return
	}
	select {
	case ch <- v:
	default:
		r.dropped.Add(1)
	}
}

// WriteVideo hands an access unit to every reader. The unit is shared:
// readers must not modify it.
func (s *Stream) WriteVideo(au media.AccessUnit) {
	s.videoUnits.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for r := range s.readers {
		send(r, r.video, au)
	}
}

// WriteAudio hands an Opus packet to every reader.
func (s *Stream) WriteAudio(p media.AudioPacket) {
	s.audioPackets.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for r := range s.readers {
		send(r, r.audio, p)
	}
}

// Counts returns how many access units and audio packets went through.
func (s *Stream) Counts() (video, audio uint64) {
	return s.videoUnits.Load(), s.audioPackets.Load()
}
