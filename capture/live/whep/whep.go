// Package whep is a WebRTC viewer in Go (pion/webrtc) that receives a live
// view over WHEP: it offers to receive H.264 and Opus, posts the offer (ICE
// gathered completely, or none yet when it trickles its candidates after
// it), applies the answer and counts what arrives. The
// tests and benchmarks of live view use it; a browser does the same.
package whep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Signal sends an SDP offer and returns the answer.
type Signal func(ctx context.Context, offer string) (answer string, err error)

// Trickle sends a trickle ICE fragment (RFC 8840) for the session Signal
// opened: a WHEP PATCH.
type Trickle func(ctx context.Context, fragment string) error

// Options tune a viewer.
type Options struct {
	// Trickle, when set, posts the offer before gathering ICE candidates
	// (none in the offer) and sends each candidate gathered afterwards,
	// then the end of candidates, through it.
	Trickle Trickle
	// Stalled viewers post their offer and never connect: from the box's
	// side, a viewer that never takes a byte.
	Stalled bool
	// Loopback offers loopback candidates (a box on the same machine).
	Loopback bool
	// ICEServers are STUN and TURN servers to gather candidates through;
	// ICETransportPolicy relay uses only the TURN servers' relayed ones.
	ICEServers         []webrtc.ICEServer
	ICETransportPolicy webrtc.ICETransportPolicy
}

// Viewer is one receiving PeerConnection.
type Viewer struct {
	pc *webrtc.PeerConnection

	videoPackets atomic.Uint64
	videoFrames  atomic.Uint64 // RTP packets with the marker bit: one per access unit
	keyframes    atomic.Uint64 // access units that begin with SPS or an IDR
	audioPackets atomic.Uint64
	videoBytes   atomic.Uint64

	connected chan struct{}
	connOnce  sync.Once
	firstIDR  chan struct{}
	idrOnce   sync.Once
	wg        sync.WaitGroup

	trickleMu   sync.Mutex
	pending     []*webrtc.ICECandidate // gathered, not sent yet; nil: gathering completed
	wake        chan struct{}
	trickled    atomic.Uint64
	trickleErr  error // the first failed send
	trickleDone chan struct{}
	closing     context.Context // done once Close is called
	close       context.CancelFunc
}

// Dial negotiates a view through signal.
func Dial(ctx context.Context, signal Signal, o Options) (*Viewer, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("whep: codecs: %w", err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(o.Loopback)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: o.ICEServers, ICETransportPolicy: o.ICETransportPolicy})
	if err != nil {
		return nil, fmt.Errorf("whep: new peer connection: %w", err)
	}
	v := &Viewer{pc: pc, connected: make(chan struct{}), firstIDR: make(chan struct{}),
		wake: make(chan struct{}, 1), trickleDone: make(chan struct{})}
	v.closing, v.close = context.WithCancel(context.Background())
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			pc.Close()
			return nil, fmt.Errorf("whep: %s transceiver: %w", k, err)
		}
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			v.connOnce.Do(func() { close(v.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			v.read(tr)
		}()
	})
	if o.Trickle != nil {
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			v.trickleMu.Lock()
			v.pending = append(v.pending, c)
			v.trickleMu.Unlock()
			select {
			case v.wake <- struct{}{}:
			default:
			}
		})
	} else {
		close(v.trickleDone)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("whep: create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		pc.Close()
		return nil, fmt.Errorf("whep: set offer: %w", err)
	}
	sdp := offer.SDP // no candidates: gathering has just begun
	if o.Trickle == nil {
		select {
		case <-gathered:
		case <-ctx.Done():
			pc.Close()
			return nil, ctx.Err()
		}
		sdp = pc.LocalDescription().SDP
	}
	answer, err := signal(ctx, sdp)
	if err != nil {
		pc.Close()
		return nil, err
	}
	if o.Stalled {
		return v, nil
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		pc.Close()
		return nil, fmt.Errorf("whep: set answer: %w", err)
	}
	if o.Trickle != nil {
		v.wg.Add(1)
		go v.trickle(o.Trickle, sdp)
	}
	return v, nil
}

