package recorder

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/device/button"
	"github.com/classcap/classcap/device/led"
)

type startOutcome struct {
	res StartResult
	err error
}

// remoteStart sends a remote start from a goroutine, as the uplink does.
func (g *rig) remoteStart(req RemoteStartRequest) <-chan startOutcome {
	out := make(chan startOutcome, 1)
	go func() {
		res, err := g.r.RemoteStart(context.Background(), req)
		out <- startOutcome{res, err}
	}()
	return out
}

func (g *rig) waitRemote() Status {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := g.r.Status()
		if s.RemoteStart != nil {
			return s
		}
		if time.Now().After(deadline) {
			g.t.Fatal("the remote start was not shown")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *rig) outcome(ch <-chan startOutcome) startOutcome {
	g.t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		g.t.Fatal("the remote start got no answer")
	}
	return startOutcome{}
}

func (g *rig) ledNames() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.leds)
}

func TestRemoteStartBeginsAfterTheVetoWindow(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(20)
	ch := g.remoteStart(RemoteStartRequest{StartRequest: StartRequest{By: "hub:coach:alice", Visibility: lesson.VisibilityCoaching},
		ID: "c-1", Veto: 300 * time.Millisecond})
	s := g.waitRemote()
	if s.State != StateIdle || s.RemoteStart.ID != "c-1" || s.RemoteStart.By != "hub:coach:alice" || s.RemoteStart.Visibility != "coaching" {
		t.Fatalf("status while the teacher may veto: %+v %+v", s, s.RemoteStart)
	}
	if got := g.lastLED(); got != led.Pending.Name {
		t.Fatalf("LED %q while the remote start waits, want %q", got, led.Pending.Name)
	}
	o := g.outcome(ch)
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.res.LessonID == "" || o.res.VetoWaited < 300*time.Millisecond {
		t.Fatalf("result %+v: want a lesson, begun after the window", o.res)
	}
	s = g.waitState(StateRecording)
	if s.RemoteStart != nil || s.StartedBy != "hub:coach:alice" || s.Visibility != "coaching" {
		t.Fatalf("recording status %+v", s)
	}
	leds := g.ledNames()
	if i, j := slices.Index(leds, led.Pending.Name), slices.Index(leds, led.Recording.Name); i < 0 || j < i {
		t.Fatalf("LED sequence %v: the pending pattern must come before recording", leds)
	}
	// A remote stop keeps what was recorded.
	g.pump(60)
	m, err := g.r.Stop(context.Background(), StopRequest{By: "hub:coach:alice", Reason: "remote"})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := g.store.Load(o.res.LessonID)
	if err != nil || loaded.State != lesson.StateComplete || len(loaded.Segments) == 0 || loaded.StartedBy != "hub:coach:alice" {
		t.Fatalf("lesson after a remote stop: %+v, %v (stop returned %d segments)", loaded, err, len(m.Segments))
	}
}

