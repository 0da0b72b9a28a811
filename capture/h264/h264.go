// Package h264 holds the H.264 bitstream helpers of the capture pipeline:
// splitting Annex-B byte streams into NAL units, grouping NAL units into
// access units while streaming a file, finding and parsing the parameter
// sets. Parsing of the SPS itself is left to mediacommon.
package h264

import (
	"bytes"
	"errors"
	"fmt"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/classcap/classcap/capture/media"
)

// NAL unit types used by the pipeline (ITU-T H.264 table 7-1).
const (
	TypeNonIDR = 1
	TypeDPA    = 2 // slice data partition A
	TypeIDR    = 5
	TypeSEI    = 6
	TypeSPS    = 7
	TypePPS    = 8
	TypeAUD    = 9
)

// MaxAccessUnitSize is the largest access unit (and so NAL unit) accepted.
const MaxAccessUnitSize = mch264.MaxAccessUnitSize

// ErrNoStartCode is returned for data that does not begin with an Annex-B
// start code (leading zero bytes are allowed).
var ErrNoStartCode = errors.New("no Annex-B start code at the beginning")

var startCode = []byte{0, 0, 1}

// Type returns the nal_unit_type of nalu, or 0 for an empty unit.
func Type(nalu []byte) int {
	if len(nalu) == 0 {
		return 0
	}
	return int(nalu[0] & 0x1f)
}

// SplitAnnexB splits an Annex-B byte stream into its NAL units, without start
// codes and without trailing zero bytes. Empty units are dropped. The units
// alias b.
func SplitAnnexB(b []byte) ([][]byte, error) {
	i := bytes.Index(b, startCode)
	if i < 0 || !allZero(b[:i]) {
		return nil, ErrNoStartCode
	}
	var nalus [][]byte
	pos := i + 3
	for {
		j := bytes.Index(b[pos:], startCode)
		end := len(b)
		if j >= 0 {
			end = pos + j
		}
		if n := trimZeros(b[pos:end]); len(n) > 0 {
			nalus = append(nalus, n)
		}
		if j < 0 {
			break
		}
		pos = end + 3
	}
	if len(nalus) == 0 {
		return nil, errors.New("Annex-B data holds no NAL unit")
	}
	return nalus, nil
}

// IsIDR reports whether the access unit holds an IDR slice.
func IsIDR(nalus [][]byte) bool {
	for _, n := range nalus {
		if Type(n) == TypeIDR {
			return true
		}
	}
	return false
}

// FindParams returns the first SPS and the first PPS among nalus, nil for a
// missing one.
func FindParams(nalus [][]byte) (sps, pps []byte) {
	for _, n := range nalus {
		switch Type(n) {
		case TypeSPS:
			if sps == nil {
				sps = n
			}
		case TypePPS:
			if pps == nil {
				pps = n
			}
		}
	}
	return sps, pps
}

// ParseParams checks the parameter sets and reads the picture size from the
// SPS. The returned params hold copies of sps and pps.
func ParseParams(sps, pps []byte) (media.VideoParams, error) {
	var p media.VideoParams
	switch {
	case len(sps) == 0:
		return p, errors.New("parse h264 params: SPS missing")
	case Type(sps) != TypeSPS:
		return p, fmt.Errorf("parse h264 params: SPS has NAL type %d, want %d", Type(sps), TypeSPS)
	case len(pps) == 0:
		return p, errors.New("parse h264 params: PPS missing")
	case Type(pps) != TypePPS:
		return p, fmt.Errorf("parse h264 params: PPS has NAL type %d, want %d", Type(pps), TypePPS)
	case len(pps) < 2:
		return p, errors.New("parse h264 params: PPS is truncated")
	}
	var s mch264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return p, fmt.Errorf("parse h264 SPS: %w", err)
	}
	w, h := s.Width(), s.Height()
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return p, fmt.Errorf("parse h264 SPS: implausible picture size %dx%d", w, h)
	}
	return media.VideoParams{
		SPS:    bytes.Clone(sps),
		PPS:    bytes.Clone(pps),
		Width:  w,
		Height: h,
	}, nil
}

// isVCL reports whether t is a slice type that starts a primary coded picture
// when its first_mb_in_slice is 0.
func isVCL(t int) bool {
	return t == TypeNonIDR || t == TypeDPA || t == TypeIDR
}

// firstMBIsZero reports whether the slice header's first_mb_in_slice is 0:
// ue(v) of 0 is a single 1 bit, so the first bit after the NAL header is set.
func firstMBIsZero(nalu []byte) bool {
	return len(nalu) >= 2 && nalu[1]&0x80 != 0
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// trimZeros drops trailing zero bytes: the last byte of a NAL unit is never
// zero (H.264 7.4.1), so they belong to the next start code.
func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
