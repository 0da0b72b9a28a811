// Package live serves live views of the box to WebRTC viewers (pion/webrtc):
// one PeerConnection per viewer, fed with the very access units and Opus
// packets the recorder writes (no second encoder). Each viewer reads the
// media stream through its own bounded lossy queue, so a slow or stalled
// viewer loses frames (counted) and never slows the recording.
//
// Negotiation is an SDP offer in and an SDP answer out with every ICE
// candidate of the box gathered; a viewer that trickles its own candidates
// after the offer hands them over with AddCandidates. The hub relays both
// over MQTT as a WHEP endpoint. The teacher decides: the box's live.allow setting ("off",
// "recording", "always"), and a hold of the button ends every view and
// refuses new ones for the rest of the lesson. While anyone watches, the LED
// says so.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/classcap/classcap/capture/stream"
)

// Allow settings (the configuration's live.allow).
const (
	AllowOff       = "off"       // never
	AllowRecording = "recording" // while a lesson records
	AllowAlways    = "always"    // whenever the teacher has not vetoed
)

// Errors of Offer, AddCandidates and Stop.
var (
	ErrOff            = errors.New("live view is off on this box")
	ErrNotRecording   = errors.New("live view is allowed only while a lesson records, and none is")
	ErrVetoed         = errors.New("the teacher ended live view for this lesson (button held)")
	ErrTooMany        = errors.New("too many live viewers")
	ErrBadOffer       = errors.New("bad SDP offer")
	ErrUnknownSession = errors.New("no such live view")
	ErrSessionExists  = errors.New("a live view with this session id exists")
	ErrClosed         = errors.New("live view is shutting down")
	ErrBadCandidate   = errors.New("bad ICE candidate")
)

// Config is the live view's settings.
type Config struct {
	Allow string // AllowOff, AllowRecording (default) or AllowAlways
	// Interfaces names the network interfaces whose addresses are offered
	// as ICE candidates; empty offers all.
	Interfaces []string
	// Loopback offers loopback candidates too (a viewer on the box itself:
	// tests, make run). pion leaves them out by default.
	Loopback bool
	// UDPPortMin and UDPPortMax bound the UDP ports of the candidates (0:
	// any port).
	UDPPortMin, UDPPortMax uint16
	// Queue is each viewer's queue in access units (default 60; audio gets
	// three times as many places).
	Queue int
	// MaxViewers bounds the views at once (default 4).
	MaxViewers int
	// ConnectTimeout ends a view whose viewer has not connected by then
	// (default 30 s).
	ConnectTimeout time.Duration
	// GatherTimeout bounds ICE gathering for an answer (default 10 s).
	GatherTimeout time.Duration
	// ICE is the STUN and TURN servers each view gathers candidates
	// through, and whether it may use only relayed ones; SetICE changes it
	// for the views that begin afterwards.
	ICE ICE
}

// ICE is the ICE servers and transport policy of the views.
type ICE struct {
	Servers []webrtc.ICEServer
	// Policy is webrtc.ICETransportPolicyAll (the zero value: any
	// candidate) or webrtc.ICETransportPolicyRelay (only through a TURN
	// server of Servers).
	Policy webrtc.ICETransportPolicy
}

// Source is where viewers read the media (capture/stream).
type Source interface {
	Subscribe(name string, lossless bool, queue int) *stream.Reader
}

// Deps are the live view's collaborators.
type Deps struct {
	Source Source
	// Tap, when set, is the pipeline's tap on Source: the last group of
	// pictures for viewers of a source that cannot be asked for a keyframe.
	Tap *Tap
	// ForceKeyframe asks the encoder for an IDR; false when it cannot.
	ForceKeyframe func() bool
	// Lesson reports the lesson recording now ("" when none).
	Lesson func() string
	// Watched is told when the first viewer connects (true) and when the
	// last one leaves (false): the LED shows it.
	Watched func(bool)
	// Notify is told when a view begins and ends (the view log). It must
	// not block for long.
	Notify func(Event)
	Log    *slog.Logger
}

