package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/pacer"
)

// Geometry of the simulated array: a linear array with micSpacing metres
// between capsules and a talker micAzimuth radians off broadside.
const (
	micSpacing       = 0.035
	micAzimuth       = 40 * math.Pi / 180
	speedOfSound     = 343.0
	micNoiseRMS      = 0.001 // about -60 dBFS per channel, independent
	micMaxLag        = 500 * time.Millisecond
	micVoiceGain     = 80
	micFormantUpdate = 64 // samples between formant coefficient updates
	sqrt3            = 1.7320508075688772
)

// MicConfig configures a simulated microphone array.
type MicConfig struct {
	Channels int           // default 4
	Rate     int           // default 48000
	Block    time.Duration // default 10ms
	Epoch    time.Time     // zero of the PTS timeline; default the start of Run
	Seed     int64         // the same seed gives the same signal
	NoiseRMS float64       // independent noise per channel; 0 means 0.001 (about -60 dBFS)
}

// MicArray is a synthetic microphone array: one talker (a glottal pulse
// train through formant resonators, in syllables and phrases with pauses)
// reaching each capsule with its own delay, plus independent noise per
// capsule.
type MicArray struct {
	cfg         MicConfig
	blockFrames int
	delays      []int

	voice micVoice
	ring  []float32 // recent dry voice samples, for the per-channel delays
	ringW int
	noise *rand.Rand
	pos   int64 // frames rendered; the PTS of the next frame is pos/Rate
	buf   []float32
	clean []float32 // when set, render writes the dry voice here
}

// NewMicArray returns a simulated array with cfg's defaults filled in.
func NewMicArray(cfg MicConfig) *MicArray {
	if cfg.Channels <= 0 {
		cfg.Channels = 4
	}
	if cfg.Rate <= 0 {
		cfg.Rate = media.AudioRate
	}
	if cfg.Block <= 0 {
		cfg.Block = 10 * time.Millisecond
	}
	if cfg.NoiseRMS <= 0 {
		cfg.NoiseRMS = micNoiseRMS
	}
	m := &MicArray{
		cfg:         cfg,
		blockFrames: max(1, int(int64(cfg.Block)*int64(cfg.Rate)/int64(time.Second))),
		delays:      make([]int, cfg.Channels),
		noise:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6e6f697365)),
	}
	step := micSpacing * math.Sin(micAzimuth) / speedOfSound * float64(cfg.Rate)
	for c := range m.delays {
		m.delays[c] = int(math.Round(float64(c) * step))
	}
	m.ring = make([]float32, m.delays[len(m.delays)-1]+1)
	m.voice.init(cfg.Rate, uint64(cfg.Seed))
	return m
}

// Format returns the channel count and sample rate.
func (m *MicArray) Format() (channels, rate int) { return m.cfg.Channels, m.cfg.Rate }

// Delays returns the delay of the talker's signal at each channel, in
// samples, relative to channel 0.
func (m *MicArray) Delays() []int { return append([]int(nil), m.delays...) }

// Render returns the next n frames of the signal in a new block, without
// pacing. Its PTS continues from the previous Render (0 at first). Render
// and Run must not be used at the same time.
func (m *MicArray) Render(n int) media.PCM {
	p := media.PCM{Samples: make([]float32, n*m.cfg.Channels), Channels: m.cfg.Channels, Rate: m.cfg.Rate}
	p.PTS = m.render(p.Samples)
	return p
}

// RenderClean is Render that also returns the dry talker's signal of the
// same frames: what channel 0 hears without noise (the other channels hear
// it later by Delays).
func (m *MicArray) RenderClean(n int) (media.PCM, []float32) {
	m.clean = make([]float32, n)
	defer func() { m.clean = nil }()
	p := m.Render(n)
	return p, m.clean
}

// render fills dst with the next frames and returns the PTS of the first.
func (m *MicArray) render(dst []float32) time.Duration {
	pts := m.pts(m.pos)
	ch := m.cfg.Channels
	ring := len(m.ring)
	for f := 0; f+ch <= len(dst); f += ch {
		m.ringW++
		if m.ringW == ring {
			m.ringW = 0
		}
		m.ring[m.ringW] = m.voice.next()
		if m.clean != nil {
			m.clean[f/ch] = m.ring[m.ringW]
		}
		for c, d := range m.delays {
			i := m.ringW - d
			if i < 0 {
				i += ring
			}
			n := (m.noise.Float32()*2 - 1) * float32(m.cfg.NoiseRMS*sqrt3)
			dst[f+c] = m.ring[i] + n
		}
	}
	m.pos += int64(len(dst) / ch)
	return pts
}

func (m *MicArray) pts(frame int64) time.Duration {
	return media.FramesToDur(frame, m.cfg.Rate)
}

