package room

import (
	"fmt"
	"math"

	"github.com/classcap/classcap/capture/array/internal/fft"
)

// Result is the measurement of one signal against the clean speech.
type Result struct {
	SNRDB    float64
	SegSNRDB float64
	Lag      float64 // samples the signal lags the clean speech by
}

// maxLagSeconds bounds the alignment search.
const maxLagSeconds = 0.25

// Measure aligns x with clean and returns its SNR and segmental SNR (see
// the package comment for the method).
func Measure(clean []float64, x []float32, rate int) (Result, error) {
	n := min(len(clean), len(x))
	if n < rate/2 {
		return Result{}, fmt.Errorf("measure: %d samples, want at least half a second", n)
	}
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = float64(x[i])
	}
	lag, corr, err := coarseLag(clean[:n], xs, int(maxLagSeconds*float64(rate)))
	if err != nil {
		return Result{}, err
	}
	if lag < sincHalf {
		return Result{}, fmt.Errorf("measure: signal leads the clean speech by %d samples; pad the clean speech", -lag)
	}
	// Fractional refinement: the cross-correlation is band-limited, so
	// its value between integer lags is its sinc interpolation; the
	// fractional lag maximises it (golden-section search on [-1, 1]).
	at := func(f float64) float64 {
		var s float64
		for j := -corrHalf; j <= corrHalf; j++ {
			t := f - float64(j)
			s += corr(lag+j) * sinc(t) * blackman(t+corrHalf+1, 2*corrHalf+2)
		}
		return s
	}
	a, b := -1.0, 1.0
	const phi = 0.6180339887498949
	x1, x2 := b-phi*(b-a), a+phi*(b-a)
	f1, f2 := at(x1), at(x2)
	for b-a > 1e-3 {
		if f1 > f2 {
			b, x2, f2 = x2, x1, f1
			x1 = b - phi*(b-a)
			f1 = at(x1)
		} else {
			a, x1, f1 = x1, x2, f2
			x2 = a + phi*(b-a)
			f2 = at(x2)
		}
	}
	frac := (a + b) / 2
	d := float64(lag) + frac
	ref := Delay(clean[:n], d)

	// Per-block least-squares gains.
	block := rate
	var gx, gr float64
	for i := range n {
		gx += xs[i] * ref[i]
		gr += ref[i] * ref[i]
	}
	if gr == 0 {
		return Result{}, fmt.Errorf("measure: the clean speech is silent")
	}
	global := gx / gr
	meanBlock := gr / float64(n) * float64(block)
	fit := make([]float64, n)
	for s := 0; s < n; s += block {
		e := min(s+block, n)
		var bx, br float64
		for i := s; i < e; i++ {
			bx += xs[i] * ref[i]
			br += ref[i] * ref[i]
		}
		g := global
		if br > 1e-2*meanBlock*float64(e-s)/float64(block) {
			g = bx / br
		}
		for i := s; i < e; i++ {
			fit[i] = g * ref[i]
		}
	}
	var ps, pe float64
	for i := range n {
		ps += fit[i] * fit[i]
		r := xs[i] - fit[i]
		pe += r * r
	}
	res := Result{SNRDB: db(ps, pe), Lag: d}

	frame := rate / 50
	var maxE float64
	for s := 0; s+frame <= n; s += frame {
		var e float64
		for _, v := range ref[s : s+frame] {
			e += v * v
		}
		maxE = max(maxE, e)
	}
	var sum float64
	count := 0
	for s := 0; s+frame <= n; s += frame {
		var e, fs, fe float64
		for i := s; i < s+frame; i++ {
			e += ref[i] * ref[i]
			fs += fit[i] * fit[i]
			r := xs[i] - fit[i]
			fe += r * r
		}
		if e < maxE*1e-4 {
			continue
		}
		sum += min(max(db(fs, fe), -10), 35)
		count++
	}
	if count > 0 {
		res.SegSNRDB = sum / float64(count)
	}
	return res, nil
}

func db(s, e float64) float64 {
	if e <= 0 {
		return 100
	}
	if s <= 0 {
		return -100
	}
	return 10 * math.Log10(s/e)
}

// corrHalf is the half-length of the correlation interpolator.
const corrHalf = 24

// coarseLag returns the integer lag (x late by lag samples) within ±maxLag
// that maximises the cross-correlation of x and clean, and the
// cross-correlation as a function of the lag.
func coarseLag(clean, x []float64, maxLag int) (int, func(int) float64, error) {
	size := 2
	for size < len(clean)+len(x) {
		size <<= 1
	}
	p, err := fft.New(size)
	if err != nil {
		return 0, nil, err
	}
	a := make([]complex64, size)
	b := make([]complex64, size)
	for i, v := range x {
		a[i] = complex(float32(v), 0)
	}
	for i, v := range clean {
		b[i] = complex(float32(v), 0)
	}
	p.Forward(a)
	p.Forward(b)
	for i := range a {
		bv := b[i]
		a[i] *= complex(real(bv), -imag(bv))
	}
	p.Inverse(a)
	best, bestV := 0, float32(math.Inf(-1))
	for l := -maxLag; l <= maxLag; l++ {
		v := real(a[(l+size)%size])
		if v > bestV {
			best, bestV = l, v
		}
	}
	corr := func(l int) float64 { return float64(real(a[((l%size)+size)%size])) }
	return best, corr, nil
}

// Locate finds where x lies in a longer clean signal: the offset o for
// which x[i] best matches clean[o+i] (by cross-correlation), so that a
// recording of unknown start can be measured with Measure against
// clean[o-pad:].
func Locate(clean []float64, x []float32) (int, error) {
	if len(x) == 0 || len(clean) < len(x) {
		return 0, fmt.Errorf("locate: %d samples in %d", len(x), len(clean))
	}
	xs := make([]float64, len(x))
	for i, v := range x {
		xs[i] = float64(v)
	}
	lag, _, err := coarseLag(clean, xs, len(clean))
	if err != nil {
		return 0, err
	}
	return -lag, nil
}
