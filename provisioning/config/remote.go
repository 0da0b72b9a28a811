package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// RemoteKeys are the keys the hub may set on a box (a trailing "." allows
// a whole section): what a lesson is recorded with and how it is uploaded,
// never the box's identity, paths or hardware.
var RemoteKeys = []string{
	"recording.", "video.", "audio.",
	"uplink.upload_concurrency", "uplink.upload_rate_kbps", "uplink.upload_windows",
	"uplink.retention_days", "uplink.retention_min_free_mb",
	"live.ice_servers", "live.ice_transport_policy",
}

// remoteAllowed reports whether the hub may set key: one of RemoteKeys, in
// a section RemoteKeys allows, or inside a table array it allows
// (live.ice_servers.urls).
func remoteAllowed(key string) bool {
	for _, k := range RemoteKeys {
		if key == k || strings.HasPrefix(key, strings.TrimSuffix(k, ".")+".") {
			return true
		}
	}
	return false
}

var lastKey = regexp.MustCompile(`last key "([^"]+)"`)

// WithSettings returns a copy of b with settings laid over it: a JSON
// object of TOML sections and keys from the hub, e.g.
// {"video":{"bitrate_kbps":1800}}. The result is validated like a file; a
// key the hub may not set (see RemoteKeys), an unknown key, a wrong type or
// a bad value is refused with a *FieldError naming it, and b is unchanged.
func (b *Box) WithSettings(settings []byte) (*Box, error) {
	dec := json.NewDecoder(bytes.NewReader(settings))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, &FieldError{Field: "settings", Reason: fmt.Sprintf("not a JSON object: %v", err)}
	}
	conv, err := tomlValues(m, "")
	if err != nil {
		return nil, err
	}
	var text bytes.Buffer
	if err := toml.NewEncoder(&text).Encode(conv); err != nil {
		return nil, &FieldError{Field: "settings", Reason: err.Error()}
	}
	out := *b
	out.Warnings = nil
	md, err := toml.Decode(text.String(), &out)
	if err != nil {
		field := "settings"
		if k := lastKey.FindStringSubmatch(err.Error()); k != nil {
			field = k[1]
		}
		return nil, &FieldError{Field: field, Reason: err.Error()}
	}
	var p problems
	for _, k := range md.Undecoded() {
		p.add(k.String(), "unknown key")
	}
	for _, k := range md.Keys() {
		if md.Type(k...) == "Hash" {
			continue
		}
		if !remoteAllowed(k.String()) && !undecoded(md, k) {
			p.add(k.String(), "cannot be set by the hub (only %s)", strings.Join(RemoteKeys, ", "))
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return &out, nil
}

func undecoded(md toml.MetaData, k toml.Key) bool {
	for _, u := range md.Undecoded() {
		if u.String() == k.String() {
			return true
		}
	}
	return false
}

// tomlValues turns decoded JSON into values the TOML encoder writes with
// the right types: integers stay integers.
func tomlValues(v any, path string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			c, err := tomlValues(e, p)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := tomlValues(e, path)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, &FieldError{Field: path, Reason: fmt.Sprintf("%s is not a number", x)}
		}
		return f, nil
	case nil:
		return nil, &FieldError{Field: path, Reason: "null is not a value"}
	default:
		return x, nil
	}
}
