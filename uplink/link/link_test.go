package link

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/live"
	"github.com/classcap/classcap/capture/recorder"
	"github.com/classcap/classcap/uplink/brokertest"
	"github.com/classcap/classcap/uplink/wire"
)

const dev = "room-101"

// fakeBox stands in for the daemon: it counts what the link asks of it.
type fakeBox struct {
	mu         sync.Mutex
	starts     []recorder.RemoteStartRequest
	stops      []recorder.StopRequest
	identifies []time.Duration
	startErr   error
	release    chan struct{} // when set, RemoteStart waits for it
	synced     bool
	recState   string
	camOK      bool
	damaged    string // a segment damaged on the box's storage
}

func newFakeBox() *fakeBox { return &fakeBox{synced: true, recState: wire.RecorderIdle, camOK: true} }

func (b *fakeBox) RemoteStart(ctx context.Context, req recorder.RemoteStartRequest) (recorder.StartResult, error) {
	b.mu.Lock()
	b.starts = append(b.starts, req)
	err, release := b.startErr, b.release
	n := len(b.starts)
	b.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return recorder.StartResult{}, ctx.Err()
		}
	}
	if err != nil {
		return recorder.StartResult{}, err
	}
	return recorder.StartResult{LessonID: fmt.Sprintf("%06d-abcdefghij", n), VetoWaited: req.Veto, FirstFrameLatency: 40 * time.Millisecond}, nil
}

func (b *fakeBox) Stop(ctx context.Context, req recorder.StopRequest) (lesson.Meta, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stops = append(b.stops, req)
	return lesson.Meta{ID: "000001-abcdefghij", Duration: 12, Segments: make([]lesson.Segment, 3)}, nil
}

func (b *fakeBox) Identify(ctx context.Context, d time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.identifies = append(b.identifies, d)
	return nil
}

func (b *fakeBox) LiveOffer(ctx context.Context, a wire.LiveOfferArgs) (string, error) {
	if a.Session == "off" {
		return "", live.ErrOff
	}
	return "v=0\r\nanswer-for-" + a.Session + "\r\n", nil
}

func (b *fakeBox) LiveCandidates(ctx context.Context, a wire.LiveCandidatesArgs) (int, error) {
	switch a.Session {
	case "s1":
		return len(a.Candidates), nil
	case "bad":
		return 0, fmt.Errorf("%w: %q", live.ErrBadCandidate, a.Candidates[0].Candidate)
	}
	return 0, fmt.Errorf("%w: %q", live.ErrUnknownSession, a.Session)
}

func (b *fakeBox) LiveStop(ctx context.Context, a wire.LiveStopArgs) (time.Duration, error) {
	if a.Session != "s1" {
		return 0, fmt.Errorf("%w: %q", live.ErrUnknownSession, a.Session)
	}
	return 3 * time.Second, nil
}

func (b *fakeBox) State() wire.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return wire.State{
		Recorder:   &wire.Recorder{State: b.recState},
		Disk:       &wire.Disk{FreeMB: 1000, TotalMB: 2000},
		Camera:     &wire.Camera{OK: b.camOK, Fault: map[bool]string{false: "unplugged"}[b.camOK]},
		Microphone: &wire.Microphone{OK: true, Levels: []wire.Level{{PeakDBFS: -20, RMSDBFS: -40}}},
		Upload:     &wire.Upload{DamagedSegments: map[bool]int{true: 1}[b.damaged != ""], Problem: b.damaged},
		Clock:      &wire.Clock{Synced: b.synced},
		Version:    "test",
	}
}

func (b *fakeBox) ClockSynced() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.synced }

func (b *fakeBox) Clock() lesson.Clock { return lesson.Clock{BootID: "boot", BootTime: 5} }

func (b *fakeBox) startCount() int { b.mu.Lock(); defer b.mu.Unlock(); return len(b.starts) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// box is a link under test with its own Run goroutine.
type box struct {
	t      *testing.T
	l      *Link
	cancel context.CancelFunc
	done   chan error
}

func newLink(t *testing.T, url, storePath string, fb *fakeBox) *Link {
	t.Helper()
	l, err := New(Config{Device: dev, Broker: url, StorePath: storePath, Veto: 10 * time.Second,
		StatePoll: 50 * time.Millisecond, BackoffMin: 50 * time.Millisecond, BackoffMax: 300 * time.Millisecond,
		Log: quiet()}, fb)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func runLink(t *testing.T, l *Link) *box {
	ctx, cancel := context.WithCancel(context.Background())
	b := &box{t: t, l: l, cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- l.Run(ctx) }()
	t.Cleanup(b.stop)
	return b
}

// stop ends Run and closes the store, as the daemon does at shutdown.
func (b *box) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		b.t.Error("link Run did not return")
	}
	b.l.Close()
	b.cancel = nil
}

