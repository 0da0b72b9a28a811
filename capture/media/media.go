// Package media holds the types that flow through the capture pipeline:
// raw pictures and PCM from the devices, H.264 access units and Opus packets
// from the encoders. Every timestamp is a time.Duration on the pipeline's
// monotonic timeline (zero at the pipeline's epoch), never wall time.
package media

import (
	"errors"
	"fmt"
	"image"
	"time"
)

// FramesToDur is the playing time of n frames at rate (nanoseconds
// rounded down), without overflowing for streams of any length.
func FramesToDur(n int64, rate int) time.Duration {
	r := int64(rate)
	return time.Duration(n/r)*time.Second + time.Duration(n%r)*time.Second/time.Duration(r)
}

// VideoClockRate is the MP4/RTP clock rate of H.264 timestamps.
const VideoClockRate = 90000

// AudioRate is the sample rate of every audio stream after capture (Opus
// always runs at 48 kHz).
const AudioRate = 48000

// OpusFrameSamples is the number of samples per channel in one Opus packet
// (20 ms at 48 kHz).
const OpusFrameSamples = 960

// RawFrame is one uncompressed picture in I420 (planar YUV 4:2:0).
type RawFrame struct {
	Image *image.YCbCr
	PTS   time.Duration // capture time on the pipeline timeline
	Seq   uint64        // frame counter of the source, from 0
}

// AccessUnit is one encoded H.264 picture.
type AccessUnit struct {
	NALUs [][]byte      // NAL units without start codes or length prefixes
	PTS   time.Duration // capture time on the pipeline timeline
	IDR   bool          // true when the unit is a random access point (IDR)
}

// VideoParams describes an H.264 stream: what the init segment needs.
type VideoParams struct {
	SPS, PPS      []byte
	Width, Height int
}

// PCM is a block of interleaved float32 samples in [-1, 1].
type PCM struct {
	Samples  []float32 // interleaved, len = frames * Channels
	Channels int
	Rate     int
	PTS      time.Duration // time of the first sample on the pipeline timeline
}

// Frames returns the number of sample frames (samples per channel) in p.
func (p PCM) Frames() int {
	if p.Channels == 0 {
		return 0
	}
	return len(p.Samples) / p.Channels
}

// AudioPacket is one encoded Opus packet.
type AudioPacket struct {
	Data     []byte
	PTS      time.Duration // time of the first sample on the pipeline timeline
	Samples  int           // samples per channel at AudioRate (960 for 20 ms)
	Channels int
}

// Duration returns the playing time of the packet.
func (p AudioPacket) Duration() time.Duration {
	return time.Duration(p.Samples) * time.Second / AudioRate
}

// CheckI420 reports whether img is a 4:2:0 picture of w x h whose planes
// hold every pixel its strides address: what an encoder that reads the
// planes directly needs, so that it never reads out of bounds.
func CheckI420(img *image.YCbCr, w, h int) error {
	if img == nil {
		return errors.New("no image")
	}
	if img.Rect.Dx() != w || img.Rect.Dy() != h {
		return fmt.Errorf("frame is %dx%d, encoder is %dx%d", img.Rect.Dx(), img.Rect.Dy(), w, h)
	}
	if img.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return fmt.Errorf("frame is %v, want 4:2:0", img.SubsampleRatio)
	}
	cw, ch := w/2, h/2
	if img.YStride < w || img.CStride < cw ||
		len(img.Y) < (h-1)*img.YStride+w ||
		len(img.Cb) < (ch-1)*img.CStride+cw || len(img.Cr) < (ch-1)*img.CStride+cw {
		return errors.New("frame planes are shorter than the picture")
	}
	return nil
}
