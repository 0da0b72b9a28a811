package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/array/room"
	"github.com/classcap/classcap/capture/audio"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/sim"
)

// blocks is a microphone that hands over pre-rendered blocks as fast as
// they are taken, then waits for the end.
type blocks struct {
	pcm   media.PCM
	block int
}

func (b *blocks) Format() (int, int) { return b.pcm.Channels, b.pcm.Rate }

func (b *blocks) Run(ctx context.Context, sink func(media.PCM)) error {
	ch := b.pcm.Channels
	for f := 0; f+b.block <= b.pcm.Frames(); f += b.block {
		sink(media.PCM{Samples: b.pcm.Samples[f*ch : (f+b.block)*ch], Channels: ch, Rate: b.pcm.Rate,
			PTS: time.Duration(f) * time.Second / time.Duration(b.pcm.Rate)})
	}
	<-ctx.Done()
	return ctx.Err()
}

// idleCamera delivers nothing.
type idleCamera struct{}

func (idleCamera) Run(ctx context.Context, _ func(media.AccessUnit)) error {
	<-ctx.Done()
	return ctx.Err()
}

// The sim's array (4 capsules 35 mm apart, a talker off broadside, noise at
// each capsule) through the pipeline with the array processing on and off:
// both encode to Opus that ffmpeg decodes, and the processed recording has
// the higher SNR against the talker's clean signal.
func TestArrayProcessingOnSimArray(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	const seconds = 6
	mic := sim.NewMicArray(sim.MicConfig{Channels: 4, Seed: 3, NoiseRMS: 0.03})
	pcm, clean := mic.RenderClean(seconds * media.AudioRate)
	cleanF := make([]float64, len(clean))
	for i, v := range clean {
		cleanF[i] = float64(v)
	}
	// The clean signal is what channel 0 hears: pad it so every recording
	// lags it (the measurement wants a lag of at least 32 samples).
	const pad = 64
	ref := append(make([]float64, pad), cleanF...)
	linear4, err := array.LookupPreset("linear4")
	if err != nil {
		t.Fatal(err)
	}
	snr := map[bool]float64{}
	for _, on := range []bool{false, true} {
		var acfg *array.Config
		if on {
			c := array.Defaults(linear4)
			acfg = &c
		}
		out := &collect{}
		p := New(Config{AudioChannels: 1, AudioBitrateBps: 64000, Array: acfg}, Passthrough(idleCamera{}),
			&blocks{pcm: pcm, block: 960}, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		want := seconds*50 - 2
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, na := out.counts(); na >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 60 s: %d of %d audio packets", len(out.audio), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if c, reason := p.AudioProcessing(); (c != nil) != on || reason != "" {
			t.Errorf("processing %v: AudioProcessing %v, %q", on, c, reason)
		}
		if l, ok := p.ArrayLevels(); ok != on || (on && !l.Speech && l.SpeechDBFS < -60) {
			t.Errorf("processing %v: array levels %+v, %v", on, l, ok)
		}
		cancel()
		<-done
		out.mu.Lock()
		pkts := append([]media.AudioPacket(nil), out.audio...)
		out.mu.Unlock()

		file := filepath.Join(t.TempDir(), "audio.ogg")
		writeOgg(t, file, pkts)
		cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", file, "-f", "f32le", "-ac", "1", "-ar", "48000", "-")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Fatalf("processing %v: ffmpeg cannot decode the recording: %v %s", on, err, stderr.String())
		}
		dec := make([]float32, stdout.Len()/4)
		for i := range dec {
			dec[i] = math.Float32frombits(binary.LittleEndian.Uint32(stdout.Bytes()[4*i:]))
		}
		res, err := room.Measure(ref, append(make([]float32, pad), dec...), media.AudioRate)
		if err != nil {
			t.Fatalf("processing %v: %v", on, err)
		}
		t.Logf("processing %v: %d packets, SNR %.2f dB, segmental %.2f dB", on, len(pkts), res.SNRDB, res.SegSNRDB)
		snr[on] = res.SNRDB
	}
	if snr[true] < snr[false]+3 {
		t.Errorf("SNR with processing %.2f dB, without %.2f dB: want at least 3 dB better", snr[true], snr[false])
	}
}

// writeOgg writes mono Opus packets as an Ogg Opus file (RFC 7845).
func writeOgg(t *testing.T, path string, pkts []media.AudioPacket) {
	t.Helper()
	var table [256]uint32
	for i := range table {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		table[i] = r
	}
	var out bytes.Buffer
	seq := uint32(0)
	page := func(flags byte, granule int64, data []byte) {
		var lacing []byte
		n := len(data)
		for ; n >= 255; n -= 255 {
			lacing = append(lacing, 255)
		}
		lacing = append(lacing, byte(n))
		b := []byte("OggS\x00")
		b = append(b, flags)
		b = binary.LittleEndian.AppendUint64(b, uint64(granule))
		b = binary.LittleEndian.AppendUint32(b, 0x61727279)
		b = binary.LittleEndian.AppendUint32(b, seq)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = append(b, byte(len(lacing)))
		b = append(b, lacing...)
		b = append(b, data...)
		var crc uint32
		for _, c := range b {
			crc = crc<<8 ^ table[byte(crc>>24)^c]
		}
		binary.LittleEndian.PutUint32(b[22:], crc)
		out.Write(b)
		seq++
	}
	head := append([]byte("OpusHead"), 1, 1)
	head = binary.LittleEndian.AppendUint16(head, 0) // pre-skip: none, so the decoded audio keeps the encoder's delay
	head = binary.LittleEndian.AppendUint32(head, media.AudioRate)
	head = append(head, 0, 0, 0)
	page(0x02, 0, head)
	tags := binary.LittleEndian.AppendUint32([]byte("OpusTags"), 8)
	tags = append(tags, "classcap"...)
	page(0, 0, binary.LittleEndian.AppendUint32(tags, 0))
	var granule int64
	for i, p := range pkts {
		granule += int64(p.Samples)
		flags := byte(0)
		if i == len(pkts)-1 {
			flags = 0x04
		}
		page(flags, granule, p.Data)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The chain's output carries the time it was heard: its PTS is the input's
// less the chain's latency, so sound and pictures stay in step.
func TestArrayOutputTimedByLatency(t *testing.T) {
	linear4, err := array.LookupPreset("linear4")
	if err != nil {
		t.Fatal(err)
	}
	c := array.Defaults(linear4)
	var s arrayState
	mix := s.mixer(Config{AudioChannels: 1, Array: &c}, 4, &audio.Mixer{Channels: 1}, slog.New(slog.DiscardHandler))
	if s.chain == nil {
		t.Fatalf("chain not running: %s", s.reason)
	}
	lat := time.Duration(s.chain.Latency()) * time.Second / time.Duration(media.AudioRate)
	if lat <= 0 {
		t.Fatalf("latency %v", lat)
	}
	for _, pts := range []time.Duration{time.Second, time.Second + 20*time.Millisecond} {
		in := media.PCM{Samples: make([]float32, 960*4), Channels: 4, Rate: media.AudioRate, PTS: pts}
		out, err := mix(in)
		if err != nil {
			t.Fatal(err)
		}
		if out.PTS != pts-lat {
			t.Fatalf("input at %v came out at %v, want %v (latency %v)", pts, out.PTS, pts-lat, lat)
		}
	}
}