// trickle sends the candidates gathered, one fragment each, then the end
// of candidates, until the first error or the connection closes.
func (v *Viewer) trickle(send Trickle, offer string) {
	defer close(v.trickleDone)
	defer v.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	context.AfterFunc(v.closing, cancel)
	head, sections := fragmentParts(offer)
	for {
		v.trickleMu.Lock()
		batch := v.pending
		v.pending = nil
		v.trickleMu.Unlock()
		for _, c := range batch {
			var frag string
			if c == nil {
				frag = head + strings.Join(sections, "") + "a=end-of-candidates\r\n"
			} else {
				frag = head + candidateSection(sections, c.ToJSON())
			}
			if err := send(ctx, frag); err != nil {
				v.trickleMu.Lock()
				v.trickleErr = err
				v.trickleMu.Unlock()
				return
			}
			if c == nil {
				return
			}
			v.trickled.Add(1)
		}
		select {
		case <-v.wake:
		case <-ctx.Done():
			return
		}
	}
}

// fragmentParts reads the offer's ICE credentials and its media sections
// (m= and a=mid lines) for the fragments.
func fragmentParts(offer string) (head string, sections []string) {
	var ufrag, pwd string
	for _, line := range strings.Split(offer, "\n") {
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:") && ufrag == "":
			ufrag = line
		case strings.HasPrefix(line, "a=ice-pwd:") && pwd == "":
			pwd = line
		case strings.HasPrefix(line, "m="):
			sections = append(sections, line+"\r\n")
		case strings.HasPrefix(line, "a=mid:") && len(sections) > 0:
			sections[len(sections)-1] += line + "\r\n"
		}
	}
	return ufrag + "\r\n" + pwd + "\r\n", sections
}

// candidateSection writes the media sections up to the candidate's, with
// the candidate in its own.
func candidateSection(sections []string, c webrtc.ICECandidateInit) string {
	i := 0
	if c.SDPMLineIndex != nil && int(*c.SDPMLineIndex) < len(sections) {
		i = int(*c.SDPMLineIndex)
	}
	if len(sections) == 0 {
		sections = []string{"m=video 9 UDP/TLS/RTP/SAVPF 0\r\n"}
	}
	return strings.Join(sections[:i+1], "") + "a=" + c.Candidate + "\r\n"
}

// Trickled counts the candidates sent; TrickleDone is closed once the end
// of candidates went out or a send failed (TrickleErr says which). Without
// Options.Trickle it is closed at once.
func (v *Viewer) Trickled() uint64 { return v.trickled.Load() }

// TrickleDone is closed when trickling ended.
func (v *Viewer) TrickleDone() <-chan struct{} { return v.trickleDone }

// TrickleErr is the first failed send of a candidate, if any.
func (v *Viewer) TrickleErr() error {
	v.trickleMu.Lock()
	defer v.trickleMu.Unlock()
	return v.trickleErr
}

// read counts a track's packets until it ends.
func (v *Viewer) read(tr *webrtc.TrackRemote) {
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	startOfUnit := true
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if !video {
			v.audioPackets.Add(1)
			continue
		}
		v.videoPackets.Add(1)
		v.videoBytes.Add(uint64(len(p.Payload)))
		if startOfUnit && len(p.Payload) > 0 && isKeyStart(p.Payload) {
			v.keyframes.Add(1)
			v.idrOnce.Do(func() { close(v.firstIDR) })
		}
		startOfUnit = p.Marker
		if p.Marker {
			v.videoFrames.Add(1)
		}
	}
}

