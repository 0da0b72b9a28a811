package wire

import (
	"fmt"
	"time"
)

// Recorder states, as the recorder reports them.
const (
	RecorderIdle      = "idle"
	RecorderRecording = "recording"
	RecorderStopping  = "stopping"
	RecorderError     = "error"
)

// State is the box's retained state, published on its state topic when it
// changes and at least every 30 s. The broker publishes LastWill in its
// place when the box vanishes. Sections are pointers so that the last will
// ({"v":1,"online":false}) is a State too; an online state has them all.
type State struct {
	V          int         `json:"v"`
	Online     bool        `json:"online"`
	Recorder   *Recorder   `json:"recorder,omitempty"`
	Disk       *Disk       `json:"disk,omitempty"`
	Camera     *Camera     `json:"camera,omitempty"`
	Microphone *Microphone `json:"microphone,omitempty"`
	Upload     *Upload     `json:"upload,omitempty"`
	Clock      *Clock      `json:"clock,omitempty"`
	// Config reports the hub's configuration: applied, pending or refused.
	Config *ConfigStatus `json:"config,omitempty"`
	// Live lists the live views; absent on a box without live view.
	Live *Live `json:"live,omitempty"`
	// TemperatureC is the SoC temperature; absent where the box cannot read it.
	TemperatureC *float64 `json:"temperature_c,omitempty"`
	Version      string   `json:"version,omitempty"`
	UptimeS      float64  `json:"uptime_s"`
	// At is the wall time of the report, absent while the clock is not synced.
	At time.Time `json:"at,omitzero"`
}

// Recorder is the recording state machine's part of State.
type Recorder struct {
	State      string  `json:"state"` // idle, recording, stopping, error
	Reason     string  `json:"reason,omitempty"`
	Lesson     string  `json:"lesson,omitempty"`
	StartedBy  string  `json:"started_by,omitempty"`
	Visibility string  `json:"visibility,omitempty"`
	RecordedS  float64 `json:"recorded_s"` // media in closed segments of the current lesson
	Segments   int     `json:"segments"`
	LastLesson string  `json:"last_lesson,omitempty"`
	// RemoteStart is a remote start shown to the teacher and not yet begun.
	RemoteStart *RemoteStart `json:"remote_start,omitempty"`
}

// RemoteStart is a record.start waiting out the teacher's veto window.
type RemoteStart struct {
	ID         string  `json:"id"` // the command's id
	By         string  `json:"by"`
	Visibility string  `json:"visibility,omitempty"`
	VetoLeftS  float64 `json:"veto_left_s"` // seconds until it begins
}

// Disk is the space where lessons are written.
type Disk struct {
	FreeMB  uint64 `json:"free_mb"`
	TotalMB uint64 `json:"total_mb"`
}

// Camera is the camera's health.
type Camera struct {
	OK      bool   `json:"ok"`
	Encoder string `json:"encoder,omitempty"`
	Frames  uint64 `json:"frames"`
	Fault   string `json:"fault,omitempty"`
}

// Microphone is the microphone array's health and levels.
type Microphone struct {
	OK      bool    `json:"ok"`
	Packets uint64  `json:"packets"`
	Levels  []Level `json:"levels"`          // one per channel, over the last 100 ms
	Dead    []int   `json:"dead,omitempty"`  // channels silent while others carry sound
	Fault   string  `json:"fault,omitempty"` // why it is not ok
}

// Level is one microphone channel's level, in dBFS (0 is full scale).
type Level struct {
	PeakDBFS float64 `json:"peak_dbfs"`
	RMSDBFS  float64 `json:"rms_dbfs"`
}

// Upload is what waits to go to the hub.
type Upload struct {
	BacklogSegments int   `json:"backlog_segments"`
	BacklogBytes    int64 `json:"backlog_bytes"`
	// OutboxEvents counts events not yet acknowledged by the broker.
	OutboxEvents int `json:"outbox_events"`
	// DamagedSegments counts segments found damaged on the box's storage
	// (their bytes changed after they were written: failing storage);
	// they are sent as they are and marked in lesson.json. Problem
	// describes the latest.
	DamagedSegments int    `json:"damaged_segments,omitempty"`
	Problem         string `json:"problem,omitempty"`
}

