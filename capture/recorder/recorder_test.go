package recorder

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/device/button"
	"github.com/classcap/classcap/device/led"
)

type rig struct {
	t       *testing.T
	r       *Recorder
	store   *lesson.Store
	cat     *catalog.Catalog
	video   chan media.AccessUnit
	audio   chan media.AudioPacket
	raw     chan media.PCM
	free    uint64
	mu      sync.Mutex
	leds    []string
	notices []Notice
	cancel  context.CancelFunc
	done    chan error
	aus     []media.AccessUnit
	next    int
	forceKF bool
	faults  map[string]string
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRig(t *testing.T, dir string, forceKF bool) *rig {
	t.Helper()
	g := &rig{t: t, video: make(chan media.AccessUnit), audio: make(chan media.AudioPacket), raw: make(chan media.PCM),
		free: 10 << 30, forceKF: forceKF}
	var err error
	g.store, err = lesson.NewStore(filepath.Join(dir, "lessons"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	g.cat, err = catalog.Open(filepath.Join(dir, "catalog.db"), g.store, quiet())
	if err != nil {
		t.Fatal(err)
	}
	g.aus, _ = mediatest.H264(t, 4, 30, 15)
	g.r = New(Config{Device: "room-101", SegmentDuration: time.Second, MinFreeBytes: 1 << 30, StopFreeBytes: 100 << 20,
		ResumeAfterCrash: true, FirstFrameTimeout: 2 * time.Second},
		Deps{Store: g.store, Catalog: g.cat, Input: Input{Video: g.video, Audio: g.audio, Raw: g.raw},
			ForceKeyframe: func() bool { return g.forceKF },
			ShowLED: func(p led.Pattern) {
				g.mu.Lock()
				g.leds = append(g.leds, p.Name)
				g.mu.Unlock()
			},
			Notify:    func(n Notice) { g.mu.Lock(); g.notices = append(g.notices, n); g.mu.Unlock() },
			FreeBytes: func() (uint64, error) { g.mu.Lock(); defer g.mu.Unlock(); return g.free, nil },
			Now:       func() lesson.Clock { return lesson.Clock{BootID: "b", BootTime: 1} },
			Faults: func() map[string]string {
				g.mu.Lock()
				defer g.mu.Unlock()
				out := map[string]string{}
				for k, v := range g.faults {
					out[k] = v
				}
				return out
			},
			Log: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.done = make(chan error, 1)
	go func() { g.done <- g.r.Run(ctx) }()
	t.Cleanup(g.close)
	return g
}

func (g *rig) close() {
	if g.cancel != nil {
		g.cancel()
		<-g.done
		g.cancel = nil
		g.cat.Close()
	}
}

// crash abandons the lesson being recorded as a killed process would leave
// it, stops the recorder, and returns the lesson's id.
func (g *rig) crash(ctx context.Context) string {
	g.t.Helper()
	id := g.r.Status().Lesson
	if id == "" {
		g.t.Fatal("no lesson")
	}
	if _, err := g.r.do(ctx, command{abandon: true}); err != nil {
		g.t.Fatal(err)
	}
	g.close()
	return id
}

// pump delivers n pictures (with their audio) as a camera would; the
// stream's PTS keeps counting across calls, the test stream loops.
func (g *rig) pump(n int) {
	for i := 0; i < n; i++ {
		k := g.next
		g.next++
		au := g.aus[k%len(g.aus)]
		au.PTS = time.Duration(k) * time.Second / 30
		if k%len(g.aus) == 0 {
			au.IDR = true
		}
		for a := au.PTS - au.PTS%(20*time.Millisecond); a < au.PTS+33*time.Millisecond; a += 20 * time.Millisecond {
			if a%(20*time.Millisecond) == 0 && a >= au.PTS {
				g.audio <- media.AudioPacket{Data: mediatest.SilentOpus, PTS: a, Samples: 960, Channels: 1}
			}
		}
		g.video <- au
	}
}

// frame returns picture k of the rig's stream at 30 fps (k a multiple of
// the stream's length is a keyframe).
func (g *rig) frame(k int) media.AccessUnit {
	au := g.aus[k%len(g.aus)]
	au.PTS = time.Duration(k) * time.Second / 30
	au.IDR = au.IDR || k%len(g.aus) == 0
	return au
}

// stopWaiting asks for a stop and returns once the recorder waits for
// sound (StateStopping); the channel gets the closed lesson.
func (g *rig) stopWaiting(t *testing.T, ctx context.Context) <-chan lesson.Meta {
	t.Helper()
	stopped := make(chan lesson.Meta, 1)
	go func() {
		m, err := g.r.Stop(ctx, StopRequest{By: "cli"})
		if err != nil {
			t.Error(err)
		}
		stopped <- m
	}()
	g.waitState(StateStopping)
	return stopped
}

func (g *rig) waitState(state string) Status {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := g.r.Status()
		if s.State == state {
			return s
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("state %q, want %q", s.State, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStartStopFromCachedGOP(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(20) // idle: pictures since the last keyframe are kept
	ctx := context.Background()
	res := make(chan StartResult, 1)
	go func() {
		r, err := g.r.Start(ctx, StartRequest{By: "cli", Visibility: lesson.VisibilityCoaching})
		if err != nil {
			t.Error(err)
		}
		res <- r
	}()
	var started StartResult
	select {
	case started = <-res:
	case <-time.After(10 * time.Second):
		t.Fatal("start did not return")
	}
	if started.LessonID == "" {
		t.Fatal("no lesson id")
	}
	if _, err := g.r.Start(ctx, StartRequest{By: "cli"}); !errors.Is(err, ErrRecording) {
		t.Fatalf("second start: %v", err)
	}
	g.pump(90)
	m, err := g.r.Stop(ctx, StopRequest{By: "cli", Reason: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != started.LessonID || m.State != lesson.StateComplete || m.Visibility != lesson.VisibilityCoaching {
		t.Fatalf("lesson %+v", m)
	}
	// The lesson began at the cached keyframe (picture 15), before the
	// start, and holds everything since: 110 - 15 pictures.
	if m.Duration < 3.1 || m.Duration > 3.25 {
		t.Fatalf("duration %.3f, want about 3.17 s", m.Duration)
	}
	mediatest.DecodeClean(t, filepath.Join(g.store.Dir(m.ID), lesson.PlaylistName))
	ls, _ := g.cat.Lessons()
	if len(ls) != 1 || ls[0].State != lesson.StateComplete || ls[0].Segments != len(m.Segments) {
		t.Fatalf("catalog %+v", ls)
	}
	if _, err := g.r.Stop(ctx, StopRequest{By: "cli"}); !errors.Is(err, ErrNotRecording) {
		t.Fatalf("stop when idle: %v", err)
	}
	g.waitState(StateIdle)
}

func TestForcedKeyframeStartAndButton(t *testing.T) {
	g := newRig(t, t.TempDir(), true)
	g.pump(20)
	ctx := context.Background()
	if err := g.r.Button(ctx, button.Event{Kind: button.Tap}); err != nil {
		t.Fatal(err)
	}
	g.waitState(StateRecording)
	// The stream's next keyframe is picture 30 (the test stream loops
	// every 120 pictures with IDRs every 15); pictures before it are
	// skipped.
	g.pump(100)
	if err := g.r.Button(ctx, button.Event{Kind: button.Tap}); err != nil {
		t.Fatal(err)
	}
	g.waitState(StateIdle)
	ls, _ := g.store.List()
	if len(ls) != 1 || ls[0].StartedBy != "button" || ls[0].Stop.By != "button" {
		t.Fatalf("lessons %+v", ls)
	}
	if d := ls[0].Duration; d < 2.9 || d > 3.1 {
		t.Fatalf("duration %.3f, want 3 s (pictures 30..119)", d)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	want := []string{"idle", "recording", "stopping", "idle"}
	if len(g.leds) < len(want) {
		t.Fatalf("LED %v", g.leds)
	}
	for i, w := range want {
		if g.leds[len(g.leds)-len(want)+i] != w {
			t.Fatalf("LED %v, want it to end with %v", g.leds, want)
		}
	}
}

func TestRefusesWithLowDisk(t *testing.T) {
	g := newRig(t, t.TempDir(), true)
	g.mu.Lock()
	g.free = 200 << 20
	g.mu.Unlock()
	_, err := g.r.Start(context.Background(), StartRequest{By: "cli"})
	if !errors.Is(err, ErrDiskLow) {
		t.Fatalf("err %v", err)
	}
	s := g.waitState(StateError)
	if s.Reason == "" {
		t.Fatal("error state without a reason")
	}
	g.mu.Lock()
	last := g.leds[len(g.leds)-1]
	g.free = 10 << 30
	g.mu.Unlock()
	if last != led.Error.Name {
		t.Fatalf("LED %s", last)
	}
	// Space is back: the box returns to idle by itself.
	g.waitState(StateIdle)
	if ls, _ := g.store.IDs(); len(ls) != 0 {
		t.Fatalf("lessons created: %v", ls)
	}
}

func TestStopsCleanlyWhenDiskFills(t *testing.T) {
	g := newRig(t, t.TempDir(), true)
	ctx := context.Background()
	go g.r.Start(ctx, StartRequest{By: "cli"})
	g.waitState(StateRecording)
	g.pump(60)
	g.mu.Lock()
	g.free = 50 << 20
	g.mu.Unlock()
	s := g.waitState(StateError)
	ls, _ := g.store.List()
	if len(ls) != 1 || ls[0].State != lesson.StateComplete || s.Reason == "" {
		t.Fatalf("lessons %+v status %+v", ls, s)
	}
	mediatest.DecodeClean(t, filepath.Join(g.store.Dir(ls[0].ID), lesson.PlaylistName))
}

func TestResumesLessonLeftOpen(t *testing.T) {
	dir := t.TempDir()
	g := newRig(t, dir, true)
	ctx := context.Background()
	go g.r.Start(ctx, StartRequest{By: "hub:coach", Visibility: lesson.VisibilityLibrary})
	g.waitState(StateRecording)
	g.pump(80)
	// Simulate a crash, then start a new recorder on the same folders.
	id := g.crash(ctx)

	g2 := newRig(t, dir, true)
	s := g2.waitState(StateRecording)
	g2.pump(90)
	deadline := time.Now().Add(10 * time.Second)
	for g2.r.Status().Lesson == "" {
		if time.Now().After(deadline) {
			t.Fatal("resumed lesson never took a picture")
		}
		g2.pump(1)
	}
	g2.pump(40)
	s = g2.r.Status()
	if s.Lesson != id || !s.Resumed {
		t.Fatalf("status %+v, want lesson %s resumed", s, id)
	}
	m, err := g2.r.Stop(ctx, StopRequest{By: "cli", Reason: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Gaps) != 1 || m.Visibility != lesson.VisibilityLibrary || m.StartedBy != "hub:coach" {
		t.Fatalf("lesson %+v", m)
	}
	mediatest.DecodeClean(t, filepath.Join(g2.store.Dir(id), lesson.PlaylistName))
}

func TestEmptyInterruptedLessonIsRemoved(t *testing.T) {
	dir := t.TempDir()
	store, _ := lesson.NewStore(filepath.Join(dir, "lessons"), quiet())
	_, vp := mediatest.H264(t, 1, 30, 30)
	cfg := lesson.WriterConfig{SegmentDuration: time.Second, Video: vp, AudioChannels: 1,
		Now: func() lesson.Clock { return lesson.Clock{} }}
	// Two lessons a crash left open before any media reached disk.
	for n := 1; n <= 2; n++ {
		r, err := store.Create(lesson.Meta{ID: lesson.NewID(n), Number: n, Visibility: lesson.VisibilityPrivate}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.Abandon()
	}
	g := newRig(t, dir, true)
	g.waitState(StateRecording) // the newer one is continued
	ids, _ := g.store.IDs()
	if len(ids) != 1 {
		t.Fatalf("lessons on disk %v, want only the continued one", ids)
	}
	if n, _ := lesson.NumberOf(ids[0]); n != 2 {
		t.Fatalf("kept %s, want lesson 2", ids[0])
	}
}

// TestStopWaitsForLateSound: sound reaches the recorder after the pictures
// of the same moment; a stop keeps the sound of the last pictures (it waits
// for it, briefly), and records no picture after the stop.
func TestStopWaitsForLateSound(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	ctx := context.Background()
	const lag = 200 * time.Millisecond
	frame := g.frame
	nextA := time.Duration(0)
	soundUntil := func(end time.Duration) {
		for ; nextA+20*time.Millisecond <= end; nextA += 20 * time.Millisecond {
			g.audio <- media.AudioPacket{Data: mediatest.SilentOpus, PTS: nextA, Samples: 960, Channels: 1}
		}
	}
	g.video <- frame(0) // kept while idle: the lesson begins with it
	if _, err := g.r.Start(ctx, StartRequest{By: "cli"}); err != nil {
		t.Fatal(err)
	}
	const frames = 75
	for k := 1; k < frames; k++ {
		au := frame(k)
		soundUntil(au.PTS - lag)
		g.video <- au
	}
	stopped := g.stopWaiting(t, ctx)
	// Pictures after the stop are not recorded; the late sound is.
	g.video <- frame(frames)
	soundUntil(frame(frames-1).PTS + 40*time.Millisecond)
	m := <-stopped
	if m.State != lesson.StateComplete {
		t.Fatalf("lesson %+v", m)
	}
	v, a := mediatest.Durations(t, mediatest.Concat(t, g.store.Dir(m.ID)))
	if want := float64(frames) / 30; v < want-0.001 || v > want+0.001 {
		t.Fatalf("video %.3f s, want %.3f s (the pictures before the stop)", v, want)
	}
	if d := v - a; d > 0.04 || d < -0.04 {
		t.Fatalf("video %.3f s, audio %.3f s: the sound of the last pictures is missing", v, a)
	}
}

// TestStopDoesNotWaitForeverForSound: a stop with the sound stalled ends the
// lesson anyway.
func TestStopDoesNotWaitForeverForSound(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	ctx := context.Background()
	g.pump(20) // kept while idle: the lesson begins with them
	if _, err := g.r.Start(ctx, StartRequest{By: "cli"}); err != nil {
		t.Fatal(err)
	}
	g.pump(60)
	for k := g.next; k < g.next+30; k++ { // pictures only: the sound has stalled
		au := g.aus[k%len(g.aus)]
		au.PTS, au.IDR = time.Duration(k)*time.Second/30, k%len(g.aus) == 0
		g.video <- au
	}
	m, err := g.r.Stop(ctx, StopRequest{By: "cli"})
	if err != nil || m.State != lesson.StateComplete {
		t.Fatalf("stop: %v %+v", err, m)
	}
	g.waitState(StateIdle)
}

// A stop just after the start (or after a continued lesson's restart)
// comes before the first sound: the sound is processed and encoded in
// blocks and reaches the recorder later than the first pictures. The stop
// waits for it, so the lesson's few pictures have their sound.
func TestStopJustAfterStartWaitsForTheFirstSound(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	ctx := context.Background()
	frame := g.frame
	g.video <- frame(0) // kept while idle: the lesson begins with it
	if _, err := g.r.Start(ctx, StartRequest{By: "cli"}); err != nil {
		t.Fatal(err)
	}
	const frames = 4
	for k := 1; k < frames; k++ {
		g.video <- frame(k) // pictures only: no sound has arrived yet
	}
	stopped := g.stopWaiting(t, ctx)
	for a := time.Duration(0); a < frame(frames-1).PTS+40*time.Millisecond; a += 20 * time.Millisecond {
		g.audio <- media.AudioPacket{Data: mediatest.SilentOpus, PTS: a, Samples: 960, Channels: 1}
	}
	m := <-stopped
	v, a := mediatest.Durations(t, mediatest.Concat(t, g.store.Dir(m.ID)))
	if d := v - a; a <= 0 || d > 0.04 || d < -0.04 {
		t.Fatalf("video %.3f s, audio %.3f s: the sound of the first pictures is missing", v, a)
	}
}

// TestReconfigureAtNextLesson: settings changed while a lesson records do
// not touch it; the next lesson has them.
func TestReconfigureAtNextLesson(t *testing.T) {
	g := newRig(t, t.TempDir(), false)
	g.pump(20)
	ctx := context.Background()
	started := make(chan error, 1)
	go func() { _, err := g.r.Start(ctx, StartRequest{By: "button"}); started <- err }()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := g.r.Reconfigure(ctx, Settings{SegmentDuration: 2 * time.Second, DefaultVisibility: lesson.VisibilityLibrary,
		MinFreeBytes: 1 << 30, StopFreeBytes: 100 << 20}); err != nil {
		t.Fatal(err)
	}
	g.pump(75)
	m, err := g.r.Stop(ctx, StopRequest{By: "button"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Visibility != lesson.VisibilityPrivate || longest(m) > 1.5 {
		t.Errorf("the running lesson changed: visibility %s, longest segment %.2f s", m.Visibility, longest(m))
	}
	g.waitState(StateIdle)
	g.pump(20) // kept while idle: the next lesson begins with them
	if _, err := g.r.Start(ctx, StartRequest{By: "button"}); err != nil {
		t.Fatal(err)
	}
	g.pump(100)
	m, err = g.r.Stop(ctx, StopRequest{By: "button"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Visibility != lesson.VisibilityLibrary || longest(m) < 1.9 {
		t.Errorf("the next lesson: visibility %s, longest segment %.2f s; want library and 2 s", m.Visibility, longest(m))
	}
}

func longest(m lesson.Meta) float64 {
	var d float64
	for _, s := range m.Segments {
		d = max(d, s.Duration)
	}
	return d
}

// A start that asks the encoder for a keyframe keeps the sound that comes
// in while it waits: the encoder's first picture reaches the recorder after
// the sound of the same moment (here 150 ms after), and the lesson has
// that sound from its first picture on.
func TestStartWaitingForAKeyframeKeepsItsSound(t *testing.T) {
	g := newRig(t, t.TempDir(), true)
	ctx := context.Background()
	go g.r.Start(ctx, StartRequest{By: "cli"})
	g.waitState(StateRecording)
	const frames, lead = 60, 150 * time.Millisecond
	end := g.frame(frames-1).PTS + time.Second/30
	a := time.Duration(0)
	sound := func(until time.Duration) {
		for ; a < min(until, end); a += 20 * time.Millisecond {
			g.audio <- media.AudioPacket{Data: mediatest.SilentOpus, PTS: a, Samples: 960, Channels: 1}
		}
	}
	sound(lead) // before the first picture
	for k := range frames {
		g.video <- g.frame(k)
		sound(g.frame(k).PTS + lead)
	}
	m, err := g.r.Stop(ctx, StopRequest{By: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	v, au := mediatest.Durations(t, mediatest.Concat(t, g.store.Dir(m.ID)))
	if d := v - au; au <= 0 || d > 0.04 || d < -0.04 {
		t.Fatalf("video %.3f s, audio %.3f s: the sound that came before the first picture is missing", v, au)
	}
}
