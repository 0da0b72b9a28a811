package h264

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSplitAnnexB(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want [][]byte
		err  bool
	}{
		{"four byte start codes", []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2}, [][]byte{{0x67, 1}, {0x68, 2}}, false},
		{"three byte start codes", []byte{0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2}, [][]byte{{0x67, 1}, {0x68, 2}}, false},
		{"leading and trailing zeros", []byte{0, 0, 0, 0, 0, 1, 0x65, 3, 0, 0, 0, 0, 0, 1, 0x41, 0, 0}, [][]byte{{0x65, 3}, {0x41}}, false},
		{"empty units dropped", []byte{0, 0, 1, 0, 0, 1, 0x09, 0xf0, 0, 0, 1}, [][]byte{{0x09, 0xf0}}, false},
		{"emulation prevention kept", []byte{0, 0, 1, 0x65, 0, 0, 3, 1, 7}, [][]byte{{0x65, 0, 0, 3, 1, 7}}, false},
		{"no start code", []byte{0x67, 1, 2}, nil, true},
		{"garbage before start code", []byte{5, 0, 0, 1, 0x67}, nil, true},
		{"empty", nil, nil, true},
		{"only a start code", []byte{0, 0, 0, 1}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitAnnexB(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %x, want %x", got, tt.want)
			}
		})
	}
}

func TestIsIDRAndFindParams(t *testing.T) {
	sps, pps, idr, p := []byte{0x67, 1}, []byte{0x68, 2}, []byte{0x65, 0x88}, []byte{0x41, 0x9a}
	tests := []struct {
		name     string
		au       [][]byte
		idr      bool
		sps, pps []byte
	}{
		{"idr with params", [][]byte{sps, pps, idr}, true, sps, pps},
		{"p slice", [][]byte{p}, false, nil, nil},
		{"empty unit is ignored", [][]byte{{}, p}, false, nil, nil},
		{"params only", [][]byte{pps, sps, {0x67, 9}}, false, sps, pps},
		{"nothing", nil, false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsIDR(tt.au); got != tt.idr {
				t.Errorf("IsIDR = %v, want %v", got, tt.idr)
			}
			s, q := FindParams(tt.au)
			if !bytes.Equal(s, tt.sps) || !bytes.Equal(q, tt.pps) {
				t.Errorf("FindParams = %x %x, want %x %x", s, q, tt.sps, tt.pps)
			}
		})
	}
}

// ffmpegStream encodes a test clip to an Annex-B file and returns its path.
func ffmpegStream(t testing.TB, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "clip.h264")
	base := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "2",
		"-c:v", "libx264", "-g", "30", "-bsf:v", "h264_mp4toannexb"}
	base = append(base, args...)
	base = append(base, "-f", "h264", "-y", out)
	cmd := exec.Command("ffmpeg", base...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

func TestParseParams(t *testing.T) {
	b, err := os.ReadFile(ffmpegStream(t, "-frames:v", "1"))
	if err != nil {
		t.Fatal(err)
	}
	nalus, err := SplitAnnexB(b)
	if err != nil {
		t.Fatal(err)
	}
	sps, pps := FindParams(nalus)
	p, err := ParseParams(sps, pps)
	if err != nil {
		t.Fatal(err)
	}
	if p.Width != 640 || p.Height != 360 {
		t.Fatalf("size %dx%d, want 640x360", p.Width, p.Height)
	}
	if !bytes.Equal(p.SPS, sps) || !bytes.Equal(p.PPS, pps) {
		t.Fatal("params do not hold the parameter sets")
	}

	bad := []struct {
		name     string
		sps, pps []byte
	}{
		{"no sps", nil, pps},
		{"no pps", sps, nil},
		{"sps is a pps", pps, pps},
		{"pps is an sps", sps, sps},
		{"truncated sps", sps[:3], pps},
		{"truncated pps", sps, pps[:1]},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseParams(tt.sps, tt.pps); err == nil {
				t.Fatal("no error")
			} else {
				t.Log(err)
			}
		})
	}
}

