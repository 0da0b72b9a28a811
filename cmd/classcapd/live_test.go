package main

import (
	"reflect"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/classcap/classcap/capture/live"
	"github.com/classcap/classcap/provisioning/config"

	"github.com/classcap/classcap/device/led"
	"github.com/classcap/classcap/device/sim"
)

// TestLEDMuxShowsWatched: someone watching lays the watched patterns over
// recording and idle, and leaves the others (a pending remote start, an
// error) as the recorder set them.
func TestLEDMuxShowsWatched(t *testing.T) {
	drv := led.NewDriver(&sim.LED{}, false)
	m := &ledMux{drv: drv}
	shown := func() string { p, _ := drv.Current(); return p.Name }
	for _, step := range []struct {
		base    *led.Pattern
		watched *bool
		want    string
	}{
		{base: &led.Recording, want: "recording"},
		{watched: ptr(true), want: "watched-recording"},
		{base: &led.Pending, want: "remote-start-pending"},
		{base: &led.Idle, want: "watched"},
		{base: &led.Error, want: "error"},
		{base: &led.Recording, want: "watched-recording"},
		{watched: ptr(false), want: "recording"},
	} {
		if step.base != nil {
			m.show(*step.base)
		}
		if step.watched != nil {
			m.watched(*step.watched)
		}
		if got := shown(); got != step.want {
			t.Fatalf("shows %s, want %s", got, step.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestLiveICE(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   config.LiveSection
		want live.ICE
	}{
		{"default", config.DefaultBox().Live, live.ICE{Policy: webrtc.ICETransportPolicyAll}},
		{"relay", config.LiveSection{ICETransportPolicy: "relay", ICEServers: []config.ICEServer{
			{URLs: []string{"stun:s.example.net"}},
			{URLs: []string{"turn:t.example.net?transport=udp", "turns:t.example.net"}, Username: "u", Credential: "p"},
		}}, live.ICE{Policy: webrtc.ICETransportPolicyRelay, Servers: []webrtc.ICEServer{
			{URLs: []string{"stun:s.example.net"}},
			{URLs: []string{"turn:t.example.net?transport=udp", "turns:t.example.net"}, Username: "u", Credential: "p"},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := liveICE(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
