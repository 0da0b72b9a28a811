package main

// Live view through a TURN server: the hub tells viewers its [live] ICE
// servers (WHEP Link headers, GET /api/v1/live/ice), the box gathers
// through its own, and with ice_transport_policy = "relay" on both sides
// the media can only go through the relay.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/classcap/classcap/capture/live/turntest"
	"github.com/classcap/classcap/capture/live/whep"
	"github.com/classcap/classcap/hub/api"
)

// iceTOML is a [live] table's ICE keys: relay only, through srv.
func iceTOML(srv *turntest.Server) string { return relayTOML(srv.URL) }

// relayTOML is a [live] table's ICE keys: relay only, through the TURN
// server at url with turntest's credential.
func relayTOML(url string) string {
	return `ice_transport_policy = "relay"
[[live.ice_servers]]
urls = ["` + url + `"]
username = "` + turntest.Username + `"
credential = "` + turntest.Password + `"
`
}

// turnHub runs a hub whose [live] table tells viewers to go through the
// TURN server at url only, with turntest's credential.
func turnHub(t *testing.T, url string) *testHub {
	t.Helper()
	return hubWithLive(t, relayTOML(url))
}

// hubWithLive runs a hub with the given [live] keys.
func hubWithLive(t *testing.T, live string) *testHub {
	t.Helper()
	return runHub(t, writeConfig(t, `
[hub]
data_dir = "`+filepath.Join(t.TempDir(), "hub")+`"
http_listen = "127.0.0.1:0"
[broker]
listen = "127.0.0.1:0"
[live]
`+live))
}

// hubICE asks the hub for its ICE servers, as a coach's page does.
func hubICE(t *testing.T, h *testHub, token string) api.LiveICE {
	t.Helper()
	req, err := http.NewRequest("GET", h.http+"/api/v1/live/ice", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ice api.LiveICE
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ice) != nil {
		t.Fatalf("GET /api/v1/live/ice: %d %s", resp.StatusCode, body)
	}
	return ice
}

