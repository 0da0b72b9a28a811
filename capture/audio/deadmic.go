package audio

import (
	"math"
	"sync"
	"time"
)

// Default thresholds of the dead-microphone detector. A working capsule in
// an array hears what its neighbours hear, give or take the array's size
// and directivity (well under 20 dB); a capsule that stays 20 dB or more
// below a neighbour carrying speech for a minute is broken, disconnected
// or covered. A quiet room proves nothing: while no channel carries sound,
// nothing counts for or against a channel.
const (
	// DeadSilentDBFS: a channel whose RMS is below this is silent. MEMS
	// capsules have a self-noise around -80 to -90 dBFS, so a working one
	// in a quiet room can be "silent"; it must not be when a neighbour is
	// above DeadSoundDBFS.
	DeadSilentDBFS = -75.0
	// DeadSoundDBFS: a channel whose RMS is above this carries sound
	// (speech at a few metres is around -50 to -30 dBFS).
	DeadSoundDBFS = -55.0
	// DeadClearDBFS: a dead channel whose RMS rises above this is back.
	// It sits above DeadSilentDBFS so that a dead channel whose noise
	// floor hovers at the silent threshold does not flap.
	DeadClearDBFS = -65.0
	// DeadAfter is how long a channel must be silent while another
	// carries sound before it is reported dead.
	DeadAfter = 60 * time.Second
	// DeadMaxStep is the longest gap between two observations that counts
	// in full (the meter reports every 100 ms; a stall is not evidence).
	DeadMaxStep = time.Second
)

// DeadMicConfig tunes a DeadMicDetector; zero fields take the defaults
// above (0 dBFS is no useful threshold).
type DeadMicConfig struct {
	SilentDBFS, SoundDBFS, ClearDBFS float64
	After, MaxStep                   time.Duration
}

// DeadChannel is a channel reported dead.
type DeadChannel struct {
	Channel int
	Since   time.Duration // first observation of the silence that made it dead
}

// DeadMicDetector finds capsules of a microphone array that have gone
// silent while the others still hear the room. Feed it the Meter's levels
// every 100 ms with Observe; a channel is reported dead once it has been
// silent (RMS below SilentDBFS) without a break while some other channel
// carried sound (RMS above SoundDBFS) for a total of After; only the time
// between observations in which another channel carried sound counts, so
// pauses in speech delay the alarm but do not reset it. Any observation of
// the channel at or above SilentDBFS ends its silence; a dead channel is
// cleared when its RMS rises above ClearDBFS. Methods are safe for
// concurrent use.
type DeadMicDetector struct {
	cfg DeadMicConfig

	mu      sync.Mutex
	ch      []deadState
	last    time.Duration
	started bool
}

type deadState struct {
	silent   bool
	since    time.Duration // start of the current silence
	evidence time.Duration // time of that silence with another channel loud
	dead     bool
}

// NewDeadMicDetector returns a detector with cfg's thresholds.
func NewDeadMicDetector(cfg DeadMicConfig) *DeadMicDetector {
	if cfg.SilentDBFS == 0 {
		cfg.SilentDBFS = DeadSilentDBFS
	}
	if cfg.SoundDBFS == 0 {
		cfg.SoundDBFS = DeadSoundDBFS
	}
	if cfg.ClearDBFS == 0 {
		cfg.ClearDBFS = DeadClearDBFS
	}
	cfg.ClearDBFS = max(cfg.ClearDBFS, cfg.SilentDBFS)
	if cfg.After <= 0 {
		cfg.After = DeadAfter
	}
	if cfg.MaxStep <= 0 {
		cfg.MaxStep = DeadMaxStep
	}
	return &DeadMicDetector{cfg: cfg}
}

// Observe takes one window of per-channel levels measured at at (on any
// monotonic timeline, normally the pipeline's). A change in the number of
// channels starts over; an at earlier than the previous one counts as no
// time.
func (d *DeadMicDetector) Observe(levels []Level, at time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(levels) != len(d.ch) {
		d.ch = make([]deadState, len(levels))
		d.started = false
	}
	var dt time.Duration
	if d.started {
		dt = min(max(at-d.last, 0), d.cfg.MaxStep)
	}
	d.last, d.started = at, true

	// How many channels carry sound.
	loud := 0
	for _, l := range levels {
		if levelRMS(l) > d.cfg.SoundDBFS {
			loud++
		}
	}
	for c := range d.ch {
		s, l := &d.ch[c], levelRMS(levels[c])
		if s.dead {
			if l > d.cfg.ClearDBFS {
				*s = deadState{}
			}
			continue
		}
		if l >= d.cfg.SilentDBFS {
			*s = deadState{}
			continue
		}
		if !s.silent {
			// The silence began somewhere in the last interval: count
			// from this observation.
			*s = deadState{silent: true, since: at}
			continue
		}
		others := loud
		if l > d.cfg.SoundDBFS {
			others-- // only with a sound threshold below the silent one
		}
		if others > 0 {
			s.evidence += dt
		}
		if s.evidence >= d.cfg.After {
			s.dead = true
		}
	}
}

// levelRMS returns the RMS level, NaN read as digital silence.
func levelRMS(l Level) float64 {
	if math.IsNaN(l.RMSDBFS) {
		return FloorDBFS
	}
	return l.RMSDBFS
}

// Alarms returns the indexes of the dead channels in increasing order (nil
// when none).
func (d *DeadMicDetector) Alarms() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []int
	for c, s := range d.ch {
		if s.dead {
			out = append(out, c)
		}
	}
	return out
}

// Dead returns the dead channels with the time each went silent, in
// channel order (nil when none).
func (d *DeadMicDetector) Dead() []DeadChannel {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []DeadChannel
	for c, s := range d.ch {
		if s.dead {
			out = append(out, DeadChannel{Channel: c, Since: s.since})
		}
	}
	return out
}