func (b *box) waitConnected() {
	b.t.Helper()
	waitFor(b.t, "the link to connect", func() bool { return b.l.Status().Connected })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hub is a plain paho client playing the hub: it publishes commands and
// collects replies, events and states. Its session is persistent and the
// broker keeps sessions across its restarts, so once newHub returned the
// broker holds its subscriptions and queues what it misses while away.
type hub struct {
	t  *testing.T
	c  mqtt.Client
	mu sync.Mutex
	in map[wire.Kind][][]byte
}

func newHub(t *testing.T, url string) *hub {
	t.Helper()
	h := &hub{t: t, in: map[wire.Kind][][]byte{}}
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("test-hub").SetCleanSession(false).
		SetProtocolVersion(4).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond)
	h.c = mqtt.NewClient(opts)
	if t := h.c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		h.t.Fatalf("hub connect: %v", t.Error())
	}
	// Subscribed here, waiting for the SUBACK, not in an OnConnect
	// handler: paho runs that in a goroutine of its own, so nothing said
	// when its subscriptions reached the broker, and a broker stopped
	// before they did kept a session without them (the events the box
	// published after the restart went to no one).
	filters := map[string]byte{}
	for _, k := range []wire.Kind{wire.KindReply, wire.KindEvent, wire.KindState} {
		filters[wire.Topic(dev, k)] = wire.QoS
	}
	tok := h.c.SubscribeMultiple(filters, h.add)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		h.t.Fatalf("hub subscribe: %v", tok.Error())
	}
	for topic, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code == 0x80 {
			h.t.Fatalf("hub subscribe %s: refused by the broker", topic)
		}
	}
	t.Cleanup(func() { h.c.Disconnect(100) })
	return h
}

func (h *hub) add(_ mqtt.Client, m mqtt.Message) {
	_, kind, err := wire.ParseTopic(m.Topic())
	if err != nil {
		return
	}
	h.mu.Lock()
	h.in[kind] = append(h.in[kind], append([]byte(nil), m.Payload()...))
	h.mu.Unlock()
}

func (h *hub) publish(payload string) {
	h.t.Helper()
	if t := h.c.Publish(wire.CmdTopic(dev), 1, false, payload); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		h.t.Fatalf("publish command: %v", t.Error())
	}
}

func (h *hub) command(id, typ, args string, ttl time.Duration) {
	h.t.Helper()
	c := fmt.Sprintf(`{"v":1,"id":%q,"type":%q,"ttl_ms":%d,"expires_at":%q`, id, typ, ttl.Milliseconds(),
		wire.FormatTime(time.Now().Add(ttl)))
	if args != "" {
		c += `,"args":` + args
	}
	h.publish(c + "}")
}

