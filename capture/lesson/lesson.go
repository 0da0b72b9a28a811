// Package lesson keeps lessons on disk. A lesson is a folder
// <root>/<lesson_id>/ with init.mp4, seg_NNNNNN.m4s segments, an HLS
// playlist index.m3u8 (EVENT while recording, VOD with ENDLIST once stopped,
// EXT-X-DISCONTINUITY after a gap) and lesson.json, the lesson's record:
// who started it, its visibility, its clocks, and every segment with its
// duration, size and SHA-256. lesson.json is the truth; the playlist is
// derived from it, and both are replaced atomically after every segment.
package lesson

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// File names inside a lesson folder.
const (
	MetaName     = "lesson.json"
	PlaylistName = "index.m3u8"
)

// Lesson states.
const (
	StateRecording = "recording" // open: segments are still being added (or a crash left it so)
	StateComplete  = "complete"  // stopped; the playlist is VOD
)

// Visibilities a teacher can give a lesson.
const (
	VisibilityPrivate  = "private"  // the teacher only
	VisibilityCoaching = "coaching" // the teacher and their coaches
	VisibilityLibrary  = "library"  // the district's library of lessons
)

// ValidVisibility reports whether v is a known visibility.
func ValidVisibility(v string) bool {
	switch v {
	case VisibilityPrivate, VisibilityCoaching, VisibilityLibrary:
		return true
	}
	return false
}

// Clock is a moment as the box knew it: the boot it happened in, the time
// since that boot, and the wall time only when the wall clock was
// synchronised.
type Clock struct {
	BootID   string     `json:"boot_id,omitempty"`
	BootTime float64    `json:"boot_time"` // seconds since boot
	Wall     *time.Time `json:"wall,omitempty"`
}

// Segment is one closed media segment.
type Segment struct {
	Number        int     `json:"number"`
	Name          string  `json:"name"`
	Start         float64 `json:"start"`    // media seconds from the lesson's start
	Duration      float64 `json:"duration"` // seconds
	Bytes         int64   `json:"bytes"`
	SHA256        string  `json:"sha256"`
	Discontinuity bool    `json:"discontinuity,omitempty"`
	// Damaged: the segment's bytes on the box no longer have the SHA-256
	// they were written with (the storage failed under them). Bytes and
	// SHA256 are then those of the bytes as they are, which still go to the
	// hub (most of a damaged segment plays), and RecordedSHA256 the
	// original.
	Damaged        bool   `json:"damaged,omitempty"`
	RecordedSHA256 string `json:"recorded_sha256,omitempty"`
}

// Gap is a stretch of the lesson that was not recorded.
type Gap struct {
	At       float64 `json:"at"`       // media seconds where the gap falls
	Duration float64 `json:"duration"` // seconds; -1 when it cannot be known
	Reason   string  `json:"reason"`
	// Media is what is missing: "video" (the camera was away; sound was
	// recorded), "audio" (the microphones were away), or empty for both
	// (the daemon was not running).
	Media string `json:"media,omitempty"`
}

// What a Gap can be missing.
const (
	GapVideo = "video"
	GapAudio = "audio"
)

// Run is one stretch of continuous recording; a lesson continued after a
// crash has more than one.
type Run struct {
	Start      Clock   `json:"start"`
	MediaStart float64 `json:"media_start"` // media seconds
}

// Stop says how a lesson ended.
type Stop struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
	At     Clock  `json:"at"`
}

