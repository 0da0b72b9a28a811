package room

import (
	"math"
	"math/rand/v2"
)

// vowels are the first three formants (Hz) of a few vowels.
var vowels = [...][3]float64{
	{730, 1090, 2440}, {530, 1840, 2480}, {270, 2290, 3010},
	{570, 840, 2410}, {300, 870, 2240}, {660, 1720, 2410},
}

// Speech returns seconds of a deterministic speech-like signal at rate:
// a glottal pulse train with a gliding pitch through three formant
// resonators, in syllables of 200-330 ms grouped into phrases with pauses,
// with short noise bursts for consonants. Its RMS over the whole signal is
// about -26 dBFS.
func Speech(seconds float64, rate int, seed uint64) []float64 {
	n := int(seconds * float64(rate))
	out := make([]float64, n)
	rng := rand.New(rand.NewPCG(seed, 0x73706565))
	fs := float64(rate)
	var res [3][2]float64
	var glottal, phase, prev float64
	i := int(0.2 * fs)
	for i < n {
		syll := 3 + rng.IntN(6)
		for s := 0; s < syll && i < n; s++ {
			length := int(fs / (3 + 2*rng.Float64()))
			v := vowels[rng.IntN(len(vowels))]
			f0a := 100 + 120*rng.Float64()
			f0b := f0a * (0.85 + 0.3*rng.Float64())
			var coef [3][3]float64
			for k := range 3 {
				bw := 80 + 30*float64(k)
				r := math.Exp(-math.Pi * bw / fs)
				coef[k] = [3]float64{1 - r, 2 * r * math.Cos(2*math.Pi*v[k]/fs), -r * r}
			}
			for j := 0; j < length && i < n; j++ {
				t := float64(j) / float64(length)
				phase += (f0a + (f0b-f0a)*t) / fs
				exc := 0.0
				if phase >= 1 {
					phase--
					exc = 1
				}
				env := math.Sin(math.Pi * t)
				glottal = 0.9*glottal + exc*env
				x := glottal + 0.02*env*rng.NormFloat64()
				if t < 0.08 {
					x += 0.15 * (1 - t/0.08) * rng.NormFloat64()
				}
				for k := range res {
					c, st := coef[k], &res[k]
					y := c[0]*x + c[1]*st[0] + c[2]*st[1]
					st[1], st[0] = st[0], y
					x = y
				}
				out[i] = (x - prev) * 40
				prev = x
				i++
			}
		}
		i += int(fs * (0.3 + 0.4*rng.Float64()))
	}
	return out
}
