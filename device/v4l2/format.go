package v4l2

import (
	"errors"
	"fmt"
	"math"
)

// Sentinel errors; the errors returned by the package wrap them.
var (
	// ErrUnsupported is returned on platforms without V4L2.
	ErrUnsupported = errors.New("v4l2 is not supported on this platform")
	// ErrNotCapture is returned for a file that is not a V4L2 video capture
	// device with streaming I/O.
	ErrNotCapture = errors.New("not a V4L2 video capture device")
	// ErrNoFormat is returned by Choose when the device offers nothing usable.
	ErrNoFormat = errors.New("no usable capture format")
	// ErrFormatUnsupported is returned when streaming or encoding a format
	// that the package cannot handle.
	ErrFormatUnsupported = errors.New("pixel format not supported for capture")
	// ErrDeviceLost is returned when the device goes away mid-stream (USB
	// unplug: ENODEV, EIO) or stops delivering frames.
	ErrDeviceLost = errors.New("camera lost")
)

// PixelFormat is a V4L2 pixel format code (a FourCC).
type PixelFormat uint32

func fourcc(a, b, c, d byte) PixelFormat {
	return PixelFormat(a) | PixelFormat(b)<<8 | PixelFormat(c)<<16 | PixelFormat(d)<<24
}

// Pixel formats the package knows.
var (
	FormatH264  = fourcc('H', '2', '6', '4') // H.264 Annex-B, one access unit per buffer
	FormatMJPEG = fourcc('M', 'J', 'P', 'G') // motion JPEG
	FormatJPEG  = fourcc('J', 'P', 'E', 'G') // JPEG (some UVC drivers)
	FormatYUYV  = fourcc('Y', 'U', 'Y', 'V') // packed 4:2:2, Y0 U Y1 V
	FormatUYVY  = fourcc('U', 'Y', 'V', 'Y') // packed 4:2:2, U Y0 V Y1
	FormatNV12  = fourcc('N', 'V', '1', '2') // Y plane, interleaved CbCr 4:2:0
	FormatYU12  = fourcc('Y', 'U', '1', '2') // I420: Y, Cb, Cr planes 4:2:0
)