func annexB(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

func readAll(r *AnnexBReader) ([][][]byte, error) {
	var aus [][][]byte
	for {
		au, err := r.Next()
		if err == io.EOF {
			return aus, nil
		}
		if err != nil {
			return aus, err
		}
		aus = append(aus, au)
	}
}

func TestAnnexBReaderGrouping(t *testing.T) {
	var (
		aud   = []byte{0x09, 0xf0}
		sps   = []byte{0x67, 0x42, 0xc0, 0x1e}
		pps   = []byte{0x68, 0xce, 0x3c, 0x80}
		sei   = []byte{0x06, 0x05, 0x01, 0x80}
		idr0  = []byte{0x65, 0x88, 0x84}       // first_mb_in_slice 0
		idr1  = []byte{0x65, 0x04, 0x21, 0x12} // first_mb_in_slice > 0
		p0    = []byte{0x41, 0x9a, 0x02}
		p1    = []byte{0x41, 0x02, 0x9a}
		eos   = []byte{0x0a}
		fill  = []byte{0x0c, 0xff, 0xff, 0x80}
		other = []byte{0x0d, 0x80}
	)
	tests := []struct {
		name string
		aus  [][][]byte
	}{
		{"x264 style", [][][]byte{{sps, pps, sei, idr0}, {p0}, {p0}, {sps, pps, idr0}, {p0}}},
		{"with delimiters", [][][]byte{{aud, sps, pps, idr0}, {aud, p0}, {aud, p0, fill}}},
		{"several slices", [][][]byte{{sps, pps, idr0, idr1, idr1}, {p0, p1}, {sei, p0, p1, p1}}},
		{"end of sequence stays", [][][]byte{{idr0, eos}, {sps, pps, idr0, other}}},
		{"leading params only", [][][]byte{{sps, pps, sei, sps}}},
		{"slice without params", [][][]byte{{p1}, {p0}}},
	}
	for _, tt := range tests {
		var flat [][]byte
		for _, au := range tt.aus {
			flat = append(flat, au...)
		}
		stream := annexB(flat...)
		readers := map[string]func() io.Reader{
			"whole":    func() io.Reader { return bytes.NewReader(stream) },
			"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
			"data+eof": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
		}
		for rname, mk := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := readAll(NewAnnexBReader(mk()))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.aus) {
					t.Fatalf("got %x\nwant %x", got, tt.aus)
				}
			})
		}
	}
}

func TestAnnexBReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"empty", bytes.NewReader(nil), io.EOF},
		{"zeros only", bytes.NewReader(make([]byte, 100)), io.EOF},
		{"garbage", bytes.NewReader([]byte("hello world")), ErrNoStartCode},
		{"read error", io.MultiReader(bytes.NewReader(annexB([]byte{0x65, 0x88})), iotest.ErrReader(boom)), boom},
		{"stalled reader", &zeroReader{}, io.ErrNoProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewAnnexBReader(tt.r)
			_, err := readAll(r)
			if tt.want == io.EOF {
				if err != nil {
					t.Fatalf("err = %v, want clean end", err)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if _, err2 := r.Next(); err2 == nil {
				t.Fatal("Next after the end returned no error")
			}
		})
	}
}

type zeroReader struct{}

func (*zeroReader) Read([]byte) (int, error) { return 0, nil }

// endless yields a start code followed by an endless NAL unit.
type endless struct{ started bool }

func (e *endless) Read(p []byte) (int, error) {
	if !e.started {
		e.started = true
		return copy(p, []byte{0, 0, 0, 1, 0x65}), nil
	}
	for i := range p {
		p[i] = 0xff
	}
	return len(p), nil
}

func TestAnnexBReaderBoundsHugeUnit(t *testing.T) {
	r := NewAnnexBReader(&endless{})
	_, err := r.Next()
	if err == nil {
		t.Fatal("no error for an endless NAL unit")
	}
	if cap(r.buf) > 3*MaxAccessUnitSize {
		t.Fatalf("buffer grew to %d bytes", cap(r.buf))
	}
}

// repeater streams one GOP many times without holding the result in memory.
type repeater struct {
	gop   []byte
	left  int
	chunk []byte
}

func (r *repeater) Read(p []byte) (int, error) {
	if len(r.chunk) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		r.left--
		r.chunk = r.gop
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

func TestAnnexBReaderFFmpegStream(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"one slice", nil},
		{"four slices", []string{"-x264-params", "slices=4"}},
		{"b frames and aud", []string{"-bf", "2", "-x264-params", "aud=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ffmpegStream(t, tt.args...)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := ffprobeFrames(t, path)
			// The stream is read 30 times over, without ever being held whole,
			// to check that buffering stays bounded.
			const reps = 30
			r := NewAnnexBReader(&repeater{gop: b, left: reps})
			n, idr := 0, 0
			for {
				au, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
				if IsIDR(au) {
					idr++
					if s, p := FindParams(au); s == nil || p == nil {
						t.Fatalf("IDR unit %d lacks SPS or PPS", n)
					}
				}
			}
			if n != reps*len(want) {
				t.Fatalf("%d access units, ffprobe counts %d frames per pass", n, len(want))
			}
			wantIDR := 0
			for _, k := range want {
				if k {
					wantIDR++
				}
			}
			if idr != reps*wantIDR {
				t.Fatalf("%d IDR units, want %d", idr, reps*wantIDR)
			}
			if cap(r.buf) > 1<<20 {
				t.Fatalf("buffer grew to %d bytes", cap(r.buf))
			}
		})
	}
}

// ffprobeFrames returns the key_frame flag of every frame of an H.264 file.
func ffprobeFrames(t testing.TB, path string) []bool {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_frames", "-select_streams", "v",
		"-show_entries", "frame=key_frame,pict_type", "-of", "csv", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var keys []bool
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ",")
		if f[0] != "frame" || len(f) < 3 {
			continue
		}
		keys = append(keys, f[1] == "1")
	}
	return keys
}
