package v4l2

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"time"

	"github.com/classcap/classcap/capture/media"
)

// DefaultStallTimeout is how long a camera may go without a usable frame
// before Run gives up with ErrDeviceLost.
const DefaultStallTimeout = 5 * time.Second

// CameraConfig configures a camera.
type CameraConfig struct {
	Device       string    // e.g. /dev/video0
	Choice       Choice    // from Choose
	Epoch        time.Time // zero of the PTS timeline; default: when the camera is made
	StallTimeout time.Duration
}

func (c CameraConfig) prepare() (CameraConfig, time.Duration, error) {
	if c.Epoch.IsZero() {
		c.Epoch = time.Now()
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	mono, err := epochMonotonic(c.Epoch)
	if err != nil {
		return c, 0, fmt.Errorf("v4l2 %s: %w", c.Device, err)
	}
	return c, mono, nil
}

// openFunc opens a device for streaming (openSource; a fake in tests).
type openFunc func(path string, ch Choice, log *slog.Logger) (frameSource, error)

// RawCamera streams a raw format (YUYV, UYVY, NV12, YU12) or MJPEG and
// delivers I420 pictures. Run must not be called concurrently; it may be called again
// after it returns (for instance after the device came back).
type RawCamera struct {
	cfg       CameraConfig
	epochMono time.Duration
	log       *slog.Logger
	open      openFunc
	img       *image.YCbCr
	seq       uint64
}

// NewRawCamera returns a camera for cfg.Choice, which must be a raw format
// or MJPEG (decoded to I420).
func NewRawCamera(cfg CameraConfig, log *slog.Logger) (*RawCamera, error) {
	if !cfg.Choice.Format.IsRaw() && !cfg.Choice.Format.IsJPEG() {
		return nil, fmt.Errorf("v4l2 %s: raw camera for %v: %w", cfg.Device, cfg.Choice.Format, ErrFormatUnsupported)
	}
	cfg, mono, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	return &RawCamera{cfg: cfg, epochMono: mono, log: orDiscard(log), open: openSource}, nil
}

// Run streams until ctx ends (it then returns ctx.Err()) or the device
// fails: the error names the device and wraps ErrDeviceLost when the
// device went away or stopped delivering frames.
//
// sink is called on Run's goroutine. The picture is the camera's and is
// overwritten with the next frame after sink returns: a sink that keeps it
// must copy it. PTS is the kernel's capture time on the Epoch timeline;
// Seq counts the frames delivered by this camera, across calls of Run.
// Frames that cannot be converted (short or corrupt buffers) are skipped.
func (c *RawCamera) Run(ctx context.Context, sink func(media.RawFrame)) error {
	src, err := c.open(c.cfg.Device, c.cfg.Choice, c.log)
	if err != nil {
		return err
	}
	return runLoop(ctx, src, c.cfg.Device, c.epochMono, c.cfg.StallTimeout, c.log,
		func(data []byte, pts time.Duration, l frameLayout) error {
			var img *image.YCbCr
			var err error
			if l.Format.IsJPEG() {
				img, err = decodeMJPEG(c.img, data)
			} else {
				img, err = toI420(c.img, data, l)
			}
			if err != nil {
				return err
			}
			c.img = img
			sink(media.RawFrame{Image: img, PTS: pts, Seq: c.seq})
			c.seq++
			return nil
		})
}

// H264Camera streams H.264 from a camera that encodes by itself, passed
// through without re-encoding. Run must not be called concurrently; it may
// be called again after it returns.
type H264Camera struct {
	cfg       CameraConfig
	epochMono time.Duration
	log       *slog.Logger
	open      openFunc
	au        auAssembler
}

// NewH264Camera returns a camera for cfg.Choice, which must be H.264.
func NewH264Camera(cfg CameraConfig, log *slog.Logger) (*H264Camera, error) {
	if cfg.Choice.Format != FormatH264 {
		return nil, fmt.Errorf("v4l2 %s: H.264 camera for %v: %w", cfg.Device, cfg.Choice.Format, ErrFormatUnsupported)
	}
	cfg, mono, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	return &H264Camera{cfg: cfg, epochMono: mono, log: orDiscard(log), open: openSource}, nil
}

// Run streams until ctx ends (it then returns ctx.Err()) or the device
// fails (see RawCamera.Run). Each buffer is one access unit; its NAL units
// are copies that the sink may keep. Every IDR carries SPS and PPS: when
// the camera sent them earlier only, the last ones seen are inserted.
// Buffers that are not Annex-B are skipped.
func (c *H264Camera) Run(ctx context.Context, sink func(media.AccessUnit)) error {
	c.au = auAssembler{}
	src, err := c.open(c.cfg.Device, c.cfg.Choice, c.log)
	if err != nil {
		return err
	}
	return runLoop(ctx, src, c.cfg.Device, c.epochMono, c.cfg.StallTimeout, c.log,
		func(data []byte, pts time.Duration, _ frameLayout) error {
			nalus, idr, err := c.au.assemble(data)
			if err != nil {
				return err
			}
			sink(media.AccessUnit{NALUs: nalus, PTS: pts, IDR: idr})
			return nil
		})
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