// replies returns the replies received for id (or all when id is "*").
func (h *hub) replies(id string) []wire.Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []wire.Reply
	for _, b := range h.in[wire.KindReply] {
		r, err := wire.DecodeReply(b)
		if err != nil {
			h.t.Errorf("the box sent an invalid reply %s: %v", b, err)
			continue
		}
		if id == "*" || r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

func (h *hub) waitReplies(id string, n int) []wire.Reply {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%d replies to %s", n, id), func() bool { return len(h.replies(id)) >= n })
	return h.replies(id)
}

func (h *hub) events() []wire.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []wire.Event
	seen := map[string]bool{}
	for _, b := range h.in[wire.KindEvent] {
		e, err := wire.DecodeEvent(b)
		if err != nil {
			h.t.Errorf("the box sent an invalid event %s: %v", b, err)
			continue
		}
		if !seen[e.ID] { // QoS 1 may repeat one; the hub drops repeats
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// eventCopies is how many event messages arrived, repeats included.
func (h *hub) eventCopies() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.in[wire.KindEvent])
}

func (h *hub) lastState() (wire.State, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.in[wire.KindState]
	if len(s) == 0 {
		return wire.State{}, false
	}
	st, err := wire.DecodeState(s[len(s)-1])
	if err != nil {
		h.t.Errorf("the box sent an invalid state %s: %v", s[len(s)-1], err)
	}
	return st, true
}

func TestRemoteStartReachesTheBoxAndIsAnswered(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	fb := newFakeBox()
	b := runLink(t, newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), fb))
	b.waitConnected()

	h.command("c-1", wire.TypeRecordStart, `{"by":"coach:alice","visibility":"coaching"}`, 30*time.Second)
	r := h.waitReplies("c-1", 1)[0]
	if !r.OK {
		t.Fatalf("reply %+v", r)
	}
	var res wire.RecordStartResult
	if err := r.DecodeResult(&res); err != nil || res.Lesson != "000001-abcdefghij" || res.VetoWaitedMS != 10000 {
		t.Fatalf("result %+v, %v", res, err)
	}
	fb.mu.Lock()
	req := fb.starts[0]
	fb.mu.Unlock()
	if req.By != "hub:coach:alice" || req.Visibility != "coaching" || req.ID != "c-1" || req.Veto != 10*time.Second || req.Deadline.IsZero() {
		t.Fatalf("the box was asked %+v", req)
	}

	h.command("c-2", wire.TypeRecordStop, `{"by":"coach:alice"}`, 30*time.Second)
	h.command("c-3", wire.TypeIdentify, `{"seconds":5}`, 30*time.Second)
	h.command("c-4", wire.TypeStateGet, "", 30*time.Second)
	if r := h.waitReplies("c-2", 1)[0]; !r.OK {
		t.Fatalf("stop reply %+v", r)
	}
	if r := h.waitReplies("c-3", 1)[0]; !r.OK {
		t.Fatalf("identify reply %+v", r)
	}
	r = h.waitReplies("c-4", 1)[0]
	var st wire.State
	if err := r.DecodeResult(&st); err != nil || !st.Online || st.Recorder.State != wire.RecorderIdle {
		t.Fatalf("state.get result %s, %v", r.Result, err)
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.stops) != 1 || fb.stops[0].By != "hub:coach:alice" || len(fb.identifies) != 1 || fb.identifies[0] != 5*time.Second {
		t.Fatalf("stops %+v identifies %v", fb.stops, fb.identifies)
	}
}

func TestRefusalsAreReplied(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	fb := newFakeBox()
	fb.startErr = recorder.ErrDeclined
	b := runLink(t, newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), fb))
	b.waitConnected()

	h.command("declined", wire.TypeRecordStart, `{"by":"coach:bob"}`, 30*time.Second)
	r := h.waitReplies("declined", 1)[0]
	if r.OK || r.Code != wire.CodeDeclined || r.Error != "declined by the teacher" {
		t.Fatalf("declined reply %+v", r)
	}
	fb.mu.Lock()
	fb.startErr = fmt.Errorf("%w: lesson x", recorder.ErrRecording)
	fb.mu.Unlock()
	h.command("busy", wire.TypeRecordStart, `{"by":"coach:bob"}`, 30*time.Second)
	if r := h.waitReplies("busy", 1)[0]; r.Code != wire.CodeBusy {
		t.Fatalf("busy reply %+v", r)
	}
}

func TestDuplicateIDRunsOnce(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	fb := newFakeBox()
	fb.release = make(chan struct{})
	b := runLink(t, newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), fb))
	b.waitConnected()
	// Repeats while the first delivery is being acted on are not run.
	for range 3 {
		h.command("dup-1", wire.TypeRecordStart, `{"by":"coach:alice"}`, 30*time.Second)
	}
	h.command("barrier", wire.TypeStateGet, "", 30*time.Second) // handled after the repeats
	h.waitReplies("barrier", 1)
	close(fb.release)
	first := h.waitReplies("dup-1", 1)[0]
	// A repeat after the answer gets the stored answer again.
	h.command("dup-1", wire.TypeRecordStart, `{"by":"coach:alice"}`, 30*time.Second)
	rs := h.waitReplies("dup-1", 2)
	for _, r := range rs {
		if !r.OK || string(r.Result) != string(first.Result) {
			t.Fatalf("replies to a repeated id differ: %+v", rs)
		}
	}
	if n := fb.startCount(); n != 1 {
		t.Fatalf("the command ran %d times", n)
	}
}

