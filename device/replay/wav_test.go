package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
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

// ffmpegWAV has ffmpeg write a 440 Hz tone as a WAV file and returns its
// path and ffmpeg's own decoding of it to 32-bit float.
func ffmpegWAV(t *testing.T, rate, channels int, codec string, seconds string) (string, []float32) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, codec+".wav")
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-v", "error", "-y"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ffmpeg %v: %v: %s", args, err, stderr.Bytes())
		}
		return stdout.Bytes()
	}
	run("-f", "lavfi", "-i", "sine=f=440:r="+strconv.Itoa(rate), "-t", seconds,
		"-ac", strconv.Itoa(channels), "-c:a", codec, path)
	raw := run("-i", path, "-f", "f32le", "-c:a", "pcm_f32le", "-")
	want := make([]float32, len(raw)/4)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, want); err != nil {
		t.Fatal(err)
	}
	return path, want
}

func TestParseWAVFromFFmpeg(t *testing.T) {
	tests := []struct {
		codec          string
		rate, channels int
		bits           int
		float          bool
	}{
		{"pcm_s16le", 48000, 4, 16, false},
		{"pcm_s16le", 16000, 1, 16, false},
		{"pcm_s16le", 44100, 2, 16, false},
		{"pcm_s24le", 48000, 2, 24, false},
		{"pcm_s32le", 48000, 4, 32, false},
		{"pcm_f32le", 48000, 4, 32, true},
		{"pcm_f32le", 16000, 1, 32, true},
	}
	for _, tt := range tests {
		name := tt.codec + "-" + strconv.Itoa(tt.rate) + "-" + strconv.Itoa(tt.channels)
		t.Run(name, func(t *testing.T) {
			path, want := ffmpegWAV(t, tt.rate, tt.channels, tt.codec, "2")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := ParseWAV(path, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if f.Channels != tt.channels || f.Rate != tt.rate || f.Bits != tt.bits || f.Float != tt.float {
				t.Fatalf("format %+v, want %d ch %d Hz %d bits float %v", f, tt.channels, tt.rate, tt.bits, tt.float)
			}
			if f.DataBytes != int64(2*tt.rate*f.FrameBytes()) || f.DataOffset+f.DataBytes > int64(len(data)) {
				t.Fatalf("data at %d, %d bytes, in a file of %d", f.DataOffset, f.DataBytes, len(data))
			}
			got := make([]float32, len(want))
			n := f.Decode(got, data[f.DataOffset:f.DataOffset+f.DataBytes])
			if n*tt.channels != len(want) {
				t.Fatalf("decoded %d frames, ffmpeg %d", n, len(want)/tt.channels)
			}
			var peak float32
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-7 {
					t.Fatalf("sample %d: %v, ffmpeg %v", i, got[i], want[i])
				}
				peak = max(peak, got[i])
			}
			if peak < 0.05 {
				t.Fatalf("peak %v: the tone is missing", peak)
			}
		})
	}
}

// wavBuilder writes WAV headers for tests.
type wavBuilder struct {
	tag, channels, rate, bits, blockAlign int
	fmtSize                               int         // 16, 18 or 40
	subTag                                int         // sub-format of an extensible header
	before                                [][2]string // chunks before fmt: id, body
	between                               [][2]string // chunks between fmt and data
	dataSize                              uint32
	data                                  []byte
	noData                                bool
}

