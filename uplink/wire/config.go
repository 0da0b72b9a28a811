package wire

import (
	"bytes"
	"encoding/json"
)

// Config is the hub's desired configuration for a box, published retained
// on the box's config topic. Settings is a JSON object with the TOML
// sections and keys of the box's configuration file that the hub may set
// (e.g. {"recording":{"visibility":"coaching"},"video":{"bitrate_kbps":1800}});
// the box lays it over its own file, validates the result and reports what
// it did in State.Config. Version grows with every change the hub makes; a
// box ignores a version not above the one it holds.
type Config struct {
	V        int             `json:"v"`
	Version  int64           `json:"version"`
	Settings json.RawMessage `json:"settings"`
}

// ConfigStatus is the box's report on the hub's configuration, in State:
// the version it applied, and the last version it refused with the field
// and the reason.
type ConfigStatus struct {
	Applied  int64  `json:"applied"`            // 0: none yet (the box runs on its file)
	Pending  int64  `json:"pending,omitempty"`  // accepted, waiting for the lesson to end
	Rejected int64  `json:"rejected,omitempty"` // the last version refused
	Field    string `json:"field,omitempty"`    // of the refused version, e.g. "video.bitrate_kbps"
	Error    string `json:"error,omitempty"`    // why it was refused
}

// ConfigTopic is the topic of device's desired configuration.
func ConfigTopic(device string) string { return Topic(device, KindConfig) }

// DecodeConfig reads and checks a desired configuration: v, a version of
// 1 or more, and settings that are a JSON object.
func DecodeConfig(b []byte) (Config, error) {
	return decodeChecked("config", b, true, Config.Validate)
}

// Validate checks a desired configuration's envelope (the settings'
// values are the box's to judge).
func (c Config) Validate() error {
	if err := checkVersion(c.V); err != nil {
		return err
	}
	if c.Version < 1 {
		return fieldErr("version", "is %d, want 1 or more", c.Version)
	}
	s := bytes.TrimSpace(c.Settings)
	if len(s) == 0 || s[0] != '{' {
		return fieldErr("settings", "is not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(s, &m); err != nil {
		return fieldErr("settings", "is not a JSON object: %v", err)
	}
	return nil
}
