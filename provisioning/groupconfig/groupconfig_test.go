package groupconfig

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/classcap/classcap/provisioning/config"
)

func TestEffectiveMergesGroupAndDevice(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Effective("school-12-a", "school-12"); ok {
		t.Error("configuration before any was set")
	}
	g, err := SettingsFromTOML([]byte("[video]\nbitrate_kbps = 1800\n[recording]\nvisibility = \"coaching\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s.Set("group", "school-12", g)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := SettingsFromTOML([]byte("[recording]\nvisibility = \"library\"\n"))
	v2, err := s.Set("device", "school-12-a", d)
	if err != nil || v2 <= v1 {
		t.Fatalf("versions %d then %d, %v", v1, v2, err)
	}
	c, ok, err := s.Effective("school-12-a", "school-12")
	if err != nil || !ok || c.Version != v2 {
		t.Fatalf("effective %+v %v %v", c, ok, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b := config.DefaultBox()
	b.Device.ID = "x"
	got, err := b.WithSettings(c.Settings)
	if err != nil {
		t.Fatal(err)
	}
	if got.Video.BitrateKbps != 1800 || got.Recording.Visibility != "library" {
		t.Errorf("merged %s: %+v %+v", c.Settings, got.Video, got.Recording)
	}
	// Another box of the group gets the group's settings at the group's version.
	c2, _, _ := s.Effective("school-12-b", "school-12")
	if c2.Version != v1 || !strings.Contains(string(c2.Settings), "coaching") {
		t.Errorf("other box: %+v", c2)
	}
	// A change to the group outranks the device's older version.
	v3, _ := s.Set("group", "school-12", json.RawMessage(`{"audio":{"bitrate_kbps":48}}`))
	if c, _, _ := s.Effective("school-12-a", "school-12"); c.Version != v3 {
		t.Errorf("after a group change: version %d, want %d", c.Version, v3)
	}
	// Refused with the field named.
	if _, err := SettingsFromTOML([]byte("[device]\nid = \"y\"\n")); err == nil || !strings.Contains(err.Error(), "device.id") {
		t.Errorf("device.id: %v", err)
	}
	if _, err := s.Set("room", "x", g); err == nil {
		t.Error("unknown scope accepted")
	}
}
