package main

import (
	"fmt"
	"strings"

	"github.com/classcap/classcap/capture/pipeline"
	"github.com/classcap/classcap/capture/videoenc"
	"github.com/classcap/classcap/device/v4l2"
	"github.com/classcap/classcap/provisioning/config"
)

// hardwareEncoder finds and opens the V4L2 mem2mem H.264 encoder. Tests
// replace it: no machine they run on has one.
var hardwareEncoder = struct {
	find func() (device string, err error)
	open func(device string, p videoenc.Config) (pipeline.Encoder, error)
}{
	find: func() (string, error) {
		info, err := v4l2.FindEncoder(v4l2.FormatH264)
		return info.Path, err
	},
	open: func(dev string, p videoenc.Config) (pipeline.Encoder, error) {
		return v4l2.NewH264Encoder(v4l2.H264EncoderConfig{Device: dev, Width: p.Width, Height: p.Height, FPS: p.FPS,
			BitrateBps: p.BitrateBps, KeyframeInterval: p.KeyframeInterval})
	},
}

// encoderConfig is the encoder choice for raw pictures at fps: the V4L2
// mem2mem hardware encoder found by probing /dev/video*, or openh264, as
// video.encoder says.
func encoderConfig(cfg *config.Box, fps float64) pipeline.EncoderConfig {
	return pipeline.EncoderConfig{
		Mode:         cfg.Video.Encoder,
		Params:       videoenc.Config{FPS: fps, BitrateBps: cfg.Video.BitrateKbps * 1000, KeyframeInterval: cfg.KeyframeInterval()},
		FindHardware: hardwareEncoder.find,
		OpenHardware: hardwareEncoder.open,
	}
}

// checkEncoder refuses a hub configuration that switches to the hardware
// encoder on a box that has none: the box would lose its camera (or, with
// the setting kept for the next start, fail to start). The set is reported
// refused, naming video.encoder, and the box records on with the encoder it
// has. Whatever the camera is: a camera that encodes H.264 itself ignores
// the setting, but a raw camera plugged in later would not. A set that
// keeps video.encoder is not probed for: it changes nothing there.
func checkEncoder(running, next *config.Box) error {
	if next.Video.Encoder != pipeline.EncoderHardware || running.Video.Encoder == next.Video.Encoder {
		return nil
	}
	// The probe the camera half makes when it opens (it opens nothing).
	if _, err := pipeline.ChooseEncoder(encoderConfig(next, 0), nil); err != nil {
		why := strings.TrimPrefix(err.Error(), "video.encoder = hardware: ")
		return &config.FieldError{Field: "video.encoder",
			Reason: fmt.Sprintf("is hardware, but this box has %s; it records on with %s", why, running.Video.Encoder)}
	}
	return nil
}
