package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/classcap/classcap/capture/live"
	"github.com/classcap/classcap/capture/recorder"
	"github.com/classcap/classcap/device/led"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/uplink/wire"
)

// newLive makes the live view manager over the daemon's stream, recorder
// and LED; views are logged as events to the hub.
func newLive(cfg *config.Box, d *daemon) (*live.Manager, error) {
	lc := cfg.Live
	return live.New(live.Config{
		Allow:      lc.Allow,
		Interfaces: lc.Interfaces,
		Loopback:   lc.Loopback,
		UDPPortMin: uint16(lc.UDPPortMin),
		UDPPortMax: uint16(lc.UDPPortMax),
		Queue:      lc.Queue,
		MaxViewers: lc.MaxViewers,
		ICE:        liveICE(lc),
	}, live.Deps{
		Source:        d.stream,
		Tap:           d.tap,
		ForceKeyframe: d.pipeline.ForceKeyframe,
		Lesson: func() string {
			if s := d.recorder.Status(); s.State == recorder.StateRecording {
				return s.Lesson
			}
			return ""
		},
		Watched: d.leds.watched,
		Notify: func(e live.Event) {
			if d.link == nil {
				return
			}
			typ := wire.EventLiveStarted
			if e.Kind == live.EventStopped {
				typ = wire.EventLiveStopped
			}
			we := wire.LiveEvent{Session: e.Session, Viewer: e.Viewer, Lesson: e.Lesson, Seconds: e.Seconds,
				Reason: e.Reason, Video: e.Video, Audio: e.Audio, Dropped: e.Dropped}
			if now().Wall != nil {
				we.Started = e.Started.UTC()
			}
			d.link.NotifyLive(typ, we)
		},
		Log: d.log.With("component", "live"),
	})
}

// liveICE is [live]'s ICE servers and transport policy for pion.
func liveICE(lc config.LiveSection) live.ICE {
	ice := live.ICE{Policy: webrtc.ICETransportPolicyAll}
	if lc.ICETransportPolicy == "relay" {
		ice.Policy = webrtc.ICETransportPolicyRelay
	}
	for _, s := range lc.ICEServers {
		is := webrtc.ICEServer{URLs: slices.Clone(s.URLs), Username: s.Username, CredentialType: webrtc.ICECredentialTypePassword}
		if s.Credential != "" {
			is.Credential = s.Credential
		}
		ice.Servers = append(ice.Servers, is)
	}
	return ice
}

// ledMux lays the live view's "watched" patterns over the recorder's: a
// teacher always sees that someone watches, recording or not.
type ledMux struct {
	mu    sync.Mutex
	drv   *led.Driver
	base  led.Pattern
	watch bool
}

// show is the recorder's ShowLED.
func (m *ledMux) show(p led.Pattern) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.base = p
	m.apply()
}

func (m *ledMux) watched(w bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watch = w
	m.apply()
}

// apply shows the pattern (m.mu held).
func (m *ledMux) apply() {
	p := m.base
	if m.watch {
		switch p.Name {
		case led.Recording.Name:
			p = led.WatchedRecording
		case led.Idle.Name:
			p = led.Watched
		}
	}
	if p.Name != "" {
		m.drv.Show(p)
	}
}

// LiveOffer, LiveCandidates and LiveStop serve the link's live commands.
func (b *linkBox) LiveOffer(ctx context.Context, a wire.LiveOfferArgs) (string, error) {
	return b.live.Offer(ctx, live.OfferRequest{Session: a.Session, Viewer: a.Viewer, SDP: a.SDP})
}

func (b *linkBox) LiveCandidates(_ context.Context, a wire.LiveCandidatesArgs) (int, error) {
	cs := make([]live.Candidate, 0, len(a.Candidates))
	for _, c := range a.Candidates {
		cs = append(cs, live.Candidate{Candidate: c.Candidate, Mid: c.Mid, MLineIndex: uint16(c.MLineIndex)})
	}
	return b.live.AddCandidates(a.Session, cs, a.End)
}

func (b *linkBox) LiveStop(_ context.Context, a wire.LiveStopArgs) (time.Duration, error) {
	reason := "stopped by the hub"
	if a.By != "" {
		reason = "stopped by " + a.By
	}
	return b.live.Stop(a.Session, reason)
}

// liveState is the live view part of the state sent to the hub.
func liveState(s live.Status) *wire.Live {
	out := &wire.Live{Allow: s.Allow, Vetoed: s.Vetoed, Viewers: make([]wire.LiveViewer, 0, len(s.Viewers))}
	for _, v := range s.Viewers {
		out.Viewers = append(out.Viewers, wire.LiveViewer{Session: v.Session, Viewer: v.Viewer, State: v.State,
			Seconds: v.Seconds, Video: v.Video, Audio: v.Audio, Dropped: v.Dropped, RemoteCandidates: v.RemoteCandidates})
	}
	return out
}
