package pace

import (
	"fmt"
	"strings"
	"time"
)

// Window is a daily stretch of local time, "15:30-23:59"; one that ends
// before it starts runs past midnight ("22:00-06:00").
type Window struct {
	From, To int // minutes since midnight
}

// Windows are the times of day uploads may run; none means any time.
type Windows []Window

// ParseWindow parses "HH:MM-HH:MM".
func ParseWindow(s string) (Window, error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Window{}, fmt.Errorf("window %q: want HH:MM-HH:MM", s)
	}
	f, err := parseClock(from)
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	t, err := parseClock(to)
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	if f == t {
		return Window{}, fmt.Errorf("window %q: starts where it ends", s)
	}
	return Window{From: f, To: t}, nil
}

func parseClock(s string) (int, error) {
	s = strings.TrimSpace(s)
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	if _, err := fmt.Sscanf(s, "%2d:%2d", &h, &m); err != nil || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return h*60 + m, nil
}

// ParseWindows parses a list of windows.
func ParseWindows(list []string) (Windows, error) {
	var ws Windows
	for _, s := range list {
		w, err := ParseWindow(s)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// Open reports whether t (in its location) falls in a window; with no
// windows it is always open.
func (ws Windows) Open(t time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	m := t.Hour()*60 + t.Minute()
	for _, w := range ws {
		if w.From < w.To && m >= w.From && m < w.To {
			return true
		}
		if w.From > w.To && (m >= w.From || m < w.To) {
			return true
		}
	}
	return false
}
