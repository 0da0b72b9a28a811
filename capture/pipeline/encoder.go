package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/videoenc"
)

// Encoder turns raw pictures into H.264 access units: the software encoder
// (openh264) or a hardware one (V4L2 mem2mem). Encode emits the units that
// are ready, which for a hardware encoder may be those of earlier frames.
// Encode and Close are called from one goroutine; ForceKeyframe from any.
type Encoder interface {
	Encode(f media.RawFrame, emit func(media.AccessUnit)) error
	ForceKeyframe()
	Name() string
	Close() error
}

// Encoder choices (the configuration's video.encoder).
const (
	EncoderAuto     = "auto"     // hardware when found, else software
	EncoderHardware = "hardware" // hardware or fail
	EncoderSoftware = "software" // openh264
)

// ErrNoHardwareEncoder is returned when the hardware encoder is required
// and none was found.
var ErrNoHardwareEncoder = errors.New("no hardware H.264 encoder")

// EncoderConfig chooses and sets up the encoder of a raw camera.
type EncoderConfig struct {
	Mode string // EncoderAuto (default), EncoderHardware or EncoderSoftware
	// Params are the frame rate, bitrate and keyframe interval; the size is
	// taken from the first picture.
	Params videoenc.Config
	// FindHardware returns the device of a hardware encoder, or an error
	// (no device: nil FindHardware, or an error); nil means there is none.
	FindHardware func() (device string, err error)
	// OpenHardware opens the hardware encoder at device with p (size set).
	OpenHardware func(device string, p videoenc.Config) (Encoder, error)
	// OpenSoftware opens the software encoder; default openh264.
	OpenSoftware func(p videoenc.Config) (Encoder, error)
}

// Software returns the openh264 encoder as an Encoder.
func Software(p videoenc.Config) (Encoder, error) {
	e, err := videoenc.New(p)
	if err != nil {
		return nil, err
	}
	return software{e}, nil
}

type software struct{ *videoenc.Encoder }

func (s software) Encode(f media.RawFrame, emit func(media.AccessUnit)) error {
	au, err := s.Encoder.Encode(f)
	if err != nil {
		return err
	}
	emit(au)
	return nil
}

// EncoderChoice is the outcome of ChooseEncoder: which encoder the first
// picture will open.
type EncoderChoice struct {
	cfg    EncoderConfig
	device string // hardware device; "" for software
	log    *slog.Logger
	name   atomic.Pointer[string]

	mu     sync.Mutex   // guards cfg.Params
	params atomic.Int64 // bumped by SetParams: the open encoder is stale
}

// ChooseEncoder decides between the hardware and the software encoder
// (the encoder itself is opened on the first picture). EncoderHardware
// without a hardware encoder is an error naming what was looked for; under
// EncoderAuto a hardware encoder that is found but fails to open falls back
// to software (logged, and the name in status says so).
func ChooseEncoder(cfg EncoderConfig, log *slog.Logger) (*EncoderChoice, error) {
	if cfg.Mode == "" {
		cfg.Mode = EncoderAuto
	}
	if cfg.OpenSoftware == nil {
		cfg.OpenSoftware = Software
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &EncoderChoice{cfg: cfg, log: log}
	switch cfg.Mode {
	case EncoderSoftware:
	case EncoderAuto, EncoderHardware:
		var err error
		if cfg.FindHardware == nil || cfg.OpenHardware == nil {
			err = errors.New("no way to find one on this platform")
		} else {
			c.device, err = cfg.FindHardware()
			if err == nil && c.device == "" {
				err = errors.New("none found")
			}
		}
		if err != nil {
			if cfg.Mode == EncoderHardware {
				return nil, fmt.Errorf("video.encoder = hardware: %w: %w", ErrNoHardwareEncoder, err)
			}
			c.device = ""
			log.Info("no hardware H.264 encoder; using software", "reason", err)
		}
	default:
		return nil, fmt.Errorf("video.encoder %q is not one of auto, hardware, software", cfg.Mode)
	}
	name := "openh264"
	if c.device != "" {
		name = "hardware " + c.device
	}
	c.name.Store(&name)
	return c, nil
}

// Name is the encoder chosen, or once opened the encoder's own name.
func (c *EncoderChoice) Name() string { return *c.name.Load() }

// SetParams changes the bitrate and the keyframe interval. The encoder is
// opened again with them at the next picture, which it encodes as an IDR;
// call it between lessons.
func (c *EncoderChoice) SetParams(bitrateBps int, keyframe time.Duration) {
	c.mu.Lock()
	changed := c.cfg.Params.BitrateBps != bitrateBps || c.cfg.Params.KeyframeInterval != keyframe
	c.cfg.Params.BitrateBps, c.cfg.Params.KeyframeInterval = bitrateBps, keyframe
	c.mu.Unlock()
	if changed {
		c.params.Add(1)
		c.log.Info("encoder settings changed; reopening at the next picture", "bitrate_bps", bitrateBps, "keyframe", keyframe)
	}
}

// Params returns the encoder's parameters (the size is the picture's).
func (c *EncoderChoice) Params() videoenc.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Params
}

