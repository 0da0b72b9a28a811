package main

import (
	"context"
	"math"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    float64
		wantErr bool
	}{
		{name: "plain", in: "1234 (classcapd) S 1 1234 1234 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 9 0 100 0 0", want: 3.25},
		{name: "spaces and parens in name", in: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0", want: 0.03},
		{name: "no close paren", in: "7 (abc R 1", wantErr: true},
		{name: "too short", in: "7 (x) S 1 2 3", wantErr: true},
		{name: "not a number", in: "7 (x) S 1 7 7 0 -1 0 0 0 0 0 a 2 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("parseStat = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (classcapd) S 1 1234 1234 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 9 0 100 0 0"))
	f.Add([]byte("7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseStat(b)
		if err == nil && (s < 0 || math.IsNaN(s)) {
			t.Fatalf("parseStat(%q) = %v", b, s)
		}
	})
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name    string
		xs      []float64
		p       float64
		want    float64
		wantErr bool
	}{
		{name: "median odd", xs: []float64{3, 1, 2}, p: 0.5, want: 2},
		{name: "median even", xs: []float64{4, 1, 3, 2}, p: 0.5, want: 2.5},
		{name: "p90 of 1..20", xs: seq(20), p: 0.9, want: 18.1},
		{name: "max", xs: []float64{5, 9, 7}, p: 1, want: 9},
		{name: "min", xs: []float64{5, 9, 7}, p: 0, want: 5},
		{name: "one", xs: []float64{4}, p: 0.9, want: 4},
		{name: "empty", xs: nil, p: 0.5, wantErr: true},
		{name: "p out of range", xs: []float64{1}, p: 1.5, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := quantile(tt.xs, tt.p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("quantile err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("quantile = %v, want %v", got, tt.want)
			}
		})
	}
}

func seq(n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	return xs
}

func TestLine(t *testing.T) {
	tests := []struct {
		name, ours, peer, unit string
		want                   string
		wantErr                bool
	}{
		{name: "cpu", ours: "0.0444", peer: "0.0180", unit: "cpu_s_per_media_s",
			want: "bench cpu ours=0.0444 peer=0.0180 ratio=2.467 unit=cpu_s_per_media_s"},
		{name: "tap", ours: "22.30", unit: "ms", want: "bench tap ours=22.30 unit=ms"},
		{name: "zero peer", ours: "1", peer: "0", unit: "ms", wantErr: true},
		{name: "bad ours", ours: "x", unit: "ms", wantErr: true},
		{name: "no unit", ours: "1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := line(tt.name, tt.ours, tt.peer, tt.unit)
			if (err != nil) != tt.wantErr {
				t.Fatalf("line err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("line = %q, want %q", got, tt.want)
			}
			if err == nil && strings.Count(got, "=") != strings.Count(tt.want, "=") {
				t.Errorf("line %q has the wrong fields", got)
			}
		})
	}
}

// TestQuantileKeepsPrecision: the medians of CPU figures near 0.03 CPU-s
// per media second are compared to a tenth of a percent, so the printed
// quantile must not round them.
func TestQuantileKeepsPrecision(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"quantile", "-p", "0.5"}, strings.NewReader("0.0282\n0.0237\n0.0291\n"), &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "0.0282" {
		t.Errorf("median printed %q, want 0.0282", got)
	}
}
