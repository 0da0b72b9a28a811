// Package fft is a small in-place radix-2 complex FFT on complex64, with
// precomputed twiddles so that transforms allocate nothing.
package fft

import (
	"fmt"
	"math"
	"math/bits"
)

// Plan transforms blocks of one power-of-two length.
type Plan struct {
	n   int
	rev []int32
	tw  []complex64 // e^{-2πik/n}, k < n/2
}

// New returns a plan for length n, a power of two >= 2.
func New(n int) (*Plan, error) {
	if n < 2 || n&(n-1) != 0 {
		return nil, fmt.Errorf("fft: length %d is not a power of two >= 2", n)
	}
	p := &Plan{n: n, rev: make([]int32, n), tw: make([]complex64, n/2)}
	shift := bits.UintSize - bits.TrailingZeros(uint(n))
	for i := range n {
		p.rev[i] = int32(bits.Reverse(uint(i)) >> shift)
	}
	for k := range p.tw {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		p.tw[k] = complex(float32(c), float32(s))
	}
	return p, nil
}

// Len is the transform length.
func (p *Plan) Len() int { return p.n }

// Forward replaces x (length Len) by its unnormalised DFT.
//
//go:norace
func (p *Plan) Forward(x []complex64) {
	n := p.n
	x = x[:n]
	for i, j := range p.rev {
		if i < int(j) {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		half := size >> 1
		step := n / size
		for start := 0; start < n; start += size {
			a := x[start : start+half]
			b := x[start+half : start+size]
			k := 0
			for j := range a {
				t := p.tw[k] * b[j]
				b[j] = a[j] - t
				a[j] += t
				k += step
			}
		}
	}
}

// Inverse replaces x (length Len) by its inverse DFT, scaled by 1/Len so
// that Inverse(Forward(x)) == x.
//
//go:norace
func (p *Plan) Inverse(x []complex64) {
	x = x[:p.n]
	for i, v := range x {
		x[i] = complex(real(v), -imag(v))
	}
	p.Forward(x)
	s := 1 / float32(p.n)
	for i, v := range x {
		x[i] = complex(real(v)*s, -imag(v)*s)
	}
}
