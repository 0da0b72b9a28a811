package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Command types.
const (
	TypeRecordStart = "record.start" // args RecordStartArgs; result RecordStartResult
	TypeRecordStop  = "record.stop"  // args RecordStopArgs; result RecordStopResult
	TypeStateGet    = "state.get"    // no args; result State
	TypeIdentify    = "identify"     // args IdentifyArgs; result IdentifyResult
)

// CommandTypes lists every command type.
var CommandTypes = []string{TypeRecordStart, TypeRecordStop, TypeStateGet, TypeIdentify, TypeLiveOffer, TypeLiveCandidates, TypeLiveStop}

// Visibilities a lesson can be given (who may watch it).
const (
	VisibilityPrivate  = "private"  // the teacher only
	VisibilityCoaching = "coaching" // the teacher and their coaches
	VisibilityLibrary  = "library"  // the district's library of lessons
)

// MaxTTL is the longest relative time-to-live a command may carry.
const MaxTTL = 24 * time.Hour

// IdentifyDefault and IdentifyMax bound identify's blinking.
const (
	IdentifyDefault = 10 * time.Second
	IdentifyMax     = 5 * time.Minute
)

// Errors a decoded command is refused with, beside ErrMalformed.
var (
	ErrVersion     = errors.New("unsupported protocol version")
	ErrUnknownType = errors.New("unknown command type")
	ErrBadArgs     = errors.New("bad arguments")
)

// Command is a request from the hub to one box, published on its cmd topic.
// Every command carries an expiry: expires_at (wall time), ttl_ms (time to
// live from its receipt, for boxes whose clock is not synced yet), or both.
type Command struct {
	V         int             `json:"v"`
	ID        string          `json:"id"` // unique; the box acts on an id at most once
	Type      string          `json:"type"`
	ExpiresAt time.Time       `json:"expires_at,omitzero"`
	TTLMillis int64           `json:"ttl_ms,omitempty"`
	Args      json.RawMessage `json:"args,omitempty"`
}

// TTL is the command's relative time to live (0 when it has none).
func (c Command) TTL() time.Duration { return time.Duration(c.TTLMillis) * time.Millisecond }

// Deadline says when a command received at received expires. With a synced
// wall clock, expires_at counts (the earlier of the two when both are
// given, ttl_ms counted from receipt); without one, only ttl_ms can be
// judged, and ok is false when the command has no ttl_ms. received should
// carry Go's monotonic reading so the ttl is immune to clock steps.
func (c Command) Deadline(received time.Time, clockSynced bool) (deadline time.Time, ok bool) {
	var d time.Time
	if c.TTLMillis > 0 {
		d = received.Add(c.TTL())
	}
	if clockSynced && !c.ExpiresAt.IsZero() {
		if d.IsZero() || c.ExpiresAt.Before(d) {
			d = c.ExpiresAt
		}
	}
	return d, !d.IsZero()
}

// commandJSON is Command as read, so each field's error can be named.
type commandJSON struct {
	V         json.RawMessage `json:"v"`
	ID        json.RawMessage `json:"id"`
	Type      json.RawMessage `json:"type"`
	ExpiresAt json.RawMessage `json:"expires_at"`
	TTLMillis json.RawMessage `json:"ttl_ms"`
	Args      json.RawMessage `json:"args"`
}

func rawString(field string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(field, "is not a string")
	}
	return s, nil
}

func rawInt(field string, raw json.RawMessage) (int64, error) {
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fieldErr(field, "is not an integer")
	}
	return n, nil
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// DecodeCommand reads and checks a command: JSON object, v, id, type,
// expiry. Arguments are checked by Args. On an error the returned Command
// still holds the id when one could be read, so the error can be replied to.
func DecodeCommand(b []byte) (Command, error) {
	var raw commandJSON
	if err := decodeJSON("command", b, &raw, false); err != nil {
		return Command{}, err
	}
	var c Command
	bad := func(err error) (Command, error) {
		return c, fmt.Errorf("command: %w: %w", ErrMalformed, err)
	}
	// The id first, so that every later error can be answered.
	if isNull(raw.ID) {
		return bad(fieldErr("id", "is missing"))
	}
	id, err := rawString("id", raw.ID)
	if err != nil {
		return bad(err)
	}
	if err := validateToken("id", id, MaxIDLen); err != nil {
		return bad(err)
	}
	c.ID = id
	if isNull(raw.V) {
		return bad(fieldErr("v", "is missing (want %d)", Version))
	}
	v, err := rawInt("v", raw.V)
	if err != nil {
		return bad(err)
	}
	if v != Version {
		return c, fmt.Errorf("command: %w: %w", ErrVersion, fieldErr("v", "is %d, this box speaks %d", v, Version))
	}
	c.V = Version
	if isNull(raw.Type) {
		return bad(fieldErr("type", "is missing"))
	}
	if c.Type, err = rawString("type", raw.Type); err != nil {
		return bad(err)
	}
	if err := validateToken("type", c.Type, 64); err != nil {
		return bad(err)
	}
	if !isNull(raw.ExpiresAt) {
		s, err := rawString("expires_at", raw.ExpiresAt)
		if err != nil {
			return bad(err)
		}
		if c.ExpiresAt, err = parseTime("expires_at", s); err != nil {
			return bad(err)
		}
	}
	if !isNull(raw.TTLMillis) {
		if c.TTLMillis, err = rawInt("ttl_ms", raw.TTLMillis); err != nil {
			return bad(err)
		}
		if c.TTLMillis <= 0 || c.TTLMillis > MaxTTL.Milliseconds() {
			return bad(fieldErr("ttl_ms", "%d is outside 1..%d", c.TTLMillis, MaxTTL.Milliseconds()))
		}
	}
	if c.ExpiresAt.IsZero() && c.TTLMillis == 0 {
		return bad(fieldErr("expires_at", "is missing and so is ttl_ms: a command needs an expiry"))
	}
	if !isNull(raw.Args) {
		c.Args = append(json.RawMessage(nil), bytes.TrimSpace(raw.Args)...)
	}
	return c, nil
}

