package recorder

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/capture/rawaudio"
)

// counterMic is a microphone whose sample frame f is at pipeline time
// off + f/rate and carries the count f on its first channel (-f on the
// second), so that every sample kept can be named.
type counterMic struct {
	rate, block int
	off         time.Duration
	fed         int64 // frames handed to the recorder
	base        int64 // count of frame 0
}

func (c *counterMic) at(f int64) time.Duration {
	return c.off + time.Duration(f*int64(time.Second)/int64(c.rate))
}

// firstAt returns the first frame at or after pipeline time t.
func (c *counterMic) firstAt(t time.Duration) int64 {
	x := int64(t - c.off)
	return (x*int64(c.rate) + int64(time.Second) - 1) / int64(time.Second)
}

// pumpRaw delivers n pictures as pump does, the microphone's blocks
// running lead ahead of them (the pictures are encoded first).
func (g *rig) pumpRaw(c *counterMic, lead time.Duration, n int) {
	for range n {
		pts := time.Duration(g.next) * time.Second / 30
		for c.at(c.fed) < pts+lead {
			p := media.PCM{Samples: make([]float32, c.block*4), Channels: 4, Rate: c.rate, PTS: c.at(c.fed)}
			for i := range c.block {
				v := float32(c.base+c.fed+int64(i)) / (1 << 23)
				p.Samples[i*4], p.Samples[i*4+1], p.Samples[i*4+2] = v, -v, 0.5
			}
			c.fed += int64(c.block)
			g.raw <- p
		}
		g.pump(1)
	}
}

// rawCounts reads the counts of a raw file's sample frames, from the
// array's four microphones.
func rawCounts(t *testing.T, path string) []int64 {
	t.Helper()
	f, counts := mediatest.RawCounts(t, path)
	if f.Channels != 4 {
		t.Fatalf("%s: %+v, want 4 channels", path, f)
	}
	return counts
}

// With keep_raw, the lesson's raw files are cut at its segments' starts to
// the sample: each begins with the sample at its segment's start, together
// they are every sample from the lesson's first picture to its end, and
// lesson.json gives each file's start and duration to the sample.
func TestRawAudioFollowsTheSegments(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rate, block int
		lead        time.Duration
	}{
		{"48kHz in 10 ms blocks", 48000, 480, 120 * time.Millisecond},
		{"16kHz in 60 ms blocks", 16000, 960, 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, t.TempDir(), false)
			mic := &counterMic{rate: tc.rate, block: tc.block, off: 3456789 * time.Nanosecond}
			g.pumpRaw(mic, tc.lead, 20) // idle: the lesson will begin with the cached keyframe, picture 15
			ctx := context.Background()
			if _, err := g.r.Start(ctx, StartRequest{By: "cli"}); err != nil {
				t.Fatal(err)
			}
			g.pumpRaw(mic, tc.lead, 150)
			m, err := g.r.Stop(ctx, StopRequest{By: "cli", Reason: "done"})
			if err != nil || m.State != lesson.StateComplete {
				t.Fatalf("stop: %v, lesson %s", err, m.State)
			}
			if len(m.Segments) < 4 || len(m.Raw) != len(m.Segments) {
				t.Fatalf("%d raw files for %d segments: %+v", len(m.Raw), len(m.Segments), m.Raw)
			}
			origin := 15 * time.Second / 30 // pipeline time of media time 0
			half := 0.5 / float64(tc.rate)
			var all []int64
			for i, e := range m.Raw {
				sg := m.Segments[i]
				if e.Segment != sg.Number || e.Name != rawaudio.Name(sg.Number, 0) {
					t.Fatalf("raw file %d is %+v beside segment %+v", i, e, sg)
				}
				counts := rawCounts(t, filepath.Join(g.store.Dir(m.ID), e.Name))
				// (a) the first sample is the one at the segment's start.
				start := time.Duration(math.Round(sg.Start * 1e9))
				if want := mic.firstAt(origin + start); counts[0] != want {
					t.Errorf("%s: first sample %d, the segment starts at %v: sample %d", e.Name, counts[0], start, want)
				}
				// (c) lesson.json's start and duration name the samples.
				if at := (mic.at(counts[0]) - origin).Seconds(); math.Abs(e.Start-at) > half {
					t.Errorf("%s: start %.9f s in lesson.json, its first sample is at %.9f s", e.Name, e.Start, at)
				}
				if math.Abs(e.Duration*float64(tc.rate)-float64(len(counts))) > 0.5 {
					t.Errorf("%s: duration %.9f s in lesson.json, %d frames in the file", e.Name, e.Duration, len(counts))
				}
				all = append(all, counts...)
			}
			// (b) one after the other, the files are the capture from the
			// lesson's first picture on: nothing missing, nothing twice.
			first := mic.firstAt(origin)
			if int64(len(all)) != mic.fed-first {
				t.Fatalf("the raw files hold %d frames; %d were captured from the lesson's start", len(all), mic.fed-first)
			}
			for i, v := range all {
				if v != first+int64(i) {
					t.Fatalf("frame %d of the raw files is sample %d, want %d", i, v, first+int64(i))
				}
			}
			loaded, err := g.store.Load(m.ID)
			if err != nil || len(loaded.Raw) != len(m.Raw) {
				t.Fatalf("lesson.json: %v, %+v", err, loaded.Raw)
			}
			for i := range m.Raw {
				if loaded.Raw[i] != m.Raw[i] {
					t.Fatalf("lesson.json lists %+v, the lesson closed with %+v", loaded.Raw[i], m.Raw[i])
				}
			}
			g.waitState(StateIdle)
		})
	}
}