// isKeyStart reports whether an H.264 RTP payload (RFC 6184) begins a
// keyframe: SPS, IDR, a STAP-A holding one, or the first fragment of an IDR.
func isKeyStart(b []byte) bool {
	switch t := b[0] & 0x1f; t {
	case 5, 7:
		return true
	case 24: // STAP-A: size(2) + NAL
		return len(b) > 3 && (b[3]&0x1f == 7 || b[3]&0x1f == 5)
	case 28: // FU-A
		return len(b) > 1 && b[1]&0x80 != 0 && b[1]&0x1f == 5
	}
	return false
}

// Counts is what a viewer received.
type Counts struct {
	VideoFrames, VideoPackets, Keyframes, AudioPackets, VideoBytes uint64
}

// Counts returns what arrived so far.
func (v *Viewer) Counts() Counts {
	return Counts{VideoFrames: v.videoFrames.Load(), VideoPackets: v.videoPackets.Load(), Keyframes: v.keyframes.Load(),
		AudioPackets: v.audioPackets.Load(), VideoBytes: v.videoBytes.Load()}
}

// Connected is closed once the connection is up.
func (v *Viewer) Connected() <-chan struct{} { return v.connected }

// FirstKeyframe is closed when the first keyframe begins to arrive.
func (v *Viewer) FirstKeyframe() <-chan struct{} { return v.firstIDR }

// SelectedPair is the ICE candidate pair the connection sends and
// receives on (its local candidate's type is relay when a TURN server
// carries the media); nil before one is selected.
func (v *Viewer) SelectedPair() (*webrtc.ICECandidatePair, error) {
	p, err := v.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil {
		return nil, fmt.Errorf("whep: selected candidate pair: %w", err)
	}
	return p, nil
}

// State is the connection's state.
func (v *Viewer) State() webrtc.PeerConnectionState { return v.pc.ConnectionState() }

// Close ends the connection.
func (v *Viewer) Close() error {
	v.close()
	err := v.pc.Close()
	v.wg.Wait()
	return err
}

// Client posts offers to a WHEP endpoint.
type Client struct {
	Endpoint string // e.g. http://hub:8080/live/room-101/whep
	Token    string // bearer token
	HTTP     *http.Client

	mu       sync.Mutex
	location string
	links    []string
}

// Error is a refusal by the endpoint.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("whep: %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// Signal posts the offer and returns the answer; the session's URL is kept
// for Delete.
func (c *Client) Signal(ctx context.Context, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, strings.NewReader(offer))
	if err != nil {
		return "", fmt.Errorf("whep: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("whep: post offer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("whep: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", &Error{Status: resp.StatusCode, Body: string(body)}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		return "", fmt.Errorf("whep: answer has Content-Type %q, want application/sdp", ct)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("whep: the answer has no Location")
	}
	base, err := url.Parse(c.Endpoint)
	if err != nil {
		return "", fmt.Errorf("whep: %w", err)
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("whep: Location %q: %w", loc, err)
	}
	c.mu.Lock()
	c.location = u.String()
	c.links = resp.Header.Values("Link")
	c.mu.Unlock()
	return string(body), nil
}

// Trickle sends a trickle ICE fragment to the session (PATCH on its
// Location); anything but 204 No Content is an *Error.
func (c *Client) Trickle(ctx context.Context, fragment string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, c.Location(), strings.NewReader(fragment))
	if err != nil {
		return fmt.Errorf("whep: %w", err)
	}
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return fmt.Errorf("whep: patch: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusNoContent {
		return &Error{Status: resp.StatusCode, Body: string(body)}
	}
	return nil
}

// Location is the session's URL (after Signal).
func (c *Client) Location() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.location
}

// Links are the Link headers of the answer (after Signal): the endpoint's
// STUN and TURN servers, rel="ice-server".
func (c *Client) Links() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.links)
}

// Delete ends the session (DELETE on its Location) and returns the status.
func (c *Client) Delete(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.Location(), nil)
	if err != nil {
		return 0, fmt.Errorf("whep: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, fmt.Errorf("whep: delete: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 60 * time.Second}
}