// Event kinds.
const (
	EventStarted = "started"
	EventStopped = "stopped"
)

// Event is a view that began or ended.
type Event struct {
	Kind    string
	Session string
	Viewer  string
	Lesson  string
	Started time.Time // wall clock, as read by this process
	Seconds float64   // on stopped
	Reason  string    // on stopped
	Video   uint64
	Audio   uint64
	Dropped uint64
}

// Status is the live view as reported in the box's state.
type Status struct {
	Allow   string   `json:"allow"`
	Vetoed  bool     `json:"vetoed,omitempty"`
	Viewers []Viewer `json:"viewers"`
}

// Viewer is one live view in Status.
type Viewer struct {
	Session string  `json:"session"`
	Viewer  string  `json:"viewer"`
	State   string  `json:"state"`
	Seconds float64 `json:"seconds"`
	Video   uint64  `json:"video"`   // access units sent
	Audio   uint64  `json:"audio"`   // Opus packets sent
	Dropped uint64  `json:"dropped"` // lost in this viewer's queue
	// RemoteCandidates counts the ICE candidates the viewer trickled that
	// the view took (AddCandidates).
	RemoteCandidates uint64 `json:"remote_candidates,omitempty"`
}

// Manager runs the live views.
type Manager struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	api  *webrtc.API

	mu      sync.Mutex
	ice     ICE // for the next view
	views   map[string]*view
	vetoed  bool
	vetoFor string // the lesson (or "" when idle) the veto lasts for
	watched bool
	closed  bool

	keyMu   sync.Mutex
	lastKey time.Time // last forced keyframe

	viewAdded chan struct{} // Run looks at the policy only while there are views
}

// New returns a manager; Run enforces the policy while it runs.
func New(cfg Config, deps Deps) (*Manager, error) {
	if cfg.Allow == "" {
		cfg.Allow = AllowRecording
	}
	switch cfg.Allow {
	case AllowOff, AllowRecording, AllowAlways:
	default:
		return nil, fmt.Errorf("live: allow %q is not one of off, recording, always", cfg.Allow)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 60
	}
	if cfg.MaxViewers <= 0 {
		cfg.MaxViewers = 4
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 10 * time.Second
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.ForceKeyframe == nil {
		deps.ForceKeyframe = func() bool { return false }
	}
	if deps.Lesson == nil {
		deps.Lesson = func() string { return "" }
	}
	if deps.Watched == nil {
		deps.Watched = func(bool) {}
	}
	if deps.Notify == nil {
		deps.Notify = func(Event) {}
	}
	api, err := newAPI(cfg)
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, deps: deps, log: deps.Log, api: api, ice: cloneICE(cfg.ICE), views: map[string]*view{},
		viewAdded: make(chan struct{}, 1)}, nil
}

// SetICE changes the ICE servers and transport policy for the views that
// begin from now on; views under way keep theirs.
func (m *Manager) SetICE(ice ICE) {
	m.mu.Lock()
	m.ice = cloneICE(ice)
	m.mu.Unlock()
}

// configuration is the PeerConnection configuration of a new view.
func (m *Manager) configuration() webrtc.Configuration {
	m.mu.Lock()
	defer m.mu.Unlock()
	ice := cloneICE(m.ice)
	return webrtc.Configuration{ICEServers: ice.Servers, ICETransportPolicy: ice.Policy}
}

func cloneICE(ice ICE) ICE {
	out := ICE{Policy: ice.Policy, Servers: make([]webrtc.ICEServer, 0, len(ice.Servers))}
	for _, s := range ice.Servers {
		s.URLs = slices.Clone(s.URLs)
		out.Servers = append(out.Servers, s)
	}
	return out
}