// String returns the FourCC as text, e.g. "YUYV".
func (f PixelFormat) String() string {
	b := []byte{byte(f), byte(f >> 8), byte(f >> 16), byte(f >> 24)}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// IsRaw reports whether f is an uncompressed format that RawCamera converts
// to I420.
func (f PixelFormat) IsRaw() bool {
	switch f {
	case FormatYUYV, FormatUYVY, FormatNV12, FormatYU12:
		return true
	}
	return false
}

// Config is the picture wanted; zero fields take 1280x720 at 30 fps.
type Config struct {
	Width, Height int
	FPS           float64
}

func (c Config) withDefaults() Config {
	if c.Width <= 0 || c.Height <= 0 {
		c.Width, c.Height = 1280, 720
	}
	if c.FPS <= 0 {
		c.FPS = 30
	}
	return c
}

// FrameSize is one frame size a format offers, with its frame rates. An
// empty FPS means the driver gave a continuous range (any rate is asked for
// and the driver picks the nearest).
type FrameSize struct {
	Width, Height int
	FPS           []float64
}

// SizeRange is a stepwise or continuous range of frame sizes.
type SizeRange struct {
	MinWidth, MaxWidth, StepWidth    int
	MinHeight, MaxHeight, StepHeight int
}

// FormatInfo is one format a device offers.
type FormatInfo struct {
	Format      PixelFormat
	Description string
	Compressed  bool
	Sizes       []FrameSize // discrete sizes
	Range       *SizeRange  // set instead of Sizes for stepwise sizes
}

// DeviceInfo describes a capture device.
type DeviceInfo struct {
	Path        string
	Driver      string
	Card        string
	BusInfo     string
	MultiPlanar bool // the device speaks the multi-planar API only
	Formats     []FormatInfo
}

// Choice is what to capture.
type Choice struct {
	Format        PixelFormat
	Width, Height int
	FPS           float64
}

// IsJPEG reports whether f is motion JPEG, which RawCamera decodes to I420.
func (f PixelFormat) IsJPEG() bool { return f == FormatMJPEG || f == FormatJPEG }

// Passthrough reports whether the choice delivers H.264 (use H264Camera);
// otherwise use RawCamera.
func (c Choice) Passthrough() bool { return c.Format == FormatH264 }

func (c Choice) String() string {
	return fmt.Sprintf("%v %dx%d@%g", c.Format, c.Width, c.Height, c.FPS)
}

// class ranks formats: H.264 first, raw next, MJPEG last.
func class(f PixelFormat) int {
	switch f {
	case FormatH264:
		return 0
	case FormatYU12, FormatNV12, FormatYUYV, FormatUYVY:
		return 1
	case FormatMJPEG, FormatJPEG:
		return 2
	}
	return -1
}

// rawRank orders raw formats by conversion cost (cheapest first).
func rawRank(f PixelFormat) int {
	switch f {
	case FormatYU12:
		return 0
	case FormatNV12:
		return 1
	case FormatYUYV:
		return 2
	case FormatUYVY:
		return 3
	}
	return 4
}

type candidate struct {
	choice Choice
	score  float64 // distance from the request; lower is better
	ok     bool    // close enough: at least half the pixels and half the rate
}

// Choose picks a format, size and rate from formats for cfg. H.264 wins
// when its best size is close enough to the request (at least half the
// requested pixels and half the requested rate), then raw YUV on the same
// terms; when neither is close enough, the nearer of the two wins. MJPEG is
// chosen only when neither H.264 nor raw YUV is offered (RawCamera decodes
// it, at a CPU cost). Within a class
// the candidate nearest the request wins (size and rate on a log scale,
// rate shortfalls and aspect changes weighing extra).
func Choose(formats []FormatInfo, cfg Config) (Choice, error) {
	cfg = cfg.withDefaults()
	var best [3]*candidate
	for _, f := range formats {
		cl := class(f.Format)
		if cl < 0 {
			continue
		}
		for _, s := range sizesOf(f, cfg) {
			c := rate(f.Format, s, cfg)
			if b := best[cl]; b == nil || c.score < b.score ||
				(c.score == b.score && rawRank(c.choice.Format) < rawRank(b.choice.Format)) {
				best[cl] = &c
			}
		}
	}
	for _, b := range best[:2] {
		if b != nil && b.ok {
			return b.choice, nil
		}
	}
	var pick *candidate
	for _, b := range best[:2] {
		if b != nil && (pick == nil || b.score < pick.score) {
			pick = b
		}
	}
	if pick == nil {
		pick = best[2]
	}
	if pick == nil {
		return Choice{}, ErrNoFormat
	}
	return pick.choice, nil
}

// sizesOf lists the sizes of f, turning a range into the requested size
// clamped and snapped onto it.
func sizesOf(f FormatInfo, cfg Config) []FrameSize {
	if f.Range == nil {
		return f.Sizes
	}
	r := *f.Range
	return []FrameSize{{Width: snap(cfg.Width, r.MinWidth, r.MaxWidth, r.StepWidth),
		Height: snap(cfg.Height, r.MinHeight, r.MaxHeight, r.StepHeight)}}
}

func snap(v, lo, hi, step int) int {
	if hi < lo {
		hi = lo
	}
	v = min(max(v, lo), hi)
	if step > 1 {
		v = lo + (v-lo)/step*step
	}
	return v
}

func rate(f PixelFormat, s FrameSize, cfg Config) candidate {
	fps := cfg.FPS
	if len(s.FPS) > 0 {
		fps = 0
		bestD := math.Inf(1)
		for _, r := range s.FPS {
			if r <= 0 {
				continue
			}
			if d := fpsDistance(r, cfg.FPS); d < bestD {
				bestD, fps = d, r
			}
		}
	}
	c := candidate{choice: Choice{Format: f, Width: s.Width, Height: s.Height, FPS: fps}}
	if s.Width <= 0 || s.Height <= 0 || fps <= 0 {
		c.score = math.Inf(1)
		return c
	}
	area := float64(s.Width*s.Height) / float64(cfg.Width*cfg.Height)
	aspect := math.Abs(math.Log(float64(s.Width*cfg.Height) / float64(s.Height*cfg.Width)))
	c.score = math.Abs(math.Log(area)) + 0.5*aspect + fpsDistance(fps, cfg.FPS)
	if area > 1 {
		c.score += 0.01 // at equal distance, the smaller picture costs less
	}
	c.ok = area >= 0.5 && fps >= cfg.FPS/2
	return c
}

// fpsDistance is the log distance between rates; too slow counts double.
func fpsDistance(have, want float64) float64 {
	d := math.Log(have / want)
	if d < 0 {
		return -2 * d
	}
	return d
}

// Pick chooses the camera among devs (as List returns them, in order): the
// first device whose choice is H.264 or raw YUV, else the first whose
// choice is MJPEG (decoded at a CPU cost, so only when nothing better is
// attached); ErrNoFormat is returned when no device can be streamed.
func Pick(devs []DeviceInfo, cfg Config) (DeviceInfo, Choice, error) {
	var mjpegDev *DeviceInfo
	var mjpegChoice Choice
	for i, d := range devs {
		ch, err := Choose(d.Formats, cfg)
		if err != nil {
			continue
		}
		if ch.Passthrough() || ch.Format.IsRaw() {
			return d, ch, nil
		}
		if mjpegDev == nil && ch.Format.IsJPEG() {
			mjpegDev, mjpegChoice = &devs[i], ch
		}
	}
	if mjpegDev != nil {
		return *mjpegDev, mjpegChoice, nil
	}
	return DeviceInfo{}, Choice{}, fmt.Errorf("%d devices: %w", len(devs), ErrNoFormat)
}