func TestLiveViewThroughTURN(t *testing.T) {
	turnSrv := turntest.Start(t)
	h := turnHub(t, turnSrv.URL)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := startLiveBox(t, h, "room-turn", liveExtra+iceTOML(turnSrv))
	waitLong(t, box.id+" is online at the hub", 60*time.Second, func() bool {
		_, m := h.call(t, "GET", "/api/v1/devices/"+box.id, coach, "")
		return m["online"] == true
	})

	// The viewer takes the hub's servers and policy, as the hub's page does.
	ice := hubICE(t, h, coach)
	if ice.Policy != "relay" || len(ice.Servers) != 1 || !slices.Equal(ice.Servers[0].URLs, []string{turnSrv.URL}) ||
		ice.Servers[0].Username != turntest.Username || ice.Servers[0].Credential != turntest.Password {
		t.Fatalf("the hub tells viewers %+v", ice)
	}
	o := whep.Options{ICETransportPolicy: webrtc.ICETransportPolicyRelay}
	for _, s := range ice.Servers {
		o.ICEServers = append(o.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	v, offered, answered, c := viewThroughHub(t, h, box.id, coach, o)

	// The WHEP answer announces the hub's server (RFC 9725 section 4.6).
	want := []string{`<` + turnSrv.URL + `>; rel="ice-server"; username="` + turntest.Username + `"; credential="` +
		turntest.Password + `"; credential-type="password"`}
	if got := c.Links(); !slices.Equal(got, want) {
		t.Errorf("the WHEP answer's Link headers: %q, want %q", got, want)
	}
	// Neither side offers anything but relayed candidates.
	for side, sdp := range map[string]string{"viewer's offer": offered, "box's answer": answered} {
		if k := turntest.CandidateTypes(sdp); k["relay"] == 0 || len(k) != 1 {
			t.Errorf("the %s has candidates %v, want relayed ones only", side, k)
		}
	}

	waitLong(t, "the viewer receives pictures and sound through the TURN server", 60*time.Second, func() bool {
		n := v.Counts()
		return n.Keyframes >= 1 && n.VideoFrames >= 15 && n.AudioPackets >= 50
	})
	p := turntest.RelayPair(t, v)
	n := v.Counts()
	turnSrv.CarriedVideo(t, n.VideoBytes)
	t.Logf("through the TURN server: %d frames, %d audio packets, %d video bytes; the server received %d bytes; pair %s",
		n.VideoFrames, n.AudioPackets, n.VideoBytes, turnSrv.Received(), p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st, err := c.Delete(ctx); err != nil || st != http.StatusOK {
		t.Fatalf("DELETE: %d %v", st, err)
	}
}

// TestWebPageLiveViewThroughTURN: the hub's page in Chromium takes the
// hub's ICE servers and relay policy; the view connects through the TURN
// server, relay to relay. The hub knows the TURN server's shared secret
// (auth_secret_file) and gives the page credentials made for its coach,
// which the TURN server takes.
func TestWebPageLiveViewThroughTURN(t *testing.T) {
	const secret = "district-turn-secret"
	turnSrv := turntest.StartWithSecret(t, secret)
	secretFile := filepath.Join(t.TempDir(), "turn-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := hubWithLive(t, `ice_transport_policy = "relay"
turn_credential_hours = 1
[[live.ice_servers]]
urls = ["`+turnSrv.URL+`"]
auth_secret_file = "`+secretFile+`"
`)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	startWebBox(t, h, "room-turn", webBoxConfig{Extra: liveExtra + iceTOML(turnSrv)})
	b := newBrowser(t)
	b.signIn(t, h, coach)
	b.waitJS(t, "the box is listed online",
		`document.querySelector('tr[data-device="room-turn"]')?.dataset.online === 'yes'`, 60*time.Second)
	watchLive(t, b, "room-turn")
	pair := eval[map[string]string](t, b, `(async () => {
	const stats = await live.session.pc.getStats();
	const out = {};
	stats.forEach((s) => {
		if (s.type === 'transport' && s.selectedCandidatePairId) {
			const p = stats.get(s.selectedCandidatePairId);
			out.local = stats.get(p.localCandidateId).candidateType;
			out.remote = stats.get(p.remoteCandidateId).candidateType;
		}
	});
	out.policy = live.session.pc.getConfiguration().iceTransportPolicy;
	return out;
})()`)
	if pair["local"] != "relay" || pair["remote"] != "relay" || pair["policy"] != "relay" {
		t.Fatalf("the page's selected candidate pair and policy: %v, want relay", pair)
	}
	if turnSrv.Received() == 0 {
		t.Fatal("the TURN server received nothing")
	}
	// The page's username is the one made for alice, and the TURN server
	// let it in on the shared secret (the box uses a static credential).
	user := eval[string](t, b, `live.session.pc.getConfiguration().iceServers.map((s) => s.username).join(',')`)
	if exp, who, ok := strings.Cut(user, ":"); !ok || who != "coach.alice" || exp == "" {
		t.Errorf("the page's TURN username %q, want <expiry>:coach.alice", user)
	}
	if turnSrv.SharedSecretAuths() == 0 {
		t.Error("the TURN server let no request in on the shared secret")
	}
}

// TestLiveICESetFromTheHub: the box's ICE servers and relay policy, set
// with config set on the hub, reach the running box and the next viewer
// goes through the TURN server.
func TestLiveICESetFromTheHub(t *testing.T) {
	old := configPoll
	configPoll = 50 * time.Millisecond
	t.Cleanup(func() { configPoll = old })
	turnSrv := turntest.Start(t)
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := startLiveBox(t, h, "room-pushed", liveExtra)
	waitLong(t, box.id+" is online at the hub", 60*time.Second, func() bool {
		_, m := h.call(t, "GET", "/api/v1/devices/"+box.id, coach, "")
		return m["online"] == true
	})
	dial := func(o whep.Options) (*whep.Viewer, string) {
		t.Helper()
		v, _, answer, _ := viewThroughHub(t, h, box.id, coach, o)
		return v, answer
	}
	if _, answer := dial(whep.Options{}); turntest.CandidateTypes(answer)["host"] == 0 || turntest.CandidateTypes(answer)["relay"] != 0 {
		t.Fatalf("before the hub's settings the box answers with candidates %v, want host ones", turntest.CandidateTypes(answer))
	}

	set := filepath.Join(t.TempDir(), "live.toml")
	if err := os.WriteFile(set, []byte("[live]\n"+iceTOML(turnSrv)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := h.verb(t, "config", "set", "-device", box.id, set)
	waitLong(t, "the box applies the hub's settings ("+strings.TrimSpace(out)+")", 60*time.Second, func() bool {
		_, m := h.call(t, "GET", "/api/v1/devices/"+box.id, coach, "")
		c, _ := m["config"].(map[string]any)
		applied, _ := c["applied"].(float64)
		return applied > 0
	})

	v, answer := dial(whep.Options{ICEServers: []webrtc.ICEServer{turnSrv.ICEServer()},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay})
	if k := turntest.CandidateTypes(answer); k["relay"] == 0 || len(k) != 1 {
		t.Fatalf("after the hub's settings the box answers with candidates %v, want relay only", k)
	}
	waitLong(t, "the viewer receives pictures and sound through the TURN server", 60*time.Second, func() bool {
		n := v.Counts()
		return n.Keyframes >= 1 && n.VideoFrames >= 15 && n.AudioPackets >= 50
	})
	turntest.RelayPair(t, v)
}

// viewThroughHub opens a WHEP view of device through the hub as token, on
// loopback, with o's ICE settings: the viewer (closed when the test ends),
// the offer and answer exchanged, and the client, which holds the answer's
// Link headers and the session.
func viewThroughHub(t *testing.T, h *testHub, device, token string, o whep.Options) (*whep.Viewer, string, string, *whep.Client) {
	t.Helper()
	c := &whep.Client{Endpoint: h.http + "/live/" + device + "/whep", Token: token}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var offered, answered string
	o.Loopback = true
	v, err := whep.Dial(ctx, func(ctx context.Context, offer string) (string, error) {
		offered = offer
		a, err := c.Signal(ctx, offer)
		answered = a
		return a, err
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, offered, answered, c
}

// heldTURN forwards UDP between browsers and a TURN server, holding what
// the server sends back until Release: the browser's ICE gathering, which
// waits for its relayed candidate, stays incomplete meanwhile.
type heldTURN struct {
	URL     string        // turn:127.0.0.1:<port>?transport=udp, the forwarder's
	asked   chan struct{} // closed at a browser's first packet
	release chan struct{}
	once    sync.Once
}

func startHeldTURN(t *testing.T, srv *turntest.Server) *heldTURN {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp4", strings.TrimSuffix(strings.TrimPrefix(srv.URL, "turn:"), "?transport=udp"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldTURN{URL: "turn:" + pc.LocalAddr().String() + "?transport=udp", asked: make(chan struct{}), release: make(chan struct{})}
	var mu sync.Mutex
	upstreams := map[string]*net.UDPConn{}
	t.Cleanup(func() {
		h.Release()
		pc.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, u := range upstreams {
			u.Close()
		}
	})
	var askOnce sync.Once
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			askOnce.Do(func() { close(h.asked) })
			mu.Lock()
			up := upstreams[from.String()]
			if up == nil {
				if up, err = net.DialUDP("udp4", nil, to); err != nil {
					mu.Unlock()
					continue
				}
				upstreams[from.String()] = up
				go func() { // the server's packets, in order, once released
					back := make([]byte, 64<<10)
					for {
						m, err := up.Read(back)
						if err != nil {
							return
						}
						<-h.release
						_, _ = pc.WriteTo(back[:m], from)
					}
				}()
			}
			mu.Unlock()
			_, _ = up.Write(buf[:n])
		}
	}()
	return h
}

// Release lets the server's answers through, the held ones and the later.
func (h *heldTURN) Release() { h.once.Do(func() { close(h.release) }) }

// TestWebPageLiveViewTricklesSlowTURN: the hub gives the page a TURN
// server, relay only, that answers only once the view is under way. The
// page posts its offer without a candidate and without waiting; the relayed
// candidate, then the end of candidates, follow as PATCHes; the box takes
// them (its own relay lets only the peers it knows through), and the view
// connects through the relay.
func TestWebPageLiveViewTricklesSlowTURN(t *testing.T) {
	turnSrv := turntest.Start(t)
	held := startHeldTURN(t, turnSrv)
	h := turnHub(t, held.URL)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := startWebBox(t, h, "room-slow", webBoxConfig{Extra: liveExtra + iceTOML(turnSrv)})
	b := newBrowser(t)
	b.signIn(t, h, coach)
	b.waitJS(t, "the box is listed online",
		`document.querySelector('tr[data-device="room-slow"]')?.dataset.online === 'yes'`, 60*time.Second)
	b.click(t, "click watch live", `tr[data-device="room-slow"] button[data-action=live]`, 30*time.Second)

	// The browser asks the TURN server, whose answers are held ...
	select {
	case <-held.asked:
	case <-time.After(60 * time.Second):
		t.Fatal("the browser did not ask the hub's TURN server")
	}
	// ... yet the page posts its offer: while it is still gathering, with
	// no candidate.
	var p pageTrickle
	waitLong(t, "the page posts its offer", 60*time.Second, func() bool {
		p = eval[pageTrickle](t, b, pageTrickleJS)
		return p.State != "" && p.State != "gathering"
	})
	if p.State != "trickling" || p.Gathering != "gathering" || p.OfferCandidates != 0 || len(p.Sent) != 0 {
		t.Fatalf("with the TURN server held, the page's trickle is %+v, want its offer out while gathering, without candidates", p)
	}
	held.Release()

	waitLiveMedia(t, b)
	p = waitPageTrickled(t, b, box)
	for _, c := range p.Sent {
		if !strings.Contains(c, " typ relay") {
			t.Errorf("the page trickled a candidate that is not relayed: %s", c)
		}
	}
	if turnSrv.Received() == 0 {
		t.Fatal("the TURN server received nothing")
	}
	t.Logf("the page's offer had %d candidates, it trickled %d: %q", p.OfferCandidates, len(p.Sent), p.Sent)
}
