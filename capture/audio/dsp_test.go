package audio

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/sim"
)

func TestDownmix(t *testing.T) {
	in := media.PCM{
		Samples: []float32{
			0.1, 0.2, 0.3, 0.4,
			-1, -1, 1, 1,
		},
		Channels: 4, Rate: 16000, PTS: 7 * time.Second,
	}
	tests := []struct {
		name string
		in   media.PCM
		out  int
		want []float32
	}{
		{"4 to mono", in, 1, []float32{0.25, 0}},
		{"4 to stereo", in, 2, []float32{0.15, 0.35, -1, 1}},
		{"3 to stereo", media.PCM{Samples: []float32{0.3, 0.6, 0.9}, Channels: 3}, 2,
			[]float32{(0.3 + 0.3) / 1.5, (0.3 + 0.9) / 1.5}},
		{"mono to stereo", media.PCM{Samples: []float32{0.5, -0.5}, Channels: 1}, 2, []float32{0.5, 0.5, -0.5, -0.5}},
		{"stereo to stereo", media.PCM{Samples: []float32{0.5, -0.5}, Channels: 2}, 2, []float32{0.5, -0.5}},
		{"stereo to mono", media.PCM{Samples: []float32{0.5, -0.25}, Channels: 2}, 1, []float32{0.125}},
		{"clamped count 0", media.PCM{Samples: []float32{0.5, -0.25}, Channels: 2}, 0, []float32{0.125}},
		{"clamped count 6", media.PCM{Samples: []float32{0.5, -0.25}, Channels: 2}, 6, []float32{0.5, -0.25}},
		{"out of range clamped", media.PCM{Samples: []float32{3, -3, 0.5, 0.5}, Channels: 2}, 1, []float32{0, 0.5}},
		{"empty", media.PCM{Channels: 4}, 1, []float32{}},
		{"no channels", media.PCM{Samples: []float32{1}}, 1, []float32{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Downmix(tt.in, tt.out)
			if len(got.Samples) != len(tt.want) {
				t.Fatalf("got %v, want %v", got.Samples, tt.want)
			}
			for i := range got.Samples {
				if math.Abs(float64(got.Samples[i]-tt.want[i])) > 1e-6 {
					t.Fatalf("got %v, want %v", got.Samples, tt.want)
				}
			}
			if got.Rate != tt.in.Rate || got.PTS != tt.in.PTS {
				t.Errorf("rate %d PTS %v, want %d %v", got.Rate, got.PTS, tt.in.Rate, tt.in.PTS)
			}
		})
	}
}

func TestMixerReusesBuffer(t *testing.T) {
	m := &Mixer{Channels: 1}
	in := sim.NewMicArray(sim.MicConfig{}).Render(480)
	m.Mix(in)
	if a := testing.AllocsPerRun(100, func() { m.Mix(in) }); a != 0 {
		t.Errorf("%v allocations per Mix", a)
	}
}

// toneError resamples a tone at freq Hz from rate to 48 kHz in blocks of
// block frames and returns the output and the RMS error (dB relative to the
// tone) against the ideal 48 kHz tone, skipping the first and last 50 ms.
func toneError(t *testing.T, rate, block int, freq float64) (media.PCM, float64) {
	t.Helper()
	r, err := NewResampler(rate, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := sine(rate, 1, rate, freq, 0.5)
	in.PTS = 3 * time.Second
	var out media.PCM
	for i, b := range blocks(in, block) {
		o, err := r.Process(b)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			out = o
			out.Samples = slices.Clone(o.Samples)
			continue
		}
		if want := out.PTS + samplesToDur(int64(out.Frames())); o.PTS != want {
			t.Fatalf("block %d output PTS %v, want %v", i, o.PTS, want)
		}
		out.Samples = append(out.Samples, o.Samples...)
	}
	if out.PTS != in.PTS || out.Rate != 48000 {
		t.Fatalf("output PTS %v rate %d, want %v 48000", out.PTS, out.Rate, in.PTS)
	}
	// All input but the filter's look-ahead has come out.
	if want := 48000 - r.Delay()*48000/rate; out.Frames() < want-2 || out.Frames() > want+2 {
		t.Errorf("%d output frames, want about %d", out.Frames(), want)
	}
	var errSum, sigSum float64
	for i := 2400; i < out.Frames()-2400; i++ {
		want := 0.5 * math.Sin(2*math.Pi*freq*float64(i)/48000)
		d := float64(out.Samples[i]) - want
		errSum += d * d
		sigSum += want * want
	}
	return out, 10 * math.Log10(errSum/sigSum)
}

