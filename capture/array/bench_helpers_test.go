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
}

func render(t testing.TB, r room.Room, seconds float64) scene {
	t.Helper()
	clean := room.Speech(seconds, r.Rate, r.Seed+1)
	mics, err := room.Render(r, clean)
	if err != nil {
		t.Fatal(err)
	}
	return scene{r, clean, mics}
}

// run processes the scene in 10 ms blocks and returns the mono output.
func run(t testing.TB, c *array.Chain, s scene) []float32 {
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

// bestMic returns the measurement of the best single capsule.
func bestMic(t testing.TB, s scene) room.Result {
	t.Helper()
	m := len(s.room.Mics)
	best := room.Result{SNRDB: math.Inf(-1)}
	for c := range m {
		ch := make([]float32, len(s.mics)/m)
		for i := range ch {
			ch[i] = s.mics[i*m+c]
		}
		r, err := room.Measure(s.clean, ch, s.room.Rate)
		if err != nil {
			t.Fatal(err)
		}
		if r.SNRDB > best.SNRDB {
			best = r
		}
	}
	return best
}

func measure(t testing.TB, s scene, out []float32) room.Result {
	t.Helper()
	r, err := room.Measure(s.clean, out, s.room.Rate)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
