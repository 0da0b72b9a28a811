package sim

import (
	"context"
	"image"
	"log/slog"
	"math"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/pacer"
)

// CameraConfig configures a simulated camera.
type CameraConfig struct {
	Width, Height int       // default 1280x720; rounded up to even
	FPS           float64   // default 30
	Epoch         time.Time // zero of the PTS timeline; default the start of Run
	// Log, when set, is told about frames skipped because the sink made
	// Run late (a starved machine), so that a gap they leave in a
	// recording can be told from a frame lost after the camera.
	Log *slog.Logger
}

// Camera is a synthetic camera: colour bars, a white bar sweeping across
// the lower part of the picture, and two strips of black and white blocks
// that survive encoding: the frame number (ReadFrameCounter) and the wall
// clock when the picture was taken, in milliseconds (ReadCaptureClock), from
// which a viewer on the same clock measures glass-to-glass latency.
type Camera struct {
	cfg CameraConfig
}

// NewCamera returns a camera; zero fields of cfg take their defaults.
func NewCamera(cfg CameraConfig) *Camera {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		cfg.Width, cfg.Height = 1280, 720
	}
	cfg.Width += cfg.Width & 1
	cfg.Height += cfg.Height & 1
	if cfg.FPS <= 0 {
		cfg.FPS = 30
	}
	return &Camera{cfg: cfg}
}

// Config returns the camera's configuration with defaults applied.
func (c *Camera) Config() CameraConfig { return c.cfg }

// framePTS is the time of frame n on the timeline: n/FPS, to the nanosecond.
func (c *Camera) framePTS(n uint64) time.Duration {
	return time.Duration(math.Round(float64(n) * float64(time.Second) / c.cfg.FPS))
}

// Run delivers frames to sink until ctx ends, then returns ctx.Err(). Frame
// n has PTS n/FPS and Seq n and is delivered at wall time Epoch+PTS. When
// the sink made Run late by more than a frame period, the frames whose time
// has passed are skipped (Seq and PTS jump), so the timeline stays real time.
//
// sink is called on Run's goroutine. The frame's image belongs to the
// camera and is overwritten after sink returns: a sink that keeps the
// picture must copy it. (A fresh 720p image per frame would be 1.4 MB of
// garbage 30 times a second on a Pi.)
func (c *Camera) Run(ctx context.Context, sink func(media.RawFrame)) error {
	epoch := c.cfg.Epoch
	if epoch.IsZero() {
		epoch = time.Now()
	}
	period := time.Duration(float64(time.Second) / c.cfg.FPS)
	img := image.NewYCbCr(image.Rect(0, 0, c.cfg.Width, c.cfg.Height), image.YCbCrSubsampleRatio420)
	pace := pacer.New(ctx)
	defer pace.Close()
	for n := uint64(0); ; n++ {
		if late := time.Since(epoch.Add(c.framePTS(n))); late > period {
			newest := uint64(float64(time.Since(epoch)) * c.cfg.FPS / float64(time.Second))
			if newest > n && c.cfg.Log != nil {
				c.cfg.Log.Warn("sim camera late: frames skipped", "from_pts_ms", c.framePTS(n).Milliseconds(),
					"frames", newest-n, "late_ms", late.Milliseconds())
			}
			n = max(n, newest)
		}
		pts := c.framePTS(n)
		if err := pace.Until(epoch.Add(pts)); err != nil {
			return err
		}
		RenderFrameAt(img, n, time.Now())
		sink(media.RawFrame{Image: img, PTS: pts, Seq: n})
	}
}

// Luma and chroma levels of the pattern (BT.601 video range).
const (
	cameraBlack   = 16
	cameraWhite   = 235
	cameraNeutral = 128
)

// cameraBars are the 75% colour bars as Y, Cb, Cr: white, yellow, cyan,
// green, magenta, red, blue, black.
var cameraBars = [8][3]uint8{
	{180, 128, 128}, {162, 44, 142}, {131, 156, 44}, {112, 72, 58},
	{84, 184, 198}, {65, 100, 212}, {35, 212, 114}, {16, 128, 128},
}

// The strips, one block (cell) below and right of the top left corner,
// cameraCounterCols blocks a row: the counter in rows 0 and 1 (block i at
// column i%20, row i/20), the capture clock in rows 2 and 3 (blocks 40..79).
// Each is a 40-bit word: 32 bits of value, then their CRC-8 xor 0x55, most
// significant bit first; black is 0, white is 1. hub/web's glass-to-glass
// test reads the clock strip in JavaScript with this layout.
const (
	cameraCounterBits = 40
	cameraCounterCols = 20
	cameraStripRows   = 4 // counter and clock, two rows each
)

// cameraCell returns the block size of the strips for a picture of w x h
// (max(8, w/40) rounded down to a multiple of 8, so blocks align with the
// codec's transform), or 0 when the strips do not fit.
func cameraCell(w, h int) int {
	c := max(8, (w/40)&^7)
	if (cameraCounterCols+2)*c > w || (cameraStripRows+2)*c > h {
		return 0
	}
	return c
}

// RenderFrame draws frame n of the test pattern into dst, a 4:2:0 picture
// of any even size, with a capture clock of 0. It allocates nothing.
func RenderFrame(dst *image.YCbCr, n uint64) { RenderFrameAt(dst, n, time.UnixMilli(0)) }

