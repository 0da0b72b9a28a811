package lesson

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/capture/rawaudio"
)

// counterRig feeds a recording as the recorder does: pictures and their
// sound, and the microphones' blocks ahead of the pictures of the same
// moment. Raw sample frame f is at pipeline time f/rate and carries f on
// channel 0 and -f on channel 1, so every sample in a file can be named.
type counterRig struct {
	t      *testing.T
	r      *Recording
	rate   int
	block  int           // frames per raw block
	lead   time.Duration // how far the microphone is ahead of the pictures
	fed    int64         // raw frames handed over (or skipped)
	skip   map[int64]bool
	origin time.Duration // pipeline time of the lesson's first picture
	a      time.Duration // pipeline time of the next sound packet (from origin)
}

func counterBlock(f0 int64, frames, rate int) media.PCM {
	p := media.PCM{Samples: make([]float32, frames*4), Channels: 4, Rate: rate,
		PTS: time.Duration(f0 * int64(time.Second) / int64(rate))}
	for i := 0; i < frames; i++ {
		v := float32(f0+int64(i)) / (1 << 23)
		p.Samples[i*4], p.Samples[i*4+1] = v, -v
		p.Samples[i*4+2], p.Samples[i*4+3] = 0.25, -0.25
	}
	return p
}

// rawUntil hands over the raw blocks that begin before pipeline time pts.
func (c *counterRig) rawUntil(pts time.Duration) {
	c.t.Helper()
	for time.Duration(c.fed*int64(time.Second)/int64(c.rate)) < pts {
		f0 := c.fed
		c.fed += int64(c.block)
		if c.skip[f0] {
			continue
		}
		if err := c.r.WriteRaw(counterBlock(f0, c.block, c.rate)); err != nil {
			c.t.Fatal(err)
		}
	}
}

// sound hands over the sound packets that end by pipeline time to.
func (c *counterRig) sound(to time.Duration) {
	c.t.Helper()
	if c.a == 0 {
		c.a = c.origin
	}
	for c.a+20*time.Millisecond <= to {
		if err := c.r.WriteAudio(media.AudioPacket{Data: mediatest.SilentOpus, PTS: c.a, Samples: 960, Channels: 1}); err != nil {
			c.t.Fatal(err)
		}
		c.a += 20 * time.Millisecond
	}
}

// feed hands over the pictures aus (at their times from the origin), with
// their sound and the microphone's blocks ahead of them.
func (c *counterRig) feed(aus []media.AccessUnit) {
	c.t.Helper()
	first := c.a == 0
	for i, au := range aus {
		au.PTS += c.origin
		c.sound(au.PTS + 33*time.Millisecond)
		if i > 0 || !first {
			c.rawUntil(au.PTS + c.lead)
		}
		if err := c.r.WriteVideo(au); err != nil {
			c.t.Fatal(err)
		}
		if i == 0 && first {
			// The recorder keeps the microphone's blocks from before the
			// first picture and hands them over once it is written.
			c.rawUntil(au.PTS + c.lead)
		}
	}
}

// counterOrigin is the pipeline time of the counter lessons' first picture.
const counterOrigin = 1012345678 * time.Nanosecond

// newCounterRig feeds r a counter at rate in blocks of block frames, lead
// ahead of the pictures.
func newCounterRig(t *testing.T, r *Recording, rate, block int, lead time.Duration) *counterRig {
	return &counterRig{t: t, r: r, rate: rate, block: block, lead: lead, origin: counterOrigin}
}

// skipBlocks leaves out n raw blocks from the one holding media time at on,
// and returns the first frame left out.
func (c *counterRig) skipBlocks(at time.Duration, n int) int64 {
	gapAt := firstFrameFrom(at, c.origin, c.rate)
	gapAt -= gapAt % int64(c.block)
	if c.skip == nil {
		c.skip = map[int64]bool{}
	}
	for f := gapAt; f < gapAt+int64(n*c.block); f += int64(c.block) {
		c.skip[f] = true
	}
	return gapAt
}

// firstFrameFrom returns the first raw frame whose media time is at or
// after media time at (the lesson's media time 0 is pipeline time origin).
func firstFrameFrom(at, origin time.Duration, rate int) int64 {
	x := int64(at + origin) // pipeline nanoseconds
	return (x*int64(rate) + int64(time.Second) - 1) / int64(time.Second)
}

