package audio

import "github.com/classcap/classcap/capture/media"

// Mixer downmixes interleaved PCM to mono or stereo, reusing its output
// buffer. It is not safe for concurrent use.
type Mixer struct {
	Channels int // output channels: 1 (mono) or 2 (stereo); other values are clamped

	buf     []float32
	weights []float32 // per input channel: weight into left (or mono), right
	inCh    int
}

// Downmix returns in mixed down to outChannels (1 or 2, other values are
// clamped) in a newly allocated block. Mono is the average of all channels;
// stereo averages the first half of the channels into the left and the
// second half into the right (an odd middle channel goes to both), and
// duplicates a mono input. Samples are clamped to [-1, 1].
func Downmix(in media.PCM, outChannels int) media.PCM {
	m := Mixer{Channels: outChannels}
	return m.Mix(in)
}

// Mix is Downmix into m's buffer: the result is valid until the next call.
func (m *Mixer) Mix(in media.PCM) media.PCM {
	out := min(max(m.Channels, 1), 2)
	frames := 0
	if in.Channels > 0 {
		frames = in.Frames()
	}
	if need := frames * out; cap(m.buf) < need {
		m.buf = make([]float32, need)
	}
	dst := m.buf[:frames*out]
	res := media.PCM{Samples: dst, Channels: out, Rate: in.Rate, PTS: in.PTS}
	if frames == 0 {
		return res
	}
	if m.inCh != in.Channels || len(m.weights) != 2*in.Channels {
		m.setWeights(in.Channels, out)
	}
	src := in.Samples[:frames*in.Channels]
	switch {
	case in.Channels == out:
		for i, v := range src {
			dst[i] = clamp1(v)
		}
	case out == 1:
		w := m.weights[0]
		ic := in.Channels
		for f := range frames {
			var acc float32
			for _, v := range src[f*ic : f*ic+ic] {
				acc += clamp1(v)
			}
			dst[f] = clamp1(acc * w)
		}
	case in.Channels == 1:
		for f, v := range src {
			v = clamp1(v)
			dst[2*f], dst[2*f+1] = v, v
		}
	default:
		ic := in.Channels
		w := m.weights
		for f := range frames {
			var l, r float32
			for c, v := range src[f*ic : f*ic+ic] {
				v = clamp1(v)
				l += v * w[2*c]
				r += v * w[2*c+1]
			}
			dst[2*f], dst[2*f+1] = clamp1(l), clamp1(r)
		}
	}
	return res
}

// setWeights computes the mixing weights for ic input channels. For mono
// weights[0] is 1/ic; for stereo weights[2c], weights[2c+1] are channel c's
// share of left and right, each side summing to 1.
func (m *Mixer) setWeights(ic, out int) {
	m.inCh = ic
	m.weights = make([]float32, 2*ic)
	if ic == 0 {
		return
	}
	if out == 1 {
		m.weights[0] = 1 / float32(ic)
		return
	}
	half := float32(ic) / 2
	for c := range ic {
		// Channel c covers [c, c+1) of the array; left is [0, half).
		lo, hi := float32(c), float32(c+1)
		left := max(0, min(hi, half)-lo)
		m.weights[2*c] = left / half
		m.weights[2*c+1] = (1 - left) / half
	}
}