// RenderFrameAt draws frame n of the test pattern taken at wall time at
// into dst. It allocates nothing.
func RenderFrameAt(dst *image.YCbCr, n uint64, at time.Time) {
	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	if w <= 0 || h <= 0 {
		return
	}
	cw, ch := (w+1)/2, (h+1)/2
	yRow := func(y int) []byte { return dst.Y[y*dst.YStride : y*dst.YStride+w] }
	cbRow := func(y int) []byte { return dst.Cb[y*dst.CStride : y*dst.CStride+cw] }
	crRow := func(y int) []byte { return dst.Cr[y*dst.CStride : y*dst.CStride+cw] }

	// Colour bars: draw the first row, copy it down.
	y0, cb0, cr0 := yRow(0), cbRow(0), crRow(0)
	for x := range w {
		y0[x] = cameraBars[x*8/w][0]
	}
	for x := range cw {
		b := cameraBars[min(2*x*8/w, 7)]
		cb0[x], cr0[x] = b[1], b[2]
	}
	for y := 1; y < h; y++ {
		copy(yRow(y), y0)
	}
	for y := 1; y < ch; y++ {
		copy(cbRow(y), cb0)
		copy(crRow(y), cr0)
	}

	cell := cameraCell(w, h)
	// The sweeping bar, below the counter strip; it crosses the picture in
	// 64 frames.
	barW := max(cell, 8)
	x0 := int(n%64) * (w - barW) / 63 &^ 1
	top := (cameraStripRows + 2) * cell &^ 1
	for y := top; y < h; y++ {
		cameraFill(yRow(y)[x0:x0+barW], cameraWhite)
	}
	for y := top / 2; y < ch; y++ {
		cameraFill(cbRow(y)[x0/2:(x0+barW)/2], cameraNeutral)
		cameraFill(crRow(y)[x0/2:(x0+barW)/2], cameraNeutral)
	}

	if cell == 0 {
		return
	}
	words := [2]uint64{cameraCounterWord(n), cameraCounterWord(uint64(at.UnixMilli()))}
	for i := range 2 * cameraCounterBits {
		v := uint8(cameraBlack)
		if words[i/cameraCounterBits]>>(cameraCounterBits-1-i%cameraCounterBits)&1 == 1 {
			v = cameraWhite
		}
		cx, cy := cameraCellOrigin(cell, i)
		for y := cy; y < cy+cell; y++ {
			cameraFill(yRow(y)[cx:cx+cell], v)
		}
		for y := cy / 2; y < (cy+cell)/2; y++ {
			cameraFill(cbRow(y)[cx/2:(cx+cell)/2], cameraNeutral)
			cameraFill(crRow(y)[cx/2:(cx+cell)/2], cameraNeutral)
		}
	}
}

// ReadCaptureClock reads the capture wall clock burned in by RenderFrameAt:
// Unix milliseconds modulo 2^32 (the reader on the same clock takes the
// difference modulo 2^32; it wraps every 49.7 days). ok is false as for
// ReadFrameCounter.
func ReadCaptureClock(img *image.YCbCr) (ms uint32, ok bool) {
	v, ok := readStrip(img, cameraCounterBits)
	return uint32(v), ok
}

// ReadFrameCounter reads the frame number burned in by RenderFrame from a
// picture of the same size, typically after encoding and decoding. ok is
// false when a block is not clearly black or white or the checksum does not
// match. The counter holds 32 bits: it wraps after 4.5 years at 30 fps.
func ReadFrameCounter(img *image.YCbCr) (n uint64, ok bool) {
	return readStrip(img, 0)
}

// readStrip reads the 40-bit word whose first block is block first.
func readStrip(img *image.YCbCr, first int) (uint64, bool) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	cell := cameraCell(w, h)
	if cell == 0 || len(img.Y) < (h-1)*img.YStride+w {
		return 0, false
	}
	var word uint64
	q := cell / 4 // sample the middle half of each block
	for i := first; i < first+cameraCounterBits; i++ {
		cx, cy := cameraCellOrigin(cell, i)
		sum := 0
		for y := cy + q; y < cy+cell-q; y++ {
			for _, v := range img.Y[y*img.YStride+cx+q : y*img.YStride+cx+cell-q] {
				sum += int(v)
			}
		}
		mean := sum / ((cell - 2*q) * (cell - 2*q))
		word <<= 1
		switch {
		case mean > 170:
			word |= 1
		case mean < 80:
		default:
			return 0, false
		}
	}
	if cameraCounterWord(word>>8) != word {
		return 0, false
	}
	return word >> 8, true
}

func cameraCellOrigin(cell, i int) (x, y int) {
	return cell + (i%cameraCounterCols)*cell, cell + (i/cameraCounterCols)*cell
}

// cameraCounterWord is the 40-bit counter field: 32 bits of n, then their
// CRC-8 xor 0x55 (so an all-black or all-white strip is not a valid count).
func cameraCounterWord(n uint64) uint64 {
	n &= math.MaxUint32
	var crc uint8
	for i := 3; i >= 0; i-- {
		crc ^= uint8(n >> (8 * i))
		for range 8 {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x07
			} else {
				crc <<= 1
			}
		}
	}
	return n<<8 | uint64(crc^0x55)
}

func cameraFill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}
