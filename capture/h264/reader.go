package h264

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

const (
	readChunk        = 64 << 10
	maxNALUsPerUnit  = 4096
	maxEmptyReads    = 100
	minBufferedBytes = 2 // bytes kept back when a start code may straddle reads
)

// AnnexBReader reads access units one by one from an H.264 Annex-B
// elementary stream (the output of ffmpeg's "-f h264" muxer, a camera's raw
// H.264). It buffers at most about MaxAccessUnitSize bytes of the stream, so
// files of any length can be streamed.
//
// Access units are delimited as in H.264 7.4.1.2.3: an access unit delimiter
// always starts a new unit; an SEI, SPS, PPS (or NAL types 14 to 18) starts
// one once the current unit holds a slice; a slice with first_mb_in_slice 0
// starts a new picture and so a new unit.
type AnnexBReader struct {
	r       io.Reader
	buf     []byte // unconsumed bytes are buf[off:]
	off     int
	scan    int // next start code search begins here (index into buf)
	eof     bool
	started bool   // the first start code was found
	pending []byte // NAL unit read ahead that opens the next access unit
	err     error  // sticky
}

// NewAnnexBReader returns a reader of access units from r.
func NewAnnexBReader(r io.Reader) *AnnexBReader {
	return &AnnexBReader{r: r}
}

// Next returns the NAL units of the next access unit, without start codes;
// they do not alias the reader's buffer. It returns io.EOF after the last
// unit. Any other error is final too.
func (a *AnnexBReader) Next() ([][]byte, error) {
	if a.err != nil {
		return nil, a.err
	}
	var au [][]byte
	size := 0
	hasVCL := false
	if a.pending != nil {
		au = append(au, a.pending)
		size = len(a.pending)
		hasVCL = isVCL(Type(a.pending))
		a.pending = nil
	}
	for {
		n, err := a.nextNALU()
		if err == io.EOF {
			a.err = io.EOF
			if len(au) > 0 {
				return au, nil
			}
			return nil, io.EOF
		}
		if err != nil {
			a.err = err
			return nil, err
		}
		if len(au) > 0 && startsAccessUnit(n, hasVCL) {
			a.pending = n
			return au, nil
		}
		size += len(n)
		if size > MaxAccessUnitSize || len(au) >= maxNALUsPerUnit {
			a.err = fmt.Errorf("read h264 access unit: more than %d bytes or %d NAL units",
				MaxAccessUnitSize, maxNALUsPerUnit)
			return nil, a.err
		}
		au = append(au, n)
		if isVCL(Type(n)) {
			hasVCL = true
		}
	}
}

func startsAccessUnit(n []byte, hasVCL bool) bool {
	switch t := Type(n); {
	case t == TypeAUD:
		return true
	case t == TypeSEI, t == TypeSPS, t == TypePPS, t >= 14 && t <= 18:
		return hasVCL
	case isVCL(t):
		return hasVCL && firstMBIsZero(n)
	}
	return false
}

// nextNALU returns a copy of the next non-empty NAL unit, or io.EOF.
func (a *AnnexBReader) nextNALU() ([]byte, error) {
	for !a.started {
		if i := bytes.Index(a.buf[a.off:], startCode); i >= 0 {
			if !allZero(a.buf[a.off : a.off+i]) {
				return nil, fmt.Errorf("read h264: %w", ErrNoStartCode)
			}
			a.off += i + 3
			a.scan = a.off
			a.started = true
			break
		}
		if !allZero(a.buf[a.off:]) {
			return nil, fmt.Errorf("read h264: %w", ErrNoStartCode)
		}
		if a.eof {
			return nil, io.EOF
		}
		// Only zeros so far: keep the last two in case they begin a start code.
		a.off = max(a.off, len(a.buf)-minBufferedBytes)
		if err := a.fill(); err != nil {
			return nil, err
		}
	}
	for {
		if j := bytes.Index(a.buf[a.scan:], startCode); j >= 0 {
			end := a.scan + j
			n := trimZeros(a.buf[a.off:end])
			a.off = end + 3
			a.scan = a.off
			if len(n) == 0 {
				continue
			}
			return bytes.Clone(n), nil
		}
		if a.eof {
			n := trimZeros(a.buf[a.off:])
			a.off = len(a.buf)
			a.scan = a.off
			if len(n) == 0 {
				return nil, io.EOF
			}
			return bytes.Clone(n), nil
		}
		if len(a.buf)-a.off > MaxAccessUnitSize {
			return nil, fmt.Errorf("read h264: NAL unit longer than %d bytes", MaxAccessUnitSize)
		}
		a.scan = max(a.off, len(a.buf)-minBufferedBytes)
		if err := a.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more bytes into the buffer, dropping the consumed ones first.
func (a *AnnexBReader) fill() error {
	if a.off > 0 {
		n := copy(a.buf, a.buf[a.off:])
		a.buf = a.buf[:n]
		a.scan -= a.off
		a.off = 0
	}
	if cap(a.buf)-len(a.buf) < readChunk {
		nb := make([]byte, len(a.buf), 2*cap(a.buf)+readChunk)
		copy(nb, a.buf)
		a.buf = nb
	}
	for range maxEmptyReads {
		n, err := a.r.Read(a.buf[len(a.buf):cap(a.buf)])
		a.buf = a.buf[:len(a.buf)+n]
		if errors.Is(err, io.EOF) {
			a.eof = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("read h264: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("read h264: %w", io.ErrNoProgress)
}
