package v4l2

import (
	"errors"
	"fmt"
	"image"
	"sync/atomic"
	"time"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
)

// Codec controls of <linux/v4l2-controls.h> that the H.264 encoder sets
// (the Pi 4's bcm2835-codec has all of them).
const (
	CIDBitrate            = 0x009909cf // V4L2_CID_MPEG_VIDEO_BITRATE, bits/s
	CIDRepeatSeqHeader    = 0x009909e2 // V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER: SPS/PPS before every IDR
	CIDForceKeyFrame      = 0x009909e5 // V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME (button)
	CIDH264IPeriod        = 0x00990a66 // V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, frames between IDRs
	CIDH264Profile        = 0x00990a6b // V4L2_CID_MPEG_VIDEO_H264_PROFILE
	h264ProfileConstrBase = 1          // V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE
)

// Defaults of H264EncoderConfig.
const (
	DefaultEncoderBitrate  = 2_000_000
	DefaultKeyframeSpacing = 2 * time.Second
	// DefaultEncodeTimeout bounds every wait on the hardware.
	DefaultEncodeTimeout = 2 * time.Second
)

// H264EncoderConfig configures the hardware H.264 encoder.
type H264EncoderConfig struct {
	Device           string // e.g. /dev/video11 (FindEncoder(FormatH264))
	Width, Height    int
	FPS              float64
	BitrateBps       int
	KeyframeInterval time.Duration // the longest PTS distance between IDRs
	Timeout          time.Duration // longest wait on the device; default DefaultEncodeTimeout
	// Latency is how long Encode waits for the access unit of the frame it
	// was given before returning (it then comes out of a later call);
	// default 50 ms.
	Latency time.Duration
}

// m2mDevice is the memory-to-memory device as the H.264 encoder uses it
// (*M2M; a fake in tests).
type m2mDevice interface {
	Info() M2MInfo
	SetControl(id uint32, value int32) error
	Submit(img *image.YCbCr, seq uint64, timeout time.Duration) error
	Receive(timeout time.Duration) (Packet, bool, error)
	Drain(timeout time.Duration) ([]Packet, error)
	Close() error
}

// H264Encoder encodes I420 frames to H.264 on a V4L2 memory-to-memory
// hardware encoder (bcm2835-codec on a Raspberry Pi 4). Encode is called
// from one goroutine at a time; ForceKeyframe from any.
type H264Encoder struct {
	cfg   H264EncoderConfig
	dev   m2mDevice
	name  string
	force atomic.Bool

	seq     uint64
	pts     map[uint64]time.Duration // PTS of the frames in the encoder, by Seq
	pending [][]byte                 // NAL units of a buffer without a picture (headers)
	au      auAssembler
	lastIDR time.Duration
	haveIDR bool
	closed  bool
}

// NewH264Encoder opens the hardware encoder at cfg.Device for cfg's size:
// constrained baseline (no B-frames), the bitrate, an IDR every keyframe
// interval with SPS and PPS repeated before each.
func NewH264Encoder(cfg H264EncoderConfig) (*H264Encoder, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	info, err := ProbeM2M(cfg.Device)
	if err != nil {
		return nil, err
	}
	raw, ok := info.PreferredRaw()
	if !ok {
		return nil, fmt.Errorf("v4l2 m2m %s (%s): takes neither YU12 nor NV12 (offers %v): %w", cfg.Device, info.Card, info.Raw, ErrFormatUnsupported)
	}
	dev, err := OpenM2M(M2MConfig{
		Device: cfg.Device, Width: cfg.Width, Height: cfg.Height, Raw: raw, Coded: FormatH264, FPS: cfg.FPS,
		Controls: h264Controls(cfg),
	})
	if err != nil {
		return nil, err
	}
	return newH264Encoder(cfg, dev), nil
}

func (c H264EncoderConfig) withDefaults() (H264EncoderConfig, error) {
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.BitrateBps == 0 {
		c.BitrateBps = DefaultEncoderBitrate
	}
	if c.KeyframeInterval == 0 {
		c.KeyframeInterval = DefaultKeyframeSpacing
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultEncodeTimeout
	}
	if c.Latency <= 0 {
		c.Latency = 50 * time.Millisecond
	}
	switch {
	case c.FPS < 0 || c.FPS > 240:
		return c, fmt.Errorf("v4l2 h264 encoder %s: fps %g out of range", c.Device, c.FPS)
	case c.BitrateBps < 0 || c.BitrateBps > 1<<30:
		return c, fmt.Errorf("v4l2 h264 encoder %s: bitrate %d out of range", c.Device, c.BitrateBps)
	case c.KeyframeInterval < 0:
		return c, fmt.Errorf("v4l2 h264 encoder %s: negative keyframe interval %v", c.Device, c.KeyframeInterval)
	}
	return c, nil
}

