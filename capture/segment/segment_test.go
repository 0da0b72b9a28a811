package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
)

// feed interleaves video and audio as capture would deliver them, starting
// audio at offset relative to video.
func feed(t testing.TB, w *Writer, aus []media.AccessUnit, base time.Duration) {
	t.Helper()
	end := aus[len(aus)-1].PTS + 33*time.Millisecond
	a := time.Duration(0)
	for _, au := range aus {
		for a+20*time.Millisecond <= au.PTS {
			if err := w.WriteAudio(media.AudioPacket{Data: mediatest.SilentOpus, PTS: base + a, Samples: 960, Channels: 1}); err != nil {
				t.Fatal(err)
			}
			a += 20 * time.Millisecond
		}
		au.PTS += base
		if err := w.WriteVideo(au); err != nil {
			t.Fatal(err)
		}
	}
	for a+20*time.Millisecond <= end {
		if err := w.WriteAudio(media.AudioPacket{Data: mediatest.SilentOpus, PTS: base + a, Samples: 960, Channels: 1}); err != nil {
			t.Fatal(err)
		}
		a += 20 * time.Millisecond
	}
}

func TestWriterSegmentsAtKeyframes(t *testing.T) {
	aus, vp := mediatest.H264(t, 10, 30, 30)
	dir := t.TempDir()
	var infos []Info
	w, err := New(Config{Dir: dir, SegmentDuration: 2 * time.Second, Video: vp, AudioChannels: 1,
		OnSegment: func(i Info) error { infos = append(infos, i); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	// Pictures before the first IDR are refused.
	if err := w.WriteVideo(media.AccessUnit{NALUs: aus[1].NALUs, PTS: 0}); err != ErrNeedKeyframe {
		t.Fatalf("non-IDR start: %v", err)
	}
	feed(t, w, aus, 5*time.Second)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 5 {
		t.Fatalf("%d segments, want 5: %+v", len(infos), infos)
	}
	var total time.Duration
	for i, in := range infos {
		if in.Number != i+1 || in.Name != Name(i+1) {
			t.Fatalf("segment %d named %d %s", i, in.Number, in.Name)
		}
		if in.Start != total {
			t.Fatalf("segment %d starts at %v, want %v", i, in.Start, total)
		}
		total += in.Duration
		b, err := os.ReadFile(filepath.Join(dir, in.Name))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != in.Bytes {
			t.Fatalf("%s: %d bytes on disk, info says %d", in.Name, len(b), in.Bytes)
		}
		got, _, err := InfoFromFile(filepath.Join(dir, in.Name))
		if err != nil {
			t.Fatal(err)
		}
		if got.SHA256 != in.SHA256 || got.Duration != in.Duration {
			t.Fatalf("%s: file gives %+v, writer said %+v", in.Name, got, in)
		}
		if d := in.Duration; d < 1990*time.Millisecond || d > 2010*time.Millisecond {
			t.Fatalf("%s lasts %v, want 2 s", in.Name, d)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*"+PartSuffix)); len(leftovers) > 0 {
		t.Fatalf("part files left: %v", leftovers)
	}
	all := mediatest.Concat(t, dir)
	mediatest.DecodeClean(t, all)
	v, a := mediatest.Durations(t, all)
	if v < 9.9 || v > 10.1 || a < 9.9 || a > 10.1 {
		t.Fatalf("durations video %.3f audio %.3f, want 10 s", v, a)
	}
}

func TestWriterFlushesFragmentsToDisk(t *testing.T) {
	aus, vp := mediatest.H264(t, 3, 30, 90)
	dir := t.TempDir()
	w, err := New(Config{Dir: dir, SegmentDuration: 10 * time.Second, FlushInterval: 500 * time.Millisecond, Video: vp})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, w, aus, 0)
	// Not closed: everything but the last half second is in the .part file.
	b, err := os.ReadFile(filepath.Join(dir, Name(1)+PartSuffix))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Fragments < 5 {
		t.Fatalf("%d fragments for 3 s at a 500 ms flush interval", s.Fragments)
	}
	if end := float64(s.VideoEnd) / 90000; end < 2.4 {
		t.Fatalf("only %.3f s of video on disk of 3 s written", end)
	}
}

func TestRepairTruncatesTornTail(t *testing.T) {
	aus, vp := mediatest.H264(t, 4, 30, 30)
	for _, cut := range []int{1, 7, 100, 5000, -1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			w, err := New(Config{Dir: dir, SegmentDuration: 60 * time.Second, Video: vp})
			if err != nil {
				t.Fatal(err)
			}
			feed(t, w, aus, 0)
			part := filepath.Join(dir, Name(1)+PartSuffix)
			b, _ := os.ReadFile(part)
			whole := ValidPrefix(b)
			if whole != len(b) {
				t.Fatalf("a cleanly written file has valid prefix %d of %d", whole, len(b))
			}
			// Simulate a torn write: append a partial next fragment.
			torn := append([]byte(nil), b...)
			if cut > 0 {
				torn = append(torn, b[:min(cut, len(b))]...)
			} else {
				torn = torn[:len(torn)-10]
			}
			os.WriteFile(part, torn, 0o644)
			info, sum, err := Repair(part)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(part); !os.IsNotExist(err) {
				t.Fatal("part file still there")
			}
			if cut > 0 && info.Bytes != int64(len(b)) {
				t.Fatalf("repaired to %d bytes, want %d", info.Bytes, len(b))
			}
			if !sum.StartsIDR {
				t.Fatal("repaired segment does not start at an IDR")
			}
			mediatest.DecodeClean(t, mediatest.Concat(t, dir))
		})
	}
}

func TestRepairRemovesEmpty(t *testing.T) {
	dir := t.TempDir()
	part := filepath.Join(dir, Name(3)+PartSuffix)
	os.WriteFile(part, []byte{0, 0, 0, 16, 'm', 'o', 'o', 'f'}, 0o644)
	if _, _, err := Repair(part); err != ErrEmpty {
		t.Fatalf("err = %v, want ErrEmpty", err)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatal("empty part file not removed")
	}
}

func TestContinueAfterPosition(t *testing.T) {
	aus, vp := mediatest.H264(t, 4, 30, 30)
	dir := t.TempDir()
	var infos []Info
	on := func(i Info) error { infos = append(infos, i); return nil }
	w, _ := New(Config{Dir: dir, SegmentDuration: 2 * time.Second, Video: vp, OnSegment: on})
	feed(t, w, aus, 0)
	w.Close()
	pos := w.Position()
	// The capture pipeline restarted: its clock starts again at zero.
	w2, err := New(Config{Dir: dir, SegmentDuration: 2 * time.Second, Video: vp, Start: pos, Discontinuity: true, OnSegment: on})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, w2, aus, 0)
	w2.Close()
	if len(infos) != 4 || !infos[2].Discontinuity || infos[1].Discontinuity {
		t.Fatalf("segments %+v", infos)
	}
	if infos[2].Start != infos[1].Start+infos[1].Duration {
		t.Fatalf("continued segment starts at %v, previous ended %v", infos[2].Start, infos[1].Start+infos[1].Duration)
	}
	all := mediatest.Concat(t, dir)
	mediatest.DecodeClean(t, all)
	if v, a := mediatest.Durations(t, all); v < 7.9 || a < 7.9 {
		t.Fatalf("durations video %.3f audio %.3f, want 8 s", v, a)
	}
}

