// Package room renders synthetic rooms for a microphone array (a talker and
// noise, each reaching every capsule with its own fractional delay) and
// measures the speech-to-noise ratio of a processed signal against the
// known clean speech.
//
// Free-field rooms (Diffuse, Directional, Fan): the talker and a point
// noise source are far-field plane waves at their azimuths, each capsule
// getting an exact band-limited delay and no reflection; the "diffuse"
// noise is independent at each capsule (microphone noise, the
// beamformer's best case).
//
// Reverberant rooms (ReverbDiffuse, ReverbDirectional) render through a
// shoebox (Shoebox, Classroom by default: 9 x 7 x 3 m, RT60 0.6 s, the box
// on a wall at 2.2 m, the talker 3 m away and 0.6 m lower). The model is
// Allen and Berkley's image sources: every mirror image of the source
// whose sound arrives within the RT60 (the decay to -60 dB, about 220 000
// images in the classroom), each a Blackman-windowed sinc of 32 taps at
// its exact fractional delay to each capsule, scaled by 1/r and by the
// walls' reflection coefficient once per bounce, so each reflection
// reaches each capsule with its own delay and gain. The reflections are
// high-passed at 80 Hz (positive pulses otherwise pile up at the lowest
// frequencies). The walls' coefficient is set from the target RT60:
// Eyring's formula, corrected by bisection until the T30 of the
// response's own energy decay is the target (uniform walls make the
// shoebox decay slower than Eyring says: 0.91 s instead of 0.6). The
// responses are computed once per render and applied by FFT convolution;
// 20 s on four capsules with a reverberant interferer render in about 2 s.
// The diffuse noise of ReverbDiffuse is a spherically isotropic field:
// pink noise with a coherence of sin(kd)/kd between capsules d apart, so
// at low frequencies the capsules hear nearly the same noise. Limits: the
// walls absorb the same at every frequency and reflect specularly (no
// scattering, no air absorption, no furniture or people), the sources
// are omnidirectional points, the capsules omnidirectional, and the
// tail is as regular as a bare box makes it (real rooms diffuse it).
//
// SNR of a reverberant room: the signal is the talker's direct path and
// its reflections arriving within EarlyMS (50 ms) of it at the capsule
// measured against (Reference: for each capsule its own; a processed
// output against the best capsule's), and everything else is noise: the
// noise, the late reverberation, and whatever a beam does to the early
// reflections. So a single capsule in the classroom measures only 7-8.5 dB
// (depending on the speech) even without noise, and a processor that does
// not dereverberate is capped near there too. The SNR a room is rendered at is
// the reverberant speech's power (early and late) over the noise's at
// the capsules.
//
// Measuring a processed signal: the output is aligned with the reference
// (the clean speech in a free-field room; integer lag by
// cross-correlation, then a fractional lag by maximising the correlation
// with a windowed-sinc shifted copy), the aligned reference is scaled by
// the least-squares gain of each 1 s block (so a slow automatic gain is
// not counted as noise), and everything that remains is noise. SNR is the
// ratio of the fitted speech energy to the residual energy over the whole
// signal; segmental SNR is the mean of per-20 ms-frame SNRs, each clamped
// to [-10, 35] dB, over the frames where the reference is within 40 dB of
// its loudest frame.
package room

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/array/internal/fft"
)

// Noise kinds.
const (
	Diffuse     = "diffuse"     // independent pink noise at each capsule
	Directional = "directional" // pink noise from a point source at another azimuth, plus a little diffuse noise
	Fan         = "fan"         // a fan at another azimuth: hum (a fundamental and harmonics) plus low-passed broadband noise, plus a little diffuse noise
)

// Kinds lists the noise kinds: the free-field ones, then the reverberant.
var Kinds = []string{Diffuse, Directional, Fan, ReverbDiffuse, ReverbDirectional}

// Room is one synthetic scene.
type Room struct {
	Mics          []array.Point
	Rate          int
	TalkerDeg     float64 // talker azimuth
	Noise         string  // one of Kinds
	InterfererDeg float64 // azimuth of the directional noise or the fan
	SNRDB         float64 // speech to noise power at each capsule
	Seed          uint64
	// Space is the room the reverberant kinds render through; nil means
	// Classroom. The free-field kinds ignore it.
	Space *Shoebox
}

// baseDelay (samples) keeps every capsule's delay positive.
const baseDelay = 48

// Render returns the capsule signals, interleaved (one channel per
// capsule), for the clean speech given. The clean speech reaches the
// array's centroid baseDelay samples late. Signals are scaled so the
// loudest sample stays below full scale.
func Render(r Room, speech []float64) ([]float32, error) {
	s, n, err := RenderParts(r, speech)
	if err != nil {
		return nil, err
	}
	for i := range s {
		s[i] += n[i]
	}
	return s, nil
}

