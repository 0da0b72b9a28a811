package videoenc

import (
	"errors"
	mbits "math/bits"

	"github.com/bluenviron/mediacommon/v2/pkg/bits"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/classcap/classcap/capture/h264"
)

// zeroParamIDs rewrites the parameter set ids of an SPS, PPS or slice to 0.
//
// openh264 gives the SPS and PPS of every IDR a new id (its INCREASING_ID
// strategy, which pion's bridge does not let us change; ffmpeg sets
// CONSTANT_ID for the same reason). With every id at 0, all IDRs carry the
// same SPS and PPS, so the MP4 sample entry written from the first one
// stays valid for the whole recording. Slices are CAVLC (openh264 encodes
// baseline only), so shifting the bits after the id is safe. Other NAL
// units, and units whose ids are already 0, are returned unchanged.
func zeroParamIDs(nalu []byte) ([]byte, error) {
	var skip int   // RBSP bytes before the first ue(v) field
	var ids []bool // for each leading ue(v) field: is it an id
	switch h264.Type(nalu) {
	case h264.TypeSPS:
		skip, ids = 3, []bool{true} // profile, constraints, level; sps id
	case h264.TypePPS:
		ids = []bool{true, true} // pps id, sps id
	case h264.TypeNonIDR, h264.TypeIDR:
		ids = []bool{false, false, true} // first_mb_in_slice, slice_type, pps id
	default:
		return nalu, nil
	}
	rbsp := mch264.EmulationPreventionRemove(nalu[1:])
	pos := skip * 8
	if len(rbsp) < skip {
		return nil, errors.New("NAL unit too short")
	}
	vals := make([]uint32, len(ids))
	changed := false
	for i, isID := range ids {
		v, err := bits.ReadGolombUnsigned(rbsp, &pos)
		if err != nil {
			return nil, err
		}
		if v > 1<<20 {
			return nil, errors.New("implausible header field")
		}
		if isID && v != 0 {
			v, changed = 0, true
		}
		vals[i] = v
	}
	if !changed {
		return nalu, nil
	}

	// The ids only shrink, so the rewritten RBSP fits in len(rbsp) bytes.
	out := make([]byte, len(rbsp)+1)
	copy(out, rbsp[:skip])
	wpos := skip * 8
	for _, v := range vals {
		n := mbits.Len32(v + 1) // ue(v): n-1 zeros, then v+1 in n bits
		bits.WriteBitsUnsafe(out, &wpos, uint64(v+1), 2*n-1)
	}
	for end := len(rbsp) * 8; pos < end; {
		n := min(56, end-pos)
		bits.WriteBitsUnsafe(out, &wpos, bits.ReadBitsUnsafe(rbsp, &pos, n), n)
	}
	// The stop bit moved towards the front: drop alignment bytes left empty.
	out = out[:(wpos+7)/8]
	for len(out) > 0 && out[len(out)-1] == 0 {
		out = out[:len(out)-1]
	}
	if len(out) == 0 {
		return nil, errors.New("NAL unit has no stop bit")
	}
	return append([]byte{nalu[0]}, addEmulationPrevention(out)...), nil
}

// addEmulationPrevention inserts 0x03 wherever two zero bytes are followed
// by a byte up to 3 (H.264 7.4.1).
func addEmulationPrevention(rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/32+1)
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}
