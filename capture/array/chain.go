// Package array is the microphone-array processing between capture and the
// Opus encoder: DC/high-pass removal, per-channel gain calibration, talker
// direction (GCC-PHAT over every microphone pair), delay-and-sum
// beamforming toward it with fractional delays (or, as an option, an
// adaptive MVDR beam that nulls directional noise), spectral noise suppression
// that adapts to stationary noise (minimum statistics with a
// decision-directed Wiener gain), and an automatic gain toward a steady
// speech level followed by a limiter. It works on blocks of float32 PCM,
// allocates nothing in steady state, and publishes 100 ms meters.
//
// Subpackage room renders synthetic rooms and measures the result.
package array

import (
	"fmt"
	"math"
	"sync"

	"github.com/classcap/classcap/capture/array/internal/fft"
	"github.com/classcap/classcap/capture/media"
)

// Config selects the stages and their settings. Defaults gives every stage
// on with the usual settings.
type Config struct {
	Mics        []Point // capsule positions, one per input channel
	Rate        int     // Hz; 0 means media.AudioRate
	OutChannels int     // 1 (mono) or 2 (stereo: the left and right halves of the array, steered alike)

	HighPassHz    float64   // high-pass cut-off (a DC blocker, then zero-phase on the spectrum); 0 turns both off
	ChannelGainDB []float64 // fixed calibration per channel (nil: 0 dB)
	AutoCalibrate bool      // slowly equalise the channels' long-term levels (within ±6 dB)

	Beamform bool // a beam toward the talker; off: the channels are averaged
	// Beam is the beamformer: BeamDelaySum (also when empty) or BeamMVDR
	// (the mono beam; a stereo output's halves stay delay-and-sum).
	Beam string
	// SteerDeg fixes the beam's azimuth (degrees) instead of estimating
	// it; NaN means estimate.
	SteerDeg float64

	Suppress   bool
	SuppressDB float64 // largest attenuation of the noise suppressor, dB (> 0)

	AGC        bool
	TargetDBFS float64 // speech level the AGC aims at (RMS over speech, dBFS)
	MaxGainDB  float64 // most gain the AGC adds
	LimitDBFS  float64 // the limiter's ceiling (always on)
}

// Defaults returns the configuration with every stage on.
func Defaults(mics []Point) Config {
	return Config{
		Mics: mics, Rate: media.AudioRate, OutChannels: 1,
		HighPassHz: 80, AutoCalibrate: true,
		Beamform: true, Beam: BeamDelaySum, SteerDeg: math.NaN(),
		Suppress: true, SuppressDB: 12,
		AGC: true, TargetDBFS: -20, MaxGainDB: 24, LimitDBFS: -1,
	}
}

// Levels are the chain's 100 ms meters.
type Levels struct {
	SpeechDBFS  float64 // speech level at the beam, before the AGC (long-term, over speech only)
	NoiseDBFS   float64 // stationary noise floor at the beam
	AzimuthDeg  float64 // talker direction, counter-clockwise from the array's +X axis
	Speech      bool    // speech was present in the last 100 ms
	GainDB      float64 // the AGC's gain
	OutPeakDBFS float64 // output over the last 100 ms
	OutRMSDBFS  float64
}

// floorDBFS is reported for silence.
const floorDBFS = -120.0

// Band of the direction estimate and of the speech detector, Hz.
const (
	bandLoHz = 200
	bandHiHz = 4000
	// azimuth grid step of the direction search, degrees
	gridDeg = 2
	// speechRatio: a frame whose band power exceeds the noise estimate by
	// this factor counts as speech.
	speechRatio = 3.0
)

// Chain is one running instance. Process is called from one goroutine;
// Levels from any.
type Chain struct {
	cfg              Config
	m, n, hop, k     int // mics, frame length, hop, bins (n/2+1)
	outCh            int
	plan             *fft.Plan
	win              []float32
	lo, hi           int // bins of the band
	dirSearch        bool
	left, right      []bool // stereo groups
	nLeft, nRight    float32
	delays           []float64 // scratch
	binHz            float64
	framesPerMeter   int
	framesPerSteerUp int

	// input
	hp    []dcBlocker
	hpW   []float32 // high-pass weight per bin
	gain  []float32 // calibration gain per channel (fixed × automatic)
	fixed []float64
	pow   []float64 // long-term power per channel
	hopSq []float64
	frame [][]float32 // per channel, the last n samples
	fill  int         // new samples in the current hop

	// spectra
	z          []complex64
	x          [][]complex64 // per channel, k bins
	y, yl, yr  []complex64
	steer      [][]complex64 // per channel, k bins: e^{jωt_c}/M
	steerL     [][]complex64
	steerR     [][]complex64
	azimuth    float64
	gcc        [][]complex64 // per pair, band bins
	pairs      [][2]int
	gccFrames  int
	sinceSteer int
	speechSeen bool

	// adaptive beam (Beam = BeamMVDR), nil otherwise
	mv    *mvdr
	mvWgt []float32 // per bin, how much a frame without speech teaches it

	// noise suppression
	beamNoise, micNoise tracker
	noise               []float32 // beamNoise.noise
	pw                  []float32 // scratch, k bins
	presence            []float32 // speech presence per band bin
	prevA2              []float32
	warm                int     // frames seen, up to the tracker's window
	linear              bool    // all capsules on one line
	axisDeg             float64 // that line's direction
	g                   []float32

	// output
	ola       [][]float32 // per output channel, n samples
	out       []float32   // interleaved FIFO
	res       []float32   // what Process returns
	outLen    int
	agcGain   float64 // dB, current
	speechP   float64 // speech power estimate (linear)
	speechN   int
	limEnv    float32
	limRel    float32
	limCeil   float32
	meterN    int
	meterPk   float32
	meterSq   float64
	meterSpk  bool
	calFrames int
	gainStep  float64 // dB per hop

	mu     sync.Mutex
	levels Levels
	valid  bool
}