func (b wavBuilder) bytes() []byte {
	le := binary.LittleEndian
	chunk := func(out []byte, id string, body []byte) []byte {
		out = append(out, id...)
		out = le.AppendUint32(out, uint32(len(body)))
		out = append(out, body...)
		if len(body)%2 == 1 {
			out = append(out, 0)
		}
		return out
	}
	if b.blockAlign == 0 {
		b.blockAlign = b.channels * b.bits / 8
	}
	if b.fmtSize == 0 {
		b.fmtSize = 16
	}
	var f []byte
	f = le.AppendUint16(f, uint16(b.tag))
	f = le.AppendUint16(f, uint16(b.channels))
	f = le.AppendUint32(f, uint32(b.rate))
	f = le.AppendUint32(f, uint32(b.rate*b.blockAlign))
	f = le.AppendUint16(f, uint16(b.blockAlign))
	f = le.AppendUint16(f, uint16(b.bits))
	if b.fmtSize >= 18 {
		f = le.AppendUint16(f, uint16(b.fmtSize-18))
	}
	if b.fmtSize >= 40 {
		f = le.AppendUint16(f, uint16(b.bits))
		f = le.AppendUint32(f, 0)
		f = le.AppendUint32(f, uint32(b.subTag))
		f = append(f, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71)
	}
	var body []byte
	body = append(body, "WAVE"...)
	for _, c := range b.before {
		body = chunk(body, c[0], []byte(c[1]))
	}
	body = chunk(body, "fmt ", f)
	for _, c := range b.between {
		body = chunk(body, c[0], []byte(c[1]))
	}
	if !b.noData {
		body = append(body, "data"...)
		size := b.dataSize
		if size == 0 {
			size = uint32(len(b.data))
		}
		body = le.AppendUint32(body, size)
		body = append(body, b.data...)
	}
	out := append([]byte("RIFF"), le.AppendUint32(nil, uint32(len(body)))...)
	return append(out, body...)
}

// onlyReader hides Seek, to exercise the streaming skip path.
type onlyReader struct{ io.Reader }