// newAPI builds the pion API: H.264 and Opus, NACK answers and RTCP
// sender reports, and the ICE candidates the configuration allows.
func newAPI(cfg Config) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("live: codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, fmt.Errorf("live: nack: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("live: rtcp reports: %w", err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	// IPv4 and IPv6 over UDP: no TCP candidates to gather or check.
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(cfg.Interfaces) > 0 {
		names, loopback := slices.Clone(cfg.Interfaces), cfg.Loopback
		se.SetInterfaceFilter(func(name string) bool {
			if slices.Contains(names, name) {
				return true
			}
			// Loopback, when asked for, need not be named too.
			ifi, err := net.InterfaceByName(name)
			return loopback && err == nil && ifi.Flags&net.FlagLoopback != 0
		})
	}
	if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, fmt.Errorf("live: udp ports: %w", err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se)), nil
}

// Allow returns the configured allow setting.
func (m *Manager) Allow() string { return m.cfg.Allow }

// allowed says whether a new view may begin now (m.mu held).
func (m *Manager) allowed() error {
	if m.closed {
		return ErrClosed
	}
	lesson := m.deps.Lesson()
	if m.vetoed && lesson != m.vetoFor {
		m.vetoed = false // the lesson the teacher vetoed is over
	}
	switch {
	case m.cfg.Allow == AllowOff:
		return ErrOff
	case m.vetoed:
		return ErrVetoed
	case m.cfg.Allow == AllowRecording && lesson == "":
		return ErrNotRecording
	}
	return nil
}

// OfferRequest is a viewer's offer.
type OfferRequest struct {
	Session string // unique per view
	Viewer  string // who watches
	SDP     string
}

// Offer starts a view: it answers the viewer's SDP offer with an answer that
// carries every ICE candidate. The view ends when the viewer leaves, on Stop,
// on a hold, or when the policy no longer allows it.
func (m *Manager) Offer(ctx context.Context, req OfferRequest) (string, error) {
	if !strings.Contains(strings.ToUpper(req.SDP), "H264/90000") {
		return "", fmt.Errorf("%w: it offers no H.264 video", ErrBadOffer)
	}
	m.mu.Lock()
	err := m.allowed()
	if err == nil && len(m.views) >= m.cfg.MaxViewers {
		err = fmt.Errorf("%w: %d watch already", ErrTooMany, len(m.views))
	}
	if err == nil && m.views[req.Session] != nil {
		err = ErrSessionExists
	}
	if err != nil {
		m.mu.Unlock()
		return "", err
	}
	// Hold the place while negotiating.
	v := newView(m, req)
	m.views[req.Session] = v
	m.mu.Unlock()
	select {
	case m.viewAdded <- struct{}{}:
	default: // Run has one waiting already
	}

	answer, err := v.negotiate(ctx)
	if err != nil {
		m.remove(v)
		v.close()
		return "", err
	}
	m.mu.Lock()
	// A hold or a policy change while negotiating ends it at once.
	if perr := m.allowed(); perr != nil || m.views[req.Session] != v {
		m.mu.Unlock()
		m.remove(v)
		v.close()
		if perr == nil {
			perr = ErrVetoed
		}
		return "", perr
	}
	m.mu.Unlock()
	v.begin()
	m.log.Info("live view started", "session", req.Session, "viewer", req.Viewer)
	m.deps.Notify(Event{Kind: EventStarted, Session: req.Session, Viewer: req.Viewer,
		Lesson: v.lesson, Started: v.started})
	return answer, nil
}

// Stop ends a view and returns how long it lasted.
func (m *Manager) Stop(session, reason string) (time.Duration, error) {
	m.mu.Lock()
	v := m.views[session]
	m.mu.Unlock()
	if v == nil {
		return 0, fmt.Errorf("%w: %q", ErrUnknownSession, session)
	}
	return v.end(reason), nil
}

// Candidate is a remote ICE candidate the viewer trickled: the a=candidate
// value ("candidate:" included) and the media section it belongs to.
type Candidate struct {
	Candidate  string
	Mid        string
	MLineIndex uint16
}

