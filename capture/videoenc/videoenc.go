// Package videoenc is the software H.264 encoder of the capture pipeline:
// openh264 (Cisco's encoder, statically linked through
// github.com/pion/mediadevices) driven synchronously, one raw frame in, one
// access unit out, with keyframes on a schedule and on demand.
package videoenc

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/codec/openh264"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
)

// Defaults for zero Config fields.
const (
	DefaultFPS              = 30
	DefaultBitrateBps       = 2_000_000
	DefaultKeyframeInterval = 2 * time.Second
)

// ErrClosed is returned by Encode after Close.
var ErrClosed = errors.New("encoder closed")

// Config configures an encoder. Width and Height are required (even);
// other zero fields take the defaults above.
type Config struct {
	Width, Height    int
	FPS              float64
	BitrateBps       int
	KeyframeInterval time.Duration // the longest PTS distance between IDRs
}

// Encoder encodes I420 frames to H.264 (constrained baseline, no B-frames,
// so decode order is presentation order). Encode is called from one
// goroutine at a time; ForceKeyframe may be called from any goroutine.
type Encoder struct {
	cfg   Config
	force atomic.Bool

	mu       sync.Mutex
	enc      codec.ReadCloser
	ctrl     codec.KeyFrameController
	cur      *image.YCbCr // the frame openh264 pulls during Encode
	sps, pps []byte       // the last parameter sets the encoder emitted
	lastIDR  time.Duration
	haveIDR  bool
	closed   bool
}

// New starts an openh264 encoder.
func New(cfg Config) (*Encoder, error) {
	if cfg.FPS == 0 {
		cfg.FPS = DefaultFPS
	}
	if cfg.BitrateBps == 0 {
		cfg.BitrateBps = DefaultBitrateBps
	}
	if cfg.KeyframeInterval == 0 {
		cfg.KeyframeInterval = DefaultKeyframeInterval
	}
	switch {
	case cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width%2 != 0 || cfg.Height%2 != 0 ||
		cfg.Width > 4096 || cfg.Height > 4096:
		return nil, fmt.Errorf("new h264 encoder: size %dx%d is not a positive even size up to 4096", cfg.Width, cfg.Height)
	case cfg.FPS < 0 || cfg.FPS > 240:
		return nil, fmt.Errorf("new h264 encoder: fps %g out of range", cfg.FPS)
	case cfg.BitrateBps < 0:
		return nil, fmt.Errorf("new h264 encoder: negative bitrate %d", cfg.BitrateBps)
	case cfg.KeyframeInterval < 0:
		return nil, fmt.Errorf("new h264 encoder: negative keyframe interval %v", cfg.KeyframeInterval)
	}

	p, err := openh264.NewParams()
	if err != nil {
		return nil, fmt.Errorf("new h264 encoder: %w", err)
	}
	p.BitRate = cfg.BitrateBps
	p.RCMode = openh264.RCBitrateMode
	p.UsageType = openh264.CameraVideoRealTime
	p.EnableFrameSkip = false
	// IDRs are scheduled by Encode from the PTS (frames may be missing
	// upstream), so openh264's own period only backs that up.
	p.IntraPeriod = uint(max(1, cfg.KeyframeInterval.Seconds()*cfg.FPS+0.5))

	e := &Encoder{cfg: cfg}
	src := video.ReaderFunc(func() (image.Image, func(), error) {
		if e.cur == nil {
			return nil, func() {}, errors.New("no frame")
		}
		return e.cur, func() {}, nil
	})
	enc, err := p.BuildVideoEncoder(src, prop.Media{Video: prop.Video{
		Width: cfg.Width, Height: cfg.Height, FrameRate: float32(cfg.FPS),
	}})
	if err != nil {
		return nil, fmt.Errorf("new h264 encoder %dx%d: %w", cfg.Width, cfg.Height, err)
	}
	ctrl, ok := enc.Controller().(codec.KeyFrameController)
	if !ok {
		enc.Close()
		return nil, errors.New("new h264 encoder: openh264 cannot force keyframes")
	}
	e.enc, e.ctrl = enc, ctrl
	return e, nil
}

// Name names the encoder implementation.
func (e *Encoder) Name() string { return "openh264" }

// Config returns the configuration with defaults applied.
func (e *Encoder) Config() Config { return e.cfg }

// ForceKeyframe makes the next Encode return an IDR.
func (e *Encoder) ForceKeyframe() { e.force.Store(true) }

// Encode encodes one frame into one access unit with PTS f.PTS. Every IDR
// unit carries the SPS and PPS. The frame's image is not kept.
func (e *Encoder) Encode(f media.RawFrame) (media.AccessUnit, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return media.AccessUnit{}, fmt.Errorf("encode h264: %w", ErrClosed)
	}
	if err := media.CheckI420(f.Image, e.cfg.Width, e.cfg.Height); err != nil {
		return media.AccessUnit{}, fmt.Errorf("encode h264 frame %d: %w", f.Seq, err)
	}

	// Half a frame of slack absorbs PTS rounding.
	due := e.haveIDR && f.PTS-e.lastIDR >= e.cfg.KeyframeInterval-time.Duration(float64(time.Second)/e.cfg.FPS/2)
	if e.force.Swap(false) || due {
		if err := e.ctrl.ForceKeyFrame(); err != nil {
			return media.AccessUnit{}, fmt.Errorf("encode h264: force keyframe: %w", err)
		}
	}

	e.cur = f.Image
	data, release, err := e.enc.Read()
	e.cur = nil
	if release != nil {
		release()
	}
	if err != nil {
		return media.AccessUnit{}, fmt.Errorf("encode h264 frame %d: %w", f.Seq, err)
	}
	nalus, err := h264.SplitAnnexB(data)
	if err != nil {
		return media.AccessUnit{}, fmt.Errorf("encode h264 frame %d: openh264 output: %w", f.Seq, err)
	}
	for i, n := range nalus {
		if nalus[i], err = zeroParamIDs(n); err != nil {
			return media.AccessUnit{}, fmt.Errorf("encode h264 frame %d: rewrite parameter set ids: %w", f.Seq, err)
		}
	}

	au := media.AccessUnit{NALUs: nalus, PTS: f.PTS, IDR: h264.IsIDR(nalus)}
	if au.IDR {
		sps, pps := h264.FindParams(nalus)
		if sps != nil {
			e.sps = sps
		}
		if pps != nil {
			e.pps = pps
		}
		if e.sps == nil || e.pps == nil {
			return media.AccessUnit{}, fmt.Errorf("encode h264 frame %d: IDR without SPS/PPS", f.Seq)
		}
		if sps == nil || pps == nil {
			au.NALUs = append([][]byte{e.sps, e.pps}, withoutParams(nalus)...)
		}
		e.lastIDR, e.haveIDR = f.PTS, true
	}
	return au, nil
}

func withoutParams(nalus [][]byte) [][]byte {
	var out [][]byte
	for _, n := range nalus {
		if t := h264.Type(n); t != h264.TypeSPS && t != h264.TypePPS {
			out = append(out, n)
		}
	}
	return out
}

// Close releases the encoder. Encode fails afterwards.
func (e *Encoder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if err := e.enc.Close(); err != nil {
		return fmt.Errorf("close h264 encoder: %w", err)
	}
	return nil
}
