package fft

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

func TestForwardMatchesDFT(t *testing.T) {
	for _, n := range []int{2, 8, 64, 1024} {
		p, err := New(n)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, uint64(n)))
		x := make([]complex64, n)
		for i := range x {
			x[i] = complex(float32(r.NormFloat64()), float32(r.NormFloat64()))
		}
		want := make([]complex128, n)
		for k := range n {
			for i, v := range x {
				want[k] += complex128(v) * cmplx.Exp(complex(0, -2*math.Pi*float64(i*k)/float64(n)))
			}
		}
		y := append([]complex64(nil), x...)
		p.Forward(y)
		for k := range n {
			if d := cmplx.Abs(complex128(y[k]) - want[k]); d > 1e-4*math.Sqrt(float64(n))*4 {
				t.Fatalf("n=%d bin %d: got %v want %v", n, k, y[k], want[k])
			}
		}
		p.Inverse(y)
		for i := range x {
			if d := cmplx.Abs(complex128(y[i] - x[i])); d > 1e-4 {
				t.Fatalf("n=%d: round trip sample %d: got %v want %v", n, i, y[i], x[i])
			}
		}
	}
}

func TestNewRejectsBadLength(t *testing.T) {
	for _, n := range []int{0, 1, 3, 100} {
		if _, err := New(n); err == nil {
			t.Errorf("New(%d) accepted a length that is not a power of two", n)
		}
	}
}
