package lesson

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/capture/segment"
)

type fakeClock struct{ boot float64 }

func (c *fakeClock) now() Clock { return Clock{BootID: "boot-a", BootTime: c.boot} }

func feed(t *testing.T, r *Recording, aus []media.AccessUnit, base time.Duration) {
	t.Helper()
	feedLagging(t, r, aus, base, 0)
}

// feedLagging feeds pictures and sound, the sound reaching the recording
// lag after the pictures of the same moment (as from a capture pipeline
// whose audio path is slower).
func feedLagging(t *testing.T, r *Recording, aus []media.AccessUnit, base, lag time.Duration) {
	t.Helper()
	a := time.Duration(0)
	for _, au := range aus {
		for a+20*time.Millisecond <= au.PTS+33*time.Millisecond-lag {
			if err := r.WriteAudio(media.AudioPacket{Data: mediatest.SilentOpus, PTS: base + a, Samples: 960, Channels: 1}); err != nil {
				t.Fatal(err)
			}
			a += 20 * time.Millisecond
		}
		au.PTS += base
		if err := r.WriteVideo(au); err != nil {
			t.Fatal(err)
		}
	}
}

func newStore(t *testing.T) *Store {
	s, err := NewStore(filepath.Join(t.TempDir(), "lessons"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRecordAndClose(t *testing.T) {
	aus, vp := mediatest.H264(t, 6, 30, 30)
	s := newStore(t)
	clk := &fakeClock{boot: 100}
	var hooked []Meta
	var hookMu sync.Mutex
	id := NewID(1)
	r, err := s.Create(Meta{ID: id, Number: 1, Device: "room-101", Visibility: VisibilityCoaching, StartedBy: "button"},
		WriterConfig{SegmentDuration: 2 * time.Second, Video: vp, AudioChannels: 1, Now: clk.now,
			OnSegment: func(m Meta, s Segment) { hookMu.Lock(); hooked = append(hooked, m); hookMu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	// While recording, the playlist is an EVENT playlist.
	pl, _ := os.ReadFile(filepath.Join(s.Dir(id), PlaylistName))
	if !bytes.Contains(pl, []byte("#EXT-X-PLAYLIST-TYPE:EVENT")) || bytes.Contains(pl, []byte("ENDLIST")) {
		t.Fatalf("open playlist:\n%s", pl)
	}
	feed(t, r, aus, 0)
	m, err := r.Close(Stop{By: "button", Reason: "tap"})
	if err != nil {
		t.Fatal(err)
	}
	// The hook may skip records a later one replaced, never the last.
	if m.State != StateComplete || len(m.Segments) != 3 || len(hooked) == 0 || len(hooked[len(hooked)-1].Segments) != 3 {
		t.Fatalf("state %s, %d segments, %d hooked", m.State, len(m.Segments), len(hooked))
	}
	if m.Duration < 5.9 || m.Duration > 6.1 {
		t.Fatalf("duration %.3f", m.Duration)
	}
	loaded, err := s.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Visibility != VisibilityCoaching || loaded.StartedBy != "button" || loaded.Stop.Reason != "tap" {
		t.Fatalf("loaded %+v", loaded)
	}
	pl, _ = os.ReadFile(filepath.Join(s.Dir(id), PlaylistName))
	for _, want := range []string{"#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST", "#EXT-X-MAP:URI=\"init.mp4\"", "seg_000003.m4s"} {
		if !bytes.Contains(pl, []byte(want)) {
			t.Fatalf("playlist lacks %s:\n%s", want, pl)
		}
	}
	mediatest.DecodeClean(t, filepath.Join(s.Dir(id), PlaylistName))
	if v, a := mediatest.Durations(t, filepath.Join(s.Dir(id), PlaylistName)); v < 5.9 || a < 5.9 || v-a > 0.1 || a-v > 0.1 {
		t.Fatalf("playlist durations video %.3f audio %.3f", v, a)
	}
	var out bytes.Buffer
	if err := s.Export(id, &out); err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(t.TempDir(), "out.mp4")
	os.WriteFile(exp, out.Bytes(), 0o644)
	mediatest.DecodeClean(t, exp)
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("list %v %v", list, err)
	}
}

func TestRecoverAndResume(t *testing.T) {
	aus, vp := mediatest.H264(t, 5, 30, 30)
	s := newStore(t)
	clk := &fakeClock{boot: 100}
	id := NewID(7)
	cfg := WriterConfig{SegmentDuration: 2 * time.Second, Video: vp, AudioChannels: 1, Now: clk.now}
	r, err := s.Create(Meta{ID: id, Number: 7, Device: "room-101", Visibility: VisibilityPrivate, StartedBy: "button"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, r, aus, 0)
	// A crash: the writer is gone with a .part segment on disk and
	// lesson.json listing only the closed ones.
	crash(r)
	parts, _ := filepath.Glob(filepath.Join(s.Dir(id), "*"+segment.PartSuffix))
	if len(parts) != 1 {
		t.Fatalf("want one open segment, have %v", parts)
	}
	clk.boot = 100 + 5 + 3 // restarted 3 s after the last media
	rec, err := s.Recover(id, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Repaired) != 1 || len(rec.Meta.Segments) != 3 || rec.Meta.State != StateRecording {
		t.Fatalf("recovered %+v", rec)
	}
	if rec.Gap < 2500*time.Millisecond || rec.Gap > 4*time.Second {
		t.Fatalf("gap %v, want about 3 s", rec.Gap)
	}
	// Still open (EVENT playlist): judge the media itself.
	mediatest.DecodeClean(t, mediatest.Concat(t, s.Dir(id)))
	r2, err := s.Resume(rec, "crash", cfg)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, r2, aus, 42*time.Second) // the new pipeline's clock is elsewhere
	m, err := r2.Close(Stop{By: "cli", Reason: "stop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Gaps) != 1 || m.Gaps[0].Reason != "crash" || len(m.Runs) != 2 {
		t.Fatalf("gaps %+v runs %+v", m.Gaps, m.Runs)
	}
	var disc []int
	for _, sg := range m.Segments {
		if sg.Discontinuity {
			disc = append(disc, sg.Number)
		}
	}
	if len(disc) != 1 || disc[0] != 4 {
		t.Fatalf("discontinuity at %v, want [4]", disc)
	}
	pl, _ := os.ReadFile(filepath.Join(s.Dir(id), PlaylistName))
	if strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n") != 1 {
		t.Fatalf("playlist:\n%s", pl)
	}
	mediatest.DecodeClean(t, filepath.Join(s.Dir(id), PlaylistName))
	mediatest.DecodeClean(t, mediatest.Concat(t, s.Dir(id)))
	if v, a := mediatest.Durations(t, mediatest.Concat(t, s.Dir(id))); v < 9.8 || a < 9.8 {
		t.Fatalf("durations video %.3f audio %.3f, want 10 s", v, a)
	}
}

func TestCrashBeforeFirstSegment(t *testing.T) {
	aus, vp := mediatest.H264(t, 1, 30, 30)
	s := newStore(t)
	clk := &fakeClock{boot: 10}
	id := NewID(2)
	cfg := WriterConfig{SegmentDuration: 4 * time.Second, Video: vp, AudioChannels: 1, Now: clk.now}
	r, _ := s.Create(Meta{ID: id, Number: 2, Visibility: VisibilityPrivate}, cfg)
	feed(t, r, aus, 0)
	crash(r)
	rec, err := s.Recover(id, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Meta.Segments) != 1 || rec.Meta.Segments[0].Discontinuity {
		t.Fatalf("segments %+v", rec.Meta.Segments)
	}
	m, err := s.Finish(rec, Stop{By: "recovery", Reason: "not resumed"})
	if err != nil || m.State != StateComplete {
		t.Fatal(m.State, err)
	}
	mediatest.DecodeClean(t, filepath.Join(s.Dir(id), PlaylistName))
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 1; i < 200; i++ {
		id := NewID(i)
		if !ValidID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
		if n, ok := NumberOf(id); !ok || n != i {
			t.Fatalf("NumberOf(%s) = %d", id, n)
		}
	}
	for _, bad := range []string{"", "../etc", "000001-ABCDEFGHIJ", "1-abcdefghij", "000001-abcdefghij/x"} {
		if ValidID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseMeta(f *testing.F) {
	f.Add(Meta{V: 1, ID: "000001-abcdefghij", State: StateRecording, Segments: []Segment{{Number: 1, Name: "seg_000001.m4s", Duration: 4}}}.Encode())
	f.Add([]byte(`{"v":1,"id":"000001-abcdefghij","state":"complete","segments":[{"number":2},{"number":1}]}`))
	f.Add([]byte(`{"v":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeta(b)
		if err != nil {
			return
		}
		m.Playlist()
		if _, err := ParseMeta(m.Encode()); err != nil {
			t.Fatalf("re-encoded meta does not parse: %v", err)
		}
	})
}

// A crash during the first segment of a continued run: the repaired
// segment still starts with a discontinuity.
func TestCrashDuringContinuedRun(t *testing.T) {
	aus, vp := mediatest.H264(t, 2, 30, 30)
	s := newStore(t)
	clk := &fakeClock{boot: 100}
	id := NewID(3)
	cfg := WriterConfig{SegmentDuration: 4 * time.Second, Video: vp, AudioChannels: 1, Now: clk.now}
	r, _ := s.Create(Meta{ID: id, Number: 3, Visibility: VisibilityPrivate}, cfg)
	feed(t, r, aus, 0)
	r.Abandon()
	rec, err := s.Recover(id, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Resume(rec, "crash", cfg)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, r2, aus[:45], 7*time.Second)
	// Crash again before the continued run closed a segment.
	crash(r2)
	rec2, err := s.Recover(id, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	segs := rec2.Meta.Segments
	if len(segs) != 2 || segs[0].Discontinuity || !segs[1].Discontinuity {
		t.Fatalf("segments %+v, want the second to follow a discontinuity", segs)
	}
}

// TestCrashesKeepSoundInStep crashes a lesson again and again while its
// sound lags its pictures: each continued run starts both tracks at the
// same moment, so the lag of one crash is not carried into the next run
// and does not add up over many.
func TestCrashesKeepSoundInStep(t *testing.T) {
	aus, vp := mediatest.H264(t, 2, 30, 30)
	s := newStore(t)
	clk := &fakeClock{boot: 100}
	id := NewID(4)
	cfg := WriterConfig{SegmentDuration: 4 * time.Second, Video: vp, AudioChannels: 1, Now: clk.now}
	r, err := s.Create(Meta{ID: id, Number: 4, Visibility: VisibilityPrivate}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const lag = 150 * time.Millisecond
	const crashes = 6
	for k := 0; k <= crashes; k++ {
		feedLagging(t, r, aus, time.Duration(k)*10*time.Second, lag)
		if k == crashes {
			break
		}
		crash(r)
		rec, err := s.Recover(id, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		p, a := rec.Position.Aligned(), rec.Position
		if p.VideoTicks*media.AudioRate < a.AudioTicks*media.VideoClockRate || p.AudioTicks*media.VideoClockRate < a.VideoTicks*media.AudioRate {
			t.Fatalf("crash %d: aligned position %+v starts before an end of %+v", k+1, p, a)
		}
		if r, err = s.Resume(rec, "crash", cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Close(Stop{By: "cli"}); err != nil {
		t.Fatal(err)
	}
	mediatest.DecodeClean(t, filepath.Join(s.Dir(id), PlaylistName))
	v, a := mediatest.Durations(t, mediatest.Concat(t, s.Dir(id)))
	// Sound ends one lag (and a packet) before the pictures, once; carried
	// over every crash it would be crashes+1 lags.
	if d := v - a; d < 0 || d > (lag+40*time.Millisecond).Seconds() {
		t.Fatalf("video %.3f s, audio %.3f s: sound is %.3f s out of step after %d crashes", v, a, d, crashes)
	}
}

// crash leaves a recording as a killed process would: what was written is
// on disk, the open segment stays a .part file, nothing more happens.
// (The record the save goroutine was writing is let through first: a
// process dies with it either written or not.)
func crash(r *Recording) { r.drainSaves() }
