package v4l2

import (
	"errors"
	"fmt"
	"image"

	"github.com/classcap/classcap/capture/media"
)

// FormatFWHT is the coded format of the kernel's vicodec test codec (a
// fast Walsh-Hadamard transform codec): what the memory-to-memory code is
// tested against in a VM, since no H.264 encoder exists there.
var FormatFWHT = fourcc('F', 'W', 'H', 'T')

// ErrNoEncoder is returned when no memory-to-memory encoder for the wanted
// coded format exists.
var ErrNoEncoder = errors.New("no V4L2 memory-to-memory encoder found")

// ErrDrained is returned by M2M.Submit after Drain.
var ErrDrained = errors.New("encoder drained")

// M2MControl is a control set on a memory-to-memory device before it
// streams. A control the driver does not have (EINVAL) fails the open
// unless it is optional.
type M2MControl struct {
	Name     string // for errors and logs, e.g. "bitrate"
	ID       uint32 // V4L2_CID_*
	Value    int32
	Optional bool
}

// M2MConfig configures a memory-to-memory (stateful) encoder.
type M2MConfig struct {
	Device        string // e.g. /dev/video11
	Width, Height int    // picture size (even)
	Raw           PixelFormat
	Coded         PixelFormat // what the capture queue delivers: FormatH264, FormatFWHT...
	FPS           float64     // told to the driver (rate control); 0: not set
	Controls      []M2MControl
	// Buffers per queue; 0 means 4 raw and 4 coded.
	RawBuffers, CodedBuffers int
}

func (c M2MConfig) check() error {
	switch {
	case c.Device == "":
		return errors.New("no device")
	case c.Width <= 0 || c.Height <= 0 || c.Width%2 != 0 || c.Height%2 != 0 || c.Width > 1<<13 || c.Height > 1<<13:
		return fmt.Errorf("picture size %dx%d is not a positive even size up to 8192", c.Width, c.Height)
	case c.Raw != FormatYU12 && c.Raw != FormatNV12:
		return fmt.Errorf("raw format %v: %w (want YU12 or NV12)", c.Raw, ErrFormatUnsupported)
	case c.Coded == 0:
		return errors.New("no coded format")
	case c.RawBuffers < 0 || c.RawBuffers > 32 || c.CodedBuffers < 0 || c.CodedBuffers > 32:
		return fmt.Errorf("buffer counts %d/%d out of range", c.RawBuffers, c.CodedBuffers)
	case c.FPS < 0 || c.FPS > 1000:
		return fmt.Errorf("fps %g out of range", c.FPS)
	}
	return nil
}

// Packet is one filled buffer of the coded (capture) queue.
type Packet struct {
	Data     []byte // a copy: the caller may keep it
	Seq      uint64 // Seq of the raw frame it was made from, as given to Submit
	Keyframe bool   // the driver flagged the buffer as a key frame
	Last     bool   // the last buffer after Drain
}

// M2MInfo describes a memory-to-memory device.
type M2MInfo struct {
	Path, Driver, Card string
	MultiPlanar        bool
	Raw                []PixelFormat // formats of the output (raw) queue
	Coded              []PixelFormat // formats of the capture (coded) queue
}

// Has reports whether the device encodes raw into coded.
func (i M2MInfo) Has(raw, coded PixelFormat) bool {
	return hasFormat(i.Raw, raw) && hasFormat(i.Coded, coded)
}

func hasFormat(fs []PixelFormat, f PixelFormat) bool {
	for _, g := range fs {
		if g == f {
			return true
		}
	}
	return false
}

// PreferredRaw returns the raw format to feed the device: I420 (no
// conversion) when offered, else NV12; ok is false when neither is.
func (i M2MInfo) PreferredRaw() (PixelFormat, bool) {
	for _, f := range []PixelFormat{FormatYU12, FormatNV12} {
		if hasFormat(i.Raw, f) {
			return f, true
		}
	}
	return 0, false
}

// rawLayout is how the driver wants a raw picture laid out in one plane:
// luma lines of Stride bytes, LumaLines of them (at least Height: drivers
// may align), then the chroma.
type rawLayout struct {
	Format        PixelFormat
	Width, Height int
	Stride        int
	LumaLines     int
	Size          int // bytes the driver expects (sizeimage)
}

// newRawLayout derives the layout of a w x h picture from what the driver
// set: codedH lines (the height it aligned to, at least h), the stride and
// the buffer size. The chroma follows LumaLines lines of luma, worked out
// from the size when the driver pads more than it says.
func newRawLayout(f PixelFormat, w, h, codedH, stride, size int) (rawLayout, error) {
	if stride < w {
		stride = w
	}
	l := rawLayout{Format: f, Width: w, Height: h, Stride: stride, LumaLines: max(h, codedH), Size: size}
	if stride > 1<<16 || size < 0 || size > 1<<28 || codedH > 1<<14 || l.LumaLines%2 != 0 {
		return l, fmt.Errorf("raw layout %v %dx%d: stride %d, %d lines or size %d out of range", f, w, h, stride, codedH, size)
	}
	need := stride * l.LumaLines * 3 / 2
	if size == 0 {
		l.Size = need
	} else if size < need {
		return l, fmt.Errorf("raw layout %v %dx%d: driver buffer of %d bytes is smaller than the picture (%d)", f, w, h, size, need)
	}
	// sizeimage = stride*lines*3/2 for both formats when the driver pads
	// the height.
	if lines := l.Size * 2 / 3 / stride; lines > l.LumaLines && lines%2 == 0 && stride*lines*3/2 == l.Size {
		l.LumaLines = lines
	}
	return l, nil
}

// fill writes img into dst in the layout; dst must hold Size bytes.
func (l rawLayout) fill(dst []byte, img *image.YCbCr) error {
	if err := media.CheckI420(img, l.Width, l.Height); err != nil {
		return err
	}
	w, h := l.Width, l.Height
	cw, ch := w/2, h/2
	if len(dst) < l.Size {
		return fmt.Errorf("buffer of %d bytes, need %d", len(dst), l.Size)
	}
	s := l.Stride
	copyPlane(dst, s, img.Y, img.YStride, w, h)
	c := dst[s*l.LumaLines:]
	switch l.Format {
	case FormatYU12:
		cs := s / 2
		copyPlane(c, cs, img.Cb, img.CStride, cw, ch)
		copyPlane(c[cs*(l.LumaLines/2):], cs, img.Cr, img.CStride, cw, ch)
	case FormatNV12:
		for y := 0; y < ch; y++ {
			row := c[y*s : y*s+2*cw]
			cb := img.Cb[y*img.CStride : y*img.CStride+cw]
			cr := img.Cr[y*img.CStride : y*img.CStride+cw]
			for x := range cb {
				row[2*x] = cb[x]
				row[2*x+1] = cr[x]
			}
		}
	default:
		return fmt.Errorf("fill %v: %w", l.Format, ErrFormatUnsupported)
	}
	return nil
}

// seqTimestamp carries a frame's sequence number through the driver in
// the buffer timestamp (m2m drivers copy it from the raw buffer to the
// coded one), so coded packets map back to their frame exactly.
func seqTimestamp(seq uint64) (sec, usec int64) {
	return int64(seq / 1_000_000), int64(seq % 1_000_000)
}

func timestampSeq(sec, usec int64) uint64 {
	if sec < 0 || usec < 0 {
		return 0
	}
	return uint64(sec)*1_000_000 + uint64(usec)
}
