package wire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Reply codes: why a command failed. A reply with ok true has no code.
const (
	CodeMalformed     = "malformed"           // not JSON, or a field of the command is wrong
	CodeVersion       = "unsupported_version" // v is not a version the box speaks
	CodeUnknownType   = "unknown_type"        // type is not a command the box knows
	CodeBadArgs       = "bad_args"            // an argument is missing or wrong
	CodeExpired       = "expired"             // the command arrived or was due after its expiry
	CodeClockUnsynced = "clock_unsynced"      // only expires_at given and the box's clock is not synced
	CodeDeclined      = "declined"            // the teacher declined a remote start (held the button)
	CodeBusy          = "busy"                // already recording, or another remote start is waiting
	CodeNotRecording  = "not_recording"       // record.stop while nothing records
	CodeDiskLow       = "disk_low"            // not enough free space to start
	CodeNoVideo       = "no_video"            // the camera gave no picture
	CodeFailed        = "failed"              // anything else; error says what
)

// Codes lists every reply code.
var Codes = []string{CodeMalformed, CodeVersion, CodeUnknownType, CodeBadArgs, CodeExpired,
	CodeClockUnsynced, CodeDeclined, CodeBusy, CodeNotRecording, CodeDiskLow, CodeNoVideo, CodeFailed,
	CodeLiveOff, CodeUnknownSession}

func validCode(c string) bool {
	for _, v := range Codes {
		if c == v {
			return true
		}
	}
	return false
}

// DecodeErrorCode maps an error from DecodeCommand or Command.DecodedArgs to
// its reply code.
func DecodeErrorCode(err error) string {
	switch {
	case errors.Is(err, ErrVersion):
		return CodeVersion
	case errors.Is(err, ErrUnknownType):
		return CodeUnknownType
	case errors.Is(err, ErrBadArgs):
		return CodeBadArgs
	case errors.Is(err, ErrMalformed):
		return CodeMalformed
	}
	return CodeFailed
}

// Reply is the box's answer to a command, published on its reply topic.
type Reply struct {
	V  int    `json:"v"`
	ID string `json:"id"` // the command's id; empty only when none could be read
	OK bool   `json:"ok"`
	// Error is a sentence for people, Code one of the Code constants for
	// programs; both are set exactly when OK is false.
	Error  string          `json:"error,omitempty"`
	Code   string          `json:"code,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// RecordStartResult is record.start's result.
type RecordStartResult struct {
	Lesson string `json:"lesson"`
	// VetoWaitedMS is how long the box showed the request to the teacher
	// before recording (0 when the teacher tapped to accept at once).
	VetoWaitedMS int64 `json:"veto_waited_ms"`
	// FirstFrameLatencyMS is from the start of recording to its first picture.
	FirstFrameLatencyMS float64 `json:"first_frame_latency_ms"`
}

// RecordStopResult is record.stop's result.
type RecordStopResult struct {
	Lesson   string  `json:"lesson"`
	Segments int     `json:"segments"`
	Seconds  float64 `json:"seconds"` // media recorded
}

// IdentifyResult is identify's result.
type IdentifyResult struct {
	Seconds int `json:"seconds"` // how long the LED blinks
}

// OKReply is a successful reply carrying result (nil for none).
func OKReply(id string, result any) (Reply, error) {
	r := Reply{V: Version, ID: id, OK: true}
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			return Reply{}, fmt.Errorf("reply %s: result: %w", id, err)
		}
		r.Result = b
	}
	return r, nil
}

// ErrorReply is a failed reply.
func ErrorReply(id, code, msg string) Reply {
	return Reply{V: Version, ID: id, OK: false, Code: code, Error: msg}
}

// DecodeReply reads and checks a reply.
func DecodeReply(b []byte) (Reply, error) {
	return decodeChecked("reply", b, false, Reply.validate)
}

func (r Reply) validate() error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	if r.ID != "" || r.OK || r.Code != CodeMalformed && r.Code != CodeVersion {
		if err := validateToken("id", r.ID, MaxIDLen); err != nil {
			return err
		}
	}
	if r.OK {
		if r.Error != "" || r.Code != "" {
			return fieldErr("error", "is set on a reply with ok true")
		}
		return nil
	}
	if r.Error == "" {
		return fieldErr("error", "is missing on a reply with ok false")
	}
	if !validCode(r.Code) {
		if r.Code == "" {
			return fieldErr("code", "is missing on a reply with ok false")
		}
		return fieldErr("code", "%q is not a known code", r.Code)
	}
	if len(r.Result) > 0 && string(r.Result) != "null" {
		return fieldErr("result", "is set on a reply with ok false")
	}
	return validateText("error", r.Error, 1024)
}

// DecodeResult unmarshals a reply's result into v.
func (r Reply) DecodeResult(v any) error {
	if len(r.Result) == 0 {
		return fmt.Errorf("reply %s: no result", r.ID)
	}
	if err := json.Unmarshal(r.Result, v); err != nil {
		return fmt.Errorf("reply %s: result: %w", r.ID, err)
	}
	return nil
}
