package segment

import (
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
)

// SegmentStart tells where each segment begins as soon as the writer has
// decided it, and it is where the closed segment starts; Decided never
// runs past a start not yet told. With pictures throughout, and with the
// camera away for a while (segments cut on the sound).
func TestSegmentStartsAreToldInTime(t *testing.T) {
	aus, vp := mediatest.H264(t, 3, 30, 15)
	for _, gap := range []bool{false, true} {
		dir := t.TempDir()
		var infos []Info
		w, err := New(Config{Dir: dir, SegmentDuration: time.Second, Video: vp, AudioChannels: 1,
			OnSegment: func(i Info) error { infos = append(infos, i); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		told := map[int]time.Duration{}
		var decided time.Duration
		look := func() {
			t.Helper()
			for n := w.FirstSegment(); n <= w.Segment()+1; n++ {
				s, ok := w.SegmentStart(n)
				if _, seen := told[n]; ok && !seen {
					if s < decided {
						t.Fatalf("gap %v: segment %d told to start at %v, after media up to %v was decided", gap, n, s, decided)
					}
					told[n] = s
				}
			}
			if d := w.Decided(); d < decided {
				t.Fatalf("gap %v: Decided went back from %v to %v", gap, decided, d)
			} else {
				decided = d
			}
		}
		a := time.Duration(0)
		audio := func(to time.Duration) {
			for ; a < to; a += 20 * time.Millisecond {
				if err := w.WriteAudio(media.AudioPacket{Data: mediatest.SilentOpus, PTS: a, Samples: 960, Channels: 1}); err != nil {
					t.Fatal(err)
				}
				look()
			}
		}
		video := func(base time.Duration) {
			for _, au := range aus {
				au.PTS += base
				audio(au.PTS + 100*time.Millisecond) // sound comes ahead of the pictures
				if err := w.WriteVideo(au); err != nil {
					t.Fatal(err)
				}
				look()
			}
		}
		video(0)
		if gap {
			if err := w.VideoGap(); err != nil {
				t.Fatal(err)
			}
			look()
			audio(7 * time.Second)
		}
		video(7 * time.Second)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if len(infos) < 6 {
			t.Fatalf("gap %v: %d segments", gap, len(infos))
		}
		for _, in := range infos {
			if s, ok := told[in.Number]; !ok || s != in.Start {
				t.Errorf("gap %v: segment %d starts at %v; told %v (%v)", gap, in.Number, in.Start, s, ok)
			}
		}
	}
}