func TestResampleTone(t *testing.T) {
	tests := []struct {
		rate, block int
		freq        float64
		maxErrDB    float64
	}{
		{16000, 160, 1000, -85},
		{16000, 333, 6000, -80},
		{32000, 320, 1000, -85},
		{44100, 441, 1000, -85},
		{44100, 1000, 15000, -80},
		{22050, 512, 1000, -85},
		{96000, 960, 1000, -85},
	}
	for _, tt := range tests {
		_, e := toneError(t, tt.rate, tt.block, tt.freq)
		if e > tt.maxErrDB {
			t.Errorf("%d Hz, %.0f Hz tone: error %.1f dB, want below %.0f dB", tt.rate, tt.freq, e, tt.maxErrDB)
		}
	}
}

func TestResampleBlockSizeInvariant(t *testing.T) {
	a, _ := toneError(t, 44100, 44100, 1000)
	for _, block := range []int{1, 7, 441, 4410} {
		b, _ := toneError(t, 44100, block, 1000)
		if !slices.Equal(a.Samples, b.Samples) {
			t.Errorf("blocks of %d give other samples than one block", block)
		}
	}
}

func TestResampleMultichannelMatchesMono(t *testing.T) {
	const rate, frames = 44100, 4410
	a, b := sine(frames, 1, rate, 440, 0.5), sine(frames, 1, rate, 3000, 0.25)
	st := media.PCM{Samples: make([]float32, 2*frames), Channels: 2, Rate: rate}
	for i := range frames {
		st.Samples[2*i], st.Samples[2*i+1] = a.Samples[i], b.Samples[i]
	}
	run := func(p media.PCM) []float32 {
		r, err := NewResampler(rate, p.Channels)
		if err != nil {
			t.Fatal(err)
		}
		var out []float32
		for _, blk := range blocks(p, 441) {
			o, err := r.Process(blk)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, o.Samples...)
		}
		return out
	}
	ma, mb, ms := run(a), run(b), run(st)
	if len(ms) != 2*len(ma) {
		t.Fatalf("stereo gave %d frames, mono %d", len(ms)/2, len(ma))
	}
	for i := range ma {
		if d := max(math.Abs(float64(ms[2*i]-ma[i])), math.Abs(float64(ms[2*i+1]-mb[i]))); d > 1e-6 {
			t.Fatalf("frame %d: stereo (%v, %v), mono (%v, %v)", i, ms[2*i], ms[2*i+1], ma[i], mb[i])
		}
	}
}

func TestResampleRejectsImages(t *testing.T) {
	// A 7 kHz tone at 16 kHz has images at 9 and 23 kHz after naive
	// upsampling; a linear interpolator leaves them about 20 dB down.
	out, _ := toneError(t, 16000, 160, 7000)
	x := make([]float64, 0, out.Frames())
	for _, v := range out.Samples[2400 : out.Frames()-2400] {
		x = append(x, float64(v))
	}
	for _, f := range []float64{9000, 23000} {
		if db := 10 * math.Log10(goertzel(x, 48000, f)); db > -70 {
			t.Errorf("image at %.0f Hz: %.1f dB, want below -70", f, db)
		}
	}
}