// Validate checks an assembled command the way DecodeCommand checks a
// received one, arguments included (the hub calls it before publishing).
func (c Command) Validate() error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	d, err := DecodeCommand(b)
	if err != nil {
		return err
	}
	_, err = d.DecodedArgs()
	return err
}

// RecordStartArgs are record.start's arguments.
type RecordStartArgs struct {
	// Visibility of the lesson: private, coaching or library; empty for the
	// box's configured default.
	Visibility string `json:"visibility,omitempty"`
	// By names who asked, e.g. "coach:alice"; it is written into the lesson.
	By string `json:"by"`
}

// RecordStopArgs are record.stop's arguments.
type RecordStopArgs struct {
	By string `json:"by,omitempty"`
}

// IdentifyArgs are identify's arguments.
type IdentifyArgs struct {
	// Seconds to blink the LED: 1..300; 0 or absent for 10.
	Seconds int `json:"seconds,omitempty"`
}

// Duration is how long to blink.
func (a IdentifyArgs) Duration() time.Duration {
	if a.Seconds == 0 {
		return IdentifyDefault
	}
	return time.Duration(a.Seconds) * time.Second
}

// StateGetArgs are state.get's (empty) arguments.
type StateGetArgs struct{}

// DecodedArgs checks the command's type and arguments and returns the
// arguments as one of RecordStartArgs, RecordStopArgs, StateGetArgs,
// IdentifyArgs, LiveOfferArgs, LiveCandidatesArgs or LiveStopArgs. Unknown fields in args are refused, so a misspelt argument
// is not silently ignored. Errors wrap ErrUnknownType or ErrBadArgs.
func (c Command) DecodedArgs() (any, error) {
	switch c.Type {
	case TypeRecordStart:
		var a RecordStartArgs
		if err := c.decodeArgs(&a); err != nil {
			return nil, err
		}
		if a.By == "" {
			return nil, c.badArgs(fieldErr("args.by", "is missing (who asked for the recording)"))
		}
		if err := validateText("args.by", a.By, 128); err != nil {
			return nil, c.badArgs(err)
		}
		switch a.Visibility {
		case "", VisibilityPrivate, VisibilityCoaching, VisibilityLibrary:
		default:
			return nil, c.badArgs(fieldErr("args.visibility", "%q is not one of private, coaching, library", a.Visibility))
		}
		return a, nil
	case TypeRecordStop:
		var a RecordStopArgs
		if err := c.decodeArgs(&a); err != nil {
			return nil, err
		}
		if err := validateText("args.by", a.By, 128); err != nil {
			return nil, c.badArgs(err)
		}
		return a, nil
	case TypeStateGet:
		var a StateGetArgs
		if err := c.decodeArgs(&a); err != nil {
			return nil, err
		}
		return a, nil
	case TypeIdentify:
		var a IdentifyArgs
		if err := c.decodeArgs(&a); err != nil {
			return nil, err
		}
		if a.Seconds < 0 || time.Duration(a.Seconds)*time.Second > IdentifyMax {
			return nil, c.badArgs(fieldErr("args.seconds", "%d is outside 1..%d", a.Seconds, int(IdentifyMax/time.Second)))
		}
		return a, nil
	case TypeLiveOffer:
		var a LiveOfferArgs
		if err := c.decodeArgs(&a); err != nil {
			return nil, err
		}
		if err := a.validate(); err != nil {
			return nil, c.badArgs(err)
		}
		return a, nil
	case TypeLiveCandidates:
		var a LiveCandidatesArgs
		if err := c.decodeArgs(&a); err != nil {
			return nil, err
		}
		if err := a.validate(); err != nil {
			return nil, c.badArgs(err)
		}
		return a, nil
	case TypeLiveStop:
		var a LiveStopArgs
		if err := c.decodeArgs(&a); err != nil {
			return nil, err
		}
		if err := validateToken("args.session", a.Session, MaxSessionLen); err != nil {
			return nil, c.badArgs(err)
		}
		if err := validateText("args.by", a.By, 128); err != nil {
			return nil, c.badArgs(err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("command %s: %w %q (known: record.start, record.stop, state.get, identify, live.offer, live.candidates, live.stop)", c.ID, ErrUnknownType, c.Type)
}

func (c Command) badArgs(err error) error {
	return fmt.Errorf("command %s (%s): %w: %w", c.ID, c.Type, ErrBadArgs, err)
}

func (c Command) decodeArgs(v any) error {
	if isNull(c.Args) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.Args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return c.badArgs(fieldErr("args", "is a JSON %s, want an object", te.Value))
			}
			return c.badArgs(fieldErr("args."+te.Field, "is a JSON %s, want %s", te.Value, te.Type))
		}
		return c.badArgs(fieldErr("args", "%v", err))
	}
	if dec.More() {
		return c.badArgs(fieldErr("args", "has data after the JSON object"))
	}
	return nil
}

// NewCommand assembles a command with its arguments (nil for none).
func NewCommand(id, typ string, args any, expiresAt time.Time, ttl time.Duration) (Command, error) {
	c := Command{V: Version, ID: id, Type: typ, ExpiresAt: expiresAt, TTLMillis: ttl.Milliseconds()}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return Command{}, fmt.Errorf("command %s: args: %w", id, err)
		}
		c.Args = b
	}
	if err := c.Validate(); err != nil {
		return Command{}, err
	}
	return c, nil
}
