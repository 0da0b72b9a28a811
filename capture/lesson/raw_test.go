package lesson

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/capture/rawaudio"
)

// feedRaw feeds pictures, sound and 10 ms blocks of 4-channel raw audio
// (ahead of the pictures, as the microphone is).
func feedRaw(t *testing.T, r *Recording, aus []media.AccessUnit, base time.Duration) {
	t.Helper()
	raw := time.Duration(0)
	a := time.Duration(0)
	for _, au := range aus {
		for a+20*time.Millisecond <= au.PTS+33*time.Millisecond {
			if err := r.WriteAudio(media.AudioPacket{Data: mediatest.SilentOpus, PTS: base + a, Samples: 960, Channels: 1}); err != nil {
				t.Fatal(err)
			}
			a += 20 * time.Millisecond
		}
		au.PTS += base
		if err := r.WriteVideo(au); err != nil {
			t.Fatal(err)
		}
		for raw+10*time.Millisecond <= au.PTS-base+33*time.Millisecond {
			p := media.PCM{Samples: make([]float32, 480*4), Channels: 4, Rate: 48000, PTS: base + raw}
			for i := range p.Samples {
				p.Samples[i] = float32(math.Sin(float64(i)))
			}
			if err := r.WriteRaw(p); err != nil {
				t.Fatal(err)
			}
			raw += 10 * time.Millisecond
		}
	}
}

func checkRaw(t *testing.T, s *Store, m Meta) {
	t.Helper()
	var total float64
	for _, r := range m.Raw {
		b, err := os.ReadFile(filepath.Join(s.Dir(m.ID), r.Name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if int64(len(b)) != r.Bytes || hex.EncodeToString(sum[:]) != r.SHA256 || r.Channels != 4 || r.Rate != 48000 || r.Bits != 24 {
			t.Fatalf("raw entry %+v does not describe its file (%d bytes)", r, len(b))
		}
		total += r.Duration
	}
	if math.Abs(total-m.Duration) > m.SegmentDuration {
		t.Fatalf("raw audio lasts %.3f s, the lesson %.3f s", total, m.Duration)
	}
	if left, _ := filepath.Glob(filepath.Join(s.Dir(m.ID), "*"+rawaudio.PartSuffix)); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// createRaw begins lesson number n in s, as the button does, and returns
// its recording and its id.
func createRaw(t *testing.T, s *Store, n int, cfg WriterConfig) (*Recording, string) {
	t.Helper()
	id := NewID(n)
	r, err := s.Create(Meta{ID: id, Number: n, Device: "room-101", Visibility: VisibilityPrivate, StartedBy: "button"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, id
}

// closeRaw ends r as a tap on the button does.
func closeRaw(t *testing.T, r *Recording) Meta {
	t.Helper()
	m, err := r.Close(Stop{By: "button", Reason: "tap"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkRawPerSegment checks that m has atLeast segments or more and one raw
// file for each, the first of its segment.
func checkRawPerSegment(t *testing.T, m Meta, atLeast int) {
	t.Helper()
	if len(m.Segments) < atLeast || len(m.Raw) != len(m.Segments) {
		t.Fatalf("%d raw files for %d segments: %+v", len(m.Raw), len(m.Segments), m.Raw)
	}
	for i, e := range m.Raw {
		if e.Segment != m.Segments[i].Number || e.Name != rawaudio.Name(e.Segment, 0) {
			t.Fatalf("raw file %d: %+v", i, e)
		}
	}
}

func TestRawAudio(t *testing.T) {
	aus, vp := mediatest.H264(t, 6, 30, 30)
	s, clk := newStore(t), &fakeClock{boot: 100}
	r, id := createRaw(t, s, 3, WriterConfig{SegmentDuration: 2 * time.Second, Video: vp, AudioChannels: 1, Now: clk.now})
	feedRaw(t, r, aus, 0)
	m := closeRaw(t, r)
	checkRawPerSegment(t, m, 0)
	checkRaw(t, s, m)
	loaded, err := s.Load(id)
	if err != nil || len(loaded.Raw) != len(m.Raw) {
		t.Fatalf("lesson.json: %v, %d raw files", err, len(loaded.Raw))
	}
}

// A crash leaves a raw .part file; recovery closes it, lists it, and the
// continued run keeps raw audio beside its own segments.
func TestRawAudioCrash(t *testing.T) {
	aus, vp := mediatest.H264(t, 5, 30, 30)
	s, clk := newStore(t), &fakeClock{boot: 100}
	cfg := WriterConfig{SegmentDuration: 2 * time.Second, Video: vp, AudioChannels: 1, Now: clk.now}
	r, id := createRaw(t, s, 4, cfg)
	feedRaw(t, r, aus, 0)
	crash(r)
	parts, _ := filepath.Glob(filepath.Join(s.Dir(id), "*.wav"+rawaudio.PartSuffix))
	if len(parts) != 1 {
		t.Fatalf("want one open raw file, have %v", parts)
	}
	clk.boot = 108
	rec, err := s.Recover(id, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Meta.Raw) != len(rec.Meta.Segments) {
		t.Fatalf("recovered %d raw files for %d segments", len(rec.Meta.Raw), len(rec.Meta.Segments))
	}
	checkRaw(t, s, rec.Meta)
	r2, err := s.Resume(rec, "crash", cfg)
	if err != nil {
		t.Fatal(err)
	}
	feedRaw(t, r2, aus, 42*time.Second)
	m, err := r2.Close(Stop{By: "cli", Reason: "stop"})
	if err != nil {
		t.Fatal(err)
	}
	checkRaw(t, s, m)
	if len(m.Raw) < len(m.Segments) {
		t.Fatalf("%d raw files for %d segments", len(m.Raw), len(m.Segments))
	}
}