// h264Controls are the controls set before streaming: bitrate, the IDR
// period in frames, SPS/PPS before every IDR, constrained baseline.
func h264Controls(cfg H264EncoderConfig) []M2MControl {
	period := int32(max(1, cfg.KeyframeInterval.Seconds()*cfg.FPS+0.5))
	return []M2MControl{
		{Name: "bitrate", ID: CIDBitrate, Value: int32(cfg.BitrateBps)},
		{Name: "h264 i period", ID: CIDH264IPeriod, Value: period},
		{Name: "repeat sequence header", ID: CIDRepeatSeqHeader, Value: 1, Optional: true},
		{Name: "h264 profile", ID: CIDH264Profile, Value: h264ProfileConstrBase, Optional: true},
	}
}

func newH264Encoder(cfg H264EncoderConfig, dev m2mDevice) *H264Encoder {
	info := dev.Info()
	name := "v4l2-m2m"
	if info.Driver != "" {
		name += " " + info.Driver
	}
	return &H264Encoder{cfg: cfg, dev: dev, name: name + " " + cfg.Device, pts: map[uint64]time.Duration{}}
}

// Name names the encoder and its device, e.g. "v4l2-m2m bcm2835-codec
// /dev/video11".
func (e *H264Encoder) Name() string { return e.name }

// ForceKeyframe makes the next frame given to Encode an IDR.
func (e *H264Encoder) ForceKeyframe() { e.force.Store(true) }

// Encode gives one frame to the encoder and emits the access units that
// are ready: normally the one of this frame, else it comes out of a later
// call (or Close). Each unit carries the PTS of its frame; every IDR unit
// carries SPS and PPS.
func (e *H264Encoder) Encode(f media.RawFrame, emit func(media.AccessUnit)) error {
	if e.closed {
		return fmt.Errorf("encode h264 on %s: encoder closed", e.cfg.Device)
	}
	due := e.haveIDR && f.PTS-e.lastIDR >= e.cfg.KeyframeInterval-time.Duration(float64(time.Second)/e.cfg.FPS/2)
	if e.force.Swap(false) || due {
		if err := e.dev.SetControl(CIDForceKeyFrame, 0); err != nil {
			return fmt.Errorf("encode h264: force keyframe: %w", err)
		}
	}
	seq := e.seq
	if err := e.dev.Submit(f.Image, seq, e.cfg.Timeout); err != nil {
		return fmt.Errorf("encode h264 frame %d: %w", f.Seq, err)
	}
	e.seq++
	e.pts[seq] = f.PTS
	// Wait a little for this frame's unit, then take whatever else is ready.
	deadline := time.Now().Add(e.cfg.Latency)
	for {
		wait := time.Until(deadline)
		if _, in := e.pts[seq]; !in {
			wait = 0
		}
		p, ok, err := e.dev.Receive(max(wait, 0))
		if err != nil {
			return fmt.Errorf("encode h264 frame %d: %w", f.Seq, err)
		}
		if !ok {
			break
		}
		if err := e.packet(p, emit); err != nil {
			return fmt.Errorf("encode h264 frame %d: %w", f.Seq, err)
		}
	}
	// Frames the encoder skipped never come out: forget them.
	for s := range e.pts {
		if seq-s > 64 {
			delete(e.pts, s)
		}
	}
	return nil
}

// packet turns one coded buffer into an access unit. A buffer without a
// picture (SPS/PPS alone, as some encoders send first) is kept and put in
// front of the next picture.
func (e *H264Encoder) packet(p Packet, emit func(media.AccessUnit)) error {
	if len(p.Data) == 0 {
		return nil
	}
	if len(p.Data) > h264.MaxAccessUnitSize {
		return fmt.Errorf("coded buffer of %d bytes exceeds %d", len(p.Data), h264.MaxAccessUnitSize)
	}
	nalus, err := h264.SplitAnnexB(p.Data)
	if err != nil {
		return fmt.Errorf("coded buffer: %w", err)
	}
	if !hasPicture(nalus) {
		e.pending = append(e.pending, nalus...)
		if len(e.pending) > 64 {
			return errors.New("encoder sent 64 NAL units without a picture")
		}
		return nil
	}
	if len(e.pending) > 0 {
		nalus = append(e.pending, nalus...)
		e.pending = nil
	}
	nalus, idr := e.au.withParams(nalus)
	pts, ok := e.pts[p.Seq]
	if !ok {
		return fmt.Errorf("coded buffer for unknown frame %d", p.Seq)
	}
	delete(e.pts, p.Seq)
	if idr {
		if sps, pps := h264.FindParams(nalus); sps == nil || pps == nil {
			return errors.New("IDR without SPS/PPS")
		}
		e.lastIDR, e.haveIDR = pts, true
	}
	emit(media.AccessUnit{NALUs: nalus, PTS: pts, IDR: idr})
	return nil
}

// hasPicture reports whether nalus hold a coded slice.
func hasPicture(nalus [][]byte) bool {
	for _, n := range nalus {
		if t := h264.Type(n); t == h264.TypeIDR || t == h264.TypeNonIDR {
			return true
		}
	}
	return false
}

// Close drains the encoder (its last units are dropped: nothing waits for
// them once capture stops) and releases the device.
func (e *H264Encoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	_, derr := e.dev.Drain(e.cfg.Timeout)
	cerr := e.dev.Close()
	if cerr != nil {
		return cerr
	}
	if derr != nil && !errors.Is(derr, ErrDeviceLost) {
		return derr
	}
	return nil
}
