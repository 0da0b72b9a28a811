// Package desired keeps, on the box, the configuration the hub wants it to
// run with. The hub publishes a versioned set of settings (wire.Config); the
// box lays them over its own configuration file (config.WithSettings),
// refuses a bad set with the field named and keeps the last good one,
// persists what it accepted crash-safely, and never switches in the middle
// of a lesson what the lesson is recorded with: a set that arrives while
// recording and changes such a setting (see Waits) waits, persisted as
// pending, until the lesson ends; a set that changes only settings safe
// mid-lesson (uploads, retention, the defaults of the next lesson) applies
// at once. A set is applied whole, never in part, so the applied version
// always names what the box runs with. What the box did is its
// wire.ConfigStatus, reported in its state.
//
// Files in the data directory: hub-config.json (the applied set),
// hub-config.pending.json (accepted while recording) and
// hub-config.rejected.json (the last set refused, and why: after a restart
// the box still reports it, and the retained message is not judged again). A set that fails
// against the file at start (the file changed since) is ignored, and the box
// runs on its file alone, which is valid (it was checked at start).
package desired

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/uplink/wire"
)

// File names in the data directory.
const (
	AppliedFile  = "hub-config.json"
	PendingFile  = "hub-config.pending.json"
	RejectedFile = "hub-config.rejected.json"
)

// rejected is what RejectedFile holds.
type rejected struct {
	Version int64  `json:"version"`
	Field   string `json:"field,omitempty"`
	Error   string `json:"error"`
}

// Result says what Offer did with a desired configuration.
type Result int

// The results.
const (
	Ignored  Result = iota // a version the box already holds (a retained message again)
	Rejected               // invalid: the status names the field; the last good one stays
	Pending                // valid, waiting for the lesson to end
	Applied                // valid and now the box's configuration
)

func (r Result) String() string {
	return [...]string{"ignored", "rejected", "pending", "applied"}[r]
}

type stored struct {
	Version  int64           `json:"version"`
	Settings json.RawMessage `json:"settings"`
}

// Store holds the base configuration (the file) and the hub's settings.
type Store struct {
	dir  string
	base *config.Box
	log  *slog.Logger

	mu      sync.Mutex
	check   func(running, next *config.Box) error
	current *config.Box
	pending *stored
	status  wire.ConfigStatus
}