func TestResamplePassthroughAndErrors(t *testing.T) {
	r, err := NewResampler(48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	in := sine(480, 2, 48000, 1000, 0.5)
	out, err := r.Process(in)
	if err != nil || !slices.Equal(out.Samples, in.Samples) {
		t.Errorf("48 kHz passthrough changed the samples (err %v)", err)
	}
	if _, err := r.Process(sine(480, 1, 48000, 1, 1)); err == nil {
		t.Error("channel mismatch accepted")
	}
	for _, c := range [][2]int{{4000, 1}, {400000, 1}, {48000, 0}, {48000, 33}, {47999, 1}} {
		if _, err := NewResampler(c[0], c[1]); err == nil {
			t.Errorf("NewResampler(%d, %d) accepted", c[0], c[1])
		}
	}
}

func TestResampleGapRestarts(t *testing.T) {
	r, err := NewResampler(16000, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := sine(1600, 1, 16000, 1000, 0.5)
	if _, err := r.Process(a); err != nil {
		t.Fatal(err)
	}
	b := sine(1600, 1, 16000, 1000, 0.5)
	b.PTS = 10 * time.Second
	out, err := r.Process(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.PTS != b.PTS {
		t.Errorf("after a gap output PTS %v, want %v", out.PTS, b.PTS)
	}
}

func TestResampleAllocations(t *testing.T) {
	r, err := NewResampler(44100, 4)
	if err != nil {
		t.Fatal(err)
	}
	bs := blocks(sim.NewMicArray(sim.MicConfig{Rate: 44100}).Render(441*200), 441)
	i := 0
	for range 10 {
		r.Process(bs[i])
		i++
	}
	if a := testing.AllocsPerRun(150, func() { r.Process(bs[i]); i++ }); a != 0 {
		t.Errorf("%v allocations per block", a)
	}
}

func TestMeter(t *testing.T) {
	full := sine(4800, 1, 48000, 1000, 1)
	quiet := sine(4800, 1, 48000, 1000, 0.1)
	square := media.PCM{Samples: make([]float32, 4800), Channels: 1, Rate: 48000}
	for i := range square.Samples {
		square.Samples[i] = 0.5
		if i/24%2 == 1 {
			square.Samples[i] = -0.5
		}
	}
	// Three channels: full-scale sine, -20 dB sine, silence.
	p := media.PCM{Samples: make([]float32, 4800*4), Channels: 4, Rate: 48000}
	for i := range 4800 {
		p.Samples[i*4] = full.Samples[i]
		p.Samples[i*4+1] = quiet.Samples[i]
		p.Samples[i*4+3] = square.Samples[i]
	}
	want := []Level{{0, -3.01}, {-20, -23.01}, {FloorDBFS, FloorDBFS}, {-6.02, -6.02}}

	m := NewMeter(4, 48000)
	if l := m.Levels(); l != nil {
		t.Fatalf("levels before a full window: %v", l)
	}
	bs := blocks(p, 441)
	for _, b := range bs[:len(bs)-1] {
		m.Write(b)
	}
	if l := m.Levels(); l != nil {
		t.Fatalf("levels before a full window: %v", l)
	}
	m.Write(bs[len(bs)-1])
	got := m.Levels()
	if len(got) != 4 {
		t.Fatalf("levels %v", got)
	}
	for c := range want {
		if math.Abs(got[c].PeakDBFS-want[c].PeakDBFS) > 0.05 || math.Abs(got[c].RMSDBFS-want[c].RMSDBFS) > 0.05 {
			t.Errorf("channel %d: %+v, want %+v", c, got[c], want[c])
		}
	}
	// The next window starts afresh.
	m.Write(media.PCM{Samples: make([]float32, 4800*4), Channels: 4, Rate: 48000})
	if got := m.Levels(); got[0].PeakDBFS != FloorDBFS {
		t.Errorf("after a silent window: %+v", got[0])
	}
}

// extremes returns blocks of hostile input: full-scale square waves,
// float extremes, infinities and NaN.
func extremes(channels, frames int) []media.PCM {
	vals := []float32{1, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e30, -1e-30}
	var out []media.PCM
	sq := media.PCM{Samples: make([]float32, frames*channels), Channels: channels}
	for i := range sq.Samples {
		sq.Samples[i] = 1
		if (i/channels)%2 == 1 {
			sq.Samples[i] = -1
		}
	}
	out = append(out, sq)
	for _, v := range vals {
		p := media.PCM{Samples: make([]float32, frames*channels), Channels: channels}
		for i := range p.Samples {
			p.Samples[i] = v
			if i%3 == 0 {
				p.Samples[i] = -v
			}
		}
		out = append(out, p)
	}
	return out
}

// checkBounded fails unless every sample is finite and within [-1, 1].
func checkBounded(t *testing.T, what string, s []float32) {
	t.Helper()
	for i, v := range s {
		if !(v >= -1 && v <= 1) {
			t.Fatalf("%s: sample %d is %v", what, i, v)
		}
	}
}

func checkDSP(t *testing.T, blocks []media.PCM) {
	t.Helper()
	for _, rate := range []int{16000, 44100, 48000} {
		ch := blocks[0].Channels
		r, err := NewResampler(rate, ch)
		if err != nil {
			t.Fatal(err)
		}
		m := NewMeter(ch, rate)
		mix := &Mixer{Channels: 2}
		var pts time.Duration
		for _, b := range blocks {
			b.Rate, b.PTS = rate, pts
			pts += media.FramesToDur(int64(b.Frames()), rate)
			checkBounded(t, "downmix mono", Downmix(b, 1).Samples)
			checkBounded(t, "downmix stereo", mix.Mix(b).Samples)
			o, err := r.Process(b)
			if err != nil {
				t.Fatal(err)
			}
			if rate != 48000 {
				checkBounded(t, "resample", o.Samples)
			}
			m.Write(b)
		}
		for _, l := range m.Levels() {
			for _, v := range []float64{l.PeakDBFS, l.RMSDBFS} {
				if !(v >= FloorDBFS && v <= 0) {
					t.Fatalf("level %+v out of [-120, 0]", l)
				}
			}
		}
	}
}

func TestDSPExtremes(t *testing.T) {
	for _, ch := range []int{1, 2, 4} {
		checkDSP(t, extremes(ch, 2000))
	}
}

func FuzzDSP(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0xbf}, uint8(4))
	f.Add([]byte{0xff, 0xff, 0x7f, 0x7f, 0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chans uint8) {
		ch := int(chans%8) + 1
		s := make([]float32, len(data)/4)
		for i := range s {
			s[i] = math.Float32frombits(uint32(data[4*i]) | uint32(data[4*i+1])<<8 |
				uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24)
		}
		// Repeat the input so that meter windows and filter histories fill.
		var in []media.PCM
		for range 60 {
			in = append(in, media.PCM{Samples: s, Channels: ch})
		}
		checkDSP(t, in)
	})
}

// BenchmarkDownmix4ch mixes 10 ms blocks of the 4-channel array to mono.
func BenchmarkDownmix4ch(b *testing.B) {
	in := sim.NewMicArray(sim.MicConfig{}).Render(480)
	m := &Mixer{Channels: 1}
	for b.Loop() {
		m.Mix(in)
	}
}

// BenchmarkResample44k converts 10 ms mono blocks from 44.1 to 48 kHz.
func BenchmarkResample44k(b *testing.B) {
	r, err := NewResampler(44100, 1)
	if err != nil {
		b.Fatal(err)
	}
	in := Downmix(sim.NewMicArray(sim.MicConfig{Rate: 44100}).Render(441), 1)
	for b.Loop() {
		in.PTS += 10 * time.Millisecond
		r.Process(in)
	}
}

// BenchmarkMeterMono48k meters one second of mono 48 kHz in 60 ms blocks.
func BenchmarkMeterMono48k(b *testing.B) {
	bs := blocks(sine(48000, 1, 48000, 440, 0.5), 2880)
	m := NewMeter(1, 48000)
	for b.Loop() {
		for _, p := range bs {
			m.Write(p)
		}
	}
}
