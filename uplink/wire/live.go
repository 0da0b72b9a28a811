package wire

import (
	"fmt"
	"strings"
	"time"
)

// Live view commands (see docs/protocol.md, "Live view"): the hub relays a
// WHEP viewer's SDP offer as live.offer and the box answers with its SDP
// answer, its own ICE candidates gathered completely; live.candidates
// hands the box the candidates the viewer trickles afterwards (WHEP PATCH);
// live.stop ends a view.
const (
	TypeLiveOffer      = "live.offer"      // args LiveOfferArgs; result LiveOfferResult
	TypeLiveCandidates = "live.candidates" // args LiveCandidatesArgs; result LiveCandidatesResult
	TypeLiveStop       = "live.stop"       // args LiveStopArgs; result LiveStopResult
)

// MaxSDP is the longest SDP a live command or reply carries.
const MaxSDP = 32 << 10

// MaxSessionLen is the longest live session id.
const MaxSessionLen = 64

// LiveOfferArgs are live.offer's arguments.
type LiveOfferArgs struct {
	// Session names the view (the hub's WHEP resource); 1..64 printable
	// ASCII characters without spaces.
	Session string `json:"session"`
	// SDP is the viewer's offer (recvonly H.264 and Opus).
	SDP string `json:"sdp"`
	// Viewer says who watches, e.g. "coach:alice"; it goes into the view log.
	Viewer string `json:"viewer"`
}

// LiveOfferResult is live.offer's result.
type LiveOfferResult struct {
	Session string `json:"session"`
	SDP     string `json:"sdp"` // the box's answer, with every ICE candidate
}

// LiveStopArgs are live.stop's arguments.
type LiveStopArgs struct {
	Session string `json:"session"`
	By      string `json:"by,omitempty"` // who ended it
}

// LiveStopResult is live.stop's result.
type LiveStopResult struct {
	Session string  `json:"session"`
	Seconds float64 `json:"seconds"` // how long the view lasted
}

// Reply codes of the live commands (beside bad_args, busy, failed).
const (
	// CodeLiveOff: the box's live.allow setting refuses live view now
	// ("off", or "recording" while nothing records).
	CodeLiveOff = "live_off"
	// CodeUnknownSession: live.stop or live.candidates names no view on
	// the box.
	CodeUnknownSession = "unknown_session"
)

// Live is the live view part of State.
type Live struct {
	Allow string `json:"allow"` // the box's live.allow: off, recording, always
	// Vetoed is true after the teacher held the button: live views are
	// refused for the rest of the lesson.
	Vetoed  bool         `json:"vetoed,omitempty"`
	Viewers []LiveViewer `json:"viewers"`
}

// LiveViewer is one live view in State.
type LiveViewer struct {
	Session string  `json:"session"`
	Viewer  string  `json:"viewer"`
	State   string  `json:"state"`   // the peer connection's state: new, connecting, connected, ...
	Seconds float64 `json:"seconds"` // since the offer was accepted
	Video   uint64  `json:"video"`   // access units sent
	Audio   uint64  `json:"audio"`   // Opus packets sent
	Dropped uint64  `json:"dropped"` // units and packets this viewer's queue dropped
	// RemoteCandidates counts the ICE candidates the viewer trickled
	// (live.candidates) that the view took.
	RemoteCandidates uint64 `json:"remote_candidates,omitempty"`
}

// Live view events.
const (
	EventLiveStarted = "live.started" // Live set: a view began
	EventLiveStopped = "live.stopped" // Live set: a view ended, with its length and reason
)

// LiveEvent describes a live view that began or ended.
type LiveEvent struct {
	Session string `json:"session"`
	Viewer  string `json:"viewer"`
	Lesson  string `json:"lesson,omitempty"` // the lesson recording meanwhile
	// Started is the wall time the view began, when the clock was synced.
	Started time.Time `json:"started,omitzero"`
	// On live.stopped:
	Seconds float64 `json:"seconds,omitempty"`
	Reason  string  `json:"reason,omitempty"` // e.g. "viewer left", "button hold", "recording stopped"
	Video   uint64  `json:"video,omitempty"`
	Audio   uint64  `json:"audio,omitempty"`
	Dropped uint64  `json:"dropped,omitempty"`
}

