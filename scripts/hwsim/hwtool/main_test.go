package main

import (
	"math"
	"testing"
)

func TestParseFreqs(t *testing.T) {
	got, err := parseFreqs("300, 500,700.5")
	if err != nil || len(got) != 3 || got[0] != 300 || got[2] != 700.5 {
		t.Fatalf("parseFreqs: %v, %v", got, err)
	}
	for _, bad := range []string{"", "300,", "-1", "0", "abc", "Inf"} {
		if _, err := parseFreqs(bad); err == nil {
			t.Errorf("parseFreqs(%q) accepted", bad)
		}
	}
}

// Each channel carries its own tone, continuous across blocks.
func TestSinesPerChannel(t *testing.T) {
	freqs := []float64{300, 500}
	a := make([]float32, 2*480)
	b := make([]float32, 2*480)
	sines(a, freqs, 48000, 0, 0.5)
	sines(b, freqs, 48000, 480, 0.5)
	for c, f := range freqs {
		for i, blk := range [][]float32{a, b} {
			for k := 0; k < 480; k++ {
				want := 0.5 * math.Sin(2*math.Pi*f*float64(i*480+k)/48000)
				if d := math.Abs(float64(blk[2*k+c]) - want); d > 1e-6 {
					t.Fatalf("channel %d frame %d: %v, want %v", c, i*480+k, blk[2*k+c], want)
				}
			}
		}
	}
}
