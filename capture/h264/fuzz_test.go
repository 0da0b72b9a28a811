package h264

import (
	"bytes"
	"io"
	"reflect"
	"testing"
)

func FuzzSplitAnnexB(f *testing.F) {
	f.Add(annexB([]byte{0x67, 0x42}, []byte{0x68, 0xce}, []byte{0x65, 0x88}))
	f.Add([]byte{0, 0, 1, 0x41, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		nalus, err := SplitAnnexB(b)
		if err != nil {
			return
		}
		total := 0
		for _, n := range nalus {
			if len(n) == 0 || n[len(n)-1] == 0 {
				t.Fatalf("unit %x is empty or ends in zero", n)
			}
			if bytes.Contains(n, startCode) {
				t.Fatalf("unit %x holds a start code", n)
			}
			total += len(n)
		}
		if total > len(b) {
			t.Fatalf("%d bytes of units from %d bytes", total, len(b))
		}
		IsIDR(nalus)
		sps, pps := FindParams(nalus)
		ParseParams(sps, pps) //nolint:errcheck // must only not panic
	})
}

// chunked returns b in reads of growing, irregular sizes.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	c.n = c.n%7 + 1
	k := min(len(p), len(c.b), c.n)
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

func FuzzAnnexBReader(f *testing.F) {
	f.Add(annexB([]byte{0x09, 0xf0}, []byte{0x67, 0x42}, []byte{0x68, 0xce}, []byte{0x65, 0x88}, []byte{0x65, 0x04}, []byte{0x41, 0x9a}))
	f.Add([]byte{0, 0, 0, 0, 1, 0x06, 0, 0, 1, 0x41, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewAnnexBReader(&chunked{b: b})
		var flat [][]byte
		var err error
		for {
			var au [][]byte
			au, err = r.Next()
			if err != nil {
				break
			}
			if len(au) == 0 {
				t.Fatal("empty access unit")
			}
			for i, n := range au {
				if len(n) == 0 {
					t.Fatal("empty NAL unit")
				}
				if i > 0 && Type(n) == TypeAUD {
					t.Fatal("delimiter inside an access unit")
				}
			}
			flat = append(flat, au...)
		}
		want, serr := SplitAnnexB(b)
		if err == io.EOF && serr == nil && !reflect.DeepEqual(flat, want) {
			t.Fatalf("reader units %x differ from SplitAnnexB %x", flat, want)
		}
		if err == io.EOF && serr != nil && len(flat) > 0 {
			t.Fatalf("reader accepted what SplitAnnexB rejects: %v", serr)
		}
	})
}