func TestExpiredCommandsAreRefused(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	fb := newFakeBox()
	b := runLink(t, newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), fb))
	b.waitConnected()

	h.publish(fmt.Sprintf(`{"v":1,"id":"late","type":"record.start","expires_at":%q,"args":{"by":"x"}}`,
		wire.FormatTime(time.Now().Add(-time.Minute))))
	if r := h.waitReplies("late", 1)[0]; r.OK || r.Code != wire.CodeExpired {
		t.Fatalf("expired reply %+v", r)
	}
	// Without a synced clock expires_at cannot be judged: ttl_ms counts.
	fb.mu.Lock()
	fb.synced = false
	fb.mu.Unlock()
	h.publish(fmt.Sprintf(`{"v":1,"id":"noclock","type":"record.start","expires_at":%q,"args":{"by":"x"}}`,
		wire.FormatTime(time.Now().Add(time.Hour))))
	if r := h.waitReplies("noclock", 1)[0]; r.OK || r.Code != wire.CodeClockUnsynced {
		t.Fatalf("unsynced reply %+v", r)
	}
	// expires_at in the past on a wrong clock, but ttl_ms still running: it runs.
	h.publish(fmt.Sprintf(`{"v":1,"id":"ttl","type":"record.start","expires_at":%q,"ttl_ms":30000,"args":{"by":"x"}}`,
		wire.FormatTime(time.Now().Add(-time.Hour))))
	if r := h.waitReplies("ttl", 1)[0]; !r.OK {
		t.Fatalf("ttl reply %+v", r)
	}
	if n := fb.startCount(); n != 1 {
		t.Fatalf("%d starts, want only the one within its ttl", n)
	}
}

func TestMalformedCommandsGetErrorReplies(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	fb := newFakeBox()
	b := runLink(t, newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), fb))
	b.waitConnected()
	for _, tc := range []struct{ id, payload, code, mention string }{
		{"", `not json at all`, wire.CodeMalformed, "malformed"},
		{"", `{"v":1,"type":"record.start","ttl_ms":1000}`, wire.CodeMalformed, "id"},
		{"m-1", `{"v":1,"id":"m-1","type":"record.start"}`, wire.CodeMalformed, "expires_at"},
		{"m-2", `{"v":7,"id":"m-2","type":"record.start","ttl_ms":1000}`, wire.CodeVersion, "v"},
		{"m-3", `{"v":1,"id":"m-3","type":"record.pause","ttl_ms":1000}`, wire.CodeUnknownType, "record.pause"},
		{"m-4", `{"v":1,"id":"m-4","type":"record.start","ttl_ms":1000,"args":{"by":"x","visibility":"public"}}`, wire.CodeBadArgs, "args.visibility"},
		{"m-5", `{"v":1,"id":"m-5","type":"record.start","ttl_ms":1000,"args":{}}`, wire.CodeBadArgs, "args.by"},
		{"m-6", `{"v":1,"id":"m-6","type":"identify","ttl_ms":"soon"}`, wire.CodeMalformed, "ttl_ms"},
	} {
		before := len(h.replies("*"))
		h.publish(tc.payload)
		waitFor(t, "a reply to "+tc.payload, func() bool { return len(h.replies("*")) > before })
		r := h.replies("*")[before]
		if r.ID != tc.id || r.OK || r.Code != tc.code || !strings.Contains(r.Error, tc.mention) {
			t.Errorf("payload %s: reply %+v, want id %q code %q mentioning %q", tc.payload, r, tc.id, tc.code, tc.mention)
		}
	}
	if n := fb.startCount(); n != 0 {
		t.Fatalf("malformed commands started %d recordings", n)
	}
	// The link still works.
	h.command("ok", wire.TypeStateGet, "", 30*time.Second)
	if r := h.waitReplies("ok", 1)[0]; !r.OK {
		t.Fatalf("state.get after malformed commands: %+v", r)
	}
}

// A command published while the box is away waits at the broker (the box's
// session is persistent), survives a broker restart, and runs exactly once
// when the box comes back, even when it is published again.
func TestBrokerRestartBetweenPublishAndDelivery(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	fb := newFakeBox()
	storePath := filepath.Join(t.TempDir(), "uplink.db")
	b := runLink(t, newLink(t, m.URL(), storePath, fb))
	b.waitConnected() // the broker now knows the box's session and subscription
	b.stop()

	h.command("r-1", wire.TypeRecordStart, `{"by":"coach:alice"}`, time.Minute)
	m.Restart()
	b = runLink(t, newLink(t, m.URL(), storePath, fb))
	r := h.waitReplies("r-1", 1)[0]
	if !r.OK {
		t.Fatalf("reply %+v", r)
	}
	// The hub, unsure, sends it again: answered from the stored reply.
	h.command("r-1", wire.TypeRecordStart, `{"by":"coach:alice"}`, time.Minute)
	h.waitReplies("r-1", 2)
	if n := fb.startCount(); n != 1 {
		t.Fatalf("the command ran %d times", n)
	}
}