// RenderParts is Render with the speech and the noise returned apart
// (their sum is what Render returns).
func RenderParts(r Room, speech []float64) (speechPart, noisePart []float32, err error) {
	m := len(r.Mics)
	if err := array.CheckGeometry(r.Mics); err != nil {
		return nil, nil, err
	}
	rate := float64(r.Rate)
	n := len(speech)
	rng := rand.New(rand.NewPCG(r.Seed, 0x726f6f6d))
	if Reverberant(r.Noise) {
		chans, noise, err := renderReverb(r, speech, rng)
		if err != nil {
			return nil, nil, err
		}
		sp := 0.0
		for c := range chans {
			sp += power(chans[c]) / float64(m)
		}
		s, n := mix(chans, noise, sp, r.SNRDB)
		return s, n, nil
	}
	chans := make([][]float64, m)
	td := array.Delays(r.Mics, r.TalkerDeg, nil)
	for c := range chans {
		chans[c] = Delay(speech, baseDelay+td[c]*rate)
	}
	sp := power(speech)
	noise := make([][]float64, m)
	diffuse := func(scale float64) {
		for c := range noise {
			w := pink(n, rng)
			s := scale / math.Sqrt(power(w))
			for i := range w {
				noise[c][i] += w[i] * s
			}
		}
	}
	for c := range noise {
		noise[c] = make([]float64, n)
	}
	switch r.Noise {
	case Diffuse:
		diffuse(1)
	case Directional, Fan:
		var src []float64
		if r.Noise == Directional {
			src = pink(n, rng)
		} else {
			src = fan(n, rate, rng)
		}
		s := 1 / math.Sqrt(power(src))
		nd := array.Delays(r.Mics, r.InterfererDeg, nil)
		for c := range noise {
			d := Delay(src, baseDelay+nd[c]*rate)
			for i := range d {
				noise[c][i] = d[i] * s
			}
		}
		diffuse(0.1) // -20 dB of microphone and room noise
	default:
		return nil, nil, fmt.Errorf("room: unknown noise %q", r.Noise)
	}
	speechPart, noisePart = mix(chans, noise, sp, r.SNRDB)
	return speechPart, noisePart, nil
}

// mix scales the noise to snrDB under the speech power sp, scales both
// so the loudest sample of their sum stays below full scale, and
// interleaves them.
func mix(chans, noise [][]float64, sp, snrDB float64) (speechPart, noisePart []float32) {
	m := len(chans)
	n := len(chans[0])
	np := 0.0
	for c := range noise {
		np += power(noise[c])
	}
	np /= float64(m)
	k := math.Sqrt(sp / np / math.Pow(10, snrDB/10))
	peak := 0.0
	for c := range chans {
		for i := range chans[c] {
			noise[c][i] *= k
			peak = max(peak, math.Abs(chans[c][i]+noise[c][i]))
		}
	}
	scale := 1.0
	if peak > 0.9 {
		scale = 0.9 / peak
	}
	speechPart = make([]float32, n*m)
	noisePart = make([]float32, n*m)
	for c := range chans {
		for i, v := range chans[c] {
			speechPart[i*m+c] = float32(v * scale)
			noisePart[i*m+c] = float32(noise[c][i] * scale)
		}
	}
	return speechPart, noisePart
}
func power(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return s / float64(max(len(x), 1))
}

// pink returns n samples of pink-ish noise (Paul Kellet's filter on white
// Gaussian noise), high-passed at 50 Hz (a capsule hears no infrasound).
func pink(n int, rng *rand.Rand) []float64 {
	out := make([]float64, n)
	var b0, b1, b2, b3, b4, b5, b6 float64
	for i := range out {
		w := rng.NormFloat64()
		b0 = 0.99886*b0 + w*0.0555179
		b1 = 0.99332*b1 + w*0.0750759
		b2 = 0.96900*b2 + w*0.1538520
		b3 = 0.86650*b3 + w*0.3104856
		b4 = 0.55000*b4 + w*0.5329522
		b5 = -0.7616*b5 - w*0.0168980
		out[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w*0.5362
		b6 = w * 0.115926
	}
	highPass(out, 50, 48000) // 50 Hz at 48 kHz; the cut-off scales with other rates
	return out
}

// fan returns a fan's noise: a 100 Hz hum with harmonics up to 600 Hz
// (half the power) and broadband noise low-passed at about 1 kHz.
func fan(n int, rate float64, rng *rand.Rand) []float64 {
	out := make([]float64, n)
	var lp float64
	a := math.Exp(-2 * math.Pi * 1000 / rate)
	for i := range out {
		t := float64(i) / rate
		hum := 0.0
		for h := 1; h <= 6; h++ {
			hum += math.Sin(2*math.Pi*100*float64(h)*t+float64(h)) / float64(h)
		}
		lp = a*lp + (1-a)*rng.NormFloat64()
		out[i] = hum*0.6 + lp*4
	}
	highPass(out, 50, 48000) // 50 Hz at 48 kHz; the cut-off scales with other rates
	return out
}

// sincHalf bounds the alignment: Measure needs the signal to lag the
// clean speech by at least this much.
const sincHalf = 32

// Delay returns x delayed by d >= 0 samples (fractional allowed): an
// exact band-limited delay, a phase ramp on the FFT of x padded with
// zeros.
func Delay(x []float64, d float64) []float64 {
	size := 2
	for size < len(x)+int(math.Ceil(math.Abs(d)))+4*sincHalf {
		size <<= 1
	}
	p, err := fft.New(size)
	if err != nil {
		panic(err) // size is a power of two
	}
	z := make([]complex64, size)
	for i, v := range x {
		z[i] = complex(float32(v), 0)
	}
	p.Forward(z)
	for k := range z {
		f := k
		if k > size/2 {
			f = k - size
		}
		ph := -2 * math.Pi * float64(f) * d / float64(size)
		if k == size/2 {
			z[k] *= complex(float32(math.Cos(ph)), 0)
			continue
		}
		s, c := math.Sincos(ph)
		z[k] *= complex(float32(c), float32(s))
	}
	p.Inverse(z)
	out := make([]float64, len(x))
	for i := range out {
		out[i] = float64(real(z[i]))
	}
	return out
}

func sinc(t float64) float64 {
	if math.Abs(t) < 1e-12 {
		return 1
	}
	return math.Sin(math.Pi*t) / (math.Pi * t)
}

func blackman(t, n float64) float64 {
	if t < 0 || t > n {
		return 0
	}
	return 0.42 - 0.5*math.Cos(2*math.Pi*t/n) + 0.08*math.Cos(4*math.Pi*t/n)
}
