package audio

import (
	"math"
	"sync"

	"github.com/classcap/classcap/capture/media"
)

// FloorDBFS is the level reported for digital silence.
const FloorDBFS = -120.0

// Level is the level of one channel over one window, in dB relative to full
// scale (a full-scale square wave has RMS 0 dBFS, a full-scale sine -3 dBFS).
type Level struct {
	PeakDBFS float64
	RMSDBFS  float64
}

// Meter measures per-channel peak and RMS levels over consecutive 100 ms
// windows. Write is called from the audio path; Levels may be called from
// any goroutine.
type Meter struct {
	ch, window int // channels, frames per window

	n     int       // frames in the current window
	peak  []float32 // current window, per channel
	sumSq []float64

	mu      sync.Mutex
	last    []Level // last complete window; nil before the first
	windows uint64  // complete windows so far
}

// NewMeter returns a meter for PCM with channels channels at rate Hz.
// Values below 1 are taken as 1.
func NewMeter(channels, rate int) *Meter {
	channels = max(channels, 1)
	return &Meter{
		ch:     channels,
		window: max(rate/10, 1),
		peak:   make([]float32, channels),
		sumSq:  make([]float64, channels),
	}
}

// Write adds p to the measurement. p must have the meter's channel count;
// extra channels are ignored, missing ones count as silence. Samples are
// clamped to [-1, 1].
func (m *Meter) Write(p media.PCM) {
	if p.Channels <= 0 {
		return
	}
	frames := p.Frames()
	use := min(p.Channels, m.ch)
	for off := 0; off < frames; {
		// Up to the end of the window, one channel at a time.
		k := min(frames-off, m.window-m.n)
		run := p.Samples[off*p.Channels : (off+k)*p.Channels]
		for c := range use {
			peak, sum := m.peak[c], m.sumSq[c]
			for i := c; i < len(run); i += p.Channels {
				v := clamp1(run[i])
				if v < 0 {
					v = -v
				}
				peak = max(peak, v)
				sum += float64(v) * float64(v)
			}
			m.peak[c], m.sumSq[c] = peak, sum
		}
		off += k
		m.n += k
		if m.n == m.window {
			m.finish()
		}
	}
}

// finish publishes the current window and starts the next one.
func (m *Meter) finish() {
	m.mu.Lock()
	if m.last == nil {
		m.last = make([]Level, m.ch)
	}
	for c := range m.ch {
		m.last[c] = Level{
			PeakDBFS: toDBFS(float64(m.peak[c])),
			RMSDBFS:  toDBFS(math.Sqrt(m.sumSq[c] / float64(m.n))),
		}
	}
	m.windows++
	m.mu.Unlock()
	clear(m.peak)
	clear(m.sumSq)
	m.n = 0
}

// Windows returns how many windows have completed: Levels changes only
// when this count does.
func (m *Meter) Windows() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.windows
}

// Levels returns a copy of the levels of the last complete window, one per
// channel, or nil before the first window completes.
func (m *Meter) Levels() []Level {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		return nil
	}
	return append([]Level(nil), m.last...)
}

func toDBFS(a float64) float64 {
	if a <= 0 {
		return FloorDBFS
	}
	return max(20*math.Log10(a), FloorDBFS)
}