func secondsToDur(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// checkCounters checks a lesson's raw files against the counter signal:
// each file's first sample is the one at its segment's start (for the
// first file of a segment whose sound was there), the files together hold
// every sample from the lesson's first picture on, once and in order, less
// the blocks skipped, and lesson.json's start and duration of each file
// name its samples to the sample.
func checkCounters(t *testing.T, s *Store, m Meta, c *counterRig) {
	t.Helper()
	segStart := map[int]time.Duration{}
	for _, sg := range m.Segments {
		segStart[sg.Number] = secondsToDur(sg.Start)
	}
	half := 0.5 / float64(c.rate)
	var all []int64
	var prevEnd float64
	for i, e := range m.Raw {
		_, got := mediatest.RawCounts(t, filepath.Join(s.Dir(m.ID), e.Name))
		if len(got) == 0 {
			t.Fatalf("raw file %s is empty", e.Name)
		}
		first := got[0]
		// (c) start and duration name the samples.
		want := float64(first)/float64(c.rate) - c.origin.Seconds()
		if math.Abs(e.Start-want) > half {
			t.Errorf("%s: lesson.json start %.9f s, its first sample (%d) is at %.9f s", e.Name, e.Start, first, want)
		}
		if d := e.Duration * float64(c.rate); math.Abs(d-float64(len(got))) > 0.5 {
			t.Errorf("%s: lesson.json duration %.9f s, the file holds %d frames", e.Name, e.Duration, len(got))
		}
		// (a) the first file of a segment begins at the segment's start.
		start, ok := segStart[e.Segment]
		if !ok {
			t.Fatalf("%s: no segment %d in the lesson", e.Name, e.Segment)
		}
		if e.Name == rawaudio.Name(e.Segment, 0) && !c.skip[first-int64(c.block)] {
			if w := firstFrameFrom(start, c.origin, c.rate); first != w {
				t.Errorf("%s: first sample %d, the segment starts at %v: sample %d", e.Name, first, start, w)
			}
		}
		if i > 0 && !c.skip[first-int64(c.block)] && math.Abs(e.Start-prevEnd) > half {
			t.Errorf("%s starts at %.9f s, the file before it ends at %.9f s", e.Name, e.Start, prevEnd)
		}
		prevEnd = e.Start + e.Duration
		all = append(all, got...)
	}
	// (b) nothing lost, nothing doubled.
	f0 := firstFrameFrom(0, c.origin, c.rate)
	var want []int64
	for f := f0 - f0%int64(c.block); f < c.fed; f += int64(c.block) {
		if c.skip[f] {
			continue
		}
		for i := max(f, f0); i < f+int64(c.block); i++ {
			want = append(want, i)
		}
	}
	if len(all) != len(want) {
		t.Fatalf("the raw files hold %d frames, %d were captured from the lesson's start", len(all), len(want))
	}
	for i := range want {
		if all[i] != want[i] {
			t.Fatalf("frame %d of the raw files is sample %d, want %d", i, all[i], want[i])
		}
	}
}

// The raw files are cut at the segments' starts to the sample, though the
// microphone's blocks run ahead of the pictures and straddle the cuts.
func TestRawAudioCutAtSegmentStarts(t *testing.T) {
	aus, vp := mediatest.H264(t, 5, 30, 15)
	for _, tc := range []struct {
		name  string
		rate  int
		block int
		lead  time.Duration
	}{
		{"48kHz 10ms blocks", 48000, 480, 150 * time.Millisecond},
		{"16kHz 64ms blocks", 16000, 1024, 400 * time.Millisecond},
		{"44.1kHz odd blocks", 44100, 441 + 7, 40 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk := newStore(t), &fakeClock{boot: 100}
			r, id := createRaw(t, s, 7, WriterConfig{SegmentDuration: time.Second, Video: vp, AudioChannels: 1, Now: clk.now})
			c := newCounterRig(t, r, tc.rate, tc.block, tc.lead)
			c.feed(aus)
			m := closeRaw(t, r)
			checkRawPerSegment(t, m, 4)
			checkCounters(t, s, m, c)
			loaded, err := s.Load(id)
			if err != nil {
				t.Fatal(err)
			}
			checkCounters(t, s, loaded, c)
		})
	}
}

// Blocks missing from the microphone's stream (dropped on the way, or a
// microphone away for a moment) end a raw file; the next file of the same
// segment begins at the first sample after the hole, so the hole stays.
func TestRawAudioGapStartsAnotherFile(t *testing.T) {
	aus, vp := mediatest.H264(t, 4, 30, 15)
	s, clk := newStore(t), &fakeClock{boot: 100}
	r, _ := createRaw(t, s, 8, WriterConfig{SegmentDuration: time.Second, Video: vp, AudioChannels: 1, Now: clk.now})
	c := newCounterRig(t, r, 48000, 480, 150*time.Millisecond)
	// 30 ms missing 1.5 s into the lesson, inside its second segment.
	c.skipBlocks(1500*time.Millisecond, 3)
	c.feed(aus)
	m := closeRaw(t, r)
	checkCounters(t, s, m, c)
	var second []RawAudio
	for _, e := range m.Raw {
		if e.Segment == m.Segments[1].Number {
			second = append(second, e)
		}
	}
	if len(second) != 2 || second[1].Name != rawaudio.Name(m.Segments[1].Number, 1) {
		t.Fatalf("raw files of segment 2: %+v", second)
	}
	hole := second[1].Start - (second[0].Start + second[0].Duration)
	if math.Abs(hole-0.030) > 0.5/48000 {
		t.Fatalf("the files of segment 2 leave %.6f s between them, 0.030 s was missing", hole)
	}
}

