package audio

import (
	"math"
	"slices"
	"testing"
	"time"
)

// deadTick is the Meter's window.
const deadTick = 100 * time.Millisecond

// phase is a stretch of observations with fixed RMS levels per channel.
type phase struct {
	dur time.Duration
	rms []float64
}

// feed observes the phases every deadTick from start and returns the time
// of the first observation after which Alarms first equalled want (or -1)
// and the detector.
func feed(d *DeadMicDetector, start time.Duration, phases []phase, want []int) (time.Duration, time.Duration) {
	at, first := start, time.Duration(-1)
	for _, p := range phases {
		levels := make([]Level, len(p.rms))
		for i, r := range p.rms {
			levels[i] = Level{PeakDBFS: r + 3, RMSDBFS: r}
		}
		for end := at + p.dur; at < end; at += deadTick {
			d.Observe(levels, at)
			if first < 0 && want != nil && slices.Equal(d.Alarms(), want) {
				first = at
			}
		}
	}
	return first, at
}

func TestDeadMicDetector(t *testing.T) {
	const (
		floor  = FloorDBFS
		speech = -40.0
		quiet  = -85.0 // a working capsule's self-noise in a silent room
	)
	start := 10 * time.Second
	min := time.Minute
	tests := []struct {
		name      string
		phases    []phase
		alarmAt   time.Duration // offset from start; -1: never
		wantEnd   []int         // Alarms after all phases
		wantSince []time.Duration
	}{
		{
			name:    "dead capsule beside speech",
			phases:  []phase{{2 * min, []float64{speech, floor, speech - 6, speech}}},
			alarmAt: 60 * time.Second, wantEnd: []int{1}, wantSince: []time.Duration{start},
		},
		{
			name:    "not before 60 s",
			phases:  []phase{{60 * time.Second, []float64{speech, floor}}},
			alarmAt: -1, wantEnd: nil,
		},
		{
			name:    "quiet room proves nothing",
			phases:  []phase{{10 * min, []float64{quiet, floor, quiet, quiet}}},
			alarmAt: -1, wantEnd: nil,
		},
		{
			name: "pauses in speech delay the alarm",
			phases: slices.Repeat([]phase{
				{time.Second, []float64{speech, floor}},
				{time.Second, []float64{quiet, floor}},
			}, 90),
			// 60 s of loud neighbour, in 1 s pieces separated by 1 s of
			// quiet: the first interval counted ends at 0.1 s, the 600th
			// at 120 s.
			alarmAt: 120 * time.Second, wantEnd: []int{1}, wantSince: []time.Duration{start},
		},
		{
			name: "working capsule follows the room",
			phases: slices.Repeat([]phase{
				{2 * time.Second, []float64{speech, speech - 12}},
				{3 * time.Second, []float64{quiet, quiet - 5}},
			}, 60),
			alarmAt: -1, wantEnd: nil,
		},
		{
			name: "a sound resets the silence",
			phases: []phase{
				{50 * time.Second, []float64{speech, floor}},
				{deadTick, []float64{speech, -60}},
				{50 * time.Second, []float64{speech, floor}},
			},
			alarmAt: -1, wantEnd: nil,
		},
		{
			name: "faint comeback does not clear, sound does",
			phases: []phase{
				{70 * time.Second, []float64{speech, floor}},
				{10 * time.Second, []float64{speech, -70}}, // between silent and clear
			},
			alarmAt: 60 * time.Second, wantEnd: []int{1}, wantSince: []time.Duration{start},
		},
		{
			name: "cleared when it hears again",
			phases: []phase{
				{70 * time.Second, []float64{speech, floor}},
				{deadTick, []float64{speech, -50}},
				{30 * time.Second, []float64{speech, quiet}},
			},
			alarmAt: 60 * time.Second, wantEnd: nil,
		},
		{
			name:    "two dead channels",
			phases:  []phase{{61 * time.Second, []float64{speech, floor, speech, floor, speech}}},
			alarmAt: 60 * time.Second, wantEnd: []int{1, 3}, wantSince: []time.Duration{start, start},
		},
		{
			name:    "single channel never alarms",
			phases:  []phase{{3 * min, []float64{floor}}},
			alarmAt: -1, wantEnd: nil,
		},
		{
			name:    "all silent: nobody hears sound",
			phases:  []phase{{3 * min, []float64{floor, floor}}},
			alarmAt: -1, wantEnd: nil,
		},
		{
			name: "silence starts later",
			phases: []phase{
				{20 * time.Second, []float64{speech, speech}},
				{70 * time.Second, []float64{speech, floor}},
			},
			alarmAt: 80 * time.Second, wantEnd: []int{1}, wantSince: []time.Duration{start + 20*time.Second},
		},
		{
			name:    "NaN reads as silence",
			phases:  []phase{{61 * time.Second, []float64{speech, math.NaN()}}},
			alarmAt: 60 * time.Second, wantEnd: []int{1}, wantSince: []time.Duration{start},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDeadMicDetector(DeadMicConfig{})
			var want []int
			if tt.alarmAt >= 0 {
				want = tt.wantEnd
				if want == nil {
					want = []int{1}
				}
			} else {
				want = []int{-1} // never equal
			}
			first, _ := feed(d, start, tt.phases, want)
			if tt.alarmAt < 0 {
				if a := d.Alarms(); a != nil {
					t.Errorf("alarms %v, want none", a)
				}
			} else if first-start != tt.alarmAt {
				t.Errorf("alarm at %v, want %v", first-start, tt.alarmAt)
			}
			if got := d.Alarms(); !slices.Equal(got, tt.wantEnd) {
				t.Errorf("Alarms() = %v at the end, want %v", got, tt.wantEnd)
			}
			dead := d.Dead()
			if len(dead) != len(tt.wantEnd) {
				t.Fatalf("Dead() = %v", dead)
			}
			for i, dc := range dead {
				if dc.Channel != tt.wantEnd[i] || dc.Since != tt.wantSince[i] {
					t.Errorf("Dead()[%d] = %+v, want channel %d since %v", i, dc, tt.wantEnd[i], tt.wantSince[i])
				}
			}
		})
	}
}

