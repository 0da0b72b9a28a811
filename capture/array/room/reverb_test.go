package room

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/array/internal/fft"
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
		length := int((s.RT60+0.05)*rate) + baseDelay
		for c, h := range s.responses(talker, centroid(mr), mr, rate, length) {
			got := schroederRT60(h, rate)
			t.Logf("%gx%gx%g m, RT60 %.2f s: capsule %d measures %.3f s", s.Size.X, s.Size.Y, s.Size.Z, s.RT60, c, got)
			if math.Abs(got-s.RT60) > 0.15*s.RT60 {
				t.Errorf("%gx%gx%g m: capsule %d RT60 %.3f s, want %.2f ± 15%%", s.Size.X, s.Size.Y, s.Size.Z, c, got, s.RT60)
			}
		}
	}
}

// The direct path in each capsule's response arrives when the geometry
// says and with its 1/r gain, for every preset and two talker azimuths,
// reflections and all. The array stands 1.5 m from the wall here, so the
// first reflection follows the direct path by more than the taps' length,
// and the response is cut after the direct path's taps.
func TestDirectPath(t *testing.T) {
	const rate = 48000
	s := Classroom
	s.Array.Y = 1.5
	for _, name := range array.PresetNames() {
		mics, _ := array.LookupPreset(name)
		for _, az := range []float64{60, 125} {
			mr := s.micsInRoom(mics)
			talker := s.source(az, s.TalkerDist, s.TalkerZ)
			var o array.Point
			for _, m := range mr {
				o.X, o.Y, o.Z = o.X+m.X/float64(len(mr)), o.Y+m.Y/float64(len(mr)), o.Z+m.Z/float64(len(mr))
			}
			r0 := math.Sqrt((talker.X-o.X)*(talker.X-o.X) + (talker.Y-o.Y)*(talker.Y-o.Y) + (talker.Z-o.Z)*(talker.Z-o.Z))
			for c, h := range s.responses(talker, o, mr, rate, s.responseLen(rate)) {
				m := mr[c]
				r := math.Sqrt((talker.X-m.X)*(talker.X-m.X) + (talker.Y-m.Y)*(talker.Y-m.Y) + (talker.Z-m.Z)*(talker.Z-m.Z))
				want := baseDelay + (r-r0)/array.SpeedOfSound*rate
				first := math.Inf(1) // the first reflection's arrival
				for _, im := range s.images(talker, s.reflection(), 20) {
					if im.k > 0 {
						first = min(first, baseDelay+(dist(im.p, m)-r0)/array.SpeedOfSound*rate)
					}
				}
				if first-want < 2*tapHalf+2 {
					t.Fatalf("%s, talker at %v°: capsule %d: a reflection %.1f samples after the direct path", name, az, c, first-want)
				}
				// The direct path alone: its gain at 0 Hz and its group
				// delay there (the first moment of the taps).
				var g, moment float64
				for k, v := range h[:int(want)+tapHalf+1] {
					g += v
					moment += float64(k) * v
				}
				at, v := moment/g, g
				if math.Abs(at-want) > 0.01 || math.Abs(v-r0/r) > 0.005*r0/r {
					t.Errorf("%s, talker at %v°: capsule %d direct path at %.3f samples, gain %.4f; want %.3f, %.4f",
						name, az, c, at, v, want, r0/r)
				}
			}
		}
	}
}

// speechOnly renders r and returns its speech part per capsule.
func speechOnly(t *testing.T, r Room, clean []float64) [][]float64 {
	t.Helper()
	sp, _, err := RenderParts(r, clean)
	if err != nil {
		t.Fatal(err)
	}
	m := len(r.Mics)
	out := make([][]float64, m)
	for c := range out {
		out[c] = make([]float64, len(sp)/m)
		for i := range out[c] {
			out[c][i] = float64(sp[i*m+c])
		}
	}
	return out
}

// With the reverberation time near zero the walls absorb everything and
// the image-source render is the free-field render: the talker in the
// array's plane, 3 m away, differs only by the wavefront's curvature and
// the 1/r spread across the aperture (under -40 dB).
func TestImagesWithoutReverberationAreFreeField(t *testing.T) {
	const rate = 48000
	clean := Speech(2, rate, 3)
	dry := Classroom
	dry.RT60, dry.TalkerZ = 1e-3, dry.Array.Z
	for _, name := range []string{"linear4", "circular6"} {
		mics, _ := array.LookupPreset(name)
		for _, az := range []float64{60, 150} {
			free := speechOnly(t, Room{Mics: mics, Rate: rate, TalkerDeg: az, Noise: Diffuse, SNRDB: 5, Seed: 1}, clean)
			img := speechOnly(t, Room{Mics: mics, Rate: rate, TalkerDeg: az, Noise: ReverbDiffuse, SNRDB: 5, Seed: 1, Space: &dry}, clean)
			for c := range free {
				var xy, yy float64
				for i := range free[c] {
					xy += free[c][i] * img[c][i]
					yy += img[c][i] * img[c][i]
				}
				g := xy / yy // the two renders scale to full scale apart
				var e, p float64
				for i := range free[c] {
					d := free[c][i] - g*img[c][i]
					e += d * d
					p += free[c][i] * free[c][i]
				}
				got := 10 * math.Log10(e/p)
				t.Logf("%s, talker at %v°: capsule %d differs by %.1f dB", name, az, c, got)
				if got > -40 {
					t.Errorf("%s, talker at %v°: capsule %d differs from free field by %.1f dB, want under -40", name, az, c, got)
				}
			}
		}
	}
}

