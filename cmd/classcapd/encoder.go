package main

import (
	"github.com/classcap/classcap/capture/pipeline"
	"github.com/classcap/classcap/capture/videoenc"
	"github.com/classcap/classcap/device/v4l2"
	"github.com/classcap/classcap/provisioning/config"
)

// encoderConfig is the encoder choice for raw pictures at fps: the V4L2
// mem2mem hardware encoder found by probing /dev/video*, or openh264, as
// video.encoder says.
func encoderConfig(cfg *config.Box, fps float64) pipeline.EncoderConfig {
	return pipeline.EncoderConfig{
		Mode:   cfg.Video.Encoder,
		Params: videoenc.Config{FPS: fps, BitrateBps: cfg.Video.BitrateKbps * 1000, KeyframeInterval: cfg.KeyframeInterval()},
		FindHardware: func() (string, error) {
			info, err := v4l2.FindEncoder(v4l2.FormatH264)
			return info.Path, err
		},
		OpenHardware: func(dev string, p videoenc.Config) (pipeline.Encoder, error) {
			return v4l2.NewH264Encoder(v4l2.H264EncoderConfig{Device: dev, Width: p.Width, Height: p.Height, FPS: p.FPS,
				BitrateBps: p.BitrateBps, KeyframeInterval: p.KeyframeInterval})
		},
	}
}
