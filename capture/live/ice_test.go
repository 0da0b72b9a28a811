package live

import (
	"context"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/classcap/classcap/capture/live/turntest"
	"github.com/classcap/classcap/capture/live/whep"
)

// dialAnswer dials like fixture.dial and also returns the box's answer.
func (fx *fixture) dialAnswer(t *testing.T, session string, o whep.Options) (*whep.Viewer, string) {
	t.Helper()
	o.Loopback = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var answer string
	v, err := whep.Dial(ctx, func(ctx context.Context, offer string) (string, error) {
		a, err := fx.m.Offer(ctx, OfferRequest{Session: session, Viewer: "coach:test", SDP: offer})
		answer = a
		return a, err
	}, o)
	if err != nil {
		t.Fatalf("dial %s: %v", session, err)
	}
	t.Cleanup(func() { v.Close() })
	return v, answer
}

func TestViewThroughTURN(t *testing.T) {
	turnSrv := turntest.Start(t)
	relay := ICE{Servers: []webrtc.ICEServer{turnSrv.ICEServer()}, Policy: webrtc.ICETransportPolicyRelay}
	fx := newFixture(t, Config{ICE: relay})
	v, answer := fx.dialAnswer(t, "s1", whep.Options{ICEServers: relay.Servers, ICETransportPolicy: webrtc.ICETransportPolicyRelay})
	if types := turntest.CandidateTypes(answer); types["relay"] == 0 || len(types) != 1 {
		t.Fatalf("the box answered with candidates %v, want relay only", types)
	}
	waitFor(t, "frames and audio arrive through the TURN server", func() bool {
		c := v.Counts()
		return c.VideoFrames >= 30 && c.AudioPackets >= 30 && c.Keyframes >= 1
	})
	turntest.RelayPair(t, v)
	turnSrv.CarriedVideo(t, v.Counts().VideoBytes)
}

func TestSetICEForTheNextView(t *testing.T) {
	turnSrv := turntest.Start(t)
	fx := newFixture(t, Config{Allow: AllowAlways})
	_, before := fx.dialAnswer(t, "s1", whep.Options{})
	if types := turntest.CandidateTypes(before); types["host"] == 0 || types["relay"] != 0 {
		t.Fatalf("without ICE servers the box answered with candidates %v, want host ones", types)
	}
	servers := []webrtc.ICEServer{turnSrv.ICEServer()}
	fx.m.SetICE(ICE{Servers: servers, Policy: webrtc.ICETransportPolicyRelay})
	servers[0].URLs[0] = "turn:changed.invalid" // SetICE keeps its own copy
	v, after := fx.dialAnswer(t, "s2", whep.Options{ICEServers: []webrtc.ICEServer{turnSrv.ICEServer()},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay})
	if types := turntest.CandidateTypes(after); types["relay"] == 0 || len(types) != 1 {
		t.Fatalf("after SetICE relay the box answered with candidates %v, want relay only", types)
	}
	waitFor(t, "frames arrive through the TURN server", func() bool { return v.Counts().VideoFrames >= 10 })
}
