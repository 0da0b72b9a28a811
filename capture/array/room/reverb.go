package room

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/array/internal/fft"
)

// Reverberant noise kinds: the talker and the noise reach the capsules
// through a shoebox room (Room.Space, Classroom when nil).
const (
	// ReverbDiffuse is the reverberant talker plus a diffuse noise field
	// (spherically isotropic: the coherence between two capsules d apart
	// is sin(kd)/kd, so at low frequencies the capsules hear nearly the
	// same noise), plus a little noise independent at each capsule.
	ReverbDiffuse = "reverb_diffuse"
	// ReverbDirectional is the reverberant talker plus pink noise from a
	// point source at InterfererDeg, reverberant too, plus a little noise
	// independent at each capsule.
	ReverbDirectional = "reverb_directional"
)

// EarlyMS is how much of a capsule's impulse response after its direct
// path the reference of a reverberant room keeps (see Reference).
const EarlyMS = 50

// Shoebox is a rectangular room and where the array, the talker and the
// interferer are in it. The room's axes: x along its length, y across it,
// z up from the floor. The array's plane is horizontal, its X axis along
// the room's x and its Y axis along the room's y, so a box on the wall
// y = 0 looks into the room toward azimuths 0-180°.
type Shoebox struct {
	Size  array.Point // length, width, height, m
	Array array.Point // the array's centroid
	// The talker and the interferer are at their azimuths (Room), at a
	// horizontal distance from the array's centroid and a height.
	TalkerDist, TalkerZ         float64
	InterfererDist, InterfererZ float64
	RT60                        float64 // reverberation time, s (Eyring sets the walls' absorption from it)
}

// Classroom is a 9 x 7 x 3 m classroom with the box on the middle of a
// long wall at 2.2 m, the array's centre 8 cm off the wall (so the wall's
// reflection follows the direct path by about 0.5 ms), a standing talker
// (mouth at 1.6 m) 3 m away, a seated interferer (1.2 m) 3.5 m away, and
// an RT60 of 0.6 s.
var Classroom = Shoebox{
	Size:       array.Point{X: 9, Y: 7, Z: 3},
	Array:      array.Point{X: 4.5, Y: 0.08, Z: 2.2},
	TalkerDist: 3, TalkerZ: 1.6,
	InterfererDist: 3.5, InterfererZ: 1.2,
	RT60: 0.6,
}

// Reverberant reports whether a noise kind renders through a room.
func Reverberant(kind string) bool { return kind == ReverbDiffuse || kind == ReverbDirectional }

// space returns the room a reverberant Room renders through.
func (r Room) space() Shoebox {
	if r.Space != nil {
		return *r.Space
	}
	return Classroom
}

// eyring returns the walls' pressure reflection coefficient for the
// reverberation time by Eyring's formula, T = 24 ln10 V / (-c S ln(1-α)),
// with β = sqrt(1-α) the same on every wall and at every frequency.
func (s Shoebox) eyring() float64 {
	l, w, h := s.Size.X, s.Size.Y, s.Size.Z
	v := l * w * h
	area := 2 * (l*w + l*h + w*h)
	return math.Exp(-12 * math.Ln10 * v / (array.SpeedOfSound * area * s.RT60))
}

var reflections sync.Map // Shoebox -> float64

// reflection returns the walls' pressure reflection coefficient that
// gives the image-source response the room's RT60. Eyring's coefficient
// is only the start: in a shoebox with the same absorption on every wall
// the image sources along the long horizontal axes reflect least often,
// and their energy dominates the late decay, so the response decays
// slower than Eyring predicts (the classroom at Eyring's coefficient for
// 0.6 s measures 0.91 s). The coefficient is therefore searched
// (bisection) so that the T30 of the response's energy (1 ms bins,
// Schroeder's backward integration, a line fitted from -5 to -35 dB) from
// a source at a fixed point of the room's interior to the array is the
// RT60.
func (s Shoebox) reflection() float64 {
	if v, ok := reflections.Load(s); ok {
		return v.(float64)
	}
	b := s.calibrate()
	reflections.Store(s, b)
	return b
}

