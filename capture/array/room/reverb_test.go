package room

import (
	"math"
	"testing"

	"github.com/classcap/classcap/capture/array"
)

// schroederRT60 measures a reverberation time from an impulse response:
// Schroeder's backward integration gives the energy decay curve, a line
// fitted to it from -5 to -35 dB gives the decay rate, extrapolated to
// 60 dB (T30).
func schroederRT60(h []float64, rate int) float64 {
	edc := make([]float64, len(h))
	s := 0.0
	for i := len(h) - 1; i >= 0; i-- {
		s += h[i] * h[i]
		edc[i] = s
	}
	var n, sx, sy, sxx, sxy float64
	for i, e := range edc {
		d := 10 * math.Log10(e/edc[0])
		if d > -5 || d < -35 {
			continue
		}
		x := float64(i) / float64(rate)
		n++
		sx += x
		sy += d
		sxx += x * x
		sxy += x * d
	}
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx) // dB/s
	return -60 / slope
}

// The image-source responses decay at the reverberation time the walls'
// absorption was set for (Eyring), at every capsule, in the classroom
// and in a smaller, drier room.
func TestReverberationTime(t *testing.T) {
	mics, _ := array.LookupPreset("linear4")
	const rate = 48000
	small := Shoebox{Size: array.Point{X: 6, Y: 5, Z: 2.8}, Array: array.Point{X: 3, Y: 0.05, Z: 2.2},
		TalkerDist: 2, TalkerZ: 1.6, InterfererDist: 2, InterfererZ: 1.2, RT60: 0.4}
	big := Classroom
	big.RT60 = 0.8
	for _, s := range []Shoebox{Classroom, small, big} {
		mr := s.micsInRoom(mics)
		talker := s.source(60, s.TalkerDist, s.TalkerZ)
		length := int(1.5*s.RT60*rate) + baseDelay
		for c, h := range s.responses(talker, mr, rate, length) {
			got := schroederRT60(h, rate)
			t.Logf("%gx%gx%g m, RT60 %.2f s: capsule %d measures %.3f s", s.Size.X, s.Size.Y, s.Size.Z, s.RT60, c, got)
			if math.Abs(got-s.RT60) > 0.15*s.RT60 {
				t.Errorf("%gx%gx%g m: capsule %d RT60 %.3f s, want %.2f ± 15%%", s.Size.X, s.Size.Y, s.Size.Z, c, got, s.RT60)
			}
		}
	}
}