// New returns a chain for cfg, or an error naming the bad setting.
func New(cfg Config) (*Chain, error) {
	if cfg.Rate == 0 {
		cfg.Rate = media.AudioRate
	}
	if cfg.Rate < 8000 || cfg.Rate > 192000 {
		return nil, fmt.Errorf("array: rate %d Hz out of range 8000-192000", cfg.Rate)
	}
	if err := CheckGeometry(cfg.Mics); err != nil {
		return nil, fmt.Errorf("array: %w", err)
	}
	if cfg.OutChannels == 0 {
		cfg.OutChannels = 1
	}
	if cfg.OutChannels != 1 && cfg.OutChannels != 2 {
		return nil, fmt.Errorf("array: output channels %d, want 1 or 2", cfg.OutChannels)
	}
	if cfg.ChannelGainDB != nil && len(cfg.ChannelGainDB) != len(cfg.Mics) {
		return nil, fmt.Errorf("array: %d channel gains for %d microphones", len(cfg.ChannelGainDB), len(cfg.Mics))
	}
	for i, g := range cfg.ChannelGainDB {
		if math.IsNaN(g) || g < -20 || g > 20 {
			return nil, fmt.Errorf("array: channel %d gain %v dB out of range -20..20", i, g)
		}
	}
	if cfg.HighPassHz < 0 || cfg.HighPassHz > 500 || math.IsNaN(cfg.HighPassHz) {
		return nil, fmt.Errorf("array: high-pass %v Hz out of range 0-500", cfg.HighPassHz)
	}
	if cfg.Suppress && !(cfg.SuppressDB > 0 && cfg.SuppressDB <= 40) {
		return nil, fmt.Errorf("array: noise suppression depth %v dB out of range (0, 40]", cfg.SuppressDB)
	}
	if cfg.AGC {
		if !(cfg.TargetDBFS >= -40 && cfg.TargetDBFS <= -6) {
			return nil, fmt.Errorf("array: AGC target %v dBFS out of range -40..-6", cfg.TargetDBFS)
		}
		if !(cfg.MaxGainDB >= 0 && cfg.MaxGainDB <= 40) {
			return nil, fmt.Errorf("array: AGC maximum gain %v dB out of range 0..40", cfg.MaxGainDB)
		}
	}
	if !(cfg.LimitDBFS >= -20 && cfg.LimitDBFS <= 0) {
		return nil, fmt.Errorf("array: limiter ceiling %v dBFS out of range -20..0", cfg.LimitDBFS)
	}
	if cfg.Beam == "" {
		cfg.Beam = BeamDelaySum
	}
	if cfg.Beam != BeamDelaySum && cfg.Beam != BeamMVDR {
		return nil, fmt.Errorf("array: beamformer %q, want %q or %q", cfg.Beam, BeamDelaySum, BeamMVDR)
	}
	if !math.IsNaN(cfg.SteerDeg) && math.IsInf(cfg.SteerDeg, 0) {
		return nil, fmt.Errorf("array: steering azimuth is infinite")
	}

	m := len(cfg.Mics)
	n := 1
	for n < cfg.Rate/50 { // about 20 ms frames
		n <<= 1
	}
	c := &Chain{cfg: cfg, m: m, n: n, hop: n / 2, k: n/2 + 1, outCh: cfg.OutChannels}
	var err error
	if c.plan, err = fft.New(n); err != nil {
		return nil, err
	}
	c.binHz = float64(cfg.Rate) / float64(n)
	c.lo = max(1, int(bandLoHz/c.binHz))
	c.hi = min(c.k-1, int(bandHiHz/c.binHz)+1)
	c.win = make([]float32, n)
	for i := range n { // periodic sqrt-Hann: squares overlap-add to 1 at hop n/2
		c.win[i] = float32(math.Sin(math.Pi * float64(i) / float64(n)))
	}
	c.framesPerMeter = max(1, cfg.Rate/10/c.hop)
	c.framesPerSteerUp = c.framesPerMeter

	c.hp = make([]dcBlocker, m)
	c.hpW = make([]float32, c.k)
	for k := range c.hpW {
		c.hpW[k] = 1
		if cfg.HighPassHz > 0 {
			// Zero-phase high-pass on the spectrum: nothing below half the
			// cut-off, a squared ramp up to it, no phase shift in the
			// speech band (a recursive filter would shift the phase of the
			// voice's fundamental).
			f := float64(k) * c.binHz
			v := min(max((f-cfg.HighPassHz/2)/(cfg.HighPassHz/2), 0), 1)
			c.hpW[k] = float32(v * v)
		}
	}
	if cfg.HighPassHz > 0 {
		r := 1 - 2*math.Pi*dcHz/float64(cfg.Rate)
		for i := range c.hp {
			c.hp[i].r = r
		}
	}
	c.gain = make([]float32, m)
	c.fixed = make([]float64, m)
	for i := range c.fixed {
		c.fixed[i] = 1
		if cfg.ChannelGainDB != nil {
			c.fixed[i] = math.Pow(10, cfg.ChannelGainDB[i]/20)
		}
		c.gain[i] = float32(c.fixed[i])
	}
	c.pow = make([]float64, m)
	c.hopSq = make([]float64, m)
	c.frame = make2(m, n)
	c.z = make([]complex64, n)
	c.x = make2c(m, c.k)
	c.y = make([]complex64, c.k)
	c.yl = make([]complex64, c.k)
	c.yr = make([]complex64, c.k)
	c.steer = make2c(m, c.k)
	c.steerL = make2c(m, c.k)
	c.steerR = make2c(m, c.k)
	c.delays = make([]float64, m)
	c.left, c.right = stereoGroups(cfg.Mics)
	for i := range m {
		if c.left[i] {
			c.nLeft++
		}
		if c.right[i] {
			c.nRight++
		}
	}
	for i := range m {
		for j := i + 1; j < m; j++ {
			c.pairs = append(c.pairs, [2]int{i, j})
		}
	}
	c.gcc = make2c(len(c.pairs), c.hi-c.lo)
	c.linear, c.axisDeg = collinear(cfg.Mics)
	c.dirSearch = cfg.Beamform && math.IsNaN(cfg.SteerDeg) && m > 1
	if cfg.Beamform && cfg.Beam == BeamMVDR && m > 1 {
		c.mv = newMVDR(m, c.k, c.hop, cfg.Rate)
		c.mvWgt = make([]float32, c.k)
	}
	c.azimuth = 90
	if !math.IsNaN(cfg.SteerDeg) {
		c.azimuth = math.Mod(math.Mod(cfg.SteerDeg, 360)+360, 360)
	}
	c.setSteering(c.azimuth)

	c.beamNoise = newTracker(c.k)
	c.micNoise = newTracker(c.hi - c.lo)
	c.noise = c.beamNoise.noise
	c.pw = make([]float32, c.k)
	c.presence = make([]float32, c.hi-c.lo)
	c.prevA2 = make([]float32, c.k)
	c.g = make([]float32, c.k)
	for i := range c.g {
		c.g[i] = 1
	}

	c.ola = make2(c.outCh, n)
	c.out = make([]float32, 4*n*c.outCh)
	c.outLen = c.hop * c.outCh // latency: n samples in all (see Latency)
	c.limCeil = float32(math.Pow(10, cfg.LimitDBFS/20))
	c.limRel = float32(math.Exp(-1 / (0.05 * float64(cfg.Rate))))
	c.gainStep = 6 * float64(c.hop) / float64(cfg.Rate) // 6 dB/s
	c.levels = Levels{SpeechDBFS: floorDBFS, NoiseDBFS: floorDBFS, AzimuthDeg: c.azimuth,
		OutPeakDBFS: floorDBFS, OutRMSDBFS: floorDBFS}
	return c, nil
}