// Video describes the video track.
type Video struct {
	Codec   string `json:"codec"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Encoder string `json:"encoder"`
	// SPS and PPS of the stream in init.mp4: a lesson continued after a
	// restart must have the same.
	SPS []byte `json:"sps,omitempty"`
	PPS []byte `json:"pps,omitempty"`
}

// Audio describes the audio track.
type Audio struct {
	Codec      string `json:"codec"`
	Channels   int    `json:"channels"`
	Rate       int    `json:"rate"`
	BitrateBps int    `json:"bitrate"`
	// Processing is what ran between the microphones and the encoder;
	// absent in lessons recorded before it was written down.
	Processing *AudioProcessing `json:"processing,omitempty"`
}

// AudioProcessing records the microphone-array processing of a lesson and
// its settings.
type AudioProcessing struct {
	Chain  string `json:"chain"`            // "array" (capture/array) or "mixdown" (a plain average)
	Reason string `json:"reason,omitempty"` // why the array chain is not running, when configured
	// The array chain's settings (Chain "array").
	Geometry      string       `json:"geometry,omitempty"` // preset name, or "custom"
	Mics          [][3]float64 `json:"mics,omitempty"`     // capsule positions, metres
	HighPassHz    float64      `json:"high_pass_hz,omitempty"`
	AutoCalibrate bool         `json:"auto_calibrate,omitempty"`
	ChannelGainDB []float64    `json:"channel_gain_db,omitempty"`
	Beamform      bool         `json:"beamform,omitempty"`
	Beam          string       `json:"beam,omitempty"`      // "delay-and-sum" or "mvdr", with Beamform
	SteerDeg      *float64     `json:"steer_deg,omitempty"` // fixed beam direction; absent: estimated
	SuppressDB    float64      `json:"suppress_db,omitempty"`
	AGC           bool         `json:"agc,omitempty"`
	AGCTargetDBFS float64      `json:"agc_target_dbfs,omitempty"`
	AGCMaxGainDB  float64      `json:"agc_max_gain_db,omitempty"`
	LimitDBFS     float64      `json:"limit_dbfs,omitempty"`
}

// Meta is lesson.json.
type Meta struct {
	V               int       `json:"v"`
	ID              string    `json:"id"`
	Number          int       `json:"number"` // the box's own lesson counter
	Device          string    `json:"device"`
	Visibility      string    `json:"visibility"`
	StartedBy       string    `json:"started_by"`
	State           string    `json:"state"`
	SegmentDuration float64   `json:"segment_duration"` // target, seconds
	Start           Clock     `json:"start"`
	Stop            *Stop     `json:"stop,omitempty"`
	Video           Video     `json:"video"`
	Audio           Audio     `json:"audio"`
	Duration        float64   `json:"duration"` // seconds of media
	Bytes           int64     `json:"bytes"`
	Segments        []Segment `json:"segments"`
	Gaps            []Gap     `json:"gaps"`
	Runs            []Run     `json:"runs"`
	// Raw lists the files of the microphones' own channels kept beside
	// the segments ([audio] keep_raw); absent when none were kept. They
	// are never uploaded.
	Raw []RawAudio `json:"raw,omitempty"`
}

// RawAudio is one file of the microphones' own channels, before any
// processing: PCM WAV at the capture rate, beside segment Segment.
type RawAudio struct {
	Name    string `json:"name"`
	Segment int    `json:"segment"`
	// Start is the media time of its first sample (seconds), exact to the
	// sample: for the first file of a segment, the segment's start. A
	// file repaired after a crash has the start its header records (one
	// written before headers did: its segment's start, or the lesson's
	// end before it).
	Start    float64 `json:"start"`
	Duration float64 `json:"duration"` // seconds
	Channels int     `json:"channels"`
	Rate     int     `json:"rate"`
	Bits     int     `json:"bits"`
	Bytes    int64   `json:"bytes"`
	SHA256   string  `json:"sha256"`
}

// idPattern is what NewID makes: the box's lesson number, then randomness
// so ids from different boxes never collide.
var idPattern = regexp.MustCompile(`^[0-9]{6,}-[a-z2-7]{10}$`)

// ValidID reports whether id is a lesson id (and so safe as a folder name).
func ValidID(id string) bool { return idPattern.MatchString(id) }

// NewID returns a lesson id for the box's lesson number n. It does not
// depend on the wall clock, which a Pi may not have.
func NewID(n int) string {
	var b [7]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	r := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))[:10]
	return fmt.Sprintf("%06d-%s", n, r)
}

// NumberOf returns the lesson number inside an id.
func NumberOf(id string) (int, bool) {
	if !ValidID(id) {
		return 0, false
	}
	n, err := strconv.Atoi(id[:strings.IndexByte(id, '-')])
	return n, err == nil
}

// ParseMeta decodes lesson.json and checks that it describes a lesson.
func ParseMeta(b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("lesson.json: %w", err)
	}
	switch {
	case m.V != 1:
		return Meta{}, fmt.Errorf("lesson.json: unsupported version %d", m.V)
	case !ValidID(m.ID):
		return Meta{}, fmt.Errorf("lesson.json: bad id %q", m.ID)
	case m.State != StateRecording && m.State != StateComplete:
		return Meta{}, fmt.Errorf("lesson.json: bad state %q", m.State)
	}
	for i, s := range m.Segments {
		if s.Number <= 0 || s.Duration < 0 || math.IsNaN(s.Duration) || s.Bytes < 0 {
			return Meta{}, fmt.Errorf("lesson.json: segment %d is malformed", i)
		}
		if i > 0 && s.Number <= m.Segments[i-1].Number {
			return Meta{}, fmt.Errorf("lesson.json: segment %d out of order", s.Number)
		}
	}
	for i, r := range m.Raw {
		if strings.ContainsAny(r.Name, "/\\") || r.Name == "" || r.Bytes < 0 || r.Channels < 0 || math.IsNaN(r.Duration) {
			return Meta{}, fmt.Errorf("lesson.json: raw audio file %d is malformed", i)
		}
	}
	return m, nil
}

// Encode returns lesson.json's bytes.
func (m Meta) Encode() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // Meta has no types that fail to marshal
	}
	return append(b, '\n')
}

// Playlist returns the HLS media playlist of the lesson.
func (m Meta) Playlist() []byte {
	target := int(math.Ceil(m.SegmentDuration))
	for _, s := range m.Segments {
		target = max(target, int(math.Round(s.Duration+0.499)))
	}
	target = max(target, 1)
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	b.WriteString("#EXT-X-MEDIA-SEQUENCE:0\n")
	if m.State == StateComplete {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n")
	for i, s := range m.Segments {
		if s.Discontinuity && i > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", s.Duration, s.Name)
	}
	if m.State == StateComplete {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// ErrStillRecording is returned for a change to a lesson that is still
// being recorded (its record belongs to the recording).
var ErrStillRecording = errors.New("lesson is still being recorded")

// ErrNotFound is returned for a lesson id the store does not have.
var ErrNotFound = errors.New("lesson not found")
