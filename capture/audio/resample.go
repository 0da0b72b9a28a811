package audio

import (
	"fmt"
	"math"
	"time"

	"github.com/classcap/classcap/capture/media"
)

// Resampler parameters: a Kaiser-windowed sinc with resamplerZeros zero
// crossings on each side (32 taps per output sample when upsampling), cut
// off at resamplerCutoff of the lower Nyquist frequency. That keeps the
// band up to 20 kHz of a 44.1 kHz source within a fraction of a dB and
// leaves images more than 80 dB down.
const (
	resamplerZeros  = 16
	resamplerCutoff = 0.92
	resamplerBeta   = 8.6
	maxPhases       = 1024
)

// Resampler converts a stream of PCM at one input rate to 48 kHz with a
// polyphase windowed-sinc filter. It keeps its filter history across
// blocks, so a stream cut into blocks of any size gives the same samples as
// one long block. It is not safe for concurrent use.
type Resampler struct {
	inRate, ch int
	up, down   int       // output = input * up / down
	taps       int       // taps per phase (even)
	table      []float32 // up phases of taps coefficients

	hist    []float32 // interleaved input, starting taps/2-1 frames before ip's window
	ip      int       // input frame (in hist) of the next output's window centre
	phase   int       // next output's fractional position, in 1/up frames
	started bool
	base    time.Duration // PTS of output sample 0 (= input sample 0)
	outPos  int64         // output samples produced since base
	inNext  time.Duration // expected PTS of the next input block
	inCount int64         // input frames consumed since base

	out []float32
	acc []float32
}

// NewResampler returns a resampler from inRate (8 kHz to 192 kHz; 16, 32,
// 44.1 and 48 kHz are the usual ones) to 48 kHz for channels channels.
func NewResampler(inRate, channels int) (*Resampler, error) {
	if inRate < 8000 || inRate > 192000 {
		return nil, fmt.Errorf("resampler: input rate %d Hz out of range 8000-192000", inRate)
	}
	if channels < 1 || channels > 32 {
		return nil, fmt.Errorf("resampler: channels %d out of range 1-32", channels)
	}
	g := gcd(inRate, media.AudioRate)
	r := &Resampler{inRate: inRate, ch: channels, up: media.AudioRate / g, down: inRate / g}
	if r.up > maxPhases {
		return nil, fmt.Errorf("resampler: %d Hz to %d Hz needs %d filter phases (max %d)",
			inRate, media.AudioRate, r.up, maxPhases)
	}
	r.acc = make([]float32, channels)
	if r.up == 1 && r.down == 1 {
		return r, nil
	}
	// fc is the cutoff in cycles per input sample.
	fc := 0.5 * resamplerCutoff * min(1, float64(r.up)/float64(r.down))
	half := int(math.Ceil(resamplerZeros / (2 * fc)))
	r.taps = 2 * half
	r.table = make([]float32, r.up*r.taps)
	coef := make([]float64, r.taps)
	for p := range r.up {
		row := r.table[p*r.taps : (p+1)*r.taps]
		var sum float64
		for m := range r.taps {
			// Distance in input frames from tap m to the output position.
			tau := float64(p)/float64(r.up) + float64(half-1-m)
			coef[m] = 2 * fc * sinc(2*fc*tau) * kaiser(tau/float64(half), resamplerBeta)
			sum += coef[m]
		}
		for m, c := range coef {
			row[m] = float32(c / sum) // unity gain at DC for every phase
		}
	}
	r.reset()
	return r, nil
}

// Delay returns the filter's processing latency: input frames held back
// before the output for them can be computed. PTSs are not affected.
func (r *Resampler) Delay() int { return r.taps / 2 }

func (r *Resampler) reset() {
	r.hist = r.hist[:0]
	// The frames before the stream's first sample are silence.
	for range (r.taps/2 - 1) * r.ch {
		r.hist = append(r.hist, 0)
	}
	r.ip, r.phase, r.outPos, r.inCount = r.taps/2-1, 0, 0, 0
	r.started = false
}

// Process consumes in and returns the 48 kHz samples that became available,
// with the PTS of the first one. The result is backed by a buffer reused on
// the next call (for 48 kHz input it is in itself). Input samples are
// clamped to [-1, 1]; output samples too. A PTS jump of more than 20 ms
// from where the previous block ended restarts the filter at the new PTS.
func (r *Resampler) Process(in media.PCM) (media.PCM, error) {
	if in.Channels != r.ch || in.Rate != r.inRate {
		return media.PCM{}, fmt.Errorf("resample: input %d ch at %d Hz, want %d ch at %d Hz",
			in.Channels, in.Rate, r.ch, r.inRate)
	}
	if r.table == nil {
		return in, nil
	}
	frames := in.Frames()
	if r.started {
		if d := in.PTS - r.inNext; d > packetDur || d < -packetDur {
			r.reset()
		}
	}
	if !r.started {
		r.started, r.base = true, in.PTS
	}
	r.inCount += int64(frames)
	r.inNext = r.base + media.FramesToDur(r.inCount, r.inRate)

	for _, v := range in.Samples[:frames*r.ch] {
		r.hist = append(r.hist, clamp1(v))
	}
	ch, taps, half := r.ch, r.taps, r.taps/2
	have := len(r.hist) / ch
	r.out = r.out[:0]
	first := r.outPos
	// Output at input position ip+phase/up needs frames ip-half+1 .. ip+half.
	for r.ip+half < have {
		row := r.table[r.phase*taps : (r.phase+1)*taps]
		win := r.hist[(r.ip-half+1)*ch : (r.ip+half+1)*ch]
		if ch == 1 {
			var acc float32
			win = win[:len(row)]
			for m, c := range row {
				acc += c * win[m]
			}
			r.out = append(r.out, clamp1(acc))
		} else {
			acc := r.acc
			clear(acc)
			for m, c := range row {
				x := win[m*ch : m*ch+ch]
				for k, v := range x {
					acc[k] += c * v
				}
			}
			for _, v := range acc {
				r.out = append(r.out, clamp1(v))
			}
		}
		r.outPos++
		r.phase += r.down
		r.ip += r.phase / r.up
		r.phase %= r.up
	}
	// Keep the frames the next outputs still need.
	keep := max(0, r.ip-half+1)
	if keep > 0 {
		n := copy(r.hist, r.hist[keep*ch:])
		r.hist = r.hist[:n]
		r.ip -= keep
	}
	return media.PCM{Samples: r.out, Channels: ch, Rate: media.AudioRate, PTS: r.base + samplesToDur(first)}, nil
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// kaiser is the Kaiser window at x in [-1, 1].
func kaiser(x, beta float64) float64 {
	if x < -1 || x > 1 {
		return 0
	}
	return besselI0(beta*math.Sqrt(1-x*x)) / besselI0(beta)
}

// besselI0 is the modified Bessel function of the first kind, order 0.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
