package replay

import "fmt"

// Pace says how fast a replayed file is delivered.
type Pace int

const (
	// PaceRealtime delivers each unit at its time on the wall clock, as the
	// hardware it stands in for would.
	PaceRealtime Pace = iota
	// PaceFast delivers units as fast as the consumer takes them.
	PaceFast
)

// ParsePace parses "realtime" or "fast".
func ParsePace(s string) (Pace, error) {
	switch s {
	case "realtime":
		return PaceRealtime, nil
	case "fast":
		return PaceFast, nil
	}
	return 0, fmt.Errorf("parse pace %q: want \"realtime\" or \"fast\"", s)
}

// String returns the name ParsePace accepts.
func (p Pace) String() string {
	switch p {
	case PaceRealtime:
		return "realtime"
	case PaceFast:
		return "fast"
	}
	return fmt.Sprintf("Pace(%d)", int(p))
}
