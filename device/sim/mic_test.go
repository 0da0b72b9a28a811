package sim

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
)

func TestMicDefaultsAndDelays(t *testing.T) {
	tests := []struct {
		cfg        MicConfig
		ch, rate   int
		wantDelays []int
	}{
		{MicConfig{}, 4, 48000, []int{0, 3, 6, 9}},
		{MicConfig{Rate: 16000}, 4, 16000, []int{0, 1, 2, 3}},
		{MicConfig{Channels: 2, Rate: 44100}, 2, 44100, []int{0, 3}},
		{MicConfig{Channels: 1}, 1, 48000, []int{0}},
	}
	for _, tt := range tests {
		m := NewMicArray(tt.cfg)
		ch, rate := m.Format()
		if ch != tt.ch || rate != tt.rate {
			t.Errorf("%+v: Format() = %d, %d; want %d, %d", tt.cfg, ch, rate, tt.ch, tt.rate)
		}
		if d := m.Delays(); !slices.Equal(d, tt.wantDelays) {
			t.Errorf("%+v: Delays() = %v; want %v", tt.cfg, d, tt.wantDelays)
		}
	}
}

func TestMicDeterministic(t *testing.T) {
	a := NewMicArray(MicConfig{Seed: 7}).Render(48000)
	b := NewMicArray(MicConfig{Seed: 7}).Render(48000)
	c := NewMicArray(MicConfig{Seed: 8}).Render(48000)
	if !slices.Equal(a.Samples, b.Samples) {
		t.Error("same seed gave different samples")
	}
	if slices.Equal(a.Samples, c.Samples) {
		t.Error("different seeds gave the same samples")
	}
	// Rendering in pieces gives the same stream with continuous PTS.
	m := NewMicArray(MicConfig{Seed: 7})
	var joined []float32
	var next time.Duration
	for _, n := range []int{441, 1000, 4800, 41759} {
		p := m.Render(n)
		if p.PTS != next {
			t.Fatalf("piece PTS %v, want %v", p.PTS, next)
		}
		next = p.PTS + time.Duration(n)*time.Second/48000
		joined = append(joined, p.Samples...)
	}
	if !slices.Equal(joined, a.Samples) {
		t.Error("rendering in pieces differs from one block")
	}
}

// channel extracts channel c of p as float64.
func channel(p media.PCM, c int) []float64 {
	out := make([]float64, p.Frames())
	for i := range out {
		out[i] = float64(p.Samples[i*p.Channels+c])
	}
	return out
}

func rmsDB(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return 10 * math.Log10(s/float64(len(x))+1e-30)
}

