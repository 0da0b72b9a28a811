package config

import (
	"math"
	"strings"
	"testing"

	"github.com/classcap/classcap/capture/array"
)

func TestArrayDefaultsAndCustom(t *testing.T) {
	b, err := ParseBox([]byte("[device]\nid = \"room-1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := b.Audio.Array
	if !a.Enabled || a.Geometry != "linear4" {
		t.Errorf("default [audio.array] %+v", a)
	}
	cfg, err := a.ArrayConfig(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mics) != 4 || cfg.OutChannels != 2 || !math.IsNaN(cfg.SteerDeg) || !cfg.Suppress || cfg.SuppressDB != 12 ||
		cfg.Beam != array.BeamDelaySum {
		t.Errorf("chain config from the defaults: %+v", cfg)
	}

	b, err = ParseBox([]byte(`[device]
id = "room-1"
[audio.array]
geometry = "custom"
mics = [[0, 0], [0.05, 0], [0.05, 0.05, 0.01]]
steer_deg = 90
suppress_db = 0
channel_gain_db = [0, 1.5, -2]
beam = "mvdr"
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = b.Audio.Array.ArrayConfig(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mics) != 3 || cfg.Mics[2].Z != 0.01 || cfg.SteerDeg != 90 || cfg.Suppress || cfg.ChannelGainDB[1] != 1.5 || cfg.Beam != array.BeamMVDR {
		t.Errorf("custom geometry: %+v", cfg)
	}
}

func TestArrayErrors(t *testing.T) {
	for _, tc := range []struct{ body, field, want string }{
		{`geometry = "octagon"`, "audio.array.geometry", "not a preset"},
		{`geometry = "custom"`, "audio.array.mics", "required"},
		{"geometry = \"custom\"\nmics = [[0]]", "audio.array.mics", "[x, y]"},
		{"geometry = \"custom\"\nmics = [[0, 0], [0, 0]]", "audio.array.mics", "less than 1 mm"},
		{"geometry = \"custom\"\nmics = [[0, 0], [3, 0]]", "audio.array.mics", "apart"},
		{`mics = [[0, 0]]`, "audio.array.mics", "only used"},
		{`channel_gain_db = [1, 2]`, "audio.array.channel_gain_db", "2 values for 4"},
		{`channel_gain_db = [0, 0, 0, 50]`, "audio.array.channel_gain_db", "maximum"},
		{`steer_deg = 400`, "audio.array.steer_deg", ""},
		{`suppress_db = -3`, "audio.array.suppress_db", ""},
		{`agc_target_dbfs = 0`, "audio.array.agc_target_dbfs", ""},
		{`limit_dbfs = 1`, "audio.array.limit_dbfs", ""},
		{`high_pass_hz = 1000`, "audio.array.high_pass_hz", ""},
		{`beam = "gsc"`, "audio.array.beam", "not one of delay-and-sum, mvdr"},
	} {
		_, err := ParseBox([]byte("[device]\nid = \"room-1\"\n[audio.array]\n" + tc.body + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one naming %s (%q)", tc.body, err, tc.field, tc.want)
		}
	}
}
