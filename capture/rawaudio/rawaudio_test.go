package rawaudio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
)

func tone(frames, channels, rate int, from int) media.PCM {
	p := media.PCM{Samples: make([]float32, frames*channels), Channels: channels, Rate: rate}
	for i := range frames {
		for c := range channels {
			p.Samples[i*channels+c] = float32(0.5 * math.Sin(2*math.Pi*float64((c+1)*300)*float64(from+i)/float64(rate)))
		}
	}
	return p
}

// probe returns ffprobe's channels, rate and duration of a file.
func probe(t *testing.T, path string) (int, int, float64) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed (scripts/install-deps.sh)")
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
		"stream=channels,sample_rate,duration", "-of", "default=nw=1:nk=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		t.Fatalf("ffprobe %s: %q", path, out)
	}
	rate, _ := strconv.Atoi(f[0])
	ch, _ := strconv.Atoi(f[1])
	d, _ := strconv.ParseFloat(f[2], 64)
	return ch, rate, d
}

func TestNameRoundTrip(t *testing.T) {
	for _, c := range []struct{ n, k int }{{1, 0}, {42, 0}, {999999, 3}, {7, 12}} {
		name := Name(c.n, c.k)
		n, ok := ParseName(name)
		if !ok || n != c.n {
			t.Errorf("ParseName(%q) = %d, %v", name, n, ok)
		}
	}
	for _, bad := range []string{"seg_000001.m4s", "seg_000000.raw.wav", "seg_000001.raw0.wav", "seg_00001.raw.wav",
		"seg_000001.raw.wav.part", "x", "seg_000001.rawx.wav", "seg_000001.raw-1.wav"} {
		if _, ok := ParseName(bad); ok {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
	// Raw files sort right after their segment.
	if !(("seg_000001.m4s" < Name(1, 0)) && Name(1, 0) < "seg_000002.m4s") {
		t.Errorf("%s does not sort beside seg_000001.m4s", Name(1, 0))
	}
}

func TestWriteClose(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, Name(1, 0), 1, 4, 48000, 1234567*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	for b := range 250 { // 2.5 s in 10 ms blocks
		if err := w.Write(tone(480, 4, 48000, b*480)); err != nil {
			t.Fatal(err)
		}
	}
	info, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if info.Frames != 120000 || info.Channels != 4 || info.Rate != 48000 || info.Bits != 24 || info.Segment != 1 ||
		!info.HasStart || info.Start != 1234567*time.Microsecond {
		t.Fatalf("info %+v", info)
	}
	if info.Bytes != headerSize+120000*12 {
		t.Fatalf("bytes %d", info.Bytes)
	}
	if _, err := os.Stat(filepath.Join(dir, Name(1, 0)+PartSuffix)); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	ch, rate, d := probe(t, filepath.Join(dir, Name(1, 0)))
	if ch != 4 || rate != 48000 || math.Abs(d-2.5) > 0.001 {
		t.Fatalf("ffprobe: %d channels, %d Hz, %.3f s", ch, rate, d)
	}
	// A second file for the same segment does not replace it.
	if _, err := Create(dir, Name(1, 0), 1, 4, 48000, 1234567*time.Microsecond); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over a closed file: %v", err)
	}
}

// A file abandoned mid-write (as by kill -9) is readable as it is, and
// Repair makes it exact.
func TestAbandonRepair(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, Name(3, 0), 3, 2, 16000, 0)
	if err != nil {
		t.Fatal(err)
	}
	for b := range 350 {
		if err := w.Write(tone(160, 2, 16000, b*160)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Abandon(); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, Name(3, 0)+PartSuffix)
	// A torn tail: half a sample frame.
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 2, 3, 4})
	f.Close()
	if _, _, d := probe(t, part); d < 3 || d > 3.5 {
		t.Fatalf("abandoned file: ffprobe says %.3f s", d)
	}
	info, err := Repair(part)
	if err != nil {
		t.Fatal(err)
	}
	if info.Frames != 350*160 || !info.HasStart || info.Start != 0 {
		t.Fatalf("repaired %+v, want %d frames from 0 s", info, 350*160)
	}
	ch, rate, d := probe(t, filepath.Join(dir, Name(3, 0)))
	if ch != 2 || rate != 16000 || math.Abs(d-3.5) > 0.001 {
		t.Fatalf("ffprobe: %d channels, %d Hz, %.3f s", ch, rate, d)
	}
}

// The header says where the first sample is; a header without the start
// chunk (files written before it) still reads.
func TestHeaderStart(t *testing.T) {
	for _, start := range []time.Duration{0, 1, 5*time.Second + 123456789, 3 * time.Hour} {
		f, err := ParseHeader(bytes.NewReader(Header(4, 48000, start, 12)))
		if err != nil || !f.HasStart || f.Start != start || f.DataOffset != headerSize || f.DataBytes != 12 {
			t.Fatalf("start %v: %+v, %v", start, f, err)
		}
	}
	h := Header(2, 16000, time.Second, 6)
	old := append(append([]byte(nil), h[:60]...), h[76:]...)
	binary.LittleEndian.PutUint32(old[4:], uint32(len(old)-8+6))
	f, err := ParseHeader(bytes.NewReader(old))
	if err != nil || f.HasStart || f.DataOffset != 68 || f.Channels != 2 || f.Rate != 16000 {
		t.Fatalf("header without a start chunk: %+v, %v", f, err)
	}
}

func TestRepairEmpty(t *testing.T) {
	dir := t.TempDir()
	for _, content := range [][]byte{nil, []byte("RIFF"), Header(4, 48000, 0, 0)} {
		part := filepath.Join(dir, Name(1, 0)+PartSuffix)
		if err := os.WriteFile(part, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Repair(part); !errors.Is(err, ErrEmpty) {
			t.Fatalf("repair of %d bytes: %v", len(content), err)
		}
		if _, err := os.Stat(part); !os.IsNotExist(err) {
			t.Fatal("empty file kept")
		}
	}
}

func TestEncode24(t *testing.T) {
	got := Encode24(nil, []float32{0, 1, -1, 2, float32(math.NaN()), 0.5})
	want := []byte{0, 0, 0, 0xff, 0xff, 0x7f, 0, 0, 0x80, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0x40}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode24 = % x", got)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(Header(4, 48000, 0, 1200))
	f.Add(Header(1, 8000, 0, 0))
	f.Add(Header(2, 16000, 5*time.Second+1, 6))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEjunk\x02\x00\x00\x00abfmt "))
	f.Fuzz(func(t *testing.T, b []byte) {
		format, err := ParseHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		if format.Channels < 1 || format.Channels > 32 || format.Rate < 1 || format.DataOffset > int64(len(b)) {
			t.Fatalf("accepted %+v", format)
		}
	})
}
