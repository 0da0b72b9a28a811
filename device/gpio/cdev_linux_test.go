//go:build linux

package gpio

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func monoNow(t *testing.T) time.Duration {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

func TestMonoToTime(t *testing.T) {
	tests := []struct {
		name string
		age  time.Duration // how long before "now" the kernel stamped the event
	}{
		{"just now", 0},
		{"5ms ago", 5 * time.Millisecond},
		{"1.5s ago", 1500 * time.Millisecond},
	}
	const slack = 50 * time.Millisecond // the two clock reads, on a loaded machine
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			got := monoToTime(monoNow(t) - tt.age)
			after := time.Now()
			// got must lie in [before-age, after-age] up to the slack, measured
			// on Go's monotonic clock (Sub uses the monotonic readings).
			if d := before.Sub(got); d > tt.age+slack || d < tt.age-slack-after.Sub(before) {
				t.Errorf("event %v old: before.Sub(got) = %v", tt.age, d)
			}
			if !strings.Contains(got.String(), " m=") { // String shows the monotonic reading
				t.Error("result has no monotonic clock reading")
			}
		})
	}
	if got := monoToTime(0); time.Since(got) > time.Second {
		t.Errorf("zero timestamp: %v, want about now", got)
	}
}

func TestOpenMissingChip(t *testing.T) {
	const chip = "gpiochip-classcap-absent"
	_, err := OpenButton(ButtonConfig{Chip: chip, Line: 17, ActiveLow: true, Bias: BiasPullUp})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), chip+":17") ||
		!strings.Contains(err.Error(), "not found") {
		t.Errorf("OpenButton on a missing chip: err = %v", err)
	}
	_, err = OpenLED(LEDConfig{Chip: chip, Lines: []int{22, 23, 24}})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), chip+":22,23,24") {
		t.Errorf("OpenLED on a missing chip: err = %v", err)
	}
}

func TestOpenBadConfig(t *testing.T) {
	if _, err := OpenButton(ButtonConfig{Chip: "gpiochip0", Bias: "up"}); err == nil || !strings.Contains(err.Error(), "bias") {
		t.Errorf("bad bias: err = %v", err)
	}
	if _, err := OpenButton(ButtonConfig{Chip: "gpiochip0", Debounce: -time.Millisecond}); err == nil {
		t.Error("negative debounce accepted")
	}
	if _, err := OpenLED(LEDConfig{Chip: "gpiochip0", Lines: []int{1, 2}}); err == nil || !strings.Contains(err.Error(), "3 lines") {
		t.Errorf("two LED lines: err = %v", err)
	}
}
