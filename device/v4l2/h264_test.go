package v4l2

import (
	"bytes"
	"testing"
)

var (
	sps    = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01}
	pps    = []byte{0x68, 0xce, 0x3c, 0x80}
	aud    = []byte{0x09, 0xf0}
	idr    = []byte{0x65, 0x88, 0x84, 0x21}
	nonIDR = []byte{0x41, 0x9a, 0x02}
	sei    = []byte{0x06, 0x05, 0x01, 0x80}
)

func annexB(nalus ...[]byte) []byte {
	var b []byte
	for i, n := range nalus {
		if i == 0 {
			b = append(b, 0, 0, 0, 1)
		} else {
			b = append(b, 0, 0, 1)
		}
		b = append(b, n...)
	}
	return b
}

func TestAssemble(t *testing.T) {
	type step struct {
		in      []byte
		want    [][]byte
		wantIDR bool
		wantErr bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"parameter sets only at the start are repeated on every IDR", []step{
			{in: annexB(sps, pps, idr), want: [][]byte{sps, pps, idr}, wantIDR: true},
			{in: annexB(nonIDR), want: [][]byte{nonIDR}},
			{in: annexB(idr), want: [][]byte{sps, pps, idr}, wantIDR: true},
		}},
		{"after an access unit delimiter", []step{
			{in: annexB(aud, sps, pps, sei, idr), want: [][]byte{aud, sps, pps, sei, idr}, wantIDR: true},
			{in: annexB(aud, sei, idr), want: [][]byte{aud, sps, pps, sei, idr}, wantIDR: true},
		}},
		{"only the missing one is added", []step{
			{in: annexB(sps, pps, idr), want: [][]byte{sps, pps, idr}, wantIDR: true},
			{in: annexB(sps, idr), want: [][]byte{pps, sps, idr}, wantIDR: true},
		}},
		{"no parameter sets seen yet: passed as is", []step{
			{in: annexB(nonIDR), want: [][]byte{nonIDR}},
			{in: annexB(idr), want: [][]byte{idr}, wantIDR: true},
		}},
		{"garbage is an error and keeps the state", []step{
			{in: annexB(sps, pps, idr), want: [][]byte{sps, pps, idr}, wantIDR: true},
			{in: []byte{0xff, 0xd8, 0xff}, wantErr: true},
			{in: []byte{0, 0, 1}, wantErr: true},
			{in: nil, wantErr: true},
			{in: annexB(idr), want: [][]byte{sps, pps, idr}, wantIDR: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a auAssembler
			for i, s := range tt.steps {
				in := bytes.Clone(s.in)
				got, isIDR, err := a.assemble(in)
				if (err != nil) != s.wantErr {
					t.Fatalf("step %d: error %v, want error %v", i, err, s.wantErr)
				}
				if err != nil {
					continue
				}
				// The units are copies: the mmap buffer is reused.
				for j := range in {
					in[j] = 0xee
				}
				if isIDR != s.wantIDR {
					t.Errorf("step %d: IDR %v, want %v", i, isIDR, s.wantIDR)
				}
				if len(got) != len(s.want) {
					t.Fatalf("step %d: %d units %x, want %x", i, len(got), got, s.want)
				}
				for j := range got {
					if !bytes.Equal(got[j], s.want[j]) {
						t.Errorf("step %d unit %d: %x, want %x", i, j, got[j], s.want[j])
					}
				}
			}
		})
	}
}

func FuzzAssemble(f *testing.F) {
	f.Add(annexB(sps, pps, idr), annexB(idr))
	f.Add(annexB(aud, sei, idr), []byte{0, 0, 1, 0x65})
	f.Add([]byte{0, 0, 0}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var as auAssembler
		for _, in := range [][]byte{a, b} {
			nalus, _, err := as.assemble(in)
			if err == nil && len(nalus) == 0 {
				t.Fatal("no error and no units")
			}
			for _, n := range nalus {
				if len(n) == 0 {
					t.Fatal("empty unit")
				}
			}
		}
	})
}
