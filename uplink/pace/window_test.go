package pace

import (
	"testing"
	"time"
)

func TestWindows(t *testing.T) {
	ws, err := ParseWindows([]string{"15:30-18:00", "22:00-06:00"})
	if err != nil {
		t.Fatal(err)
	}
	at := func(h, m int) time.Time { return time.Date(2026, 3, 2, h, m, 0, 0, time.UTC) }
	for _, c := range []struct {
		h, m int
		open bool
	}{{15, 29, false}, {15, 30, true}, {17, 59, true}, {18, 0, false}, {21, 59, false}, {22, 0, true}, {0, 0, true}, {5, 59, true}, {6, 0, false}, {12, 0, false}} {
		if got := ws.Open(at(c.h, c.m)); got != c.open {
			t.Errorf("%02d:%02d open = %v, want %v", c.h, c.m, got, c.open)
		}
	}
	if !Windows(nil).Open(at(3, 0)) {
		t.Error("no windows: closed")
	}
	for _, bad := range []string{"", "15:30", "15:30-15:30", "25:00-26:00", "7:00-8:00", "15:60-16:00", "aa:bb-cc:dd"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) accepted", bad)
		}
	}
	if _, err := ParseWindow("16:00-24:00"); err != nil {
		t.Errorf("16:00-24:00: %v", err)
	}
}
