package live

import (
	"sync"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/stream"
)

// Output is where the capture pipeline writes its media (the stream).
type Output interface {
	WriteVideo(media.AccessUnit)
	WriteAudio(media.AudioPacket)
}

// GOP bounds: a group of pictures longer than this is not kept (a viewer
// then waits for the camera's next keyframe).
const (
	maxGOPUnits = 1800     // a minute at 30 fps
	maxGOPBytes = 16 << 20 // 16 MB
)

// Tap sits between the pipeline and the stream and keeps the access units
// since the last keyframe, so that a viewer of a camera whose encoder
// cannot be asked for a keyframe (H.264 passed through) starts at once
// from the last one. Writes go on to the stream unchanged; the tap costs
// the recording a lock and an append per picture.
type Tap struct {
	next Output

	mu    sync.Mutex
	gop   []media.AccessUnit
	bytes int
}

// NewTap returns a tap writing into next.
func NewTap(next Output) *Tap { return &Tap{next: next} }

// WriteVideo keeps au in the current group of pictures and writes it on.
func (t *Tap) WriteVideo(au media.AccessUnit) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if au.IDR {
		clear(t.gop)
		t.gop, t.bytes = t.gop[:0], 0
	}
	if len(t.gop) > 0 || au.IDR {
		n := 0
		for _, nal := range au.NALUs {
			n += len(nal)
		}
		if len(t.gop) >= maxGOPUnits || t.bytes+n > maxGOPBytes {
			clear(t.gop)
			t.gop, t.bytes = t.gop[:0], 0 // too long: wait for the next keyframe
		} else {
			t.gop, t.bytes = append(t.gop, au), t.bytes+n
		}
	}
	t.next.WriteVideo(au) // under the lock, so that join sees no unit twice or never
}

// WriteAudio writes p on.
func (t *Tap) WriteAudio(p media.AudioPacket) { t.next.WriteAudio(p) }

// join subscribes a reader to src and returns the group of pictures written
// before it: together they hold every access unit since the last keyframe,
// each once.
func (t *Tap) join(src Source, name string, queue int) ([]media.AccessUnit, *stream.Reader) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]media.AccessUnit(nil), t.gop...), src.Subscribe(name, false, queue)
}