// A command acknowledged but interrupted by a restart of the box is not
// run again when it is delivered again: it is answered as failed.
func TestInterruptedCommandIsNotRunAgain(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	fb := newFakeBox()
	fb.release = make(chan struct{}) // the start never finishes in the first run
	storePath := filepath.Join(t.TempDir(), "uplink.db")
	b := runLink(t, newLink(t, m.URL(), storePath, fb))
	b.waitConnected()
	h.command("i-1", wire.TypeRecordStart, `{"by":"coach:alice"}`, time.Minute)
	waitFor(t, "the start to reach the box", func() bool { return fb.startCount() == 1 })
	b.stop() // the box stops while acting on it (its answer says so)

	fb2 := newFakeBox()
	b = runLink(t, newLink(t, m.URL(), storePath, fb2))
	h.command("i-1", wire.TypeRecordStart, `{"by":"coach:alice"}`, time.Minute)
	rs := h.waitReplies("i-1", 2)
	for _, r := range rs {
		if r.OK {
			t.Fatalf("replies %+v", rs)
		}
	}
	if n := fb2.startCount(); n != 0 {
		t.Fatalf("the interrupted command ran again after the restart")
	}
	b.stop()

	// A crash: the id was stored and acknowledged, no answer was written.
	st, err := openStore(storePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.claim("i-2", commandRecord{State: cmdRunning, Run: "an-earlier-run", Type: wire.TypeRecordStart}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	b = runLink(t, newLink(t, m.URL(), storePath, fb2))
	h.command("i-2", wire.TypeRecordStart, `{"by":"coach:alice"}`, time.Minute)
	r := h.waitReplies("i-2", 1)[0]
	if r.OK || r.Code != wire.CodeFailed || !strings.Contains(r.Error, "interrupted by a restart") {
		t.Fatalf("reply to a command a crash interrupted: %+v", r)
	}
	if n := fb2.startCount(); n != 0 {
		t.Fatalf("the command a crash interrupted ran again")
	}
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	step := 100 * time.Millisecond
	distinct := map[time.Duration]bool{}
	for range 50 {
		d := b.next()
		if d < step/2 || d > step {
			t.Fatalf("wait %v outside [%v, %v]", d, step/2, step)
		}
		distinct[d] = true
		step = min(step*2, time.Second)
	}
	if len(distinct) < 10 {
		t.Fatalf("waits are not jittered: %v", distinct)
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Fatalf("after a reset the wait is %v", d)
	}
}

// Events written while the broker is away are delivered, in order and
// none lost, after a box restart and after a broker outage.
func TestOutboxSurvivesBoxRestartAndBrokerOutage(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	storePath := filepath.Join(t.TempDir(), "uplink.db")
	fb := newFakeBox()
	m.Stop() // the broker is down

	l := newLink(t, m.URL(), storePath, fb)
	b := runLink(t, l)
	for i := range 3 {
		l.Notify(notice(recorder.NoticeSegmentClosed, i+1))
	}
	if st := l.Status(); st.Connected || st.Outbox != 3 {
		t.Fatalf("status while the broker is down: %+v", st)
	}
	b.stop() // the box restarts before the broker is back

	m.Start()
	l = newLink(t, m.URL(), storePath, fb)
	if d := l.Status().Outbox; d != 3 {
		t.Fatalf("outbox after a restart: %d", d)
	}
	b = runLink(t, l)
	waitFor(t, "three events", func() bool { return len(h.events()) >= 3 })
	waitFor(t, "an empty outbox", func() bool { return l.Status().Outbox == 0 })

	// A broker outage while the box runs.
	m.Stop()
	waitFor(t, "the link to notice", func() bool { return !l.Status().Connected })
	for i := 3; i < 6; i++ {
		l.Notify(notice(recorder.NoticeSegmentClosed, i+1))
	}
	m.Start()
	waitFor(t, "six events", func() bool { return len(h.events()) >= 6 })
	evs := h.events()
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.Segment == nil || e.Segment.Name != fmt.Sprintf("seg_%06d.m4s", i+1) {
			t.Fatalf("event %d: %+v (events must come in order, none lost)", i, e)
		}
	}
	if len(evs) != 6 {
		t.Fatalf("%d events, want 6", len(evs))
	}
}

func notice(kind string, n int) recorder.Notice {
	wall := time.Date(2026, 3, 2, 9, 0, n, 0, time.UTC)
	return recorder.Notice{Kind: kind, Meta: lesson.Meta{ID: "000001-abcdefghij"},
		Segment: lesson.Segment{Number: n, Name: fmt.Sprintf("seg_%06d.m4s", n), Duration: 4, Bytes: 1000,
			SHA256: strings.Repeat("0", 64)},
		At: lesson.Clock{BootID: "boot", BootTime: float64(n), Wall: &wall}}
}

func TestStateIsRetainedAndGoesOfflineOnStop(t *testing.T) {
	m := brokertest.Start(t)
	fb := newFakeBox()
	b := runLink(t, newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), fb))
	b.waitConnected()
	h := newHub(t, m.URL()) // subscribes after the state was published: retained
	waitFor(t, "a retained state", func() bool { s, ok := h.lastState(); return ok && s.Online })

	// A change is published without waiting for the 30 s refresh, and an
	// alarm event says the camera failed.
	fb.mu.Lock()
	fb.recState, fb.camOK = wire.RecorderRecording, false
	fb.mu.Unlock()
	waitFor(t, "the new state", func() bool {
		s, ok := h.lastState()
		return ok && s.Recorder != nil && s.Recorder.State == wire.RecorderRecording
	})
	waitFor(t, "the camera alarm", func() bool {
		for _, e := range h.events() {
			if e.Type == wire.EventAlarm && e.Alarm.Name == "camera" && e.Alarm.Active && e.Alarm.Message == "unplugged" {
				return true
			}
		}
		return false
	})
	// A segment found damaged on the box's storage raises the storage
	// alarm with what is wrong.
	fb.mu.Lock()
	fb.damaged = "seg_000002.m4s of lesson 000001-abcdefghij is damaged on the box's storage"
	fb.mu.Unlock()
	waitFor(t, "the storage alarm", func() bool {
		for _, e := range h.events() {
			if e.Type == wire.EventAlarm && e.Alarm.Name == "storage" && e.Alarm.Active && strings.Contains(e.Alarm.Message, "seg_000002.m4s") {
				return true
			}
		}
		return false
	})
	b.stop()
	waitFor(t, "the offline state", func() bool { s, ok := h.lastState(); return ok && !s.Online })
}