func (e *LiveEvent) validate(typ string) error {
	if e == nil {
		return fieldErr("live", "is missing on a %s event", typ)
	}
	if err := validateToken("live.session", e.Session, MaxSessionLen); err != nil {
		return err
	}
	if err := validateText("live.viewer", e.Viewer, 128); err != nil {
		return err
	}
	if e.Seconds < 0 {
		return fieldErr("live.seconds", "is negative")
	}
	return validateText("live.reason", e.Reason, 256)
}

func (s *Live) validate() error {
	switch s.Allow {
	case "off", "recording", "always":
	default:
		return fieldErr("live.allow", "%q is not one of off, recording, always", s.Allow)
	}
	for _, v := range s.Viewers {
		if err := validateToken("live.viewers.session", v.Session, MaxSessionLen); err != nil {
			return err
		}
		if v.Seconds < 0 {
			return fieldErr("live.viewers.seconds", "is negative")
		}
	}
	return nil
}

func (a LiveOfferArgs) validate() error {
	if err := validateToken("args.session", a.Session, MaxSessionLen); err != nil {
		return err
	}
	if a.Viewer == "" {
		return fieldErr("args.viewer", "is missing (who watches)")
	}
	if err := validateText("args.viewer", a.Viewer, 128); err != nil {
		return err
	}
	return ValidateSDP("args.sdp", a.SDP)
}

// ValidateSDP checks that s looks like an SDP session description: "v=0"
// first, at most MaxSDP bytes, lines of printable text.
func ValidateSDP(field, s string) error {
	if s == "" {
		return fieldErr(field, "is missing")
	}
	if len(s) > MaxSDP {
		return fieldErr(field, "is longer than %d bytes", MaxSDP)
	}
	if !strings.HasPrefix(s, "v=0") {
		return fieldErr(field, "does not start with v=0: not an SDP description")
	}
	for _, r := range s {
		if (r < ' ' && r != '\r' && r != '\n' && r != '\t') || r == 0x7f {
			return fieldErr(field, "contains a control character")
		}
	}
	return nil
}

// LiveCandidatesArgs are live.candidates' arguments: ICE candidates of the
// viewer trickled after its offer (WHEP PATCH).
type LiveCandidatesArgs struct {
	Session    string          `json:"session"`
	Candidates []LiveCandidate `json:"candidates,omitempty"`
	End        bool            `json:"end,omitempty"` // the viewer gathered all of its candidates
}

// LiveCandidate is one remote ICE candidate.
type LiveCandidate struct {
	// Candidate is the a=candidate value, "candidate:" included.
	Candidate string `json:"candidate"`
	// Mid and MLineIndex name the media section it belongs to.
	Mid        string `json:"mid,omitempty"`
	MLineIndex int    `json:"mline_index"`
}

// LiveCandidatesResult is live.candidates' result.
type LiveCandidatesResult struct {
	Session string `json:"session"`
	Added   int    `json:"added"` // candidates the view took
}

// Bounds of live.candidates.
const (
	MaxLiveCandidates = 32  // per command
	MaxCandidateLen   = 512 // bytes of one candidate
	MaxMidLen         = 32
	MaxMLineIndex     = 63
)

func (c LiveCandidate) validate(field string) error {
	if !strings.HasPrefix(c.Candidate, "candidate:") || len(c.Candidate) == len("candidate:") {
		return fieldErr(field, "does not start with candidate: or is empty after it")
	}
	if len(c.Candidate) > MaxCandidateLen {
		return fieldErr(field, "is longer than %d bytes", MaxCandidateLen)
	}
	if err := validateText(field, c.Candidate, MaxCandidateLen); err != nil {
		return err
	}
	if c.Mid != "" {
		if err := validateToken(field+".mid", c.Mid, MaxMidLen); err != nil {
			return err
		}
	}
	if c.MLineIndex < 0 || c.MLineIndex > MaxMLineIndex {
		return fieldErr(field+".mline_index", "%d is outside 0..%d", c.MLineIndex, MaxMLineIndex)
	}
	return nil
}

func (a LiveCandidatesArgs) validate() error {
	if err := validateToken("args.session", a.Session, MaxSessionLen); err != nil {
		return err
	}
	if len(a.Candidates) > MaxLiveCandidates {
		return fieldErr("args.candidates", "has %d candidates, more than %d", len(a.Candidates), MaxLiveCandidates)
	}
	if len(a.Candidates) == 0 && !a.End {
		return fieldErr("args.candidates", "is empty and end is not set: nothing to do")
	}
	for i, c := range a.Candidates {
		if err := c.validate(fmt.Sprintf("args.candidates[%d].candidate", i)); err != nil {
			return err
		}
	}
	return nil
}
