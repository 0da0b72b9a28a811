package main

import (
	"log/slog"
	"math"
	"sync/atomic"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/media"
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
	if c.Beamform {
		ap.Beam = c.Beam
	}
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

// rawAudio is the path of the microphones' own channels to the recorder
// while keep says so ([audio] keep_raw, which the hub may change between
// lessons): the capture side copies each block into a bounded queue and
// never waits; a block that finds the queue full (the recorder is behind)
// is dropped and counted.
func rawAudio(keep func() bool, log *slog.Logger) (<-chan media.PCM, func(media.PCM)) {
	ch := make(chan media.PCM, 512)
	var dropped atomic.Int64
	return ch, func(p media.PCM) {
		if !keep() {
			return
		}
		c := p
		c.Samples = append([]float32(nil), p.Samples...)
		select {
		case ch <- c:
		default:
			if n := dropped.Add(1); n == 1 || n%1000 == 0 {
				log.Warn("raw audio blocks dropped: the recorder is behind", "dropped", n)
			}
		}
	}
}
