package led

import (
	"context"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	set []Color
}

func (r *recorder) Set(c Color) error {
	r.mu.Lock()
	r.set = append(r.set, c)
	r.mu.Unlock()
	return nil
}

func (r *recorder) snapshot() []Color {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Color(nil), r.set...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDriverPlaysPatterns(t *testing.T) {
	for _, tc := range []struct {
		mono    bool
		pattern Pattern
		want    []Color // the first colours shown
	}{
		{false, Recording, []Color{Red}},
		{true, Recording, []Color{On}},
		{false, Idle, []Color{Green}},
		{true, Idle, []Color{Off}},
		{false, Stopping, []Color{Red, Off, Red, Off}},
		{false, Error, []Color{Yellow, Off, Yellow}},
		{true, Error, []Color{On, Off, On, Off, On}},
	} {
		t.Run(tc.pattern.Name, func(t *testing.T) {
			out := &recorder{}
			d := NewDriver(out, tc.mono)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- d.Run(ctx) }()
			waitFor(t, "the dark pattern", func() bool { return len(out.snapshot()) > 0 })
			d.Show(tc.pattern)
			waitFor(t, "pattern steps", func() bool {
				s := out.snapshot()
				i := lastIndexOfStart(s, tc.want[0])
				return i >= 0 && len(s)-i >= len(tc.want)
			})
			s := out.snapshot()
			i := lastIndexOfStart(s, tc.want[0])
			for j, c := range tc.want {
				if s[i+j] != c {
					t.Fatalf("steps %v, want %v from index %d", s, tc.want, i)
				}
			}
			if p, _ := d.Current(); p.Name != tc.pattern.Name {
				t.Fatalf("current pattern %q", p.Name)
			}
			cancel()
			<-done
			if s := out.snapshot(); s[len(s)-1] != Off {
				t.Fatalf("LED not off after Run: %v", s)
			}
		})
	}
}

// lastIndexOfStart finds where the pattern began: the first colour shown
// after the initial Dark pattern.
func lastIndexOfStart(s []Color, first Color) int {
	for i := 1; i < len(s); i++ {
		if s[i] == first {
			return i
		}
	}
	return -1
}

func TestReplaceOnlyFromTheGivenPattern(t *testing.T) {
	d := NewDriver(nil, false)
	d.Show(Recording)
	if d.Replace(Idle, EnrollRefused) {
		t.Error("replaced the recording pattern")
	}
	if p, _ := d.Current(); p.Name != Recording.Name {
		t.Errorf("showing %s, want recording", p.Name)
	}
	d.Show(Idle)
	if !d.Replace(Idle, EnrollRefused) {
		t.Error("did not replace idle")
	}
	if p, _ := d.Current(); p.Name != EnrollRefused.Name {
		t.Errorf("showing %s, want enroll-refused", p.Name)
	}
}
