// Package groupconfig keeps, on the hub, the configuration district IT
// wants boxes to run with: settings per group (the claim's group) and per
// device, each set with a version from one counter. A device's effective
// configuration is its group's settings with its own laid over them, at the
// higher of the two versions, so every change reaches the devices it
// concerns with a version above the one they hold. Settings are the box's
// TOML keys the hub may set (config.RemoteKeys), stored as JSON; they are
// checked against the default box configuration when set, and again by
// each box against its own file.
package groupconfig

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/BurntSushi/toml"
	bolt "go.etcd.io/bbolt"

	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/uplink/wire"
)

var (
	bucket     = []byte("desired-config")
	counterKey = []byte("\x00version")
)

// DB runs bbolt transactions (a *bolt.DB or registrar.File).
type DB interface {
	Update(func(*bolt.Tx) error) error
	View(func(*bolt.Tx) error) error
}

// Entry is the settings of one group or device.
type Entry struct {
	Version  int64           `json:"version"`
	Settings json.RawMessage `json:"settings"`
}

// Store keeps the entries.
type Store struct{ db DB }

// New creates the bucket if needed.
func New(db DB) (*Store, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("groupconfig: %w", err)
	}
	return &Store{db: db}, nil
}

func key(scope, name string) []byte { return []byte(scope + ":" + name) }

// SettingsFromTOML turns a TOML fragment of the box's configuration
// ("[video]\nbitrate_kbps = 1800") into the JSON settings, checked against
// the default box configuration: an unknown key, a key the hub may not set
// or a bad value is refused with the field named.
func SettingsFromTOML(text []byte) (json.RawMessage, error) {
	var m map[string]any
	if _, err := toml.Decode(string(text), &m); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := Check(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Check validates settings against the default box configuration.
func Check(settings []byte) error {
	d := config.DefaultBox()
	if d.Device.ID == "" {
		d.Device.ID = "check"
	}
	_, err := d.WithSettings(settings)
	return err
}

// Set stores settings for a group (scope "group") or a device (scope
// "device") under a new version, which it returns.
func (s *Store) Set(scope, name string, settings json.RawMessage) (int64, error) {
	if scope != "group" && scope != "device" {
		return 0, fmt.Errorf("groupconfig: scope %q, want group or device", scope)
	}
	if err := Check(settings); err != nil {
		return 0, err
	}
	var v int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if c := b.Get(counterKey); len(c) == 8 {
			v = int64(binary.BigEndian.Uint64(c))
		}
		v++
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], uint64(v))
		if err := b.Put(counterKey, c[:]); err != nil {
			return err
		}
		e, err := json.Marshal(Entry{Version: v, Settings: settings})
		if err != nil {
			return err
		}
		return b.Put(key(scope, name), e)
	})
	if err != nil {
		return 0, fmt.Errorf("groupconfig: set %s %s: %w", scope, name, err)
	}
	return v, nil
}

// Get returns the entry of a group or device.
func (s *Store) Get(scope, name string) (Entry, bool, error) {
	var e Entry
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get(key(scope, name))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &e)
	})
	return e, ok, err
}

// Effective returns the desired configuration of device in group: the
// group's settings with the device's over them, at the higher version. ok
// is false when neither has settings.
func (s *Store) Effective(device, group string) (wire.Config, bool, error) {
	g, gok, err := s.Get("group", group)
	if err != nil {
		return wire.Config{}, false, err
	}
	d, dok, err := s.Get("device", device)
	if err != nil {
		return wire.Config{}, false, err
	}
	if !gok && !dok {
		return wire.Config{}, false, nil
	}
	merged := map[string]any{}
	for _, e := range []Entry{g, d} {
		if len(e.Settings) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(e.Settings, &m); err != nil {
			return wire.Config{}, false, err
		}
		deepMerge(merged, m)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(merged); err != nil {
		return wire.Config{}, false, err
	}
	return wire.Config{V: wire.Version, Version: max(g.Version, d.Version), Settings: bytes.TrimSpace(buf.Bytes())}, true, nil
}

func deepMerge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				deepMerge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}