// Open loads what was applied before and applies a set left pending (the
// box stopped before the lesson ended: nothing records now).
func Open(dir string, base *config.Box, log *slog.Logger) (*Store, error) {
	s := &Store{dir: dir, base: base, log: log, current: base}
	if a, err := readJSON[stored](filepath.Join(dir, AppliedFile)); err != nil {
		return nil, err
	} else if a != nil {
		if b, err := base.WithSettings(a.Settings); err != nil {
			log.Error("the hub's configuration no longer fits this box's file; running on the file", "version", a.Version, "err", err)
		} else {
			s.current, s.status.Applied = b, a.Version
		}
	}
	if r, err := readJSON[rejected](filepath.Join(dir, RejectedFile)); err != nil {
		log.Warn("the record of the last refused hub configuration is unreadable; ignoring it", "err", err)
	} else if r != nil && r.Version > s.status.Applied {
		s.status.Rejected, s.status.Field, s.status.Error = r.Version, r.Field, r.Error
	}
	p, err := readJSON[stored](filepath.Join(dir, PendingFile))
	if err != nil {
		return nil, err
	}
	if p != nil {
		s.pending = p
		s.status.Pending = p.Version
		if _, err := s.ApplyPending(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// readJSON reads the JSON file at path; nil when there is none.
func readJSON[T any](path string) (*T, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &v, nil
}

// SetCheck adds what the box checks beyond the file's rules before it
// accepts a set: check gets the configuration the box runs with and the one
// the set makes, and its error refuses the set like a bad value (a
// config.FieldError in it names the field). It judges what this box can do
// (a hardware encoder that is not there), so a set it refuses never waits
// for a lesson to end, nor is it applied at the next start.
func (s *Store) SetCheck(check func(running, next *config.Box) error) {
	s.mu.Lock()
	s.check = check
	s.mu.Unlock()
}

// Current returns the configuration the box runs with.
func (s *Store) Current() *config.Box {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Status returns the report for the box's state.
func (s *Store) Status() wire.ConfigStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Waits returns the settings that differ between from and to and would
// change a lesson being recorded: the encoders' settings (video.*, audio.*:
// the stream's parameters are in the lesson's init.mp4) and the segment
// length. Everything else the hub may set is safe mid-lesson: upload
// windows, bandwidth, concurrency and retention act on lessons already
// recorded, and recording.visibility, min_free_mb and veto_seconds are read
// when the next lesson starts.
func Waits(from, to *config.Box) []string {
	var w []string
	if !reflect.DeepEqual(from.Video, to.Video) {
		w = append(w, "video")
	}
	if !reflect.DeepEqual(from.Audio, to.Audio) {
		w = append(w, "audio")
	}
	if from.Recording.SegmentSeconds != to.Recording.SegmentSeconds {
		w = append(w, "recording.segment_seconds")
	}
	return w
}

// Offer takes a desired configuration from the hub (the payload of the
// config topic). recording says whether a lesson is being recorded: a valid
// set that changes a setting the lesson depends on (Waits) then waits until
// ApplyPending; one that does not applies at once. A malformed payload is an error; a
// valid payload with bad settings is Rejected and reported in Status.
func (s *Store) Offer(payload []byte, recording bool) (Result, error) {
	c, err := wire.DecodeConfig(payload)
	if err != nil {
		s.mu.Lock()
		s.status.Error, s.status.Field = err.Error(), ""
		s.mu.Unlock()
		return Rejected, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Version <= max(s.status.Applied, s.status.Pending) || c.Version == s.status.Rejected {
		return Ignored, nil
	}
	b, err := s.base.WithSettings(c.Settings)
	if err == nil && s.check != nil {
		err = s.check(s.current, b)
	}
	if err != nil {
		s.status.Rejected, s.status.Error, s.status.Field = c.Version, err.Error(), ""
		if fes := config.FieldErrors(err); len(fes) > 0 {
			s.status.Field, s.status.Error = fes[0].Field, fes[0].Reason
		}
		s.log.Warn("hub configuration refused; keeping the last good one", "version", c.Version,
			"field", s.status.Field, "err", s.status.Error, "running", s.status.Applied)
		r, _ := json.Marshal(rejected{Version: c.Version, Field: s.status.Field, Error: s.status.Error})
		if err := durable.WriteFile(filepath.Join(s.dir, RejectedFile), r, 0o600); err != nil {
			s.log.Warn("record the refused hub configuration", "err", err) // reported until a restart all the same
		}
		return Rejected, nil
	}
	st := stored{Version: c.Version, Settings: c.Settings}
	if w := Waits(s.current, b); recording && len(w) > 0 {
		if err := write(filepath.Join(s.dir, PendingFile), st); err != nil {
			return Rejected, err
		}
		s.pending, s.status.Pending = &st, c.Version
		s.log.Info("hub configuration accepted; applied when the lesson ends", "version", c.Version,
			"changes", strings.Join(w, ", "))
		return Pending, nil
	}
	if err := s.apply(st, b); err != nil {
		return Rejected, err
	}
	return Applied, nil
}

// ApplyPending applies a set that waited for the lesson to end; call it
// when the recorder is idle. It reports whether the configuration changed.
func (s *Store) ApplyPending() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return false, nil
	}
	b, err := s.base.WithSettings(s.pending.Settings)
	if err != nil { // it was checked on arrival; the file cannot have changed while running
		return false, err
	}
	if err := s.apply(*s.pending, b); err != nil {
		return false, err
	}
	return true, nil
}

// apply persists st as the applied set, then drops the pending file.
// Called with mu held.
func (s *Store) apply(st stored, b *config.Box) error {
	if err := write(filepath.Join(s.dir, AppliedFile), st); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.dir, PendingFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pending configuration: %w", err)
	}
	s.current, s.pending = b, nil
	s.status.Applied, s.status.Pending = st.Version, 0
	if s.status.Rejected < st.Version {
		s.status.Rejected, s.status.Field, s.status.Error = 0, "", ""
		if err := os.Remove(filepath.Join(s.dir, RejectedFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove the record of a refused hub configuration", "err", err)
		}
	}
	s.log.Info("hub configuration applied", "version", st.Version)
	return nil
}

func write(path string, st stored) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
