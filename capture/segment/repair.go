package segment

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/classcap/classcap/capture/durable"
)

// ValidPrefix returns the length of the longest prefix of b that ends with a
// complete fragment: a moof box followed by a complete mdat box. Anything
// after it is a torn tail from a crash.
func ValidPrefix(b []byte) int {
	valid, off := 0, 0
	sawMoof := false
	for off+8 <= len(b) {
		size := uint64(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		hdr := uint64(8)
		if size == 1 {
			if off+16 > len(b) {
				break
			}
			size = binary.BigEndian.Uint64(b[off+8:])
			hdr = 16
		}
		if size < hdr || size > uint64(len(b)-off) {
			break // size 0 (to end of file) is never written by us: torn
		}
		off += int(size)
		switch typ {
		case "moof":
			sawMoof = true
		case "mdat":
			if sawMoof {
				valid = off
			}
			sawMoof = false
		}
	}
	return valid
}

// Summary describes the fragments of a segment file.
type Summary struct {
	Fragments  int
	FirstMoof  uint32
	LastMoof   uint32
	HasVideo   bool
	StartsIDR  bool
	VideoStart uint64 // 90 kHz
	VideoEnd   uint64
	HasAudio   bool
	AudioStart uint64 // 48 kHz
	AudioEnd   uint64
}

// Span returns the start and duration of the segment, as Info has them.
func (s Summary) Span() (start, dur time.Duration) {
	return spanOf(&openSegment{hasVideo: s.HasVideo, startV: s.VideoStart, endV: s.VideoEnd,
		hasAudio: s.HasAudio, startA: s.AudioStart, endA: s.AudioEnd})
}

// Inspect parses the fragments of a segment file's bytes.
func Inspect(b []byte) (Summary, error) {
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		return Summary{}, fmt.Errorf("parse fragments: %w", err)
	}
	var s Summary
	for i, p := range parts {
		if i == 0 {
			s.FirstMoof = p.SequenceNumber
		}
		s.LastMoof = p.SequenceNumber
		s.Fragments++
		for _, t := range p.Tracks {
			end := t.BaseTime
			for _, smp := range t.Samples {
				end += uint64(smp.Duration)
			}
			switch t.ID {
			case VideoTrackID:
				if len(t.Samples) == 0 {
					continue
				}
				if !s.HasVideo {
					s.HasVideo, s.VideoStart = true, t.BaseTime
					s.StartsIDR = !t.Samples[0].IsNonSyncSample
				}
				s.VideoEnd = max(s.VideoEnd, end)
			case AudioTrackID:
				if len(t.Samples) == 0 {
					continue
				}
				if !s.HasAudio {
					s.HasAudio, s.AudioStart = true, t.BaseTime
				}
				s.AudioEnd = max(s.AudioEnd, end)
			}
		}
	}
	return s, nil
}

// InfoFromFile builds the Info of a closed segment file from its content.
func InfoFromFile(path string) (Info, Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Info{}, Summary{}, fmt.Errorf("read segment: %w", err)
	}
	name := filepath.Base(path)
	n, ok := ParseName(name)
	if !ok {
		return Info{}, Summary{}, fmt.Errorf("segment %s: not a segment name", path)
	}
	s, err := Inspect(b)
	if err != nil {
		return Info{}, Summary{}, fmt.Errorf("segment %s: %w", path, err)
	}
	sum := sha256.Sum256(b)
	st, d := s.Span()
	return Info{Number: n, Name: name, Start: st, Duration: d,
		Bytes: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}, s, nil
}

// ErrEmpty is returned by Repair when a segment held no complete fragment;
// the file has been removed.
var ErrEmpty = errors.New("segment: no complete fragment")

// Repair closes a segment left open by a crash: the .part file at path is
// truncated to its last complete fragment, fsynced and renamed to its final
// name. A file with no complete fragment is removed and ErrEmpty returned.
func Repair(path string) (Info, Summary, error) {
	if !strings.HasSuffix(path, PartSuffix) {
		return Info{}, Summary{}, fmt.Errorf("repair %s: not a %s file", path, PartSuffix)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Info{}, Summary{}, fmt.Errorf("repair: %w", err)
	}
	valid := ValidPrefix(b)
	// Fragments must also parse and start with a picture we can decode
	// from; otherwise drop the whole file.
	if valid > 0 {
		if s, err := Inspect(b[:valid]); err != nil || (s.HasVideo && !s.StartsIDR) {
			valid = 0
		}
	}
	if valid == 0 {
		if err := os.Remove(path); err != nil {
			return Info{}, Summary{}, fmt.Errorf("repair: %w", err)
		}
		if err := durable.SyncDir(filepath.Dir(path)); err != nil {
			return Info{}, Summary{}, err
		}
		return Info{}, Summary{}, ErrEmpty
	}
	if valid < len(b) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return Info{}, Summary{}, fmt.Errorf("repair: %w", err)
		}
		err = f.Truncate(int64(valid))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Info{}, Summary{}, fmt.Errorf("repair: truncate %s: %w", path, err)
		}
	}
	final := strings.TrimSuffix(path, PartSuffix)
	if err := durable.Rename(path, final); err != nil {
		return Info{}, Summary{}, fmt.Errorf("repair: %w", err)
	}
	return InfoFromFile(final)
}

// PositionAfter returns the timeline position following a segment.
func PositionAfter(number int, s Summary) Position {
	return Position{NextSegment: number + 1, NextMoof: s.LastMoof + 1, VideoTicks: s.VideoEnd, AudioTicks: s.AudioEnd}
}