// Latency is the delay from input to output in samples.
func (c *Chain) Latency() int { return c.n }

// Config returns the configuration in use (defaults filled in).
func (c *Chain) Config() Config { return c.cfg }

// Levels returns the meters of the last complete 100 ms, and false before
// the first.
func (c *Chain) Levels() (Levels, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.levels, c.valid
}

// Process runs one block of interleaved PCM with one channel per
// microphone and returns as many frames of output (OutChannels), delayed by
// Latency. The result is valid until the next call. Non-finite samples
// count as 0 and every sample is clamped to [-1, 1].
//
//go:norace
func (c *Chain) Process(in media.PCM) (media.PCM, error) {
	if in.Channels != c.m {
		return media.PCM{}, fmt.Errorf("array: input has %d channels, the geometry %d microphones", in.Channels, c.m)
	}
	if in.Rate != c.cfg.Rate {
		return media.PCM{}, fmt.Errorf("array: input at %d Hz, chain at %d Hz", in.Rate, c.cfg.Rate)
	}
	frames := in.Frames()
	if need := c.outLen + (frames+c.hop)*c.outCh; len(c.out) < need {
		grown := make([]float32, need)
		copy(grown, c.out[:c.outLen])
		c.out = grown
	}
	src := in.Samples[:frames*c.m]
	pos := c.n - c.hop + c.fill
	for f := 0; f < frames; f++ {
		row := src[f*c.m : f*c.m+c.m]
		for ch, v := range row {
			if v != v || v > 1 {
				v = min(v, 1)
				if v != v {
					v = 0
				}
			} else if v < -1 {
				v = -1
			}
			s := c.hp[ch].step(float64(v))
			c.hopSq[ch] += s * s
			c.frame[ch][pos] = float32(s) * c.gain[ch]
		}
		pos++
		c.fill++
		if c.fill == c.hop {
			c.processFrame()
			for ch := range c.frame {
				copy(c.frame[ch], c.frame[ch][c.hop:])
			}
			c.fill = 0
			pos = c.n - c.hop
		}
	}
	take := frames * c.outCh
	if cap(c.res) < take {
		c.res = make([]float32, take)
	}
	r := c.res[:take]
	// The FIFO always holds at least take samples: it starts with one hop
	// of silence and every hop of input adds a hop of output.
	copy(r, c.out[:take])
	copy(c.out, c.out[take:c.outLen])
	c.outLen -= take
	return media.PCM{Samples: r, Channels: c.outCh, Rate: in.Rate, PTS: in.PTS}, nil
}

