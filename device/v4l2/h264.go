package v4l2

import (
	"fmt"

	"github.com/classcap/classcap/capture/h264"
)

// auAssembler turns the camera's Annex-B buffers into access units and
// remembers the last SPS and PPS, so that every IDR carries them even when
// the camera sends them only at the start of the stream.
type auAssembler struct {
	sps, pps []byte
}

// assemble copies data (the mmap buffer is reused) and splits it into NAL
// units. An IDR without SPS or PPS gets the last ones seen, placed after a
// leading access unit delimiter.
func (a *auAssembler) assemble(data []byte) (nalus [][]byte, idr bool, err error) {
	if len(data) > h264.MaxAccessUnitSize {
		return nil, false, fmt.Errorf("access unit of %d bytes exceeds %d", len(data), h264.MaxAccessUnitSize)
	}
	buf := append([]byte(nil), data...)
	nalus, err = h264.SplitAnnexB(buf)
	if err != nil {
		return nil, false, fmt.Errorf("split access unit: %w", err)
	}
	nalus, idr = a.withParams(nalus)
	return nalus, idr, nil
}

// withParams remembers the SPS and PPS of nalus and puts the last ones seen
// into an IDR that lacks them, after a leading access unit delimiter.
func (a *auAssembler) withParams(nalus [][]byte) (_ [][]byte, idr bool) {
	sps, pps := h264.FindParams(nalus)
	if sps != nil {
		a.sps = sps
	}
	if pps != nil {
		a.pps = pps
	}
	idr = h264.IsIDR(nalus)
	if !idr {
		return nalus, false
	}
	var add [][]byte
	if sps == nil && a.sps != nil {
		add = append(add, a.sps)
	}
	if pps == nil && a.pps != nil {
		add = append(add, a.pps)
	}
	if len(add) == 0 {
		return nalus, true
	}
	at := 0
	if h264.Type(nalus[0]) == h264.TypeAUD {
		at = 1
	}
	out := make([][]byte, 0, len(nalus)+len(add))
	out = append(out, nalus[:at]...)
	out = append(out, add...)
	out = append(out, nalus[at:]...)
	return out, true
}
