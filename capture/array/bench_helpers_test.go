package array_test

import (
	"math"
	"testing"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/array/room"
	"github.com/classcap/classcap/capture/media"
)

// scene is a rendered room with its clean speech.
type scene struct {
	room  room.Room
	clean []float64
	mics  []float32
	// ref is the reference of the best capsule (see room.Reference),
	// found by bestMic; nil until then.
	ref    []float64
	best   room.Result
	bestCh int
}

func render(t testing.TB, r room.Room, seconds float64) *scene {
	t.Helper()
	clean := room.Speech(seconds, r.Rate, r.Seed+1)
	mics, err := room.Render(r, clean)
	if err != nil {
		t.Fatal(err)
	}
	return &scene{room: r, clean: clean, mics: mics}
}

// run processes the scene in 10 ms blocks and returns the mono output.
func run(t testing.TB, c *array.Chain, s *scene) []float32 {
	t.Helper()
	m := len(s.room.Mics)
	block := s.room.Rate / 100
	var out []float32
	for i := 0; i < len(s.mics)/m; i += block {
		e := min(i+block, len(s.mics)/m)
		p, err := c.Process(media.PCM{Samples: s.mics[i*m : e*m], Channels: m, Rate: s.room.Rate})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Samples...)
	}
	return out
}

// bestMic returns the measurement of the best single capsule, each
// measured against its own reference.
func bestMic(t testing.TB, s *scene) room.Result {
	t.Helper()
	if s.ref != nil {
		return s.best
	}
	m := len(s.room.Mics)
	s.best = room.Result{SNRDB: math.Inf(-1)}
	for c := range m {
		ch := make([]float32, len(s.mics)/m)
		for i := range ch {
			ch[i] = s.mics[i*m+c]
		}
		ref, err := room.Reference(s.room, s.clean, c)
		if err != nil {
			t.Fatal(err)
		}
		r, err := room.Measure(ref, ch, s.room.Rate)
		if err != nil {
			t.Fatal(err)
		}
		if r.SNRDB > s.best.SNRDB {
			s.best, s.ref, s.bestCh = r, ref, c
		}
	}
	return s.best
}

// measure measures an output against the best capsule's reference (the
// clean speech in a free-field room).
func measure(t testing.TB, s *scene, out []float32) room.Result {
	t.Helper()
	ref := s.clean
	if room.Reverberant(s.room.Noise) {
		bestMic(t, s)
		ref = s.ref
	}
	r, err := room.Measure(ref, out, s.room.Rate)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