// open opens the chosen encoder for the size of the first picture.
func (c *EncoderChoice) open(w, h int) (Encoder, error) {
	p := c.Params()
	p.Width, p.Height = w, h
	var e Encoder
	var err error
	if c.device != "" {
		if e, err = c.cfg.OpenHardware(c.device, p); err == nil {
			c.setName(e.Name())
			return e, nil
		}
		if c.cfg.Mode == EncoderHardware {
			return nil, fmt.Errorf("hardware encoder %s: %w", c.device, err)
		}
		c.log.Warn("hardware encoder failed to open; using software", "device", c.device, "err", err)
	}
	if e, err = c.cfg.OpenSoftware(p); err != nil {
		return nil, err
	}
	name := e.Name()
	if c.device != "" {
		name += " (hardware " + c.device + " failed)"
	}
	c.setName(name)
	return e, nil
}

func (c *EncoderChoice) setName(n string) { c.name.Store(&n) }

// Encoded wraps a raw camera with the software H.264 encoder. The encoder is
// created on the first picture, when the size is known.
func Encoded(cam RawCamera, p videoenc.Config) *Video {
	c := &EncoderChoice{cfg: EncoderConfig{Mode: EncoderSoftware, Params: p, OpenSoftware: Software},
		log: slog.New(slog.DiscardHandler)}
	c.setName("openh264")
	return EncodedWith(cam, c)
}

// EncodedWith wraps a raw camera with the encoder chosen by ChooseEncoder,
// opened on the first picture (when the size is known) and closed when
// the camera stops.
func EncodedWith(cam RawCamera, choice *EncoderChoice) *Video {
	v := &Video{name: choice.Name(), nameFn: choice.Name}
	var mu sync.Mutex
	var enc Encoder
	var encParams int64 // choice.params when enc was opened
	var pendingIDR atomic.Bool
	v.forceKeyframe = func() {
		mu.Lock()
		defer mu.Unlock()
		if enc != nil {
			enc.ForceKeyframe()
		} else {
			pendingIDR.Store(true)
		}
	}
	v.run = func(ctx context.Context, sink func(media.AccessUnit)) error {
		defer func() {
			mu.Lock()
			if enc != nil {
				enc.Close()
				enc = nil
			}
			mu.Unlock()
		}()
		var encErr error
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		grid := newFrameGrid(choice.Params().FPS)
		err := cam.Run(ctx, func(f media.RawFrame) {
			if encErr != nil {
				return
			}
			var keep bool
			if f.PTS, keep = grid.place(f.PTS); !keep {
				return
			}
			mu.Lock()
			if enc != nil && encParams != choice.params.Load() {
				enc.Close() // SetParams: open again with the new settings
				enc = nil
			}
			if enc == nil {
				encParams = choice.params.Load()
				e, err := choice.open(f.Image.Rect.Dx(), f.Image.Rect.Dy())
				if err != nil {
					mu.Unlock()
					encErr = err
					cancel()
					return
				}
				enc = e
			}
			e := enc
			mu.Unlock()
			if pendingIDR.Swap(false) {
				e.ForceKeyframe()
			}
			if err := e.Encode(f, sink); err != nil {
				encErr = err
				cancel()
			}
		})
		if encErr != nil {
			return fmt.Errorf("encode: %w", encErr)
		}
		return err
	}
	return v
}
