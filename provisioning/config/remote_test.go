package config

import (
	"strings"
	"testing"
)

func TestWithSettings(t *testing.T) {
	base, err := ParseBox([]byte("[device]\nid = \"room-101\"\n[hardware]\nprofile = \"sim\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := base.WithSettings([]byte(`{"recording":{"visibility":"coaching","segment_seconds":6},"video":{"bitrate_kbps":1800},"uplink":{"upload_windows":["22:00-06:00"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Recording.Visibility != "coaching" || got.Recording.SegmentSeconds != 6 || got.Video.BitrateKbps != 1800 ||
		len(got.Uplink.UploadWindows) != 1 || got.Device.ID != "room-101" {
		t.Errorf("applied: %+v", got)
	}
	if base.Recording.Visibility != "private" || base.Video.BitrateKbps != 2500 || len(base.Uplink.UploadWindows) != 0 {
		t.Errorf("the base changed: %+v", base)
	}

	for _, tc := range []struct{ name, in, field, reason string }{
		{"out of range", `{"video":{"bitrate_kbps":99}}`, "video.bitrate_kbps", "below the minimum 100"},
		{"bad value", `{"recording":{"visibility":"public"}}`, "recording.visibility", "not one of"},
		{"wrong type", `{"video":{"bitrate_kbps":"fast"}}`, "video.bitrate_kbps", ""},
		{"identity", `{"device":{"id":"room-102"}}`, "device.id", "cannot be set by the hub"},
		{"hardware", `{"hardware":{"profile":"auto"}}`, "hardware.profile", "cannot be set by the hub"},
		{"unknown", `{"video":{"colour":"red"}}`, "video.colour", "unknown key"},
		{"null", `{"video":{"bitrate_kbps":null}}`, "video.bitrate_kbps", "null"},
		{"not an object", `[1]`, "settings", "JSON object"},
		{"cross-field", `{"video":{"keyframe_seconds":5},"recording":{"segment_seconds":2}}`, "video.keyframe_seconds", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := base.WithSettings([]byte(tc.in))
			fes := FieldErrors(err)
			if len(fes) == 0 || fes[0].Field != tc.field || !strings.Contains(fes[0].Reason, tc.reason) {
				t.Errorf("err %v, want field %s saying %q", err, tc.field, tc.reason)
			}
		})
	}
}

func FuzzWithSettings(f *testing.F) {
	f.Add([]byte(`{"video":{"bitrate_kbps":1800},"recording":{"visibility":"coaching"}}`))
	f.Add([]byte(`{"device":{"id":"x"}}`))
	f.Add([]byte(`{"uplink":{"upload_windows":["22:00-06:00"]}}`))
	base, err := ParseBox([]byte("[device]\nid = \"room-101\"\n[hardware]\nprofile = \"sim\"\n"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := base.WithSettings(b)
		if err != nil {
			if len(FieldErrors(err)) == 0 {
				t.Fatalf("refusal names no field: %v", err)
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted an invalid result: %v", err)
		}
		if got.Device != base.Device || got.Hardware.Profile != base.Hardware.Profile {
			t.Fatalf("settings changed a key the hub may not set")
		}
	})
}