// The broker publishes the last will when the box vanishes without a
// goodbye; the box reconnects and says it is online again.
func TestLastWillSetsOffline(t *testing.T) {
	m := brokertest.Start(t)
	fb := newFakeBox()
	l := newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), fb)
	cut := cuttable(l, func(c net.Conn) net.Conn { return c })
	b := runLink(t, l)
	b.waitConnected()
	h := newHub(t, m.URL())
	waitFor(t, "a retained state", func() bool { s, ok := h.lastState(); return ok && s.Online })
	before := h.stateCount()
	cut() // the network drops: no DISCONNECT reaches the broker
	waitFor(t, "the will and a new online state", func() bool {
		sts := h.statesSince(before)
		for i, s := range sts {
			if !s.Online {
				for _, later := range sts[i+1:] {
					if later.Online {
						return true
					}
				}
			}
		}
		return false
	})
}

func (h *hub) stateCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.in[wire.KindState])
}

func (h *hub) statesSince(n int) []wire.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []wire.State
	for _, b := range h.in[wire.KindState][n:] {
		s, err := wire.DecodeState(b)
		if err != nil {
			h.t.Errorf("invalid state %s: %v", b, err)
		}
		out = append(out, s)
	}
	return out
}

// cutConn is a connection the test can cut as a network failure would: the
// broker sees the socket close, the client reads EOF.
type cutConn struct {
	net.Conn
	isCut atomic.Bool
}

func (c *cutConn) cut() { c.isCut.Store(true); c.Conn.Close() }

func (c *cutConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.isCut.Load() {
		err = io.EOF
	}
	return n, err
}