func TestMicSpeechLike(t *testing.T) {
	const rate = 48000
	m := NewMicArray(MicConfig{Seed: 3})
	p := m.Render(20 * rate)
	x := channel(p, 0)

	var speech, pause int
	peak := 0.0
	for _, v := range x {
		peak = max(peak, math.Abs(v))
	}
	for w := 0; w+rate/10 <= len(x); w += rate / 10 {
		switch db := rmsDB(x[w : w+rate/10]); {
		case db > -35:
			speech++
		case db < -50:
			pause++
		}
	}
	if speech < 40 || pause < 20 {
		t.Errorf("100 ms windows: %d speech, %d pauses in 20 s; want both present", speech, pause)
	}
	if db := 20 * math.Log10(peak); db > -1 || db < -20 {
		t.Errorf("peak %.1f dBFS, want between -20 and -1", db)
	}
	// Noise floor: independent per channel at about -60 dBFS.
	quiet := NewMicArray(MicConfig{Seed: 3}).Render(rate / 10) // starts in a pause
	for c := range 4 {
		if db := rmsDB(channel(quiet, c)); db < -63 || db > -57 {
			t.Errorf("channel %d noise floor %.1f dBFS, want about -60", c, db)
		}
	}

	// Pitch of the loudest 50 ms windows: 90-250 Hz by autocorrelation.
	var checked int
	for w := 0; w+2400 <= len(x) && checked < 20; w += 2400 {
		seg := x[w : w+2400]
		if rmsDB(seg) < -25 {
			continue
		}
		best, bestLag := math.Inf(-1), 0
		for lag := rate / 400; lag <= rate/70; lag++ {
			var s float64
			for i := 0; i+lag < len(seg); i++ {
				s += seg[i] * seg[i+lag]
			}
			if s > best {
				best, bestLag = s, lag
			}
		}
		if f0 := float64(rate) / float64(bestLag); f0 < 80 || f0 > 260 {
			t.Errorf("window at %.2f s: pitch %.0f Hz, want 100-220", float64(w)/rate, f0)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d loud windows checked", checked)
	}
}

func TestMicChannelDelays(t *testing.T) {
	m := NewMicArray(MicConfig{Seed: 11})
	p := m.Render(48000 * 3)
	ref := channel(p, 0)
	for c, want := range m.Delays() {
		x := channel(p, c)
		best, bestLag := math.Inf(-1), 0
		for lag := -20; lag <= 20; lag++ {
			var s float64
			for i := 100; i+100 < len(ref); i++ {
				s += ref[i] * x[i+lag]
			}
			if s > best {
				best, bestLag = s, lag
			}
		}
		if bestLag != want {
			t.Errorf("channel %d lags channel 0 by %d samples, want %d", c, bestLag, want)
		}
	}
}

func TestMicRunPacing(t *testing.T) {
	epoch := time.Now()
	m := NewMicArray(MicConfig{Seed: 5, Epoch: epoch})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type got struct {
		pts, at time.Duration
		data    []float32
	}
	var blocks []got
	err := m.Run(ctx, func(p media.PCM) {
		blocks = append(blocks, got{p.PTS, time.Since(epoch), slices.Clone(p.Samples)})
		if p.Channels != 4 || p.Rate != 48000 || p.Frames() != 480 {
			t.Errorf("block %d: %d ch, %d Hz, %d frames", len(blocks), p.Channels, p.Rate, p.Frames())
		}
		if len(blocks) == 30 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if len(blocks) != 30 {
		t.Fatalf("got %d blocks before the deadline, want 30", len(blocks))
	}
	want := NewMicArray(MicConfig{Seed: 5}).Render(30 * 480)
	for k, b := range blocks {
		if wantPTS := blocks[0].pts + time.Duration(k)*10*time.Millisecond; b.pts != wantPTS {
			t.Errorf("block %d PTS %v, want %v", k, b.pts, wantPTS)
		}
		if b.at < b.pts {
			t.Errorf("block %d with PTS %v delivered early, at %v", k, b.pts, b.at)
		}
		if !slices.Equal(b.data, want.Samples[k*480*4:(k+1)*480*4]) {
			t.Errorf("block %d differs from Render", k)
		}
	}
}

func TestMicRunLateStartAndOverrun(t *testing.T) {
	epoch := time.Now().Add(-2 * time.Second)
	m := NewMicArray(MicConfig{Epoch: epoch})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pts []time.Duration
	err := m.Run(ctx, func(p media.PCM) {
		pts = append(pts, p.PTS)
		if len(pts) == 1 {
			// A sink stuck for longer than the device buffer.
			time.Sleep(micMaxLag + 200*time.Millisecond)
		}
		if len(pts) == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if len(pts) != 3 {
		t.Fatalf("got %d blocks", len(pts))
	}
	if pts[0] < 2*time.Second-10*time.Millisecond {
		t.Errorf("first PTS %v, want the current time since epoch (>= 2s)", pts[0])
	}
	if gap := pts[1] - pts[0]; gap < micMaxLag {
		t.Errorf("after a stuck sink the PTS advanced by %v, want a jump over the lost blocks", gap)
	}
	if d := pts[2] - pts[1]; d != 10*time.Millisecond {
		t.Errorf("after the jump blocks are %v apart, want 10ms", d)
	}
}
