package room

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/classcap/classcap/capture/array"
)

// Measure finds a known fractional lag and a known SNR in a delayed,
// scaled copy of the clean speech plus independent noise.
func TestMeasureKnownMix(t *testing.T) {
	const rate = 48000
	clean := Speech(3, rate, 1)
	for _, tc := range []struct{ lag, snr float64 }{{100.3, 10}, {1071.75, 0}, {40, 20}} {
		x := Delay(clean, tc.lag)
		sp := power(x)
		r := rand.New(rand.NewPCG(2, 3))
		noise := make([]float64, len(x))
		for i := range noise {
			noise[i] = r.NormFloat64()
		}
		k := math.Sqrt(sp / power(noise) / math.Pow(10, tc.snr/10))
		in := make([]float32, len(x))
		for i := range x {
			in[i] = float32(0.5*x[i] + 0.5*k*noise[i])
		}
		res, err := Measure(clean, in, rate)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.Lag-tc.lag) > 0.05 {
			t.Errorf("lag %.3f, want %.3f", res.Lag, tc.lag)
		}
		// The noise is white over the whole signal; the speech pauses make
		// the count differ a little from the set SNR through the per-block fit.
		if math.Abs(res.SNRDB-tc.snr) > 0.3 {
			t.Errorf("SNR %.2f dB, want %.1f", res.SNRDB, tc.snr)
		}
	}
}

func TestMeasureRejectsShortOrSilent(t *testing.T) {
	if _, err := Measure(make([]float64, 10), make([]float32, 10), 48000); err == nil {
		t.Error("10 samples measured")
	}
	if _, err := Measure(make([]float64, 48000), make([]float32, 48000), 48000); err == nil {
		t.Error("silence measured")
	}
}

// Render gives each capsule the talker's signal with the right delay and
// the requested SNR.
func TestRender(t *testing.T) {
	mics, _ := array.LookupPreset("square4")
	const rate = 48000
	clean := Speech(2, rate, 5)
	for _, kind := range Kinds {
		if Reverberant(kind) {
			continue // TestRenderReverberant
		}
		r := Room{Mics: mics, Rate: rate, TalkerDeg: 30, Noise: kind, InterfererDeg: 200, SNRDB: 3, Seed: 1}
		sp, np, err := RenderParts(r, clean)
		if err != nil {
			t.Fatal(err)
		}
		want := array.Delays(mics, 30, nil)
		for c := range mics {
			ch := make([]float32, len(sp)/4)
			for i := range ch {
				ch[i] = sp[4*i+c]
			}
			res, err := Measure(clean, ch, rate)
			if err != nil {
				t.Fatal(err)
			}
			if d := res.Lag - (baseDelay + want[c]*rate); math.Abs(d) > 0.05 {
				t.Errorf("%s: capsule %d lags %.3f samples, want %.3f", kind, c, res.Lag, baseDelay+want[c]*rate)
			}
		}
		if got := energyRatioDB(sp, np); math.Abs(got-3) > 0.1 {
			t.Errorf("%s: SNR at the capsules %.2f dB, want 3", kind, got)
		}
	}
	if _, err := Render(Room{Mics: mics, Rate: rate, Noise: "rain"}, clean); err == nil {
		t.Error("unknown noise rendered")
	}
}

func TestLocate(t *testing.T) {
	clean := make([]float64, 48000)
	r := uint32(1)
	for i := range clean {
		r = r*1664525 + 1013904223
		clean[i] = float64(int32(r)) / (1 << 31)
	}
	x := make([]float32, 8000)
	for i := range x {
		x[i] = float32(0.5*clean[12345+i]) + 0.01*float32(i%7)
	}
	if o, err := Locate(clean, x); err != nil || o != 12345 {
		t.Fatalf("Locate = %d, %v; want 12345", o, err)
	}
}

// energyRatioDB is the energy of s over that of n, in dB.
func energyRatioDB(s, n []float32) float64 {
	var es, en float64
	for i := range s {
		es += float64(s[i]) * float64(s[i])
		en += float64(n[i]) * float64(n[i])
	}
	return 10 * math.Log10(es/en)
}
