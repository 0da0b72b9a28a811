package array

import (
	"math"
)

// Noise tracker (minimum statistics, after R. Martin, 2001): the smoothed
// power of each bin is tracked for its minimum over minSlots sub-windows of
// subFrames frames (about 1.5 s in all at 48 kHz), and the minimum, scaled
// by minBias, is the noise estimate.
const (
	minSlots  = 8
	subFrames = 18
	minBias   = 2.0
	psdAlpha  = 0.8
	ddAlpha   = 0.98 // decision-directed a-priori SNR smoothing
	gccDecay  = 0.97 // per speech frame
	presenceK = 6.0
	// minSpeechFrames of speech (about 0.2 s) before the first steering
	minSpeechFrames = 20  // a bin counts as speech where its power exceeds presenceK times the noise
	agcSlewDB       = 3.0 // dB per second
	agcMinDB        = -12.0
	agcMemory       = 3.0 // seconds of speech in the speech-level average
	calMemory       = 10.0
	calMaxDB        = 6.0
)

// tracker estimates the noise power of each bin by minimum statistics.
type tracker struct {
	psd, subMin, noise []float32
	mins               [][]float32
	slot, count        int
	started            bool
}

func newTracker(bins int) tracker {
	return tracker{psd: make([]float32, bins), subMin: make([]float32, bins),
		noise: make([]float32, bins), mins: make2(minSlots, bins)}
}

// update adds one frame's power per bin.
//
//go:norace
func (t *tracker) update(p []float32) {
	if !t.started {
		copy(t.psd, p)
		for s := range t.mins {
			copy(t.mins[s], p)
		}
		copy(t.subMin, p)
		t.started = true
	}
	for k, v := range p {
		t.psd[k] = psdAlpha*t.psd[k] + (1-psdAlpha)*v
		t.subMin[k] = min(t.subMin[k], t.psd[k])
	}
	t.count++
	if t.count == subFrames {
		copy(t.mins[t.slot], t.subMin)
		t.slot = (t.slot + 1) % minSlots
		copy(t.subMin, t.psd)
		t.count = 0
	}
	for k := range t.noise {
		m := t.subMin[k]
		for s := range t.mins {
			m = min(m, t.mins[s][k])
		}
		t.noise[k] = minBias * m
	}
}

// The DSP below runs on state that one goroutine owns (Process's caller);
// its functions are marked go:norace so the race detector, which slows
// these loops about twentyfold, does not make a test daemon fall behind
// real time. What is shared (publish, Levels) stays instrumented.

