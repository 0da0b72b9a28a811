package audio

import (
	"math"

	"github.com/classcap/classcap/capture/media"
)

// sine returns frames of a tone at freq Hz and amplitude amp on every one
// of channels channels.
func sine(frames, channels, rate int, freq, amp float64) media.PCM {
	p := media.PCM{Samples: make([]float32, frames*channels), Channels: channels, Rate: rate}
	for i := range frames {
		v := float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := range channels {
			p.Samples[i*channels+c] = v
		}
	}
	return p
}

// blocks cuts p into blocks of size frames (the last may be shorter), each
// with the exact PTS of its first sample.
func blocks(p media.PCM, size int) []media.PCM {
	var out []media.PCM
	for off := 0; off < p.Frames(); off += size {
		n := min(size, p.Frames()-off)
		out = append(out, media.PCM{
			Samples:  p.Samples[off*p.Channels : (off+n)*p.Channels],
			Channels: p.Channels,
			Rate:     p.Rate,
			PTS:      p.PTS + media.FramesToDur(int64(off), p.Rate),
		})
	}
	return out
}

// goertzel returns the power of x at freq Hz relative to x's total power.
func goertzel(x []float64, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2, total float64
	for _, v := range x {
		s1, s2 = v+coeff*s1-s2, s1
		total += v * v
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	return p / (float64(len(x)) * total / 2)
}

func rms(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(len(x)))
}