// AddCandidates hands a view the ICE candidates its viewer trickled after
// the offer; end says the viewer gathered all of them. It returns how many
// it handed to the connection (pion itself passes over a candidate of an
// unknown type); a malformed one is ErrBadCandidate. A view still
// negotiating its answer, or ended, is ErrUnknownSession.
func (m *Manager) AddCandidates(session string, cs []Candidate, end bool) (int, error) {
	m.mu.Lock()
	v := m.views[session]
	m.mu.Unlock()
	if v == nil {
		return 0, fmt.Errorf("%w: %q", ErrUnknownSession, session)
	}
	return v.addCandidates(cs, end)
}

// Hold ends every view and refuses new ones for the rest of the lesson (or,
// while nothing records, until a lesson starts).
func (m *Manager) Hold() {
	m.mu.Lock()
	m.vetoed, m.vetoFor = true, m.deps.Lesson()
	views := m.list()
	m.mu.Unlock()
	m.log.Info("button held: live view ended and refused for this lesson", "views", len(views))
	for _, v := range views {
		v.end("button hold")
	}
}

// list returns the views (m.mu held).
func (m *Manager) list() []*view {
	out := make([]*view, 0, len(m.views))
	for _, v := range m.views {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *view) int { return a.started.Compare(b.started) })
	return out
}

// remove forgets a view and updates the LED.
func (m *Manager) remove(v *view) {
	m.mu.Lock()
	if m.views[v.req.Session] == v {
		delete(m.views, v.req.Session)
	}
	m.mu.Unlock()
	m.updateWatched()
}

// updateWatched tells the LED whether anyone watches (a connected view).
func (m *Manager) updateWatched() {
	m.mu.Lock()
	w := false
	for _, v := range m.views {
		if v.isConnected() {
			w = true
			break
		}
	}
	changed := w != m.watched
	m.watched = w
	m.mu.Unlock()
	if changed {
		m.deps.Watched(w)
	}
}

// Status reports the views.
func (m *Manager) Status() Status {
	m.mu.Lock()
	s := Status{Allow: m.cfg.Allow, Viewers: []Viewer{}}
	if m.vetoed && m.deps.Lesson() == m.vetoFor {
		s.Vetoed = true
	}
	views := m.list()
	m.mu.Unlock()
	for _, v := range views {
		s.Viewers = append(s.Viewers, v.status())
	}
	return s
}

// keyframe asks the encoder for an IDR, at most every 500 ms (viewers
// joining together, or asking by PLI, share one).
func (m *Manager) keyframe() bool {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	if time.Since(m.lastKey) < 500*time.Millisecond {
		return true
	}
	m.lastKey = time.Now()
	return m.deps.ForceKeyframe()
}

// Run ends views the policy no longer allows (the lesson stopped under
// "recording", a new lesson after a veto is fine) until ctx ends, then ends
// every view.
func (m *Manager) Run(ctx context.Context) error {
	// The ticker runs only while somebody watches: an idle box has no
	// timer waking it four times a second for nothing.
	const every = 250 * time.Millisecond
	t := time.NewTicker(every)
	t.Stop()
	defer t.Stop()
	ticking := false
	for {
		m.mu.Lock()
		watched := len(m.views) > 0
		m.mu.Unlock()
		if watched != ticking {
			if ticking = watched; ticking {
				t.Reset(every)
			} else {
				t.Stop()
			}
		}
		select {
		case <-m.viewAdded:
			continue
		case <-ctx.Done():
			m.mu.Lock()
			m.closed = true
			views := m.list()
			m.mu.Unlock()
			for _, v := range views {
				v.end("box shutting down")
			}
			return nil
		case <-t.C:
		}
		m.mu.Lock()
		var reason string
		if m.cfg.Allow == AllowRecording && m.deps.Lesson() == "" {
			reason = "recording stopped"
		}
		var ending []*view
		if reason != "" {
			ending = m.list()
		}
		m.mu.Unlock()
		for _, v := range ending {
			if v.begun() {
				v.end(reason)
			}
		}
	}
}