// processFrame runs one hop: analysis, beam, noise estimate, suppression,
// direction update, synthesis and output.
//
//go:norace
func (c *Chain) processFrame() {
	c.calibrate()
	c.analyse()

	// Beam (or plain average): y for mono and metering, yl/yr for stereo.
	stereo := c.outCh == 2
	wy := c.steer
	if c.mv != nil {
		wy = c.mv.weights(c.steer)
	}
	for k := 1; k < c.k-1; k++ {
		var s, l, r complex64
		for ch := range c.m {
			v := c.x[ch][k]
			s += v * wy[ch][k]
			if stereo {
				l += v * c.steerL[ch][k]
				r += v * c.steerR[ch][k]
			}
		}
		c.y[k], c.yl[k], c.yr[k] = s, l, r
	}
	if c.cfg.HighPassHz > 0 {
		for k := 1; k < c.k-1; k++ {
			w := complex(c.hpW[k], 0)
			c.y[k] *= w
			c.yl[k] *= w
			c.yr[k] *= w
		}
	}
	c.y[0], c.yl[0], c.yr[0] = 0, 0, 0
	c.y[c.k-1], c.yl[c.k-1], c.yr[c.k-1] = 0, 0, 0

	// Noise estimate on the beam (for suppression and the meters).
	for k := range c.k {
		c.pw[k] = sq(c.y[k])
	}
	c.beamNoise.update(c.pw)
	c.noise = c.beamNoise.noise

	// Speech detection and per-bin speech presence on the mean power of
	// the capsules over the band, which does not depend on the steering
	// (a detector on the beam would follow its own steering).
	band := c.pw[:c.hi-c.lo]
	for b := range band {
		var p float32
		for ch := range c.m {
			p += sq(c.x[ch][c.lo+b])
		}
		band[b] = p / float32(c.m)
	}
	c.micNoise.update(band)
	var bandP, bandN float32
	for b, p := range band {
		nb := c.micNoise.noise[b]
		bandP += p
		bandN += nb
		w := max(0, 1-presenceK*nb/max(p, 1e-30))
		c.presence[b] = w * w
	}
	// Until the noise tracker has seen a whole window its minima are
	// single noisy frames: no speech decisions before then.
	if c.warm < minSlots*subFrames {
		c.warm++
	}
	speech := c.warm >= minSlots*subFrames && bandP > speechRatio*bandN && bandP > 1e-12

	// The adaptive beam learns the noise's spatial covariance from frames
	// without speech, once the detector has warmed up; within the band,
	// bins the talker may own teach it less.
	if c.mv != nil && c.warm >= minSlots*subFrames && !speech && bandP < mvdrNoiseRatio*bandN {
		for k := range c.mvWgt {
			c.mvWgt[k] = 1
			if k >= c.lo && k < c.hi {
				c.mvWgt[k] = 1 - c.presence[k-c.lo]
			}
			if sq(c.y[k]) > mvdrBinRatio*c.noise[k] {
				c.mvWgt[k] = 0
			}
		}
		c.mv.learn(c.x, c.mvWgt)
	}

	// Noise suppression gain: decision-directed Wiener gain with a floor,
	// computed always (it also weights the direction estimate).
	gmin := float32(0)
	if c.cfg.Suppress {
		gmin = float32(math.Pow(10, -c.cfg.SuppressDB/20))
	}
	for k := range c.k {
		p := sq(c.y[k])
		nk := max(c.noise[k], 1e-20)
		gamma := p / nk
		xi := ddAlpha*c.prevA2[k]/nk + (1-ddAlpha)*max(gamma-1, 0)
		g := max(xi/(1+xi), gmin)
		c.prevA2[k] = g * g * p
		c.g[k] = g
	}
	if c.cfg.Suppress {
		for k, g := range c.g {
			c.y[k] *= complex(g, 0)
			if stereo {
				c.yl[k] *= complex(g, 0)
				c.yr[k] *= complex(g, 0)
			}
		}
	}

	// Direction: accumulate GCC-PHAT on speech frames, search every 100 ms.
	if c.dirSearch {
		if speech {
			c.accumulateGCC()
			c.speechSeen = true
			c.gccFrames++
		}
		c.sinceSteer++
		if c.sinceSteer >= c.framesPerSteerUp {
			c.sinceSteer = 0
			// Steer once the estimate rests on some speech.
			if c.speechSeen && c.gccFrames >= minSpeechFrames {
				c.speechSeen = false
				c.setSteering(c.search())
			}
		}
	}

	// AGC: the speech level is the mean square of the beam over speech.
	var outP float32
	for k := 1; k < c.k-1; k++ {
		outP += sq(c.y[k])
	}
	ms := 4 * float64(outP) / (float64(c.n) * float64(c.n))
	if speech {
		c.speechN++
		w := max(1/float64(c.speechN), float64(c.hop)/(agcMemory*float64(c.cfg.Rate)))
		c.speechP += w * (ms - c.speechP)
		c.meterSpk = true
	}
	from := c.agcGain
	if c.cfg.AGC && c.speechP > 0 {
		want := c.cfg.TargetDBFS - 10*math.Log10(c.speechP)
		want = min(max(want, agcMinDB), c.cfg.MaxGainDB)
		c.agcGain += min(max(want-c.agcGain, -c.gainStep), c.gainStep)
	}

	c.synthesise()
	c.output(from, c.agcGain)
}

// analyse windows each channel's frame and transforms two channels per
// complex FFT.
//
//go:norace
func (c *Chain) analyse() {
	n, w := c.n, c.win
	for ch := 0; ch < c.m; ch += 2 {
		a := c.frame[ch]
		if ch+1 < c.m {
			b := c.frame[ch+1]
			for i := range n {
				c.z[i] = complex(a[i]*w[i], b[i]*w[i])
			}
		} else {
			for i := range n {
				c.z[i] = complex(a[i]*w[i], 0)
			}
		}
		c.plan.Forward(c.z)
		xa := c.x[ch]
		if ch+1 == c.m {
			copy(xa, c.z[:c.k])
			continue
		}
		xb := c.x[ch+1]
		for k := range c.k {
			zk, zn := c.z[k], c.z[(n-k)&(n-1)]
			cn := complex(real(zn), -imag(zn))
			xa[k] = (zk + cn) * 0.5
			d := zk - cn
			xb[k] = complex(imag(d)*0.5, -real(d)*0.5) // d / 2j
		}
	}
}

// synthesise transforms the output spectra back and overlap-adds them.
//
//go:norace
func (c *Chain) synthesise() {
	n, w := c.n, c.win
	if c.outCh == 1 {
		for k := range c.k {
			c.z[k] = c.y[k]
		}
		for k := 1; k < c.k-1; k++ {
			v := c.y[k]
			c.z[n-k] = complex(real(v), -imag(v))
		}
	} else {
		for k := range c.k {
			l, r := c.yl[k], c.yr[k]
			c.z[k] = complex(real(l)-imag(r), imag(l)+real(r)) // l + j r
			if k > 0 && k < c.k-1 {
				c.z[n-k] = complex(real(l)+imag(r), real(r)-imag(l)) // conj(l) + j conj(r)
			}
		}
	}
	c.plan.Inverse(c.z)
	o := c.ola[0]
	for i := range n {
		o[i] += real(c.z[i]) * w[i]
	}
	if c.outCh == 2 {
		o := c.ola[1]
		for i := range n {
			o[i] += imag(c.z[i]) * w[i]
		}
	}
}