func TestDeadMicGapsAndResets(t *testing.T) {
	lv := []Level{{RMSDBFS: -40}, {RMSDBFS: FloorDBFS}}
	d := NewDeadMicDetector(DeadMicConfig{})
	// A stalled meter (one observation per 10 minutes) counts MaxStep per
	// gap, not the gap.
	for i := range 30 {
		d.Observe(lv, time.Duration(i)*10*time.Minute)
	}
	if a := d.Alarms(); a != nil {
		t.Fatalf("alarm %v after 29 gaps of 10 minutes", a)
	}
	for i := 30; i < 70; i++ {
		d.Observe(lv, time.Duration(i)*10*time.Minute)
	}
	if a := d.Alarms(); !slices.Equal(a, []int{1}) {
		t.Fatalf("alarms %v after 69 one-second steps, want [1]", a)
	}
	// Time going backwards counts as nothing; a new channel count starts
	// over.
	d.Observe(lv, 0)
	if a := d.Alarms(); !slices.Equal(a, []int{1}) {
		t.Errorf("alarms %v after a backwards step", a)
	}
	d.Observe(append(lv, Level{RMSDBFS: -40}), time.Hour)
	if a := d.Alarms(); a != nil {
		t.Errorf("alarms %v after a channel count change", a)
	}
}

func TestDeadMicConfig(t *testing.T) {
	d := NewDeadMicDetector(DeadMicConfig{SilentDBFS: -90, SoundDBFS: -60, After: 5 * time.Second})
	// -80 dBFS is not silent for this detector.
	_, end := feed(d, 0, []phase{{time.Minute, []float64{-58, -80}}}, nil)
	if a := d.Alarms(); a != nil {
		t.Errorf("alarms %v with channel 1 above the silent threshold", a)
	}
	first, _ := feed(d, end, []phase{{time.Minute, []float64{-58, -95}}}, []int{1})
	if first-end != 5*time.Second {
		t.Errorf("alarm after %v, want 5s", first-end)
	}
	// The clear threshold never falls below the silent one.
	d = NewDeadMicDetector(DeadMicConfig{SilentDBFS: -60, ClearDBFS: -80})
	feed(d, 0, []phase{{61 * time.Second, []float64{-30, -100}}, {deadTick, []float64{-30, -70}}}, nil)
	if a := d.Alarms(); !slices.Equal(a, []int{1}) {
		t.Errorf("alarms %v: -70 dBFS cleared a channel below the silent threshold -60", a)
	}
}
