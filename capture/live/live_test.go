package live

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/live/whep"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/stream"
	"github.com/classcap/classcap/uplink/wire"
)

// feeder writes synthetic access units (an IDR every 60, or the next one
// when asked) and Opus packets into a stream until stopped.
type feeder struct {
	s   *stream.Stream
	tap *Tap
	// idrEvery is the keyframe interval in frames; 0: only the first.
	idrEvery int
	force    atomic.Bool
	frames   atomic.Uint64
	stop     chan struct{}
	done     chan struct{}
}

func startFeeder(t *testing.T, idrEvery int) *feeder {
	f := &feeder{s: stream.New(), idrEvery: idrEvery, stop: make(chan struct{}), done: make(chan struct{})}
	f.tap = NewTap(f.s)
	go func() {
		defer close(f.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			pts := time.Duration(i) * time.Second / 30
			au := media.AccessUnit{PTS: pts, NALUs: [][]byte{{0x41, 0x9a, byte(i)}}}
			if i == 0 || f.idrEvery > 0 && i%f.idrEvery == 0 || f.force.Swap(false) {
				au.IDR = true
				au.NALUs = [][]byte{{0x67, 0x42, 0xe0, 0x1f}, {0x68, 0xce, 0x38, 0x80}, {0x65, 0x88, byte(i)}}
			}
			f.tap.WriteVideo(au)
			f.frames.Add(1)
			f.tap.WriteAudio(media.AudioPacket{Data: []byte{0xf8, 0xff, 0xfe}, PTS: pts, Samples: 960, Channels: 1})
		}
	}()
	t.Cleanup(func() { close(f.stop); <-f.done })
	return f
}

type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }
func (e *events) list() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.evs...)
}

type fixture struct {
	m       *Manager
	f       *feeder
	lesson  atomic.Pointer[string]
	watched atomic.Bool
	ev      events
}

func newFixture(t *testing.T, cfg Config) *fixture {
	return newFixtureWith(t, cfg, 60, true)
}

