package array

import (
	"math"
	"math/cmplx"
)

// Beamformers (Config.Beam).
const (
	BeamDelaySum = "delay-and-sum"
	// BeamMVDR is the minimum-variance distortionless-response beamformer:
	// per bin, the weights that pass the talker's direction unchanged and
	// minimise the power of the noise, whose spatial covariance is learnt
	// in frames without speech. Diagonal loading and a bound on the white
	// noise gain keep it from amplifying the capsules' own noise.
	BeamMVDR = "mvdr"
)

// Settings of the MVDR beamformer.
const (
	// mvdrMemory is the time constant of the noise covariance, seconds of
	// frames without speech.
	mvdrMemory = 1.0
	// mvdrLoading is the diagonal loading, relative to the mean capsule
	// noise power of the bin.
	mvdrLoading = 0.05
	// mvdrMaxWNGLossDB bounds how much more of the capsules' own
	// (independent) noise the weights may pass than delay-and-sum does.
	mvdrMaxWNGLossDB = 10.0
	// mvdrWarmFrames of noise (about 0.5 s) are learnt before the
	// weights leave delay-and-sum.
	mvdrWarmFrames = 48
	// mvdrNoiseRatio: a frame teaches the noise covariance only when its
	// band power is within this factor of the noise estimate (clearly no
	// speech: speech in the covariance makes the beam cancel the talker).
	mvdrNoiseRatio = 1.5
	// mvdrBinRatio: nor does a bin whose beam power exceeds the beam's
	// noise estimate by this factor (a fricative above the detector's
	// band, a click).
	mvdrBinRatio = 3.0
	// mvdrEvery: the weights are solved again every so many frames.
	mvdrEvery = 4
)

// mvdr is the state of the adaptive beamformer for one mono beam.
type mvdr struct {
	m       int
	alpha   float64
	cov     [][]complex128 // per bin, m×m row-major noise covariance
	w       [][]complex64  // per channel, per bin: y = Σ w[ch][k]·x[ch][k]
	frames  int            // noise frames learnt
	since   int            // frames since the weights were solved
	solved  bool           // w holds solved weights
	dirty   bool           // the steering changed: solve at the next frame
	maxNorm float64        // bound on ‖w‖² (white noise gain)
	// scratch
	a, l []complex128
	d, z []complex128
}

func newMVDR(m, k, hop, rate int) *mvdr {
	v := &mvdr{m: m, cov: make([][]complex128, k), w: make2c(m, k),
		a: make([]complex128, m*m), l: make([]complex128, m*m), d: make([]complex128, m), z: make([]complex128, m)}
	back := make([]complex128, k*m*m)
	for i := range v.cov {
		v.cov[i] = back[i*m*m : (i+1)*m*m : (i+1)*m*m]
	}
	v.alpha = math.Exp(-float64(hop) / (mvdrMemory * float64(rate)))
	v.maxNorm = math.Pow(10, mvdrMaxWNGLossDB/10) / float64(m)
	return v
}

// learn adds a frame of spectra without speech to the noise covariance;
// weight (0..1) per bin scales the update (bins the talker may own count
// less).
//
//go:norace
func (v *mvdr) learn(x [][]complex64, weight []float32) {
	m := v.m
	first := v.frames == 0
	for k, r := range v.cov {
		u := 1 - v.alpha
		if first {
			u = 1
		}
		u *= float64(weight[k])
		if u <= 0 {
			continue
		}
		for i := range m {
			xi := complex128(x[i][k])
			for j := i; j < m; j++ {
				p := xi * cmplx.Conj(complex128(x[j][k]))
				r[i*m+j] += complex(u, 0) * (p - r[i*m+j])
			}
		}
	}
	v.frames++
}

// weights returns the per-channel apply coefficients for this frame (the
// delay-and-sum ones in steer until the noise is learnt), solving them
// again when due.
//
//go:norace
func (v *mvdr) weights(steer [][]complex64) [][]complex64 {
	if v.frames < mvdrWarmFrames {
		return steer
	}
	v.since++
	if !v.solved || v.dirty || v.since >= mvdrEvery {
		v.since, v.dirty, v.solved = 0, false, true
		v.solve(steer)
	}
	return v.w
}

// solve computes, for every bin, w = R⁻¹d / (dᴴR⁻¹d) with R the loaded
// noise covariance and d the steering vector, bounded in white noise gain,
// and stores the apply coefficients conj(w).
//
//go:norace
func (v *mvdr) solve(steer [][]complex64) {
	m := v.m
	fm := float64(m)
	for k, r := range v.cov {
		// d: the talker's phase at each capsule (steer holds conj(d)/M).
		for c := range m {
			v.d[c] = cmplx.Conj(complex128(steer[c][k])) * complex(fm, 0)
		}
		var tr float64
		for i := range m {
			tr += real(r[i*m+i])
		}
		load := mvdrLoading*tr/fm + 1e-12
		for i := range m {
			for j := range m {
				switch {
				case j > i:
					v.a[i*m+j] = r[i*m+j]
				case j < i:
					v.a[i*m+j] = cmplx.Conj(r[j*m+i])
				default:
					v.a[i*m+i] = complex(real(r[i*m+i])+load, 0)
				}
			}
		}
		if !v.cholSolve() {
			for c := range m {
				v.w[c][k] = steer[c][k]
			}
			continue
		}
		var den complex128
		for c := range m {
			den += cmplx.Conj(v.d[c]) * v.z[c]
		}
		if !(real(den) > 1e-30) || math.IsInf(real(den), 0) {
			for c := range m {
				v.w[c][k] = steer[c][k]
			}
			continue
		}
		// w = z/den; bound ‖w‖²: w = w_ds + β(w − w_ds) keeps wᴴd = 1
		// (w − w_ds is orthogonal to d), so β follows from the norm.
		var e float64
		for c := range m {
			v.z[c] /= den
			diff := v.z[c] - v.d[c]/complex(fm, 0)
			e += real(diff)*real(diff) + imag(diff)*imag(diff)
		}
		beta := 1.0
		if lim := v.maxNorm - 1/fm; e > lim {
			beta = math.Sqrt(lim / e)
		}
		for c := range m {
			ds := v.d[c] / complex(fm, 0)
			w := ds + complex(beta, 0)*(v.z[c]-ds)
			v.w[c][k] = complex64(cmplx.Conj(w))
		}
	}
}

// cholSolve solves a·z = d for the Hermitian positive-definite a (in
// v.a) by Cholesky, into v.z; false when a is not positive definite.
//
//go:norace
func (v *mvdr) cholSolve() bool {
	m, a, l := v.m, v.a, v.l
	for i := range m {
		for j := 0; j <= i; j++ {
			s := a[i*m+j]
			for p := range j {
				s -= l[i*m+p] * cmplx.Conj(l[j*m+p])
			}
			if i == j {
				if !(real(s) > 0) || math.IsInf(real(s), 0) {
					return false
				}
				l[i*m+i] = complex(math.Sqrt(real(s)), 0)
			} else {
				l[i*m+j] = s / l[j*m+j]
			}
		}
	}
	// L y = d, then Lᴴ z = y.
	for i := range m {
		s := v.d[i]
		for p := range i {
			s -= l[i*m+p] * v.z[p]
		}
		v.z[i] = s / l[i*m+i]
	}
	for i := m - 1; i >= 0; i-- {
		s := v.z[i]
		for p := i + 1; p < m; p++ {
			s -= cmplx.Conj(l[p*m+i]) * v.z[p]
		}
		v.z[i] = s / l[i*m+i]
	}
	return true
}