// The uploader's messages: Publish on the box's upload topic, and grants
// handed to the registered handler.
func TestPublishAndHandle(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	if tok := h.c.Subscribe(wire.Topic(dev, wire.KindUpload), 1, h.add); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	l := newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), newFakeBox())
	grants := make(chan string, 4)
	l.Handle(wire.KindGrant, func(p []byte) { grants <- string(p) })
	if err := l.Publish(context.Background(), wire.Topic(dev, wire.KindUpload), []byte(`{"v":1}`)); err == nil {
		t.Fatal("Publish before the link is up succeeded")
	}
	b := runLink(t, l)
	b.waitConnected()
	if err := l.Publish(context.Background(), wire.Topic(dev, wire.KindUpload), []byte(`{"v":1,"type":"request"}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(context.Background(), wire.Topic("room-102", wire.KindUpload), []byte(`{}`)); err == nil {
		t.Fatal("Publish on another box's topic succeeded")
	}
	waitFor(t, "the upload request at the hub", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.in[wire.KindUpload]) == 1 && string(h.in[wire.KindUpload][0]) == `{"v":1,"type":"request"}`
	})
	if tok := h.c.Publish(wire.Topic(dev, wire.KindGrant), 1, false, `{"v":1,"type":"grant"}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case g := <-grants:
		if g != `{"v":1,"type":"grant"}` {
			t.Fatalf("grant %s", g)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the grant was not handed over")
	}
}

func TestLiveCommandsAreAnswered(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	fb := newFakeBox()
	b := runLink(t, newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), fb))
	b.waitConnected()

	h.command("l-1", wire.TypeLiveOffer, `{"session":"s1","viewer":"coach:alice","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}`, 30*time.Second)
	h.command("l-2", wire.TypeLiveOffer, `{"session":"off","viewer":"coach:alice","sdp":"v=0\r\n"}`, 30*time.Second)
	h.command("l-3", wire.TypeLiveOffer, `{"session":"s3","viewer":"coach:alice","sdp":"not sdp"}`, 30*time.Second)
	h.command("l-4", wire.TypeLiveStop, `{"session":"s1","by":"coach:alice"}`, 30*time.Second)
	h.command("l-5", wire.TypeLiveStop, `{"session":"nope"}`, 30*time.Second)
	const cand = `{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 61764 typ host","mid":"0","mline_index":0}`
	h.command("l-6", wire.TypeLiveCandidates, `{"session":"s1","candidates":[`+cand+`,`+cand+`],"end":true}`, 30*time.Second)
	h.command("l-7", wire.TypeLiveCandidates, `{"session":"nope","candidates":[`+cand+`]}`, 30*time.Second)
	h.command("l-8", wire.TypeLiveCandidates, `{"session":"bad","candidates":[`+cand+`]}`, 30*time.Second)
	h.command("l-9", wire.TypeLiveCandidates, `{"session":"s1","candidates":[{"candidate":"typ host"}]}`, 30*time.Second)
	r := h.waitReplies("l-1", 1)[0]
	var offer wire.LiveOfferResult
	if err := r.DecodeResult(&offer); !r.OK || err != nil || offer.Session != "s1" || offer.SDP != "v=0\r\nanswer-for-s1\r\n" {
		t.Fatalf("live.offer reply %+v (%v)", r, err)
	}
	if r := h.waitReplies("l-2", 1)[0]; r.OK || r.Code != wire.CodeLiveOff {
		t.Fatalf("live.offer refused: %+v", r)
	}
	if r := h.waitReplies("l-3", 1)[0]; r.OK || r.Code != wire.CodeBadArgs || !strings.Contains(r.Error, "args.sdp") {
		t.Fatalf("live.offer with a bad sdp: %+v", r)
	}
	r = h.waitReplies("l-4", 1)[0]
	var stop wire.LiveStopResult
	if err := r.DecodeResult(&stop); !r.OK || err != nil || stop.Seconds != 3 {
		t.Fatalf("live.stop reply %+v (%v)", r, err)
	}
	if r := h.waitReplies("l-5", 1)[0]; r.OK || r.Code != wire.CodeUnknownSession {
		t.Fatalf("live.stop of an unknown session: %+v", r)
	}
	r = h.waitReplies("l-6", 1)[0]
	var cands wire.LiveCandidatesResult
	if err := r.DecodeResult(&cands); !r.OK || err != nil || cands.Session != "s1" || cands.Added != 2 {
		t.Fatalf("live.candidates reply %+v (%v)", r, err)
	}
	if r := h.waitReplies("l-7", 1)[0]; r.OK || r.Code != wire.CodeUnknownSession {
		t.Fatalf("live.candidates of an unknown session: %+v", r)
	}
	if r := h.waitReplies("l-8", 1)[0]; r.OK || r.Code != wire.CodeBadArgs {
		t.Fatalf("live.candidates the view refused: %+v", r)
	}
	if r := h.waitReplies("l-9", 1)[0]; r.OK || r.Code != wire.CodeBadArgs || !strings.Contains(r.Error, "args.candidates[0]") {
		t.Fatalf("live.candidates with a bad candidate: %+v", r)
	}
}