// newFixtureWith makes a fixture whose encoder makes a keyframe every
// idrEvery frames (0: only the first) and can be asked for one or not.
func newFixtureWith(t *testing.T, cfg Config, idrEvery int, canForce bool) *fixture {
	t.Helper()
	fx := &fixture{f: startFeeder(t, idrEvery)}
	fx.setLesson("lesson-1")
	cfg.Loopback = true
	m, err := New(cfg, Deps{
		Source: fx.f.s,
		Tap:    fx.f.tap,
		ForceKeyframe: func() bool {
			if canForce {
				fx.f.force.Store(true)
			}
			return canForce
		},
		Lesson:  func() string { return *fx.lesson.Load() },
		Watched: fx.watched.Store,
		Notify:  fx.ev.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	fx.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return fx
}

func (fx *fixture) setLesson(id string) { fx.lesson.Store(&id) }

func (fx *fixture) dial(t *testing.T, session string, o whep.Options) (*whep.Viewer, error) {
	t.Helper()
	o.Loopback = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := whep.Dial(ctx, func(ctx context.Context, offer string) (string, error) {
		return fx.m.Offer(ctx, OfferRequest{Session: session, Viewer: "coach:test", SDP: offer})
	}, o)
	if err == nil {
		t.Cleanup(func() { v.Close() })
	}
	return v, err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestViewReceivesVideoAndAudio(t *testing.T) {
	fx := newFixture(t, Config{})
	v, err := fx.dial(t, "s1", whep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "frames and audio arrive", func() bool {
		c := v.Counts()
		return c.VideoFrames >= 30 && c.AudioPackets >= 30 && c.Keyframes >= 1
	})
	if !fx.watched.Load() {
		t.Error("the LED was not told that someone watches")
	}
	st := fx.m.Status()
	if len(st.Viewers) != 1 || st.Viewers[0].Session != "s1" || st.Viewers[0].Viewer != "coach:test" || st.Viewers[0].Video == 0 {
		t.Fatalf("status %+v", st)
	}
	d, err := fx.m.Stop("s1", "viewer left")
	if err != nil || d <= 0 {
		t.Fatalf("stop: %v %v", d, err)
	}
	if _, err := fx.m.Stop("s1", "again"); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("second stop: %v", err)
	}
	waitFor(t, "the LED is told nobody watches", func() bool { return !fx.watched.Load() })
	evs := fx.ev.list()
	if len(evs) != 2 || evs[0].Kind != EventStarted || evs[1].Kind != EventStopped || evs[1].Reason != "viewer left" ||
		evs[1].Lesson != "lesson-1" || evs[1].Video == 0 || evs[1].Seconds <= 0 {
		t.Fatalf("events %+v", evs)
	}
}

func TestConsent(t *testing.T) {
	off := newFixture(t, Config{Allow: AllowOff})
	if _, err := off.dial(t, "s1", whep.Options{}); !errors.Is(err, ErrOff) {
		t.Fatalf("allow off: %v", err)
	}
	rec := newFixture(t, Config{Allow: AllowRecording})
	rec.setLesson("")
	if _, err := rec.dial(t, "s1", whep.Options{}); !errors.Is(err, ErrNotRecording) {
		t.Fatalf("allow recording while idle: %v", err)
	}
	// A view under "recording" ends with the lesson.
	rec.setLesson("lesson-2")
	v, err := rec.dial(t, "s2", whep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	<-v.Connected()
	rec.setLesson("")
	waitFor(t, "the view ends with the lesson", func() bool { return len(rec.m.Status().Viewers) == 0 })
	evs := rec.ev.list()
	if last := evs[len(evs)-1]; last.Kind != EventStopped || last.Reason != "recording stopped" {
		t.Fatalf("events %+v", evs)
	}
}

func TestHoldEndsViewsForTheLesson(t *testing.T) {
	fx := newFixture(t, Config{Allow: AllowAlways})
	for _, s := range []string{"a", "b"} {
		if _, err := fx.dial(t, s, whep.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	fx.m.Hold()
	if n := len(fx.m.Status().Viewers); n != 0 {
		t.Fatalf("%d views after the hold", n)
	}
	if !fx.m.Status().Vetoed {
		t.Fatal("status does not say vetoed")
	}
	if _, err := fx.dial(t, "c", whep.Options{}); !errors.Is(err, ErrVetoed) {
		t.Fatalf("after the hold: %v", err)
	}
	// The next lesson may be watched again.
	fx.setLesson("lesson-2")
	if _, err := fx.dial(t, "d", whep.Options{}); err != nil {
		t.Fatalf("next lesson: %v", err)
	}
}

func TestStalledViewerDropsAndOthersFlow(t *testing.T) {
	fx := newFixture(t, Config{Queue: 8})
	good, err := fx.dial(t, "good", whep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.dial(t, "stalled", whep.Options{Stalled: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stalled viewer's drops are counted", func() bool {
		for _, v := range fx.m.Status().Viewers {
			if v.Session == "stalled" && v.Dropped > 0 {
				return true
			}
		}
		return false
	})
	before := good.Counts().VideoFrames
	waitFor(t, "the good viewer keeps receiving", func() bool { return good.Counts().VideoFrames > before+30 })
}

func TestBadOffer(t *testing.T) {
	fx := newFixture(t, Config{})
	_, err := fx.m.Offer(context.Background(), OfferRequest{Session: "x", Viewer: "v", SDP: "v=0\r\n"})
	if !errors.Is(err, ErrBadOffer) {
		t.Fatalf("bad offer: %v", err)
	}
	if n := len(fx.m.Status().Viewers); n != 0 {
		t.Fatalf("%d views after a bad offer", n)
	}
}

// TestJoinFromTheKeptGroupOfPictures: a camera whose encoder cannot be
// asked for a keyframe, with none after the first: the viewer starts from
// the tap's last group of pictures.
func TestJoinFromTheKeptGroupOfPictures(t *testing.T) {
	fx := newFixtureWith(t, Config{}, 0, false)
	waitFor(t, "the camera runs", func() bool { return fx.f.frames.Load() >= 20 })
	v, err := fx.dial(t, "s1", whep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the viewer gets the keyframe and the pictures after it", func() bool {
		c := v.Counts()
		return c.Keyframes == 1 && c.VideoFrames >= 40
	})
}

func TestTapKeepsTheGroupOfPictures(t *testing.T) {
	s := stream.New()
	tap := NewTap(s)
	for i := range 10 {
		tap.WriteVideo(media.AccessUnit{PTS: time.Duration(i), IDR: i == 3 || i == 7, NALUs: [][]byte{{byte(i)}}})
	}
	gop, r := tap.join(s, "v", 4)
	defer r.Close()
	if len(gop) != 3 || gop[0].PTS != 7 || gop[2].PTS != 9 {
		t.Fatalf("gop %+v", gop)
	}
	tap.WriteVideo(media.AccessUnit{PTS: 10})
	if au := <-r.Video; au.PTS != 10 {
		t.Fatalf("after the join the reader got %v", au.PTS)
	}
	// A group longer than the bound is dropped until the next keyframe.
	for i := range maxGOPUnits + 1 {
		tap.WriteVideo(media.AccessUnit{PTS: time.Duration(100 + i), IDR: i == 0})
	}
	if gop, r2 := tap.join(s, "w", 1); len(gop) != 0 {
		t.Fatalf("an overlong group kept: %d units", len(gop))
	} else {
		r2.Close()
	}
}

// TestTricklingViewer: the viewer posts its offer before gathering and
// hands its candidates over afterwards; the view counts them.
func TestTricklingViewer(t *testing.T) {
	fx := newFixture(t, Config{})
	var sent atomic.Int64
	v, err := fx.dial(t, "s1", whep.Options{Trickle: func(_ context.Context, frag string) error {
		f, err := wire.ParseSDPFrag(frag)
		if err != nil {
			return err
		}
		cs := make([]Candidate, 0, len(f.Candidates))
		for _, c := range f.Candidates {
			cs = append(cs, Candidate{Candidate: c.Candidate, Mid: c.Mid, MLineIndex: uint16(c.MLineIndex)})
		}
		n, err := fx.m.AddCandidates("s1", cs, f.End)
		sent.Add(int64(n))
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "frames and audio arrive", func() bool {
		c := v.Counts()
		return c.VideoFrames >= 15 && c.AudioPackets >= 15 && c.Keyframes >= 1
	})
	<-v.TrickleDone()
	if err := v.TrickleErr(); err != nil || v.Trickled() == 0 || sent.Load() != int64(v.Trickled()) {
		t.Fatalf("trickled %d, the view took %d: %v", v.Trickled(), sent.Load(), err)
	}
	if st := fx.m.Status(); len(st.Viewers) != 1 || st.Viewers[0].RemoteCandidates != v.Trickled() {
		t.Fatalf("status %+v, want %d remote candidates", st, v.Trickled())
	}
	if _, err := fx.m.AddCandidates("s1", []Candidate{{Candidate: "candidate:nonsense"}}, false); !errors.Is(err, ErrBadCandidate) {
		t.Fatalf("a malformed candidate: %v", err)
	}
}

func TestAddCandidatesUnknownSession(t *testing.T) {
	fx := newFixture(t, Config{})
	c := []Candidate{{Candidate: "candidate:1 1 udp 2122260223 127.0.0.1 61764 typ host", Mid: "0"}}
	if _, err := fx.m.AddCandidates("nope", c, true); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("unknown session: %v", err)
	}
	v, err := fx.dial(t, "s1", whep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the viewer connects", func() bool { return v.Counts().VideoFrames > 0 })
	if _, err := fx.m.Stop("s1", "viewer left"); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.m.AddCandidates("s1", c, false); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("ended session: %v", err)
	}
}