// output takes the completed hop from the overlap-add buffers, applies the
// AGC gain (ramped from fromDB to toDB across the hop) and the limiter,
// appends it to the FIFO and updates the meters.
//
//go:norace
func (c *Chain) output(fromDB, toDB float64) {
	g0 := float32(math.Pow(10, fromDB/20))
	g1 := float32(math.Pow(10, toDB/20))
	dg := (g1 - g0) / float32(c.hop)
	dst := c.out[c.outLen : c.outLen+c.hop*c.outCh]
	for i := range c.hop {
		g := g0 + dg*float32(i)
		if c.outCh == 1 {
			v := c.ola[0][i] * g
			v = c.limit(abs32(v), v)
			dst[i] = v
			c.meter(v)
		} else {
			l, r := c.ola[0][i]*g, c.ola[1][i]*g
			a := max(abs32(l), abs32(r))
			gl := c.limit(a, 1)
			l, r = clamp1(l*gl), clamp1(r*gl)
			dst[2*i], dst[2*i+1] = l, r
			c.meter(max(abs32(l), abs32(r)))
		}
	}
	c.outLen += c.hop * c.outCh
	for ch := range c.ola {
		o := c.ola[ch]
		copy(o, o[c.hop:])
		clear(o[c.n-c.hop:])
	}
}

// limit updates the limiter's envelope with the level a and returns v
// scaled so that the output never exceeds the ceiling: the envelope follows
// peaks at once and releases over 50 ms.
//
//go:norace
func (c *Chain) limit(a, v float32) float32 {
	if a != a {
		a = 1
	}
	if a > c.limEnv {
		c.limEnv = a
	} else {
		c.limEnv *= c.limRel
	}
	if c.limEnv > c.limCeil {
		v *= c.limCeil / c.limEnv
		v = min(max(v, -c.limCeil), c.limCeil) // against rounding
	}
	return clamp1(v)
}

//go:norace
func (c *Chain) meter(v float32) {
	a := abs32(v)
	c.meterPk = max(c.meterPk, a)
	c.meterSq += float64(v) * float64(v)
	c.meterN++
	if c.meterN < c.cfg.Rate/10 {
		return
	}
	var nsum float64
	for k := 1; k < c.k-1; k++ {
		nsum += float64(c.noise[k])
	}
	c.publish(Levels{
		SpeechDBFS:  powDB(c.speechP),
		NoiseDBFS:   powDB(4 * nsum / (float64(c.n) * float64(c.n))),
		AzimuthDeg:  math.Round(c.azimuth*10) / 10,
		Speech:      c.meterSpk,
		GainDB:      math.Round(c.agcGain*10) / 10,
		OutPeakDBFS: ampDB(float64(c.meterPk)),
		OutRMSDBFS:  powDB(c.meterSq / float64(c.meterN)),
	})
	c.meterN, c.meterPk, c.meterSq, c.meterSpk = 0, 0, 0, false
}

// publish hands a window's meters to Levels (the one place shared with
// other goroutines, so it stays visible to the race detector).
func (c *Chain) publish(l Levels) {
	c.mu.Lock()
	c.levels, c.valid = l, true
	c.mu.Unlock()
}

// calibrate updates the automatic per-channel gains from the long-term
// power of each channel over the last hop.
//
//go:norace
func (c *Chain) calibrate() {
	if !c.cfg.AutoCalibrate || c.m < 2 {
		clear(c.hopSq)
		return
	}
	c.calFrames++
	w := max(1/float64(c.calFrames), float64(c.hop)/(calMemory*float64(c.cfg.Rate)))
	var mean float64
	for ch, s := range c.hopSq {
		c.pow[ch] += w * (s/float64(c.hop) - c.pow[ch])
		mean += c.pow[ch]
	}
	clear(c.hopSq)
	mean /= float64(c.m)
	lim := math.Pow(10, calMaxDB/20)
	for ch, p := range c.pow {
		g := 1.0
		if p > 1e-12 && mean > 1e-12 {
			g = min(max(math.Sqrt(mean/p), 1/lim), lim)
		}
		c.gain[ch] = float32(c.fixed[ch] * g)
	}
}