// Run delivers blocks of cfg.Block to sink, paced in real time: the block
// whose first sample has PTS t is delivered at Epoch+t, not before. Blocks
// start with the one holding the current time. If sink falls more than
// half a second behind, the blocks in between are skipped, as a real device
// overruns, and the PTS jumps. The block's Samples are reused after sink
// returns: sink must copy what it keeps. Run returns ctx.Err() when ctx
// ends.
func (m *MicArray) Run(ctx context.Context, sink func(media.PCM)) error {
	epoch := m.cfg.Epoch
	if epoch.IsZero() {
		epoch = time.Now()
	}
	if cap(m.buf) < m.blockFrames*m.cfg.Channels {
		m.buf = make([]float32, m.blockFrames*m.cfg.Channels)
	}
	buf := m.buf[:m.blockFrames*m.cfg.Channels]
	bf := int64(m.blockFrames)
	blockAt := func(el time.Duration) int64 {
		// Index of the block holding elapsed time el.
		return max(0, int64(el)/int64(time.Second)*int64(m.cfg.Rate)/bf+
			(int64(el)%int64(time.Second))*int64(m.cfg.Rate)/int64(time.Second)/bf)
	}
	k := blockAt(time.Since(epoch))
	pace := pacer.New(ctx)
	defer pace.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		due := m.pts(k * bf)
		if err := pace.Until(epoch.Add(due)); err != nil {
			return err
		}
		if time.Since(epoch)-due > micMaxLag {
			k = blockAt(time.Since(epoch))
		}
		m.pos = k * bf
		p := media.PCM{Samples: buf, Channels: m.cfg.Channels, Rate: m.cfg.Rate}
		p.PTS = m.render(buf)
		sink(p)
		k++
	}
}

// micVowels holds the first three formant frequencies (Hz) of a few micVowels.
var micVowels = [...][3]float64{
	{730, 1090, 2440}, // a
	{530, 1840, 2480}, // e
	{270, 2290, 3010}, // i
	{570, 840, 2410},  // o
	{300, 870, 2240},  // u
	{660, 1720, 2410}, // ae
}

// micFormantBW is the bandwidth (Hz) of each formant.
var micFormantBW = [3]float64{80, 100, 140}

// micVoice synthesises a speech-like signal one sample at a time.
type micVoice struct {
	rate float64
	rng  *rand.Rand

	left, length int  // samples left in, and length of, the current segment
	pause        bool // current segment is a pause
	syllables    int  // syllables left in the phrase
	f0a, f0b     float64
	from, to     [3]float64 // formants at the start and the target of the syllable

	phase    float64
	glottal  float64       // one-pole low-pass state of the source
	prev     float64       // last resonator output, for the radiation difference
	res      [3][2]float64 // resonator states y[n-1], y[n-2]
	coef     [3][3]float64 // per resonator: b0, a1, a2
	sinceUpd int
}

func (v *micVoice) init(rate int, seed uint64) {
	v.rate = float64(rate)
	v.rng = rand.New(rand.NewPCG(seed, 0x766f696365))
	v.to = micVowels[0]
	v.pause = true
	v.length = rate / 4
	v.left = v.length
}

// nextSegment starts the next syllable or pause.
func (v *micVoice) nextSegment() {
	r := v.rng
	if v.pause || v.syllables > 0 {
		if v.pause {
			v.syllables = 3 + r.IntN(6) // 3-8 syllables per phrase
		}
		v.syllables--
		v.pause = false
		// 3-5 syllables per second.
		v.length = int(v.rate / (3 + 2*r.Float64()))
		base := 100 + 120*r.Float64()
		v.f0a, v.f0b = base, base*(0.85+0.3*r.Float64())
		v.from = v.to
		v.to = micVowels[r.IntN(len(micVowels))]
	} else {
		v.pause = true
		v.length = int(v.rate * (0.3 + 0.5*r.Float64()))
	}
	v.left = v.length
	v.sinceUpd = micFormantUpdate
}

func (v *micVoice) next() float32 {
	if v.left == 0 {
		v.nextSegment()
	}
	t := 1 - float64(v.left)/float64(v.length)
	v.left--
	if v.pause {
		v.glottal *= 0.9
		return float32(v.step(0))
	}
	if v.sinceUpd >= micFormantUpdate {
		v.sinceUpd = 0
		k := min(1, t/0.3) // glide from the previous vowel
		for i := range 3 {
			f := v.from[i] + (v.to[i]-v.from[i])*k
			rr := math.Exp(-math.Pi * micFormantBW[i] / v.rate)
			v.coef[i] = [3]float64{1 - rr, 2 * rr * math.Cos(2*math.Pi*f/v.rate), -rr * rr}
		}
	}
	v.sinceUpd++
	f0 := v.f0a + (v.f0b-v.f0a)*t
	v.phase += f0 / v.rate
	exc := 0.0
	if v.phase >= 1 {
		v.phase--
		exc = 1
	}
	env := math.Sin(math.Pi * t)
	v.glottal = 0.9*v.glottal + exc*env
	src := v.glottal + 0.02*env*(v.rng.Float64()*2-1)
	if t < 0.08 { // consonant onset: a short noise burst
		src += 0.15 * (1 - t/0.08) * (v.rng.Float64()*2 - 1)
	}
	return float32(v.step(src))
}

// step runs x through the formant cascade and the radiation difference.
func (v *micVoice) step(x float64) float64 {
	for i := range v.res {
		c, s := v.coef[i], &v.res[i]
		y := c[0]*x + c[1]*s[0] + c[2]*s[1]
		s[1], s[0] = s[0], y
		x = y
	}
	out := (x - v.prev) * micVoiceGain
	v.prev = x
	return max(-1, min(1, out))
}
