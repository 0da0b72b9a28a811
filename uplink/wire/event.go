package wire

import "time"

// Event types.
const (
	EventLessonStarted = "lesson.started" // Lesson set
	EventLessonStopped = "lesson.stopped" // Lesson set, with stop details
	EventSegmentClosed = "segment.closed" // Segment set
	EventAlarm         = "alarm"          // Alarm set: raised or cleared
)

// EventTypes lists every event type.
var EventTypes = []string{EventLessonStarted, EventLessonStopped, EventSegmentClosed, EventAlarm,
	EventLiveStarted, EventLiveStopped}

// Event is something that happened on the box, published on its event
// topic. The box keeps each event until the broker acknowledged it and
// sends them in Seq order; QoS 1 may deliver one twice, so the hub drops an
// ID it has seen.
type Event struct {
	V    int    `json:"v"`
	ID   string `json:"id"`  // unique per device
	Seq  uint64 `json:"seq"` // 1, 2, 3, ... per device, never reused
	Type string `json:"type"`
	// At is the wall time it happened, absent while the clock was not synced.
	At time.Time `json:"at,omitzero"`
	// BootID and BootS say when it happened on the boot clock (always set).
	BootID string  `json:"boot_id,omitempty"`
	BootS  float64 `json:"boot_s"`

	Lesson  *LessonEvent  `json:"lesson,omitempty"`
	Segment *SegmentEvent `json:"segment,omitempty"`
	Alarm   *AlarmEvent   `json:"alarm,omitempty"`
	Live    *LiveEvent    `json:"live,omitempty"`
}

// LessonEvent describes a lesson that started or stopped.
type LessonEvent struct {
	ID         string `json:"id"`
	Visibility string `json:"visibility,omitempty"`
	StartedBy  string `json:"started_by,omitempty"`
	// On lesson.stopped:
	StoppedBy string  `json:"stopped_by,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	Segments  int     `json:"segments,omitempty"`
	Seconds   float64 `json:"seconds,omitempty"`
	Bytes     int64   `json:"bytes,omitempty"`
}

// SegmentEvent describes a closed media segment.
type SegmentEvent struct {
	Lesson  string  `json:"lesson"`
	Name    string  `json:"name"` // seg_000001.m4s
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
	SHA256  string  `json:"sha256"` // hex
}

// AlarmEvent raises or clears an alarm.
type AlarmEvent struct {
	Name    string `json:"name"` // disk_low, camera_lost, mic_dead, clock_unsynced, ...
	Active  bool   `json:"active"`
	Message string `json:"message,omitempty"`
}

// DecodeEvent reads and checks an event.
func DecodeEvent(b []byte) (Event, error) {
	return decodeChecked("event", b, false, Event.Validate)
}

// Validate checks an event.
func (e Event) Validate() error {
	if err := checkVersion(e.V); err != nil {
		return err
	}
	if err := validateToken("id", e.ID, MaxIDLen); err != nil {
		return err
	}
	if e.Seq == 0 {
		return fieldErr("seq", "is missing (sequence numbers start at 1)")
	}
	if e.BootS < 0 {
		return fieldErr("boot_s", "is negative")
	}
	switch e.Type {
	case EventLessonStarted, EventLessonStopped:
		if e.Lesson == nil {
			return fieldErr("lesson", "is missing on a %s event", e.Type)
		}
		if err := validateToken("lesson.id", e.Lesson.ID, 128); err != nil {
			return err
		}
		if e.Lesson.Segments < 0 || e.Lesson.Seconds < 0 || e.Lesson.Bytes < 0 {
			return fieldErr("lesson", "has a negative count")
		}
	case EventSegmentClosed:
		s := e.Segment
		if s == nil {
			return fieldErr("segment", "is missing on a segment.closed event")
		}
		if err := validateToken("segment.lesson", s.Lesson, 128); err != nil {
			return err
		}
		if err := validateToken("segment.name", s.Name, 128); err != nil {
			return err
		}
		if s.Seconds < 0 || s.Bytes < 0 {
			return fieldErr("segment", "has a negative count")
		}
		if !isHex(s.SHA256, 64) {
			return fieldErr("segment.sha256", "%q is not 64 hex digits", s.SHA256)
		}
	case EventAlarm:
		if e.Alarm == nil {
			return fieldErr("alarm", "is missing on an alarm event")
		}
		if err := validateToken("alarm.name", e.Alarm.Name, 64); err != nil {
			return err
		}
		if err := validateText("alarm.message", e.Alarm.Message, 1024); err != nil {
			return err
		}
	case EventLiveStarted, EventLiveStopped:
		if err := e.Live.validate(e.Type); err != nil {
			return err
		}
	case "":
		return fieldErr("type", "is missing")
	default:
		return fieldErr("type", "%q is not one of lesson.started, lesson.stopped, segment.closed, alarm, live.started, live.stopped", e.Type)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