func TestParseWAVHeaders(t *testing.T) {
	pcm16 := wavBuilder{tag: 1, channels: 2, rate: 16000, bits: 16, data: make([]byte, 40)}
	tests := []struct {
		name    string
		b       wavBuilder
		raw     []byte // instead of b
		wantErr string
		check   func(t *testing.T, f WAVFormat)
	}{
		{name: "plain 16-bit", b: pcm16, check: func(t *testing.T, f WAVFormat) {
			if f.Channels != 2 || f.Rate != 16000 || f.Bits != 16 || f.DataOffset != 44 || f.DataBytes != 40 {
				t.Errorf("%+v", f)
			}
		}},
		{name: "unknown chunks skipped, odd size padded", b: func() wavBuilder {
			b := pcm16
			b.before = [][2]string{{"JUNK", "abc"}}
			b.between = [][2]string{{"LIST", "INFOISFT\x05\x00\x00\x00Lavf\x00"}, {"fact", "\x10\x00\x00\x00"}}
			return b
		}(), check: func(t *testing.T, f WAVFormat) {
			if f.DataOffset != 12+12+24+26+12+8 || f.DataBytes != 40 {
				t.Errorf("%+v", f)
			}
		}},
		{name: "extensible float", b: wavBuilder{tag: 0xfffe, subTag: 3, fmtSize: 40, channels: 6, rate: 44100, bits: 32},
			check: func(t *testing.T, f WAVFormat) {
				if !f.Float || f.Channels != 6 || f.Bits != 32 {
					t.Errorf("%+v", f)
				}
			}},
		{name: "18-byte fmt with cbSize 0", b: wavBuilder{tag: 3, fmtSize: 18, channels: 1, rate: 8000, bits: 32},
			check: func(t *testing.T, f WAVFormat) {
				if !f.Float || f.DataOffset != 46 {
					t.Errorf("%+v", f)
				}
			}},
		{name: "unknown data size", b: wavBuilder{tag: 1, channels: 1, rate: 8000, bits: 16, dataSize: math.MaxUint32},
			check: func(t *testing.T, f WAVFormat) {
				if f.DataBytes != -1 {
					t.Errorf("DataBytes %d, want -1", f.DataBytes)
				}
			}},
		{name: "partial frame dropped", b: wavBuilder{tag: 1, channels: 2, rate: 8000, bits: 24, data: make([]byte, 13)},
			check: func(t *testing.T, f WAVFormat) {
				if f.DataBytes != 12 {
					t.Errorf("DataBytes %d, want 12", f.DataBytes)
				}
			}},
		{name: "mp3", b: wavBuilder{tag: 0x55, channels: 2, rate: 44100, bits: 0, blockAlign: 1},
			wantErr: "unsupported format tag 0x55 (MP3)"},
		{name: "mu-law", b: wavBuilder{tag: 7, channels: 1, rate: 8000, bits: 8},
			wantErr: "unsupported format tag 0x7 (mu-law)"},
		{name: "extensible adpcm", b: wavBuilder{tag: 0xfffe, subTag: 2, fmtSize: 40, channels: 1, rate: 8000, bits: 4, blockAlign: 256},
			wantErr: "format tag 0x2 (Microsoft ADPCM)"},
		{name: "8-bit", b: wavBuilder{tag: 1, channels: 1, rate: 8000, bits: 8},
			wantErr: "unsupported 8-bit integer PCM"},
		{name: "64-bit float", b: wavBuilder{tag: 3, channels: 1, rate: 8000, bits: 64},
			wantErr: "unsupported 64-bit float PCM"},
		{name: "no channels", b: wavBuilder{tag: 1, channels: 0, rate: 8000, bits: 16, blockAlign: 2},
			wantErr: "0 channels, want 1 to 32"},
		{name: "33 channels", b: wavBuilder{tag: 1, channels: 33, rate: 8000, bits: 16},
			wantErr: "33 channels"},
		{name: "rate 0", b: wavBuilder{tag: 1, channels: 1, rate: 0, bits: 16},
			wantErr: "sample rate 0 Hz"},
		{name: "bad block align", b: wavBuilder{tag: 1, channels: 2, rate: 8000, bits: 16, blockAlign: 3},
			wantErr: "block align 3, want 4"},
		{name: "short extensible", b: wavBuilder{tag: 0xfffe, fmtSize: 18, channels: 2, rate: 8000, bits: 16},
			wantErr: "WAVE_FORMAT_EXTENSIBLE fmt chunk of 18 bytes"},
		{name: "no data chunk", b: wavBuilder{tag: 1, channels: 1, rate: 8000, bits: 16, noData: true},
			wantErr: "no data chunk"},
		{name: "data before fmt", raw: []byte("RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00"),
			wantErr: "data chunk before fmt chunk"},
		{name: "no fmt", raw: []byte("RIFF\x04\x00\x00\x00WAVE"), wantErr: "no fmt chunk"},
		{name: "short fmt", raw: []byte("RIFF\x10\x00\x00\x00WAVEfmt \x08\x00\x00\x00\x01\x00\x01\x00"),
			wantErr: "fmt chunk of 8 bytes"},
		// Seeking runs past the end ("no fmt chunk"), reading hits EOF
		// ("skip "JUNK" chunk at 12: unexpected EOF").
		{name: "huge unknown chunk", raw: []byte("RIFF\x10\x00\x00\x00WAVEJUNK\xff\xff\xff\xffxx"),
			wantErr: "chunk"},
		{name: "rf64", raw: []byte("RF64\xff\xff\xff\xffWAVE"), wantErr: "RF64"},
		{name: "not riff", raw: []byte("ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00"), wantErr: "not a RIFF file"},
		{name: "avi", raw: []byte("RIFF\x00\x00\x00\x00AVI "), wantErr: `RIFF type "AVI "`},
		{name: "empty", raw: nil, wantErr: "read RIFF header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if raw == nil && tt.b.tag != 0 {
				raw = tt.b.bytes()
			}
			for _, r := range []io.Reader{bytes.NewReader(raw), onlyReader{bytes.NewReader(raw)}} {
				f, err := ParseWAV("x.wav", r)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "wav x.wav: ") {
						t.Fatalf("error %v, want one naming x.wav and containing %q", err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, f)
			}
		})
	}
}