// The reverberant rooms have the requested SNR at the capsules, are
// deterministic, reject sources outside the room, and each capsule
// measured against its own reference (direct path and 50 ms) lags it as
// the reference says and has the late reverberation as its only noise.
func TestRenderReverberant(t *testing.T) {
	mics, _ := array.LookupPreset("linear4")
	const rate = 48000
	clean := Speech(4, rate, 5)
	for _, kind := range []string{ReverbDiffuse, ReverbDirectional} {
		r := Room{Mics: mics, Rate: rate, TalkerDeg: 60, Noise: kind, InterfererDeg: 150, SNRDB: 3, Seed: 1}
		sp, np, err := RenderParts(r, clean)
		if err != nil {
			t.Fatal(err)
		}
		if got := energyRatioDB(sp, np); math.Abs(got-3) > 0.1 {
			t.Errorf("%s: SNR at the capsules %.2f dB, want 3", kind, got)
		}
		if kind == ReverbDiffuse {
			again, _, err := RenderParts(r, clean)
			if err != nil {
				t.Fatal(err)
			}
			for i := range sp {
				if sp[i] != again[i] {
					t.Fatalf("%s: two renders differ at sample %d", kind, i)
				}
			}
		}
		for c := range mics {
			ref, err := Reference(r, clean, c)
			if err != nil {
				t.Fatal(err)
			}
			ch := make([]float32, len(sp)/4)
			for i := range ch {
				ch[i] = sp[4*i+c]
			}
			res, err := Measure(ref, ch, rate)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: capsule %d: speech against its reference %.2f dB (late reverberation), lag %.3f", kind, c, res.SNRDB, res.Lag)
			if math.Abs(res.Lag-refLead) > 0.2 {
				t.Errorf("%s: capsule %d lags its reference by %.3f samples, want %d", kind, c, res.Lag, refLead)
			}
			// Late reverberation of a talker 3 m away at RT60 0.6 s in
			// 189 m³ (critical distance about 1 m): a few dB under the
			// early sound.
			if res.SNRDB < 1 || res.SNRDB > 10 {
				t.Errorf("%s: capsule %d: early to late %.2f dB, want 1 to 10", kind, c, res.SNRDB)
			}
		}
	}
	mics4, _ := array.LookupPreset("square4")
	for _, r := range []Room{
		{Mics: mics4, Rate: rate, TalkerDeg: 270, Noise: ReverbDiffuse, SNRDB: 3},                        // behind the wall
		{Mics: mics4, Rate: rate, TalkerDeg: 60, InterfererDeg: 250, Noise: ReverbDirectional, SNRDB: 3}, // behind the wall
	} {
		if _, err := Render(r, clean); err == nil {
			t.Errorf("talker at %v°, interferer at %v°: rendered", r.TalkerDeg, r.InterfererDeg)
		}
	}
}

// BenchmarkRenderReverberant renders 20 s of the reverberant classroom
// with a reverberant interferer on four capsules.
func BenchmarkRenderReverberant(b *testing.B) {
	mics, _ := array.LookupPreset("linear4")
	const rate = 48000
	clean := Speech(20, rate, 5)
	for b.Loop() {
		r := Room{Mics: mics, Rate: rate, TalkerDeg: 60, Noise: ReverbDirectional, InterfererDeg: 150, SNRDB: 5, Seed: 1}
		if _, err := Render(r, clean); err != nil {
			b.Fatal(err)
		}
	}
}

// The diffuse noise field has the coherence of a spherically isotropic
// field, sin(2πfd/c)/(2πfd/c), between capsules d apart (Welch estimate
// over 4 s, 21 ms Hann frames).
func TestDiffuseFieldCoherence(t *testing.T) {
	mics, _ := array.LookupPreset("linear4")
	const rate = 48000
	mr := Classroom.micsInRoom(mics)
	x := diffuseField(4*rate, mr, rate, rand.New(rand.NewPCG(1, 2)))
	const size = 1024
	p, err := fft.New(size)
	if err != nil {
		t.Fatal(err)
	}
	pairs := [][2]int{{0, 1}, {0, 3}, {1, 2}}
	sxy := make([][]complex128, len(pairs))
	sxx := make([][]float64, len(mr))
	for i := range sxy {
		sxy[i] = make([]complex128, size/2)
	}
	for c := range sxx {
		sxx[c] = make([]float64, size/2)
	}
	spec := make([][]complex64, len(mr))
	for s := 0; s+size <= len(x[0]); s += size / 2 {
		for c := range mr {
			z := make([]complex64, size)
			for i := range z {
				w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/size)
				z[i] = complex(float32(x[c][s+i]*w), 0)
			}
			p.Forward(z)
			spec[c] = z
			for k := range size / 2 {
				sxx[c][k] += real(complex128(z[k]) * cmplx.Conj(complex128(z[k])))
			}
		}
		for i, pr := range pairs {
			for k := range size / 2 {
				sxy[i][k] += complex128(spec[pr[0]][k]) * cmplx.Conj(complex128(spec[pr[1]][k]))
			}
		}
	}
	for i, pr := range pairs {
		d := dist(mr[pr[0]], mr[pr[1]])
		for _, f := range []float64{300, 1000, 2500, 5000, 8000} {
			k := int(f * size / rate)
			var got float64
			for j := k - 2; j <= k+2; j++ {
				got += real(sxy[i][j]) / math.Sqrt(sxx[pr[0]][j]*sxx[pr[1]][j]) / 5
			}
			want := sinc(2 * float64(k) * rate / size * d / array.SpeedOfSound)
			if math.Abs(got-want) > 0.05 {
				t.Errorf("capsules %d and %d (%.1f mm): coherence %.3f at %.0f Hz, want %.3f", pr[0], pr[1], d*1000, got, f, want)
			}
		}
	}
}