func make2(a, b int) [][]float32 {
	s := make([][]float32, a)
	back := make([]float32, a*b)
	for i := range s {
		s[i] = back[i*b : (i+1)*b : (i+1)*b]
	}
	return s
}

func make2c(a, b int) [][]complex64 {
	s := make([][]complex64, a)
	back := make([]complex64, a*b)
	for i := range s {
		s[i] = back[i*b : (i+1)*b : (i+1)*b]
	}
	return s
}

// collinear reports whether the capsules lie on one line (within 1 mm in
// the plane) and the line's azimuth in degrees.
func collinear(mics []Point) (bool, float64) {
	if len(mics) < 2 {
		return true, 0
	}
	// The farthest capsule from the first gives the axis.
	far, d := 0, 0.0
	for i, p := range mics {
		if v := math.Hypot(p.X-mics[0].X, p.Y-mics[0].Y); v > d {
			far, d = i, v
		}
	}
	if d < 1e-3 {
		return true, 0
	}
	ux, uy := (mics[far].X-mics[0].X)/d, (mics[far].Y-mics[0].Y)/d
	for _, p := range mics {
		if math.Abs((p.X-mics[0].X)*uy-(p.Y-mics[0].Y)*ux) > 1e-3 {
			return false, 0
		}
	}
	return true, math.Mod(math.Atan2(uy, ux)*180/math.Pi+360, 180)
}

// stereoGroups splits the capsules into a left (X below the centroid) and a
// right half; an array that is flat in X is split along Y.
func stereoGroups(mics []Point) (left, right []bool) {
	left, right = make([]bool, len(mics)), make([]bool, len(mics))
	c := centroid(mics)
	coord := func(p Point) float64 { return p.X - c.X }
	spread := 0.0
	for _, p := range mics {
		spread = max(spread, math.Abs(coord(p)))
	}
	if spread < 1e-3 {
		coord = func(p Point) float64 { return c.Y - p.Y }
	}
	nl, nr := 0, 0
	for i, p := range mics {
		switch v := coord(p); {
		case v < -1e-4:
			left[i] = true
			nl++
		case v > 1e-4:
			right[i] = true
			nr++
		default:
			left[i], right[i] = true, true
			nl++
			nr++
		}
	}
	if nl == 0 || nr == 0 { // a single capsule: both sides
		for i := range mics {
			left[i], right[i] = true, true
		}
	}
	return left, right
}

// dcHz is the corner of the DC blocker in front of the analysis.
const dcHz = 5

// dcBlocker is a one-pole DC blocker, y[n] = x[n] - x[n-1] + r·y[n-1]; an
// unset one (r = 0) passes the signal through.
type dcBlocker struct {
	r      float64
	x1, y1 float64
}

//go:norace
func (d *dcBlocker) step(x float64) float64 {
	if d.r == 0 {
		return x
	}
	y := x - d.x1 + d.r*d.y1
	d.x1, d.y1 = x, y
	return y
}
