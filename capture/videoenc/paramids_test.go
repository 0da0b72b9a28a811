package videoenc

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/bits"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/classcap/classcap/capture/h264"
)

// bitString builds a NAL unit from a header byte and RBSP bits ("0101 1"),
// adding the stop bit, alignment and emulation prevention.
func bitString(header byte, s string) []byte {
	s = strings.ReplaceAll(s, " ", "") + "1"
	for len(s)%8 != 0 {
		s += "0"
	}
	rbsp := make([]byte, len(s)/8)
	for i, c := range s {
		if c == '1' {
			rbsp[i/8] |= 0x80 >> (i % 8)
		}
	}
	return append([]byte{header}, addEmulationPrevention(rbsp)...)
}

func TestZeroParamIDs(t *testing.T) {
	mustHex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in, out []byte
	}{
		// Emitted by openh264 for 640x360 at its second IDR (sps id 1),
		// and at its first (sps id 0).
		{"openh264 sps", mustHex("6742c01e4323501405ef2c03c2211a80"), mustHex("6742c01e8c8d405017bcb00f08846a")},
		{"sps id 0 unchanged", mustHex("6742c01e8c8d405017bcb00f08846a"), mustHex("6742c01e8c8d405017bcb00f08846a")},
		{"pps ids 1 and 2", bitString(0x68, "010 011 1100"), bitString(0x68, "1 1 1100")},
		{"idr slice pps 3", bitString(0x65, "1 0001000 00100 0000 0000 0000 0000 0000 0001 1"), bitString(0x65, "1 0001000 1 0000 0000 0000 0000 0000 0001 1")},
		{"p slice keeps first_mb", bitString(0x41, "011 1 010 1111"), bitString(0x41, "011 1 1 1111")},
		{"sei untouched", []byte{0x06, 0x05, 0x00, 0x00, 0x03, 0x01}, []byte{0x06, 0x05, 0x00, 0x00, 0x03, 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := zeroParamIDs(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.out) {
				t.Fatalf("got %x, want %x", got, tt.out)
			}
		})
	}
	for _, bad := range [][]byte{{0x67, 0x42}, {0x68}, {0x65, 0x00, 0x00, 0x00, 0x00, 0x00}} {
		if _, err := zeroParamIDs(bad); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}

// fields parses the leading ue(v) fields of an SPS, PPS or slice and returns
// them with the remaining RBSP bits up to the last 1 bit.
func fields(nalu []byte) ([]uint32, string, bool) {
	skip, count := 0, 0
	switch h264.Type(nalu) {
	case h264.TypeSPS:
		skip, count = 3, 1
	case h264.TypePPS:
		count = 2
	case h264.TypeNonIDR, h264.TypeIDR:
		count = 3
	default:
		return nil, "", false
	}
	rbsp := mch264.EmulationPreventionRemove(nalu[1:])
	if len(rbsp) < skip {
		return nil, "", false
	}
	pos := skip * 8
	var vals []uint32
	for range count {
		v, err := bits.ReadGolombUnsigned(rbsp, &pos)
		if err != nil {
			return nil, "", false
		}
		vals = append(vals, v)
	}
	var rest strings.Builder
	for pos < len(rbsp)*8 {
		if bits.ReadFlagUnsafe(rbsp, &pos) {
			rest.WriteByte('1')
		} else {
			rest.WriteByte('0')
		}
	}
	return vals, strings.TrimRight(rest.String(), "0"), true
}

func FuzzZeroParamIDs(f *testing.F) {
	f.Add([]byte{0x67, 0x42, 0xc0, 0x1e, 0x43, 0x23, 0x50, 0x14, 0x05, 0xef, 0x2c, 0x03, 0xc2, 0x21, 0x1a, 0x80})
	f.Add(bitString(0x68, "010 011 1100"))
	f.Add(bitString(0x65, "1 0001000 00100 0000 0000 0000 0000 0000 0001 1"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		out, err := zeroParamIDs(in)
		if err != nil {
			return
		}
		inVals, inRest, ok := fields(in)
		if !ok {
			if !bytes.Equal(in, out) {
				t.Fatalf("%x changed to %x", in, out)
			}
			return
		}
		outVals, outRest, ok := fields(out)
		if !ok {
			t.Fatalf("output %x does not parse", out)
		}
		for i := range inVals {
			want := inVals[i]
			if h264.Type(in) == h264.TypeSPS || h264.Type(in) == h264.TypePPS || i == 2 {
				want = 0
			}
			if outVals[i] != want {
				t.Fatalf("field %d: %d, want %d (in %x out %x)", i, outVals[i], want, in, out)
			}
		}
		if inRest != outRest {
			t.Fatalf("payload changed: %x -> %x", in, out)
		}
		if !bytes.Equal(out, in) && bytes.Contains(out[1:], []byte{0, 0, 1}) {
			t.Fatalf("output %x holds a start code", out)
		}
	})
}