func TestDecodeWAV(t *testing.T) {
	tests := []struct {
		f    WAVFormat
		src  []byte
		want []float32
	}{
		{WAVFormat{Channels: 1, Bits: 16}, []byte{0, 0x80, 0xff, 0x7f, 0, 0x40}, []float32{-1, 32767.0 / 32768, 0.5}},
		{WAVFormat{Channels: 1, Bits: 24}, []byte{0, 0, 0x80, 0, 0, 0xc0, 0, 0, 0x40}, []float32{-1, -0.5, 0.5}},
		{WAVFormat{Channels: 2, Bits: 32}, []byte{0, 0, 0, 0x80, 0, 0, 0, 0x40}, []float32{-1, 0.5}},
		{WAVFormat{Channels: 1, Bits: 32, Float: true},
			binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(
				binary.LittleEndian.AppendUint32(nil, math.Float32bits(0.25)), math.Float32bits(2)), math.Float32bits(float32(math.NaN()))),
			[]float32{0.25, 1, 0}},
	}
	for _, tt := range tests {
		got := make([]float32, len(tt.want)+3)
		n := tt.f.Decode(got, append(tt.src, 1)) // a trailing partial frame is ignored
		if n*tt.f.Channels != len(tt.want) {
			t.Errorf("%+v: %d frames, want %d", tt.f, n, len(tt.want)/tt.f.Channels)
			continue
		}
		for i, w := range tt.want {
			if got[i] != w {
				t.Errorf("%+v: sample %d = %v, want %v", tt.f, i, got[i], w)
			}
		}
	}
	// dst limits the frames decoded.
	f := WAVFormat{Channels: 2, Bits: 16}
	if n := f.Decode(make([]float32, 3), make([]byte, 16)); n != 1 {
		t.Errorf("decoded %d frames into room for 1.5", n)
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(wavBuilder{tag: 1, channels: 2, rate: 16000, bits: 16, data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}.bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		format, err := ParseWAV("fuzz.wav", bytes.NewReader(data))
		if err != nil {
			return
		}
		if format.Channels < 1 || format.Channels > 32 || format.FrameBytes() <= 0 ||
			format.DataOffset > int64(len(data)) {
			t.Fatalf("accepted %+v", format)
		}
		rest := data[format.DataOffset:]
		if format.DataBytes >= 0 && format.DataBytes < int64(len(rest)) {
			rest = rest[:format.DataBytes]
		}
		dst := make([]float32, 64*format.Channels)
		for len(rest) > 0 {
			n := format.Decode(dst, rest)
			if n == 0 {
				break
			}
			for _, v := range dst[:n*format.Channels] {
				if !(v >= -1 && v <= 1) {
					t.Fatalf("sample %v out of range", v)
				}
			}
			rest = rest[n*format.FrameBytes():]
		}
	})
}

func TestAudioLoopsFast(t *testing.T) {
	tests := []struct {
		codec          string
		rate, channels int
		block          time.Duration
	}{
		{"pcm_s16le", 48000, 4, 0},
		{"pcm_s32le", 48000, 4, 0},
		{"pcm_f32le", 48000, 2, 7 * time.Millisecond},
		{"pcm_s16le", 16000, 1, 0},
		{"pcm_s24le", 44100, 2, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.codec+"-"+strconv.Itoa(tt.rate), func(t *testing.T) {
			// 0.3031 s: the loop point falls inside a block.
			path, want := ffmpegWAV(t, tt.rate, tt.channels, tt.codec, "0.3031")
			a, err := NewAudio(AudioConfig{Path: path, Pace: PaceFast, Block: tt.block})
			if err != nil {
				t.Fatal(err)
			}
			if ch, rate := a.Format(); ch != tt.channels || rate != tt.rate {
				t.Fatalf("Format() = %d, %d", ch, rate)
			}
			block := tt.block
			if block == 0 {
				block = 10 * time.Millisecond
			}
			blockFrames := int(int64(tt.rate) * int64(block) / int64(time.Second))
			fileFrames := len(want) / tt.channels
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var got []float32
			var k int
			err = a.Run(ctx, func(p media.PCM) {
				if p.Channels != tt.channels || p.Rate != tt.rate || p.Frames() != blockFrames {
					t.Errorf("block %d: %d ch %d Hz %d frames", k, p.Channels, p.Rate, p.Frames())
				}
				wantPTS := time.Duration(k*blockFrames) * time.Second / time.Duration(tt.rate)
				if d := p.PTS - wantPTS; d < -time.Microsecond || d > time.Microsecond {
					t.Errorf("block %d PTS %v, want %v", k, p.PTS, wantPTS)
				}
				got = append(got, p.Samples...)
				k++
				if len(got) >= 3*len(want)+blockFrames*tt.channels {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v, want context.Canceled", err)
			}
			if len(got) < 3*len(want) {
				t.Fatalf("got %d frames, want 3 loops of %d", len(got)/tt.channels, fileFrames)
			}
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i%len(want)])); d > 1e-7 {
					t.Fatalf("frame %d (loop %d) channel %d: %v, want %v",
						i/tt.channels, i/len(want), i%tt.channels, got[i], want[i%len(want)])
				}
			}
		})
	}
}