// originOf returns the pipeline time of the picture (at 30 fps) that a
// run's raw audio begins with, frame first being the first at or after it.
func originOf(t *testing.T, c *counterMic, first int64) time.Duration {
	t.Helper()
	for k := range 1000 {
		if o := time.Duration(k) * time.Second / 30; c.firstAt(o) == first {
			return o
		}
	}
	t.Fatalf("raw sample %d is not the first at a picture's time", first)
	return 0
}

// A lesson continued after a crash: the raw file the crash left open is
// listed at its own start, and the continued run's raw files begin at its
// first segment's start, each run's files holding its sound from its
// first picture on, sample after sample.
func TestRawAudioAcrossACrash(t *testing.T) {
	dir := t.TempDir()
	g := newRig(t, dir, true)
	mic := &counterMic{rate: 48000, block: 480, off: 3456789 * time.Nanosecond}
	g.pumpRaw(mic, 120*time.Millisecond, 10)
	ctx := context.Background()
	go g.r.Start(ctx, StartRequest{By: "cli"})
	g.waitState(StateRecording)
	g.pumpRaw(mic, 120*time.Millisecond, 100)
	id := g.crash(ctx)

	g2 := newRig(t, dir, true)
	mic2 := &counterMic{rate: 48000, block: 480, off: 1234567 * time.Nanosecond, base: 1 << 22}
	g2.next = 25 // the pipeline's clock began anew; the sound comes before the first keyframe
	g2.waitState(StateRecording)
	deadline := time.Now().Add(10 * time.Second)
	for g2.r.Status().Lesson == "" {
		if time.Now().After(deadline) {
			t.Fatal("the lesson was not continued")
		}
		g2.pumpRaw(mic2, 120*time.Millisecond, 1)
	}
	g2.pumpRaw(mic2, 120*time.Millisecond, 100)
	m, err := g2.r.Stop(ctx, StopRequest{By: "cli", Reason: "done"})
	if err != nil || m.ID != id || len(m.Runs) != 2 {
		t.Fatalf("stop: %v; lesson %s with %d runs", err, m.ID, len(m.Runs))
	}
	type run struct {
		mic    *counterMic
		start  time.Duration // media time of the run's first picture
		origin time.Duration // its pipeline time
		next   int64         // the count the next file must begin with
		files  int
	}
	runs := []*run{{mic: mic}, {mic: mic2, start: time.Duration(math.Round(m.Runs[1].MediaStart * 1e9))}}
	half := 0.5 / 48000
	for _, e := range m.Raw {
		counts := rawCounts(t, filepath.Join(g2.store.Dir(id), e.Name))
		ru := runs[0]
		if counts[0] >= 1<<22 {
			ru = runs[1]
		}
		for i := range counts {
			counts[i] -= ru.mic.base
		}
		if ru.files == 0 {
			// The run's first file begins at its first picture: the
			// first segment of the run.
			ru.origin = originOf(t, ru.mic, counts[0])
			ru.next = counts[0]
			if d := e.Start - ru.start.Seconds(); d < -1e-9 || d >= 2*half {
				t.Errorf("%s: the run's first raw file begins at %.9f s, the run at %.9f s", e.Name, e.Start, ru.start.Seconds())
			}
		}
		ru.files++
		if at := (ru.start + ru.mic.at(counts[0]) - ru.origin).Seconds(); math.Abs(e.Start-at) > half {
			t.Errorf("%s: start %.9f s in lesson.json, its first sample is at %.9f s", e.Name, e.Start, at)
		}
		if math.Abs(e.Duration*48000-float64(len(counts))) > 0.5 {
			t.Errorf("%s: duration %.9f s, %d frames", e.Name, e.Duration, len(counts))
		}
		for i, v := range counts {
			if v != ru.next {
				t.Fatalf("%s: frame %d is sample %d of its run, want %d", e.Name, i, v, ru.next)
			}
			ru.next++
		}
	}
	if runs[0].files < 3 || runs[1].files < 3 {
		t.Fatalf("raw files: %d before the crash, %d after: %+v", runs[0].files, runs[1].files, m.Raw)
	}
	if runs[1].next != mic2.fed {
		t.Fatalf("the continued run's raw files end with sample %d, %d were captured", runs[1].next, mic2.fed)
	}
}
