package button

import (
	"context"
	"testing"
	"time"
)

// run feeds edges given as offsets in ms (positive: press, negative:
// release; 0 is never used) and expires at every deadline until end.
func run(c *Classifier, steps []int, end time.Duration) []Event {
	t0 := time.Unix(1000, 0)
	var out []Event
	advance := func(to time.Time) {
		for {
			d, ok := c.Deadline()
			if !ok || d.After(to) {
				return
			}
			out = append(out, c.Expire(d)...)
		}
	}
	for _, s := range steps {
		pressed := s > 0
		if s < 0 {
			s = -s
		}
		at := t0.Add(time.Duration(s) * time.Millisecond)
		out = append(out, c.Feed(Edge{Pressed: pressed, At: at})...)
	}
	advance(t0.Add(end))
	return out
}

func kinds(evs []Event) []Kind {
	var k []Kind
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return k
}

func TestClassifier(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []int // ms: +press, -release
		want  []Kind
	}{
		{"tap", []int{100, -250}, []Kind{Tap}},
		{"two taps", []int{100, -250, 600, -700}, []Kind{Tap, Tap}},
		{"hold reported while held", []int{100}, []Kind{Hold}},
		{"hold then release is one hold", []int{100, -3000}, []Kind{Hold}},
		{"bounce on press and release is one tap", []int{100, -105, 108, -112, 115, -400, 405, -409}, []Kind{Tap}},
		{"glitch shorter than debounce is ignored", []int{100, -110}, nil},
		{"just under hold is a tap", []int{100, -2090}, []Kind{Tap}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := kinds(run(NewClassifier(30*time.Millisecond, 2*time.Second), tc.steps, 10*time.Second))
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestHoldReportsDuration(t *testing.T) {
	evs := run(NewClassifier(0, 0), []int{100}, 5*time.Second)
	if len(evs) != 1 || evs[0].Kind != Hold || evs[0].Held != DefaultHold {
		t.Fatalf("events %+v", evs)
	}
}

func TestRunEmitsTap(t *testing.T) {
	c := NewClassifier(5*time.Millisecond, time.Second)
	edges := make(chan Edge, 2)
	got := make(chan Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- c.Run(ctx, edges, func(e Event) { got <- e }) }()
	now := time.Now()
	edges <- Edge{Pressed: true, At: now}
	edges <- Edge{Pressed: false, At: now.Add(50 * time.Millisecond)}
	select {
	case e := <-got:
		if e.Kind != Tap {
			t.Fatalf("got %v", e.Kind)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no tap within 5 s")
	}
	cancel()
	<-done
}
