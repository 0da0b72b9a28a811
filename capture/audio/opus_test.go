//go:build cgo

package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/sim"
)

func encodeAll(t *testing.T, cfg EncoderConfig, in []media.PCM) (*Encoder, []media.AudioPacket) {
	t.Helper()
	e, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	var pkts []media.AudioPacket
	emit := func(p media.AudioPacket) { pkts = append(pkts, p) }
	for _, b := range in {
		if err := e.Write(b, emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(emit); err != nil {
		t.Fatal(err)
	}
	return e, pkts
}

// decode has ffmpeg decode an Ogg Opus file to interleaved float PCM; any
// message from ffmpeg fails the test.
func decode(t *testing.T, path string, channels int) []float32 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path,
		"-f", "f32le", "-ac", strconv.Itoa(channels), "-ar", "48000", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg decode %s: %v: %s", path, err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Fatalf("ffmpeg decode %s: %s", path, stderr.Bytes())
	}
	out := make([]float32, stdout.Len()/4)
	if err := binary.Read(&stdout, binary.LittleEndian, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEncodeDecodesWithFFmpeg(t *testing.T) {
	const seconds = 3
	mic := sim.NewMicArray(sim.MicConfig{Seed: 1}).Render(seconds * 48000)
	tests := []struct {
		name    string
		in      media.PCM
		block   int
		tone    bool
		bitrate int
	}{
		{"sine-mono", sine(seconds*48000, 1, 48000, 1000, 0.5), 441, true, 0},
		{"sine-stereo", sine(seconds*48000, 2, 48000, 1000, 0.5), 1000, true, 0},
		{"mic-mono", Downmix(mic, 1), 480, false, 24000},
		{"mic-stereo", Downmix(mic, 2), 4800, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := tt.in.Channels
			e, pkts := encodeAll(t, EncoderConfig{Channels: ch, BitrateBps: tt.bitrate}, blocks(tt.in, tt.block))
			if want := (seconds*48000 + 959) / 960; len(pkts) != want {
				t.Fatalf("%d packets, want %d", len(pkts), want)
			}
			path := filepath.Join(t.TempDir(), tt.name+".opus")
			writeOggOpus(t, path, ch, e.Lookahead(), pkts, int64(tt.in.Frames()))
			got := decode(t, path, ch)
			frames := len(got) / ch
			if d := time.Duration(frames-tt.in.Frames()) * time.Second / 48000; d.Abs() > 40*time.Millisecond {
				t.Errorf("decoded %d frames, input %d (off by %v)", frames, tt.in.Frames(), d)
			}
			for c := range ch {
				dec := make([]float64, 0, frames)
				src := make([]float64, 0, frames)
				for i := 4800; i < min(frames, tt.in.Frames())-4800; i++ {
					dec = append(dec, float64(got[i*ch+c]))
					src = append(src, float64(tt.in.Samples[i*ch+c]))
				}
				in, out := rms(src), rms(dec)
				if db := 20 * math.Log10(out/in); math.Abs(db) > 3 {
					t.Errorf("channel %d: decoded RMS %.4f vs input %.4f (%.1f dB)", c, out, in, db)
				}
				if tt.tone {
					if f := goertzel(dec, 48000, 1000); f < 0.95 {
						t.Errorf("channel %d: 1 kHz holds %.3f of the decoded power, want > 0.95", c, f)
					}
				}
			}
		})
	}
}

func TestEncodePTSFraming(t *testing.T) {
	const start = 5*time.Second + 123*time.Microsecond
	// 2880: the daemon's 60 ms blocks; 24000: more packets in one block
	// than the encoder thread's ring holds.
	for _, block := range []int{1, 441, 960, 1000, 2880, 4800, 24000} {
		for _, total := range []int{48000, 48000 + 17} {
			in := sine(total, 1, 48000, 440, 0.3)
			in.PTS = start
			_, pkts := encodeAll(t, EncoderConfig{}, blocks(in, block))
			if want := (total + 959) / 960; len(pkts) != want {
				t.Errorf("block %d, %d samples: %d packets, want %d", block, total, len(pkts), want)
			}
			// However the input is cut, the packets are the same.
			_, ref := encodeAll(t, EncoderConfig{}, blocks(in, 960))
			for k := range min(len(pkts), len(ref)) {
				if !bytes.Equal(pkts[k].Data, ref[k].Data) {
					t.Fatalf("block %d: packet %d differs from the one encoded from 20 ms blocks", block, k)
				}
			}
			for k, p := range pkts {
				if want := start + time.Duration(k)*20*time.Millisecond; p.PTS != want {
					t.Fatalf("block %d: packet %d PTS %v, want %v", block, k, p.PTS, want)
				}
				if p.Samples != 960 || p.Channels != 1 || len(p.Data) == 0 || p.Duration() != 20*time.Millisecond {
					t.Fatalf("block %d: packet %d: %d samples, %d ch, %d bytes", block, k, p.Samples, p.Channels, len(p.Data))
				}
			}
		}
	}
}

func TestEncodeDiscontinuity(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	type block struct {
		pts    time.Duration
		frames int
	}
	tests := []struct {
		name    string
		in      []block
		wantPTS []time.Duration // packet PTS after Flush
	}{
		{
			// 1000 samples: one packet, then 40 samples padded at the gap.
			name:    "gap restarts at the new PTS",
			in:      []block{{0, 1000}, {ms(500), 1000}},
			wantPTS: []time.Duration{0, ms(20), ms(500), ms(520)},
		},
		{
			// 3000 samples: 3 packets + 120 samples, all on the sample count.
			name:    "jitter within a packet keeps counting samples",
			in:      []block{{0, 1000}, {ms(35), 1000}, {ms(25), 1000}},
			wantPTS: []time.Duration{0, ms(20), ms(40), ms(60)},
		},
		{
			// The second block starts 30.8 ms before the first one ended:
			// the pending 40 samples are padded into the packet at 120 ms,
			// the block's first 50 ms (up to 140 ms) are dropped and
			// framing restarts there.
			name:    "overlap is dropped, PTS stays increasing",
			in:      []block{{ms(100), 1000}, {ms(90), 4800}},
			wantPTS: []time.Duration{ms(100), ms(120), ms(140), ms(160), ms(180)},
		},
		{
			name:    "block entirely inside emitted audio is dropped",
			in:      []block{{ms(100), 1000}, {ms(50), 1000}, {ms(140), 960}},
			wantPTS: []time.Duration{ms(100), ms(120), ms(140)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []media.PCM
			for _, b := range tt.in {
				p := sine(b.frames, 1, 48000, 440, 0.3)
				p.PTS = b.pts
				in = append(in, p)
			}
			_, pkts := encodeAll(t, EncoderConfig{}, in)
			var got []time.Duration
			for _, p := range pkts {
				got = append(got, p.PTS)
			}
			if !slices.Equal(got, tt.wantPTS) {
				t.Fatalf("packet PTS %v, want %v", got, tt.wantPTS)
			}
		})
	}
}

func TestEncoderErrors(t *testing.T) {
	for _, cfg := range []EncoderConfig{
		{Channels: 3}, {Channels: -1}, {BitrateBps: 1000}, {BitrateBps: 600000},
		{Complexity: 11}, {Complexity: -1},
	} {
		if e, err := NewEncoder(cfg); err == nil {
			e.Close()
			t.Errorf("NewEncoder(%+v) accepted", cfg)
		}
	}
	e, err := NewEncoder(EncoderConfig{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if c := e.Config(); c.BitrateBps != 64000 || c.Complexity != 10 {
		t.Errorf("defaults %+v", c)
	}
	// mediacommon's fMP4 writer hard-codes a pre-skip of 312.
	if la := e.Lookahead(); la != 312 {
		t.Errorf("lookahead %d, want 312", la)
	}
	emit := func(media.AudioPacket) {}
	for _, p := range []media.PCM{sine(960, 1, 48000, 1, 1), sine(960, 2, 44100, 1, 1)} {
		if err := e.Write(p, emit); err == nil {
			t.Errorf("Write of %d ch at %d Hz accepted", p.Channels, p.Rate)
		}
	}
	e.Close()
	if err := e.Write(sine(960, 2, 48000, 1, 1), emit); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestEncodeAllocations(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	in := sim.NewMicArray(sim.MicConfig{Channels: 1}).Render(480 * 400)
	bs := blocks(in, 480)
	i := 0
	emit := func(media.AudioPacket) {}
	allocs := testing.AllocsPerRun(len(bs)-1, func() {
		if err := e.Write(bs[i], emit); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs > 0.02 {
		t.Errorf("%.3f allocations per 10 ms block, want almost none", allocs)
	}
}

// BenchmarkEncodeMono48k encodes speech at 32 kbit/s, complexity 10; one
// op is one 20 ms packet.
func BenchmarkEncodeMono48k(b *testing.B) {
	e, err := NewEncoder(EncoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	in := Downmix(sim.NewMicArray(sim.MicConfig{Seed: 1}).Render(48000*10), 1)
	bs := blocks(in, 960)
	var bytes int
	emit := func(p media.AudioPacket) { bytes += len(p.Data) }
	i := 0
	for b.Loop() {
		blk := bs[i%len(bs)]
		blk.PTS = samplesToDur(int64(i) * 960)
		if err := e.Write(blk, emit); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i)/float64(20*time.Millisecond)*100, "%realtime")
	b.ReportMetric(float64(bytes*8)/(float64(i)*0.02), "bit/s")
}