func TestHoldDeclinesRemoteStart(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(20)
	ch := g.remoteStart(RemoteStartRequest{StartRequest: StartRequest{By: "hub:coach:bob"}, ID: "c-2", Veto: time.Hour})
	g.waitRemote()
	if err := g.r.Button(context.Background(), button.Event{Kind: button.Hold, Held: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	o := g.outcome(ch)
	if !errors.Is(o.err, ErrDeclined) || o.err.Error() != "declined by the teacher" {
		t.Fatalf("declined start returned %v", o.err)
	}
	s := g.r.Status()
	if s.State != StateIdle || s.RemoteStart != nil {
		t.Fatalf("status after the decline %+v", s)
	}
	if got := g.lastLED(); got != led.Idle.Name {
		t.Fatalf("LED %q after the decline", got)
	}
	if ids, _ := g.store.IDs(); len(ids) != 0 {
		t.Fatalf("a declined start left lessons %v", ids)
	}
	// The button works as usual afterwards: a tap starts a lesson of its own.
	if err := g.r.Button(context.Background(), button.Event{Kind: button.Tap}); err != nil {
		t.Fatal(err)
	}
	if s := g.waitState(StateRecording); s.StartedBy != "button" {
		t.Fatalf("tap after the decline: %+v", s)
	}
}

func TestTapAcceptsRemoteStartAtOnce(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(20)
	ch := g.remoteStart(RemoteStartRequest{StartRequest: StartRequest{By: "hub:coach:carol", Visibility: lesson.VisibilityLibrary},
		ID: "c-3", Veto: time.Hour})
	g.waitRemote()
	if err := g.r.Button(context.Background(), button.Event{Kind: button.Tap}); err != nil {
		t.Fatal(err)
	}
	o := g.outcome(ch)
	if o.err != nil || o.res.LessonID == "" || o.res.VetoWaited >= time.Hour {
		t.Fatalf("tap-accepted start: %+v, %v", o.res, o.err)
	}
	if s := g.waitState(StateRecording); s.StartedBy != "hub:coach:carol" || s.Visibility != lesson.VisibilityLibrary {
		t.Fatalf("status %+v", s)
	}
}

func TestRemoteStartRefusals(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(20)
	ctx := context.Background()

	// Already past its deadline.
	_, err := g.r.RemoteStart(ctx, RemoteStartRequest{StartRequest: StartRequest{By: "x"}, ID: "old", Veto: time.Second,
		Deadline: time.Now().Add(-time.Second)})
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("expired request: %v", err)
	}
	// A bad visibility.
	_, err = g.r.RemoteStart(ctx, RemoteStartRequest{StartRequest: StartRequest{By: "x", Visibility: "public"}, ID: "v", Veto: time.Second})
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad visibility: %v", err)
	}

	// While one waits, a second remote start and a local start are busy.
	ch := g.remoteStart(RemoteStartRequest{StartRequest: StartRequest{By: "a"}, ID: "first", Veto: time.Hour})
	g.waitRemote()
	if _, err := g.r.RemoteStart(ctx, RemoteStartRequest{StartRequest: StartRequest{By: "b"}, ID: "second", Veto: time.Hour}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second remote start: %v", err)
	}
	if _, err := g.r.Start(ctx, StartRequest{By: "cli"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("local start while a remote one waits: %v", err)
	}
	if err := g.r.Identify(ctx, time.Second); !errors.Is(err, ErrBusy) {
		t.Fatalf("identify while a remote start waits: %v", err)
	}
	// A stop during the window cancels it; nothing was recorded.
	if _, err := g.r.Stop(ctx, StopRequest{By: "hub:coach:a"}); err != nil {
		t.Fatal(err)
	}
	if o := g.outcome(ch); !errors.Is(o.err, ErrCancelled) {
		t.Fatalf("start stopped during the window: %v", o.err)
	}
	if ids, _ := g.store.IDs(); len(ids) != 0 {
		t.Fatalf("lessons %v", ids)
	}

	// A deadline that falls inside the veto window expires the start.
	ch = g.remoteStart(RemoteStartRequest{StartRequest: StartRequest{By: "a"}, ID: "late", Veto: 200 * time.Millisecond,
		Deadline: time.Now().Add(50 * time.Millisecond)})
	if o := g.outcome(ch); !errors.Is(o.err, ErrExpired) {
		t.Fatalf("start whose deadline fell in the window: %v", o.err)
	}
	if s := g.r.Status(); s.State != StateIdle || s.RemoteStart != nil {
		t.Fatalf("status %+v", s)
	}

	// While recording, a remote start is refused.
	if _, err := g.r.Start(ctx, StartRequest{By: "cli"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.RemoteStart(ctx, RemoteStartRequest{StartRequest: StartRequest{By: "a"}, ID: "rec", Veto: time.Second}); !errors.Is(err, ErrRecording) {
		t.Fatalf("remote start while recording: %v", err)
	}
}

func TestNoVetoWindowStartsAtOnce(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(20)
	res, err := g.r.RemoteStart(context.Background(), RemoteStartRequest{StartRequest: StartRequest{By: "hub:bench"}, ID: "now"})
	if err != nil || res.LessonID == "" {
		t.Fatalf("start without a window: %+v, %v", res, err)
	}
	if slices.Contains(g.ledNames(), led.Pending.Name) {
		t.Fatal("the pending pattern was shown without a veto window")
	}
}

func TestIdentifyBlinksThenRestores(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(5)
	if err := g.r.Identify(context.Background(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := g.lastLED(); got != led.Identify.Name {
		t.Fatalf("LED %q during identify", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.lastLED() != led.Idle.Name {
		if time.Now().After(deadline) {
			t.Fatalf("LED %v: identify never ended", g.ledNames())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := g.r.Start(context.Background(), StartRequest{By: "cli"}); err != nil {
		t.Fatal(err)
	}
	if err := g.r.Identify(context.Background(), time.Second); !errors.Is(err, ErrBusy) {
		t.Fatalf("identify while recording: %v", err)
	}
}

func TestNoticesFollowTheLesson(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(20)
	res, err := g.r.RemoteStart(context.Background(), RemoteStartRequest{StartRequest: StartRequest{By: "hub:coach:d"}, ID: "n"})
	if err != nil {
		t.Fatal(err)
	}
	g.pump(100) // about three 1 s segments
	m, err := g.r.Stop(context.Background(), StopRequest{By: "hub:coach:d", Reason: "remote"})
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	notices := slices.Clone(g.notices)
	g.mu.Unlock()
	var kinds []string
	var segs []string
	for _, n := range notices {
		kinds = append(kinds, n.Kind)
		if n.Meta.ID != res.LessonID {
			t.Fatalf("notice %s for lesson %s, want %s", n.Kind, n.Meta.ID, res.LessonID)
		}
		if n.Kind == NoticeSegmentClosed {
			segs = append(segs, n.Segment.Name)
		}
	}
	if len(kinds) < 3 || kinds[0] != NoticeLessonStarted || kinds[len(kinds)-1] != NoticeLessonStopped {
		t.Fatalf("notices %v", kinds)
	}
	var want []string
	for _, s := range m.Segments {
		want = append(want, s.Name)
	}
	if !slices.Equal(segs, want) {
		t.Fatalf("segment notices %v, want every segment once in order %v", segs, want)
	}
	if last := notices[len(notices)-1]; last.Meta.Stop == nil || last.Meta.Stop.By != "hub:coach:d" {
		t.Fatalf("stop notice %+v", last.Meta.Stop)
	}
}