// accumulateGCC adds this frame's phase-transform cross-spectra of every
// pair over the band.
//
//go:norace
func (c *Chain) accumulateGCC() {
	for pi, pr := range c.pairs {
		xi, xj := c.x[pr[0]][c.lo:c.hi], c.x[pr[1]][c.lo:c.hi]
		acc := c.gcc[pi]
		for b := range acc {
			a, d := xi[b], xj[b]
			re := real(a)*real(d) + imag(a)*imag(d) // a·conj(d)
			im := imag(a)*real(d) - real(a)*imag(d)
			// Phase transform, weighted by the bin's speech presence so
			// that bins the stationary noise owns do not pull the
			// estimate toward the noise source.
			w := c.presence[b] / (float32(math.Sqrt(float64(re*re+im*im))) + 1e-20)
			acc[b] = acc[b]*gccDecay + complex(re*w, im*w)
		}
	}
}

// search returns the azimuth (degrees) that maximises the steered response
// power of the accumulated GCC-PHAT: the sum over pairs of the
// cross-correlation at the pair's delay for that azimuth.
//
//go:norace
func (c *Chain) search() float64 {
	steps := 360 / gridDeg
	base := 0.0
	if c.linear { // a line cannot tell a direction from its mirror image
		steps, base = 180/gridDeg+1, c.axisDeg
	}
	best, bestV, prevV, nextV := 0, math.Inf(-1), 0.0, 0.0
	first, last := 0.0, 0.0
	var before float64
	for d := range steps {
		v := c.srp(base + float64(d*gridDeg))
		if d == 0 {
			first = v
		}
		if v > bestV {
			best, bestV, prevV = d, v, before
		}
		if d == best+1 {
			nextV = v
		}
		before = v
		last = v
	}
	if best == 0 && !c.linear {
		prevV = last
	}
	if best == steps-1 && !c.linear {
		nextV = first
	}
	if c.linear && (best == 0 || best == steps-1) {
		prevV, nextV = bestV, bestV // at the axis: no refinement
	}
	// Parabolic refinement between the neighbours.
	off := 0.0
	if den := prevV - 2*bestV + nextV; den < 0 {
		off = min(max(0.5*(prevV-nextV)/den, -0.5), 0.5)
	}
	az := base + (float64(best)+off)*gridDeg
	return math.Mod(math.Mod(az, 360)+360, 360)
}

//go:norace
func (c *Chain) srp(az float64) float64 {
	Delays(c.cfg.Mics, az, c.delays)
	var total float64
	for pi, pr := range c.pairs {
		tau := c.delays[pr[0]] - c.delays[pr[1]]
		w0 := 2 * math.Pi * c.binHz * tau
		s, co := math.Sincos(w0 * float64(c.lo))
		ph := complex(co, s)
		s, co = math.Sincos(w0)
		step := complex(co, s)
		var acc float64
		for _, g := range c.gcc[pi] {
			acc += float64(real(g))*real(ph) - float64(imag(g))*imag(ph)
			ph *= step
		}
		total += acc
	}
	return total
}

// setSteering points the beam at azimuth az (degrees): each channel is
// advanced by its arrival time, as a phase ramp over the bins, and
// weighted 1/M (1/size of its half, for stereo).
//
//go:norace
func (c *Chain) setSteering(az float64) {
	c.azimuth = az
	if c.mv != nil {
		c.mv.dirty = true
	}
	if c.cfg.Beamform {
		Delays(c.cfg.Mics, az, c.delays)
	} else {
		clear(c.delays)
	}
	for ch := range c.m {
		w0 := 2 * math.Pi * c.binHz * c.delays[ch]
		s, co := math.Sincos(w0)
		step := complex(co, s)
		ph := complex(1.0, 0)
		inv := 1 / float64(c.m)
		var il, ir float64
		if c.left[ch] {
			il = 1 / float64(c.nLeft)
		}
		if c.right[ch] {
			ir = 1 / float64(c.nRight)
		}
		for k := range c.k {
			c.steer[ch][k] = complex64(ph * complex(inv, 0))
			c.steerL[ch][k] = complex64(ph * complex(il, 0))
			c.steerR[ch][k] = complex64(ph * complex(ir, 0))
			ph *= step
			if k&63 == 63 { // renormalise against drift
				ph /= complex(math.Hypot(real(ph), imag(ph)), 0)
			}
		}
	}
}

func sq(v complex64) float32 { return real(v)*real(v) + imag(v)*imag(v) }

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

func clamp1(v float32) float32 {
	if v != v {
		return 0
	}
	return min(max(v, -1), 1)
}

func powDB(p float64) float64 {
	if !(p > 0) {
		return floorDBFS
	}
	return max(10*math.Log10(p), floorDBFS)
}

func ampDB(a float64) float64 {
	if !(a > 0) {
		return floorDBFS
	}
	return max(20*math.Log10(a), floorDBFS)
}