// Clock is the wall clock's state.
type Clock struct {
	Synced bool   `json:"synced"`
	Source string `json:"source,omitempty"`
}

// LastWill is the payload the broker publishes, retained, on the state
// topic when the box goes away without saying so.
func LastWill() []byte { return []byte(`{"v":1,"online":false}`) }

// DecodeState reads and checks a state (the last will included).
func DecodeState(b []byte) (State, error) {
	return decodeChecked("state", b, false, State.Validate)
}

// Validate checks a state.
func (s State) Validate() error {
	if err := checkVersion(s.V); err != nil {
		return err
	}
	if !s.Online {
		return nil // the last will, or a box saying goodbye; sections optional
	}
	switch {
	case s.Recorder == nil:
		return fieldErr("recorder", "is missing on an online state")
	case s.Disk == nil:
		return fieldErr("disk", "is missing on an online state")
	case s.Camera == nil:
		return fieldErr("camera", "is missing on an online state")
	case s.Microphone == nil:
		return fieldErr("microphone", "is missing on an online state")
	case s.Upload == nil:
		return fieldErr("upload", "is missing on an online state")
	case s.Clock == nil:
		return fieldErr("clock", "is missing on an online state")
	}
	r := s.Recorder
	switch r.State {
	case RecorderIdle, RecorderRecording, RecorderStopping, RecorderError:
	case "":
		return fieldErr("recorder.state", "is missing")
	default:
		return fieldErr("recorder.state", "%q is not one of idle, recording, stopping, error", r.State)
	}
	if r.RecordedS < 0 {
		return fieldErr("recorder.recorded_s", "is negative")
	}
	if r.Segments < 0 {
		return fieldErr("recorder.segments", "is negative")
	}
	if rs := r.RemoteStart; rs != nil {
		if err := validateToken("recorder.remote_start.id", rs.ID, MaxIDLen); err != nil {
			return err
		}
		if rs.VetoLeftS < 0 {
			return fieldErr("recorder.remote_start.veto_left_s", "is negative")
		}
	}
	if s.Disk.FreeMB > s.Disk.TotalMB {
		return fieldErr("disk.free_mb", "%d is more than total_mb %d", s.Disk.FreeMB, s.Disk.TotalMB)
	}
	for i, l := range s.Microphone.Levels {
		if l.PeakDBFS > 0 || l.PeakDBFS < -200 {
			return fieldErr(fmt.Sprintf("microphone.levels[%d].peak_dbfs", i), "%g is outside -200..0", l.PeakDBFS)
		}
		if l.RMSDBFS > 0 || l.RMSDBFS < -200 {
			return fieldErr(fmt.Sprintf("microphone.levels[%d].rms_dbfs", i), "%g is outside -200..0", l.RMSDBFS)
		}
	}
	for i, ch := range s.Microphone.Dead {
		if ch < 0 || ch >= len(s.Microphone.Levels) {
			return fieldErr(fmt.Sprintf("microphone.dead[%d]", i), "channel %d does not exist", ch)
		}
	}
	if err := validateText("upload.problem", s.Upload.Problem, 1024); err != nil {
		return err
	}
	if s.Upload.BacklogSegments < 0 || s.Upload.BacklogBytes < 0 || s.Upload.OutboxEvents < 0 || s.Upload.DamagedSegments < 0 {
		return fieldErr("upload", "has a negative count")
	}
	if s.TemperatureC != nil && (*s.TemperatureC < -60 || *s.TemperatureC > 150) {
		return fieldErr("temperature_c", "%g is outside -60..150", *s.TemperatureC)
	}
	if s.UptimeS < 0 {
		return fieldErr("uptime_s", "is negative")
	}
	if s.Version == "" {
		return fieldErr("version", "is missing on an online state")
	}
	if s.Live != nil {
		return s.Live.validate()
	}
	return nil
}