// A raw file left open by a crash is listed at recovery with the start its
// header records: exact to the sample, also for a second file of its
// segment (after a hole in the sound), which does not begin at the
// segment's start.
func TestRawAudioCrashKeepsStarts(t *testing.T) {
	aus, vp := mediatest.H264(t, 4, 30, 15)
	s, clk := newStore(t), &fakeClock{boot: 100}
	r, id := createRaw(t, s, 9, WriterConfig{SegmentDuration: time.Second, Video: vp, AudioChannels: 1, Now: clk.now})
	c := newCounterRig(t, r, 48000, 480, 150*time.Millisecond)
	gapAt := c.skipBlocks(3500*time.Millisecond, 2)
	c.feed(aus)
	crash(r)
	parts, _ := filepath.Glob(filepath.Join(s.Dir(id), "*.wav"+rawaudio.PartSuffix))
	if len(parts) != 1 || filepath.Base(parts[0]) != rawaudio.Name(4, 1)+rawaudio.PartSuffix {
		t.Fatalf("open raw files after the crash: %v", parts)
	}
	clk.boot = 108
	rec, err := s.Recover(id, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	m := rec.Meta
	if n := len(m.Raw); n != 5 || m.Raw[n-1].Name != rawaudio.Name(4, 1) {
		t.Fatalf("recovered raw files %+v", m.Raw)
	}
	half := 0.5 / 48000
	next := firstFrameFrom(0, c.origin, 48000)
	for _, e := range m.Raw {
		_, got := mediatest.RawCounts(t, filepath.Join(s.Dir(id), e.Name))
		first := got[0]
		if at := float64(first)/48000 - c.origin.Seconds(); math.Abs(e.Start-at) > half {
			t.Errorf("%s: start %.9f s in lesson.json, its first sample is at %.9f s", e.Name, e.Start, at)
		}
		if math.Abs(e.Duration*48000-float64(len(got))) > 0.5 {
			t.Errorf("%s: duration %.9f s, %d frames", e.Name, e.Duration, len(got))
		}
		for next == gapAt || next == gapAt+480 {
			next += 480
		}
		for i, v := range got {
			if v != next {
				t.Fatalf("%s: frame %d is sample %d, want %d", e.Name, i, v, next)
			}
			next++
			for next == gapAt || next == gapAt+480 {
				next += 480
			}
		}
	}
}

// While the camera is away, segments are cut on the sound; the raw files
// follow them to the sample, and the keyframe that ends the loss begins
// both a segment and a raw file.
func TestRawAudioDuringCameraLoss(t *testing.T) {
	aus, vp := mediatest.H264(t, 3, 30, 15)
	s, clk := newStore(t), &fakeClock{boot: 100}
	r, _ := createRaw(t, s, 10, WriterConfig{SegmentDuration: time.Second, Video: vp, AudioChannels: 1, Now: clk.now})
	c := newCounterRig(t, r, 48000, 480, 150*time.Millisecond)
	c.feed(aus)
	// The camera is found lost 2 s after its last picture.
	c.sound(c.origin + 5*time.Second)
	c.rawUntil(c.origin + 5*time.Second)
	if err := r.VideoGap(); err != nil {
		t.Fatal(err)
	}
	c.sound(c.origin + 8*time.Second)
	c.rawUntil(c.origin + 8*time.Second)
	back := make([]media.AccessUnit, len(aus))
	for i, au := range aus {
		au.PTS += 8 * time.Second
		back[i] = au
	}
	c.feed(back)
	m := closeRaw(t, r)
	if len(m.Segments) < 8 || len(m.Raw) != len(m.Segments) {
		t.Fatalf("%d raw files for %d segments: %+v\n%+v", len(m.Raw), len(m.Segments), m.Raw, m.Segments)
	}
	var disc bool
	for i, e := range m.Raw {
		if e.Segment != m.Segments[i].Number {
			t.Fatalf("raw file %d: %+v", i, e)
		}
		disc = disc || m.Segments[i].Discontinuity
	}
	if !disc {
		t.Fatalf("no segment after the camera came back: %+v", m.Segments)
	}
	checkCounters(t, s, m, c)
}