func TestPositionAligned(t *testing.T) {
	for _, c := range []struct{ in, want Position }{
		{Position{VideoTicks: 90000, AudioTicks: 48000}, Position{VideoTicks: 90000, AudioTicks: 48000}},
		{Position{VideoTicks: 90000, AudioTicks: 38400}, Position{VideoTicks: 90000, AudioTicks: 48000}},
		{Position{VideoTicks: 72000, AudioTicks: 48000}, Position{VideoTicks: 90000, AudioTicks: 48000}},
		{Position{VideoTicks: 3003, AudioTicks: 0}, Position{VideoTicks: 3003, AudioTicks: 1602}}, // 1601.6 rounds up
		{Position{VideoTicks: 0, AudioTicks: 960}, Position{VideoTicks: 1800, AudioTicks: 960}},
		{Position{NextSegment: 5, NextMoof: 9}, Position{NextSegment: 5, NextMoof: 9}},
	} {
		if got := c.in.Aligned(); got != c.want {
			t.Errorf("%+v.Aligned() = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int
		ok bool
	}{
		{"seg_000001.m4s", 1, true},
		{"seg_123456.m4s", 123456, true},
		{"seg_000000.m4s", 0, false},
		{"seg_1.m4s", 0, false},
		{"seg_00001a.m4s", 0, false},
		{"init.mp4", 0, false},
		{"seg_000001.m4s.part", 0, false},
	} {
		n, ok := ParseName(tc.in)
		if n != tc.n || ok != tc.ok {
			t.Errorf("ParseName(%q) = %d %v", tc.in, n, ok)
		}
	}
}

func FuzzValidPrefix(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f', 0, 0, 0, 8, 'm', 'd', 'a', 't'})
	f.Add([]byte{0, 0, 0, 1, 'm', 'o', 'o', 'f', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0, 'm', 'd', 'a', 't'})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := ValidPrefix(b)
		if n < 0 || n > len(b) {
			t.Fatalf("prefix %d of %d", n, len(b))
		}
		if ValidPrefix(b[:n]) != n {
			t.Fatal("valid prefix is not itself valid")
		}
		Inspect(b[:n]) // must not panic
	})
}

// BenchmarkWriter measures the muxing and writing of 10 s of 30 fps video
// and 20 ms Opus packets, fsync included, per iteration: the recorder's
// share of the recording path's CPU (make bench has the whole daemon).
func BenchmarkWriter(b *testing.B) {
	aus, vp := mediatest.H264(b, 10, 30, 60)
	b.ReportAllocs()
	for b.Loop() {
		w, err := New(Config{Dir: b.TempDir(), SegmentDuration: 4 * time.Second, Video: vp, AudioChannels: 1})
		if err != nil {
			b.Fatal(err)
		}
		feed(b, w, aus, 0)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
