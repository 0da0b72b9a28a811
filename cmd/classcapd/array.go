package main

import (
	"math"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/pipeline"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/uplink/control"
)

// arrayConfig is the microphone-array chain's configuration, or nil when
// [audio.array] turns it off.
func arrayConfig(cfg *config.Box) (*array.Config, error) {
	if !cfg.Audio.Array.Enabled {
		return nil, nil
	}
	c, err := cfg.Audio.Array.ArrayConfig(cfg.Audio.Channels)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// audioProcessing is what lesson.json records of the audio processing.
func audioProcessing(p *pipeline.Pipeline, sec config.ArraySection) *lesson.AudioProcessing {
	c, reason := p.AudioProcessing()
	if c == nil {
		return &lesson.AudioProcessing{Chain: "mixdown", Reason: reason}
	}
	ap := &lesson.AudioProcessing{Chain: "array", Geometry: sec.Geometry,
		HighPassHz: c.HighPassHz, AutoCalibrate: c.AutoCalibrate, ChannelGainDB: c.ChannelGainDB,
		Beamform: c.Beamform, AGC: c.AGC, LimitDBFS: c.LimitDBFS}
	for _, m := range c.Mics {
		ap.Mics = append(ap.Mics, [3]float64{m.X, m.Y, m.Z})
	}
	if !math.IsNaN(c.SteerDeg) {
		s := c.SteerDeg
		ap.SteerDeg = &s
	}
	if c.Suppress {
		ap.SuppressDB = c.SuppressDB
	}
	if c.AGC {
		ap.AGCTargetDBFS, ap.AGCMaxGainDB = c.TargetDBFS, c.MaxGainDB
	}
	return ap
}

// arrayStatus is the array's part of the daemon status, nil when
// [audio.array] is off.
func arrayStatus(p *pipeline.Pipeline, sec config.ArraySection) *control.Array {
	if !sec.Enabled {
		return nil
	}
	c, reason := p.AudioProcessing()
	l, ok := p.ArrayLevels()
	if c == nil || !ok {
		if reason == "" {
			reason = "starting"
		}
		return &control.Array{Reason: reason}
	}
	return &control.Array{Running: true, SpeechDBFS: l.SpeechDBFS, NoiseDBFS: l.NoiseDBFS, AzimuthDeg: l.AzimuthDeg,
		Speech: l.Speech, GainDB: l.GainDB, OutPeakDBFS: l.OutPeakDBFS, OutRMSDBFS: l.OutRMSDBFS}
}
