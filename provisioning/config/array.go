package config

import (
	"math"

	"github.com/classcap/classcap/capture/array"
)

// ArraySection is [audio.array]: the microphone-array processing between
// the microphones and the Opus encoder (capture/array).
type ArraySection struct {
	// Enabled runs the chain when the microphone delivers one channel per
	// capsule of the geometry; otherwise (or when false) the channels are
	// averaged.
	Enabled bool `toml:"enabled"`
	// Geometry is a preset ("linear4", "square4", "circular6") or
	// "custom" with Mics.
	Geometry string `toml:"geometry"`
	// Mics are the capsule positions of a custom geometry, one [x, y] or
	// [x, y, z] in metres per channel.
	Mics          [][]float64 `toml:"mics"`
	HighPassHz    float64     `toml:"high_pass_hz"`    // 0 turns the high-pass off
	AutoCalibrate bool        `toml:"auto_calibrate"`  // equalise the channels' long-term levels
	ChannelGainDB []float64   `toml:"channel_gain_db"` // fixed per-channel calibration
	Beamform      bool        `toml:"beamform"`
	// Beam is the beamformer: "delay-and-sum" or "mvdr" (adaptive: nulls
	// directional noise such as a projector fan; see docs/decisions.md).
	Beam string `toml:"beam"`
	// SteerDeg fixes the beam's azimuth (degrees, counter-clockwise from
	// the array's +X axis); -1 estimates the talker's direction.
	SteerDeg      float64 `toml:"steer_deg"`
	SuppressDB    float64 `toml:"suppress_db"` // noise suppression depth; 0 turns it off
	AGC           bool    `toml:"agc"`
	AGCTargetDBFS float64 `toml:"agc_target_dbfs"`
	AGCMaxGainDB  float64 `toml:"agc_max_gain_db"`
	LimitDBFS     float64 `toml:"limit_dbfs"`
}

// DefaultArray is the [audio.array] every key left out falls back to.
func DefaultArray() ArraySection {
	return ArraySection{
		Enabled: true, Geometry: "linear4", HighPassHz: 80, AutoCalibrate: true,
		Beamform: true, Beam: array.BeamDelaySum, SteerDeg: -1, SuppressDB: 12,
		AGC: true, AGCTargetDBFS: -20, AGCMaxGainDB: 24, LimitDBFS: -1,
	}
}

// Points returns the capsule positions of the geometry.
func (a ArraySection) Points() ([]array.Point, error) {
	if a.Geometry != "custom" {
		return array.LookupPreset(a.Geometry)
	}
	pts := make([]array.Point, len(a.Mics))
	for i, m := range a.Mics {
		if len(m) < 2 || len(m) > 3 {
			return nil, &FieldError{Field: "audio.array.mics", Reason: "each microphone is [x, y] or [x, y, z] in metres"}
		}
		pts[i] = array.Point{X: m[0], Y: m[1]}
		if len(m) == 3 {
			pts[i].Z = m[2]
		}
	}
	return pts, nil
}

// ArrayConfig returns the chain's configuration for an output of
// outChannels channels.
func (a ArraySection) ArrayConfig(outChannels int) (array.Config, error) {
	pts, err := a.Points()
	if err != nil {
		return array.Config{}, err
	}
	cfg := array.Defaults(pts)
	cfg.OutChannels = outChannels
	cfg.HighPassHz = a.HighPassHz
	cfg.AutoCalibrate = a.AutoCalibrate
	cfg.ChannelGainDB = a.ChannelGainDB
	cfg.Beamform = a.Beamform
	cfg.Beam = a.Beam
	cfg.SteerDeg = math.NaN()
	if a.SteerDeg >= 0 {
		cfg.SteerDeg = a.SteerDeg
	}
	cfg.Suppress, cfg.SuppressDB = a.SuppressDB > 0, a.SuppressDB
	cfg.AGC, cfg.TargetDBFS, cfg.MaxGainDB = a.AGC, a.AGCTargetDBFS, a.AGCMaxGainDB
	cfg.LimitDBFS = a.LimitDBFS
	return cfg, nil
}

// validateArray adds the problems of [audio.array] to p.
func (p *problems) validateArray(a ArraySection) {
	const f = "audio.array."
	if a.Geometry != "custom" {
		if _, err := array.LookupPreset(a.Geometry); err != nil {
			p.add(f+"geometry", "%q is not a preset (%v, or \"custom\" with audio.array.mics)", a.Geometry, array.PresetNames())
			return
		}
		if len(a.Mics) > 0 {
			p.add(f+"mics", `is only used with geometry = "custom"`)
		}
	}
	pts, err := a.Points()
	if err != nil {
		p.add(f+"mics", "%s", err.(*FieldError).Reason)
		return
	}
	if a.Geometry == "custom" && len(pts) < 1 {
		p.add(f+"mics", `is required when geometry = "custom"`)
		return
	}
	if err := array.CheckGeometry(pts); err != nil {
		p.add(f+"mics", "%s", err)
		return
	}
	if a.ChannelGainDB != nil && len(a.ChannelGainDB) != len(pts) {
		p.add(f+"channel_gain_db", "has %d values for %d microphones", len(a.ChannelGainDB), len(pts))
	}
	for _, g := range a.ChannelGainDB {
		p.floatRange(f+"channel_gain_db", g, -20, 20)
	}
	p.oneOf(f+"beam", a.Beam, array.BeamDelaySum, array.BeamMVDR)
	p.floatRange(f+"high_pass_hz", a.HighPassHz, 0, 500)
	if a.SteerDeg != -1 {
		p.floatRange(f+"steer_deg", a.SteerDeg, 0, 360)
	}
	p.floatRange(f+"suppress_db", a.SuppressDB, 0, 40)
	p.floatRange(f+"agc_target_dbfs", a.AGCTargetDBFS, -40, -6)
	p.floatRange(f+"agc_max_gain_db", a.AGCMaxGainDB, 0, 40)
	p.floatRange(f+"limit_dbfs", a.LimitDBFS, -20, 0)
}