func TestAudioRealtime(t *testing.T) {
	path, _ := ffmpegWAV(t, 48000, 4, "pcm_s16le", "0.1")
	epoch := time.Now()
	a, err := NewAudio(AudioConfig{Path: path, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	var first time.Duration
	err = a.Run(ctx, func(p media.PCM) {
		at := time.Since(epoch)
		if at < p.PTS {
			t.Errorf("block with PTS %v delivered early, at %v", p.PTS, at)
		}
		if n == 0 {
			// Run begins with the block holding the current time: the
			// first at or after 0, depending on how long set-up took.
			if first = p.PTS; first%(10*time.Millisecond) != 0 || first > at {
				t.Errorf("first block PTS %v at %v, want a block boundary not after now", first, at)
			}
		}
		if want := first + time.Duration(n)*10*time.Millisecond; p.PTS != want {
			t.Errorf("block %d PTS %v, want %v (blocks follow each other)", n, p.PTS, want)
		}
		if n++; n == 25 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || n != 25 {
		t.Fatalf("Run returned %v after %d blocks, want context.Canceled after 25", err, n)
	}
}

func TestNewAudioErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"missing", filepath.Join(dir, "nope.wav"), "nope.wav"},
		{"text", write("text.wav", []byte("hello, this is not audio")), "not a RIFF file"},
		{"empty data", write("empty.wav", wavBuilder{tag: 1, channels: 1, rate: 8000, bits: 16}.bytes()), "no samples"},
		{"mp3", write("mp3.wav", wavBuilder{tag: 0x55, channels: 1, rate: 8000, blockAlign: 1}.bytes()), "(MP3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAudio(AudioConfig{Path: tt.path})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("error %v, want one naming %s and containing %q", err, tt.path, tt.wantErr)
			}
		})
	}
}

func TestAudioTruncatedFile(t *testing.T) {
	// The header promises 400 bytes, the file holds 10 frames and a half.
	b := wavBuilder{tag: 1, channels: 1, rate: 8000, bits: 16, dataSize: 400, data: make([]byte, 21)}
	for i := range 10 {
		b.data[2*i+1] = byte(i + 1) // frame i = (i+1)*256
	}
	path := filepath.Join(t.TempDir(), "short.wav")
	if err := os.WriteFile(path, b.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewAudio(AudioConfig{Path: path, Pace: PaceFast, Block: time.Millisecond * 3 / 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []float32
	a.Run(ctx, func(p media.PCM) {
		if got = append(got, p.Samples...); len(got) >= 36 {
			cancel()
		}
	})
	for i, v := range got {
		if want := float32(i%10+1) * 256 / 32768; v != want {
			t.Fatalf("sample %d = %v, want %v", i, v, want)
		}
	}
}