// An event whose PUBACK never came stays in the outbox, across a lost
// connection and the reconnection that sends it again, and leaves it only
// once the broker acknowledged it. (paho completes a publish token of the
// connection before without an error when the new connection resends its
// message: taken for an acknowledgement, the event left the outbox while
// its resend was unacknowledged, and a box stopped before the resend was
// acknowledged lost it.)
func TestUnacknowledgedEventStaysInTheOutboxAcrossReconnects(t *testing.T) {
	m := brokertest.Start(t)
	h := newHub(t, m.URL())
	l := newLink(t, m.URL(), filepath.Join(t.TempDir(), "uplink.db"), newFakeBox())
	var dropAcks atomic.Bool
	var dropped atomic.Int64
	cut := cuttable(l, func(c net.Conn) net.Conn {
		return &ackDropConn{Conn: c, r: bufio.NewReader(c), drop: &dropAcks, dropped: &dropped}
	})
	b := runLink(t, l)
	b.waitConnected()
	// Only the state was published so far; from now on the broker's
	// acknowledgements are lost on the way.
	dropAcks.Store(true)
	l.Notify(notice(recorder.NoticeSegmentClosed, 1))
	waitFor(t, "the event at the hub", func() bool { return len(h.events()) == 1 })
	waitFor(t, "its PUBACK lost", func() bool { return dropped.Load() >= 1 })
	if d := l.Status().Outbox; d != 1 {
		t.Fatalf("outbox %d after the broker's acknowledgement was lost, want 1", d)
	}

	// The connection drops; the link reconnects and the event goes again
	// (paho's resend and the outbox's), its acknowledgements lost again.
	n := h.eventCopies()
	cut()
	waitFor(t, "the event sent twice more, or an empty outbox", func() bool {
		return l.Status().Outbox == 0 || h.eventCopies() >= n+2
	})
	if d := l.Status().Outbox; d != 1 {
		t.Fatalf("outbox %d after a reconnection resent an unacknowledged event, want 1", d)
	}

	// Acknowledgements get through again: the event leaves the outbox.
	dropAcks.Store(false)
	cut()
	waitFor(t, "an empty outbox", func() bool { return l.Status().Outbox == 0 })
	if evs := h.events(); len(evs) != 1 || evs[0].Seq != 1 {
		t.Fatalf("events at the hub: %+v", evs)
	}
}

// cuttable makes l connect through wrap(conn) and returns a function that
// drops its newest connection as a failing network would: no DISCONNECT
// reaches the broker.
func cuttable(l *Link, wrap func(net.Conn) net.Conn) (cut func()) {
	var mu sync.Mutex
	var conns []*cutConn
	l.openConn = func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
		c, err := net.Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		cc := &cutConn{Conn: wrap(c)}
		mu.Lock()
		conns = append(conns, cc)
		mu.Unlock()
		return cc, nil
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		conns[len(conns)-1].cut()
	}
}

// ackDropConn loses the broker's PUBACKs while drop is set, as a network
// that fails between the broker's acknowledgement and the box would.
type ackDropConn struct {
	net.Conn
	r       *bufio.Reader
	drop    *atomic.Bool
	dropped *atomic.Int64
	pending []byte
}

func (c *ackDropConn) Read(b []byte) (int, error) {
	for len(c.pending) == 0 {
		p, err := readPacket(c.r)
		if err != nil {
			return 0, err
		}
		if p[0]>>4 == 4 && c.drop.Load() { // PUBACK
			c.dropped.Add(1)
			continue
		}
		c.pending = p
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// readPacket reads one MQTT control packet: its fixed header (type and
// flags, remaining length) and the rest.
func readPacket(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	p := []byte{first}
	length, shift := 0, 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		p = append(p, c)
		length |= int(c&0x7f) << shift
		if c&0x80 == 0 {
			break
		}
		if shift += 7; shift > 21 {
			return nil, fmt.Errorf("remaining length longer than 4 bytes")
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(p, body...), nil
}
