package gpio

import (
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/device/button"
	"github.com/classcap/classcap/device/led"
	"periph.io/x/conn/v3/gpio"
)

const (
	H = gpio.High
	L = gpio.Low
)

func TestLevels(t *testing.T) {
	tests := []struct {
		name      string
		c         led.Color
		n         int
		activeLow bool
		want      []gpio.Level
	}{
		{"mono off", led.Off, 1, false, []gpio.Level{L}},
		{"mono red", led.Red, 1, false, []gpio.Level{H}},
		{"mono green lights it", led.Green, 1, false, []gpio.Level{H}},
		{"mono blue lights it", led.Blue, 1, false, []gpio.Level{H}},
		{"mono white", led.White, 1, false, []gpio.Level{H}},
		{"mono off active-low", led.Off, 1, true, []gpio.Level{H}},
		{"mono on active-low", led.On, 1, true, []gpio.Level{L}},
		{"rgb off", led.Off, 3, false, []gpio.Level{L, L, L}},
		{"rgb red", led.Red, 3, false, []gpio.Level{H, L, L}},
		{"rgb green", led.Green, 3, false, []gpio.Level{L, H, L}},
		{"rgb blue", led.Blue, 3, false, []gpio.Level{L, L, H}},
		{"rgb yellow", led.Yellow, 3, false, []gpio.Level{H, H, L}},
		{"rgb cyan", led.Cyan, 3, false, []gpio.Level{L, H, H}},
		{"rgb purple", led.Purple, 3, false, []gpio.Level{H, L, H}},
		{"rgb white", led.White, 3, false, []gpio.Level{H, H, H}},
		{"rgb off active-low", led.Off, 3, true, []gpio.Level{H, H, H}},
		{"rgb yellow active-low", led.Yellow, 3, true, []gpio.Level{L, L, H}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := levels(tt.c, tt.n, tt.activeLow)
			if len(got) != len(tt.want) {
				t.Fatalf("levels(%v, %d, %v) = %v, want %v", tt.c, tt.n, tt.activeLow, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("levels(%v, %d, %v) = %v, want %v", tt.c, tt.n, tt.activeLow, got, tt.want)
				}
			}
		})
	}
}

func fakePins(n int) ([]*fakePin, []gpio.PinOut) {
	var fakes []*fakePin
	var outs []gpio.PinOut
	for i := 0; i < n; i++ {
		p := &fakePin{name: "led"}
		fakes = append(fakes, p)
		outs = append(outs, p)
	}
	return fakes, outs
}

func TestLEDSet(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		activeLow bool
		set       []led.Color // applied in order; the last one is checked
		want      []gpio.Level
	}{
		{"rgb yellow", 3, false, []led.Color{led.Yellow}, []gpio.Level{H, H, L}},
		{"rgb red then blue", 3, false, []led.Color{led.Red, led.Blue}, []gpio.Level{L, L, H}},
		{"rgb green active-low", 3, true, []led.Color{led.Green}, []gpio.Level{H, L, H}},
		{"mono on", 1, false, []led.Color{led.On}, []gpio.Level{H}},
		{"mono on then off", 1, false, []led.Color{led.On, led.Off}, []gpio.Level{L}},
		{"mono cyan active-low", 1, true, []led.Color{led.Cyan}, []gpio.Level{L}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakes, outs := fakePins(tt.n)
			l, err := NewLED(outs, tt.activeLow)
			if err != nil {
				t.Fatal(err)
			}
			if l.Mono() != (tt.n == 1) {
				t.Errorf("Mono() = %v with %d lines", l.Mono(), tt.n)
			}
			for _, c := range tt.set {
				if err := l.Set(c); err != nil {
					t.Fatalf("Set(%v): %v", c, err)
				}
			}
			for i, f := range fakes {
				if got := f.Read(); got != tt.want[i] {
					t.Errorf("line %d = %v, want %v", i, got, tt.want[i])
				}
			}
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			for i, f := range fakes {
				if !f.isHalted() {
					t.Errorf("line %d not released by Close", i)
				}
			}
		})
	}
}

func TestNewLEDLineCount(t *testing.T) {
	for _, n := range []int{0, 2, 4} {
		_, outs := fakePins(n)
		if _, err := NewLED(outs, false); err == nil || !strings.Contains(err.Error(), "3 lines") {
			t.Errorf("NewLED with %d pins: err = %v, want a line-count error", n, err)
		}
	}
}

// recv waits for one edge (or a closed channel) with a deadline.
func recv(t *testing.T, ch <-chan button.Edge) (button.Edge, bool) {
	t.Helper()
	select {
	case e, ok := <-ch:
		return e, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no edge within 5s")
	}
	return button.Edge{}, false
}

func TestButtonEdges(t *testing.T) {
	tests := []struct {
		name      string
		activeLow bool
		idle      gpio.Level
		feed      []gpio.Level
		want      []bool // Pressed of each reported edge
	}{
		{"active-low press and release", true, H, []gpio.Level{L, H}, []bool{true, false}},
		{"active-high press and release", false, L, []gpio.Level{H, L}, []bool{true, false}},
		{"repeated levels are dropped", true, H, []gpio.Level{H, L, L, H, H, L}, []bool{true, false, true}},
		{"pressed at start: release first", true, L, []gpio.Level{H, L}, []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pin := &fakePin{name: "button", level: tt.idle, edges: make(chan gpio.Level)}
			b := NewButton(pin, tt.activeLow)
			before := time.Now()
			go func() {
				for _, l := range tt.feed {
					pin.edges <- l // unbuffered: each level is taken by the reader
				}
			}()
			for i, want := range tt.want {
				e, ok := recv(t, b.Edges())
				if !ok {
					t.Fatalf("edge %d: Edges closed", i)
				}
				if e.Pressed != want {
					t.Errorf("edge %d: Pressed = %v, want %v", i, e.Pressed, want)
				}
				if e.At.Before(before) || e.At.After(time.Now()) {
					t.Errorf("edge %d: At = %v, not between %v and now", i, e.At, before)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for {
				e, ok := recv(t, b.Edges())
				if !ok {
					break
				}
				t.Errorf("extra edge after the expected ones: %+v", e)
			}
			if !pin.isHalted() {
				t.Error("line not released by Close")
			}
			if err := b.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestCheckBias(t *testing.T) {
	for _, b := range []string{BiasPullUp, BiasPullDown, BiasNone, BiasAsIs} {
		if err := checkBias(b); err != nil {
			t.Errorf("checkBias(%q) = %v", b, err)
		}
	}
	for _, b := range []string{"pullup", "up", "disabled", "PULL-UP"} {
		if err := checkBias(b); err == nil {
			t.Errorf("checkBias(%q) accepted", b)
		}
	}
}