func (s Shoebox) calibrate() float64 {
	be := s.eyring()
	if s.RT60 < 0.05 {
		return be
	}
	src := array.Point{X: 0.31 * s.Size.X, Y: 0.57 * s.Size.Y, Z: 0.53 * s.Size.Z}
	const binRate = 1000.0
	bins := int((s.RT60 + 0.05) * binRate)
	r0 := dist(src, s.Array)
	// hist[k][b]: the energy arriving in bin b after k reflections, at
	// β = 1.
	var hist [][]float64
	for _, im := range s.images(src, 1, r0+float64(bins)/binRate*array.SpeedOfSound) {
		r := dist(im.p, s.Array)
		b := int((r - r0) / array.SpeedOfSound * binRate)
		if b >= bins {
			continue
		}
		for len(hist) <= im.k {
			hist = append(hist, make([]float64, bins))
		}
		hist[im.k][b] += r0 * r0 / (r * r)
	}
	e := make([]float64, bins)
	t30 := func(beta float64) float64 {
		clear(e)
		g := 1.0
		for _, h := range hist {
			for b, v := range h {
				e[b] += g * v
			}
			g *= beta * beta
		}
		for b := bins - 2; b >= 0; b-- {
			e[b] += e[b+1]
		}
		var n, sx, sy, sxx, sxy float64
		for b, v := range e {
			d := 10 * math.Log10(v/e[0])
			if d > -5 || d < -35 {
				continue
			}
			x := float64(b) / binRate
			n++
			sx, sy, sxx, sxy = sx+x, sy+d, sxx+x*x, sxy+x*d
		}
		if n < 3 {
			return 0
		}
		return -60 / ((n*sxy - sx*sy) / (n*sxx - sx*sx))
	}
	// T30 falls as -ln β grows: bisect -ln β around Eyring's.
	lo, hi := -math.Log(be)/2, -math.Log(be)*8
	for range 40 {
		mid := (lo + hi) / 2
		if t30(math.Exp(-mid)) > s.RT60 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return math.Exp(-(lo + hi) / 2)
}

// source returns the room position of a source at azimuth az (degrees),
// a horizontal distance from the array's centroid and a height.
func (s Shoebox) source(azDeg, dist, z float64) array.Point {
	sn, cs := math.Sincos(azDeg * math.Pi / 180)
	return array.Point{X: s.Array.X + dist*cs, Y: s.Array.Y + dist*sn, Z: z}
}

// micsInRoom returns the capsules' room positions.
func (s Shoebox) micsInRoom(mics []array.Point) []array.Point {
	c := centroid(mics)
	out := make([]array.Point, len(mics))
	for i, p := range mics {
		out[i] = array.Point{X: s.Array.X + p.X - c.X, Y: s.Array.Y + p.Y - c.Y, Z: s.Array.Z + p.Z - c.Z}
	}
	return out
}

func (s Shoebox) check(what string, p array.Point) error {
	const margin = 0.01
	if !(s.Size.X > 0 && s.Size.Y > 0 && s.Size.Z > 0) {
		return fmt.Errorf("room: size %v", s.Size)
	}
	if !(s.RT60 > 0 && s.RT60 <= 2) {
		return fmt.Errorf("room: RT60 %g s, want (0, 2]", s.RT60)
	}
	if p.X < margin || p.X > s.Size.X-margin || p.Y < margin || p.Y > s.Size.Y-margin || p.Z < margin || p.Z > s.Size.Z-margin {
		return fmt.Errorf("room: the %s at (%.2f, %.2f, %.2f) m is outside the %gx%gx%g m room",
			what, p.X, p.Y, p.Z, s.Size.X, s.Size.Y, s.Size.Z)
	}
	return nil
}

// image is one image source: its position and the product of the
// reflection coefficients of the walls its path bounces off.
type image struct {
	p array.Point
	k int // reflections
}

// images enumerates the image sources of src (Allen & Berkley) closer
// than maxDist to the room's centre plus the room's half-diagonal, so
// every image within maxDist of any point in the room is listed; with
// walls reflecting beta, those whose gain is under 1e-9 (-180 dB) are
// left out.
//
//go:norace
func (s Shoebox) images(src array.Point, beta, maxDist float64) []image {
	maxK := math.MaxInt
	if beta < 1 {
		maxK = int(math.Log(1e-9) / math.Log(max(beta, 1e-300)))
	}
	l := [3]float64{s.Size.X, s.Size.Y, s.Size.Z}
	q := [3]float64{src.X, src.Y, src.Z}
	ctr := [3]float64{l[0] / 2, l[1] / 2, l[2] / 2}
	reach := maxDist + math.Sqrt(ctr[0]*ctr[0]+ctr[1]*ctr[1]+ctr[2]*ctr[2])
	var nmax [3]int
	for a := range 3 {
		nmax[a] = int(math.Ceil(reach/(2*l[a]))) + 1
	}
	// Per axis, the images' coordinates and reflection counts: for
	// mirror u in {0,1} and period n, x = (1-2u)q + 2nL, reflecting
	// |n-u| times off the wall at 0 and |n| times off the wall at L.
	type coord struct {
		x float64
		k int
	}
	var axes [3][]coord
	for a := range 3 {
		for n := -nmax[a]; n <= nmax[a]; n++ {
			for u := range 2 {
				x := float64(1-2*u)*q[a] + 2*float64(n)*l[a]
				if math.Abs(x-ctr[a]) > reach {
					continue
				}
				axes[a] = append(axes[a], coord{x, abs(n-u) + abs(n)})
			}
		}
	}
	var out []image
	r2 := reach * reach
	for _, x := range axes[0] {
		dx := x.x - ctr[0]
		for _, y := range axes[1] {
			dy := y.x - ctr[1]
			if dx*dx+dy*dy > r2 {
				continue
			}
			for _, z := range axes[2] {
				dz := z.x - ctr[2]
				if dx*dx+dy*dy+dz*dz > r2 {
					continue
				}
				k := x.k + y.k + z.k
				if k > maxK {
					continue
				}
				out = append(out, image{array.Point{X: x.x, Y: y.x, Z: z.x}, k})
			}
		}
	}
	return out
}

// powers returns beta^k for every k up to the images' largest.
func powers(beta float64, ims []image) []float64 {
	top := 0
	for _, im := range ims {
		top = max(top, im.k)
	}
	p := make([]float64, top+1)
	p[0] = 1
	for k := 1; k <= top; k++ {
		p[k] = p[k-1] * beta
	}
	return p
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// tapHalf is the half-length of the fractional-delay taps of each image
// (a Blackman-windowed sinc of 2·tapHalf taps), and tapSteps the number
// of fractional delays tabulated between two samples.
const (
	tapHalf  = 16
	tapSteps = 1024
)

// tapTable[f][j] is the tap at offset j-tapHalf+1 from the integer part of
// a delay whose fractional part is f/tapSteps.
var tapTable = func() [][2 * tapHalf]float64 {
	t := make([][2 * tapHalf]float64, tapSteps+1)
	for f := range t {
		fr := float64(f) / tapSteps
		for j := range 2 * tapHalf {
			x := float64(j-tapHalf+1) - fr
			t[f][j] = sinc(x) * blackman(x+tapHalf, 2*tapHalf)
		}
	}
	return t
}()

// addTap adds g times a band-limited impulse delayed by t samples to h
// (taps outside h are dropped).
//
//go:norace
func addTap(h []float64, t, g float64) {
	i := math.Floor(t)
	f := int(math.Round((t - i) * tapSteps))
	base := int(i) - tapHalf + 1
	row := &tapTable[f]
	if base >= 0 && base+len(row) <= len(h) {
		dst := h[base : base+len(row)]
		for j, v := range row {
			dst[j] += g * v
		}
		return
	}
	for j, v := range row {
		if k := base + j; k >= 0 && k < len(h) {
			h[k] += g * v
		}
	}
}

// responses returns the room's impulse response from src to each capsule
// (room positions), length samples long: every image source, delayed by
// its distance to the capsule and scaled by its reflections and by r0/r,
// r0 being the source's distance to origin (the array's centroid), so
// that the direct path to the centroid would arrive at baseDelay samples
// with gain 1 (the free-field render's convention). The reflections are
// high-passed (reflHighPassHz).
func (s Shoebox) responses(src, origin array.Point, mics []array.Point, rate, length int) [][]float64 {
	r0 := dist(src, origin)
	fs := float64(rate)
	maxDist := r0 + float64(length-baseDelay)/fs*array.SpeedOfSound
	beta := s.reflection()
	ims := s.images(src, beta, maxDist)
	gain := powers(beta, ims)
	out := make([][]float64, len(mics))
	for c, m := range mics {
		out[c] = response(ims, gain, m, r0, fs, length)
	}
	return out
}

// response is one capsule's response (see responses).
//
// It is pure arithmetic on its own slices and the bulk of a render's
// time, so the race detector, which would slow it tenfold, skips it.
//
//go:norace
func response(ims []image, gain []float64, m array.Point, r0, fs float64, length int) []float64 {
	h := make([]float64, length)
	refl := make([]float64, length)
	for _, im := range ims {
		r := dist(im.p, m)
		t := baseDelay + (r-r0)/array.SpeedOfSound*fs
		if t >= float64(length-tapHalf) {
			continue
		}
		if im.k == 0 {
			addTap(h, t, r0/r)
		} else {
			addTap(refl, t, gain[im.k]*r0/r)
		}
	}
	highPass(refl, reflHighPassHz, fs)
	for i, v := range refl {
		h[i] += v
	}
	return h
}

// reflHighPassHz is the cut-off of the high-pass on the reflections.
// Every image adds a positive pulse, so without it the response's lowest
// frequencies build up coherently far beyond what the decay of the
// reflections' energy implies (Allen and Berkley high-pass theirs too).
const reflHighPassHz = 80

// highPass filters x in place with a 2nd-order Butterworth high-pass.
func highPass(x []float64, fc, rate float64) {
	w := 2 * math.Pi * fc / rate
	cw, sw := math.Cos(w), math.Sin(w)
	alpha := sw / math.Sqrt2
	a0 := 1 + alpha
	b0, b1, b2 := (1+cw)/2/a0, -(1+cw)/a0, (1+cw)/2/a0
	a1, a2 := -2*cw/a0, (1-alpha)/a0
	var s1, s2 float64
	for i, v := range x {
		y := b0*v + s1
		s1 = b1*v - a1*y + s2
		s2 = b2*v - a2*y
		x[i] = y
	}
}

func centroid(mics []array.Point) array.Point {
	var c array.Point
	for _, p := range mics {
		c.X += p.X / float64(len(mics))
		c.Y += p.Y / float64(len(mics))
		c.Z += p.Z / float64(len(mics))
	}
	return c
}

func dist(a, b array.Point) float64 {
	return math.Sqrt((a.X-b.X)*(a.X-b.X) + (a.Y-b.Y)*(a.Y-b.Y) + (a.Z-b.Z)*(a.Z-b.Z))
}

// convolve returns x convolved with each of hs, from sample drop on,
// len(x) samples each (FFT convolution, the transform of x shared).
func convolve(x []float64, hs [][]float64, drop int) [][]float64 {
	longest := 0
	for _, h := range hs {
		longest = max(longest, len(h))
	}
	size := 2
	for size < len(x)+longest {
		size <<= 1
	}
	p, err := fft.New(size)
	if err != nil {
		panic(err) // size is a power of two
	}
	xf := make([]complex64, size)
	for i, v := range x {
		xf[i] = complex(float32(v), 0)
	}
	p.Forward(xf)
	out := make([][]float64, len(hs))
	z := make([]complex64, size)
	for c, h := range hs {
		clear(z)
		for i, v := range h {
			z[i] = complex(float32(v), 0)
		}
		p.Forward(z)
		mul(z, xf)
		p.Inverse(z)
		o := make([]float64, len(x))
		for i := range o {
			if i+drop < size {
				o[i] = float64(real(z[i+drop]))
			}
		}
		out[c] = o
	}
	return out
}

// mul multiplies z by x, element by element.
//
//go:norace
func mul(z, x []complex64) {
	for k := range z {
		z[k] *= x[k]
	}
}

// diffuseField returns n samples of pink noise at each capsule (room
// positions) with the coherence of a spherically isotropic field,
// sin(2πfd/c)/(2πfd/c) between capsules d apart: independent pink noises
// mixed per frequency by the Cholesky factor of the coherence matrix.
func diffuseField(n int, mics []array.Point, rate int, rng *rand.Rand) [][]float64 {
	m := len(mics)
	size := 2
	for size < n+4096 {
		size <<= 1
	}
	p, err := fft.New(size)
	if err != nil {
		panic(err) // size is a power of two
	}
	in := make([][]complex64, m)
	for c := range in {
		w := pink(n, rng)
		in[c] = make([]complex64, size)
		for i, v := range w {
			in[c][i] = complex(float32(v), 0)
		}
		p.Forward(in[c])
	}
	out := make([][]complex64, m)
	for c := range out {
		out[c] = make([]complex64, size)
	}
	g := make([]float64, m*m)
	l := make([]float64, m*m)
	for k := 0; k <= size/2; k++ {
		f := float64(k) * float64(rate) / float64(size)
		for i := range m {
			for j := range m {
				g[i*m+j] = sinc(2 * f * dist(mics[i], mics[j]) / array.SpeedOfSound)
			}
			g[i*m+i] += 1e-6
		}
		cholesky(g, l, m)
		bins := []int{k}
		if k > 0 && k < size/2 {
			bins = append(bins, size-k)
		}
		for _, b := range bins {
			for i := range m {
				var s complex64
				for j := 0; j <= i; j++ {
					s += complex(float32(l[i*m+j]), 0) * in[j][b]
				}
				out[i][b] = s
			}
		}
	}
	res := make([][]float64, m)
	for c := range res {
		p.Inverse(out[c])
		res[c] = make([]float64, n)
		for i := range res[c] {
			res[c][i] = float64(real(out[c][i])) / float64(size)
		}
	}
	return res
}

// cholesky factors the symmetric positive definite m x m matrix a into
// the lower triangular l (a = l lᵀ), both row-major.
func cholesky(a, l []float64, m int) {
	clear(l)
	for i := range m {
		for j := 0; j <= i; j++ {
			s := a[i*m+j]
			for k := range j {
				s -= l[i*m+k] * l[j*m+k]
			}
			if i == j {
				l[i*m+i] = math.Sqrt(max(s, 1e-12))
			} else {
				l[i*m+j] = s / l[j*m+j]
			}
		}
	}
}

// Reference returns the speech the measurement of capsule mic's signal
// (or of a chain's output measured against that capsule) counts as the
// talker: for a free-field room the clean speech itself; for a
// reverberant one the clean speech through the capsule's impulse
// response cut EarlyMS after its direct path (the direct path and the
// early reflections, exactly as rendered), advanced by refLead samples
// so that the capsule's signal lags it by that much (Measure needs a lag).
// Later reverberation is not in the reference, so Measure counts it as
// noise.
func Reference(r Room, speech []float64, mic int) ([]float64, error) {
	if !Reverberant(r.Noise) {
		return append([]float64(nil), speech...), nil
	}
	s := r.space()
	mr, talker, err := s.place(r)
	if err != nil {
		return nil, err
	}
	if mic < 0 || mic >= len(mr) {
		return nil, fmt.Errorf("room: reference at microphone %d of %d", mic, len(mr))
	}
	fs := float64(r.Rate)
	o := centroid(mr)
	d := baseDelay + (dist(talker, mr[mic])-dist(talker, o))/array.SpeedOfSound*fs
	h := s.responses(talker, o, mr[mic:mic+1], r.Rate, s.responseLen(r.Rate))[0]
	clear(h[min(len(h), int(math.Ceil(d+EarlyMS*fs/1000))):])
	return convolve(speech, [][]float64{h}, refLead)[0], nil
}

// refLead is how far a reverberant room's reference leads its capsule.
const refLead = 40

// responseLen is the length of the impulse responses rendered: the RT60
// (the decay to -60 dB) and 20 ms.
func (s Shoebox) responseLen(rate int) int {
	return int(math.Ceil((s.RT60+0.02)*float64(rate))) + baseDelay + tapHalf
}

// place checks a reverberant room and returns the capsules' and the
// talker's room positions.
func (s Shoebox) place(r Room) (mics []array.Point, talker array.Point, err error) {
	if err := array.CheckGeometry(r.Mics); err != nil {
		return nil, talker, err
	}
	mics = s.micsInRoom(r.Mics)
	for i, p := range mics {
		if err := s.check(fmt.Sprintf("microphone %d", i), p); err != nil {
			return nil, talker, err
		}
	}
	talker = s.source(r.TalkerDeg, s.TalkerDist, s.TalkerZ)
	if err := s.check("talker", talker); err != nil {
		return nil, talker, err
	}
	return mics, talker, nil
}

// renderReverb renders a reverberant room: the speech and the noise at
// each capsule before mixing.
func renderReverb(r Room, speech []float64, rng *rand.Rand) (chans, noise [][]float64, err error) {
	s := r.space()
	mr, talker, err := s.place(r)
	if err != nil {
		return nil, nil, err
	}
	n := len(speech)
	length := s.responseLen(r.Rate)
	o := centroid(mr)
	chans = convolve(speech, s.responses(talker, o, mr, r.Rate, length), 0)
	switch r.Noise {
	case ReverbDiffuse:
		noise = diffuseField(n, mr, r.Rate, rng)
	case ReverbDirectional:
		src := pink(n, rng)
		in := s.source(r.InterfererDeg, s.InterfererDist, s.InterfererZ)
		if err := s.check("interferer", in); err != nil {
			return nil, nil, err
		}
		noise = convolve(src, s.responses(in, o, mr, r.Rate, length), 0)
	}
	np := 0.0
	for c := range noise {
		np += power(noise[c]) / float64(len(noise))
	}
	for c := range noise {
		w := pink(n, rng)
		k := 0.1 / math.Sqrt(power(w)) // -20 dB of microphone noise
		for i := range noise[c] {
			noise[c][i] = noise[c][i]/math.Sqrt(np) + k*w[i]
		}
	}
	return chans, noise, nil
}
