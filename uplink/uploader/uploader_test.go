package uploader

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/rawaudio"
	"github.com/classcap/classcap/capture/segment"
	"github.com/classcap/classcap/hub/ingest"
	"github.com/classcap/classcap/uplink/faultproxy"
	"github.com/classcap/classcap/uplink/pace"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testHub is an in-process hub: the real ingest (tusd on loopback) and the
// grant/complete steps the MQTT link carries in production.
type testHub struct {
	in       *ingest.Ingest
	endpoint string

	mu        sync.Mutex
	order     []string // files in the order they were verified
	inflight  int
	maxFlight int
	refuse    bool // refuse every grant
}

func newTestHub(t *testing.T) (*testHub, *httptest.Server) {
	dir := t.TempDir()
	store, err := ingest.NewStore(filepath.Join(dir, "lessons"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ingest.Config{UploadDir: filepath.Join(dir, "uploads"), Store: store,
		Key: []byte("a test key of at least 16 bytes"), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/tus/", in.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testHub{in: in, endpoint: srv.URL + "/tus/"}, srv
}

func (h *testHub) Grant(ctx context.Context, f File) (Grant, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse {
		return Grant{}, errors.New("hub refuses")
	}
	h.inflight++
	h.maxFlight = max(h.maxFlight, h.inflight)
	tok := h.in.Grant(ingest.Grant{Device: f.Device, Lesson: f.Lesson, File: f.Name, Size: f.Bytes, SHA256: f.SHA256}, time.Minute)
	return Grant{Endpoint: h.endpoint, Token: tok}, nil
}

func (h *testHub) Complete(ctx context.Context, f File) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inflight = max(h.inflight-1, 0)
	st, ok, err := h.in.Store().Lookup(f.Lesson, f.Name)
	if err != nil || !ok || st.SHA256 != f.SHA256 || st.Size != f.Bytes {
		return fmt.Errorf("not verified: %+v %v %v", st, ok, err)
	}
	h.order = append(h.order, f.Lesson+"/"+f.Name)
	return nil
}

func (h *testHub) verifiedOrder() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.order...)
}

// box is a lesson store and catalog with lessons written as the recorder
// writes them (random bytes stand in for media).
type box struct {
	dir   string
	store *lesson.Store
	cat   *catalog.Catalog
}

func newBox(t *testing.T) *box {
	dir := t.TempDir()
	store, err := lesson.NewStore(filepath.Join(dir, "lessons"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	b := &box{dir: dir, store: store}
	b.open(t)
	return b
}

func (b *box) open(t *testing.T) {
	cat, err := catalog.Open(filepath.Join(b.dir, "catalog.db"), b.store, quiet())
	if err != nil {
		t.Fatal(err)
	}
	b.cat = cat
	t.Cleanup(func() { cat.Close() })
}

func write(t *testing.T, path string, data []byte) {
	if err := durable.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// addSegments appends n segments of size bytes and saves lesson.json, the
// playlist and the catalog entry.
func (b *box) addSegments(t *testing.T, m *lesson.Meta, n, size int, state string) {
	dir := b.store.Dir(m.ID)
	if err := durable.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, segment.InitName)); err != nil {
		init := make([]byte, 1500)
		rand.Read(init)
		write(t, filepath.Join(dir, segment.InitName), init)
	}
	for range n {
		num := len(m.Segments) + 1
		data := make([]byte, size)
		rand.Read(data)
		name := segment.Name(num)
		write(t, filepath.Join(dir, name), data)
		s := sha256.Sum256(data)
		m.Segments = append(m.Segments, lesson.Segment{Number: num, Name: name, Start: float64(4 * (num - 1)), Duration: 4,
			Bytes: int64(size), SHA256: hex.EncodeToString(s[:])})
		m.Bytes += int64(size)
		m.Duration += 4
	}
	m.State = state
	// The playlist first, as the lesson store writes them: once
	// lesson.json says the lesson is complete, a running uploader may
	// rewrite both (a damaged segment), and nothing else writes them.
	write(t, filepath.Join(dir, lesson.PlaylistName), m.Playlist())
	write(t, filepath.Join(dir, lesson.MetaName), m.Encode())
	if err := b.cat.PutLesson(*m); err != nil {
		t.Fatal(err)
	}
}

func newMeta(n int) lesson.Meta {
	return lesson.Meta{V: 1, ID: lesson.NewID(n), Number: n, Device: "room-101", Visibility: lesson.VisibilityPrivate,
		StartedBy: "button", SegmentDuration: 4, State: lesson.StateRecording}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *box) segmentStates(t *testing.T, id string) map[string]string {
	segs, err := b.cat.Segments(id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range segs {
		out[s.Name] = s.State
	}
	return out
}

func allVerified(states map[string]string) bool {
	for _, s := range states {
		if s != catalog.SegmentVerified {
			return false
		}
	}
	return len(states) > 0
}

func sameFiles(t *testing.T, b *box, h *testHub, id string) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(b.store.Dir(id), "*"))
	n := 0
	for _, p := range names {
		if filepath.Ext(p) == ".tmp" {
			continue
		}
		n++
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(h.in.Store().Dir(id), filepath.Base(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s on the hub: %d bytes, %v; want the box's %d bytes", filepath.Base(p), len(got), err, len(want))
		}
	}
	if n == 0 {
		t.Fatal("no files on the box")
	}
}

func startUploader(t *testing.T, u *Uploader) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestProgressiveThenComplete(t *testing.T) {
	h, _ := newTestHub(t)
	b := newBox(t)
	m := newMeta(1)
	b.addSegments(t, &m, 3, 200<<10, lesson.StateRecording)
	u := New(Config{Device: "room-101", Concurrency: 2, Poll: 50 * time.Millisecond, MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
		b.cat, b.store, h, quiet())
	stop := startUploader(t, u)
	defer stop()

	// While recording: init.mp4 and the closed segments go; the playlist
	// and lesson.json wait.
	waitFor(t, "the first segments verified", func() bool { return allVerified(b.segmentStates(t, m.ID)) })
	if _, ok, _ := h.in.Store().Lookup(m.ID, lesson.MetaName); ok {
		t.Fatal("lesson.json uploaded while the lesson was recording")
	}
	if _, ok, _ := h.in.Store().Lookup(m.ID, lesson.PlaylistName); ok {
		t.Fatal("index.m3u8 uploaded while the lesson was recording")
	}
	// Stop: two more segments, then everything.
	b.addSegments(t, &m, 2, 150<<10, lesson.StateComplete)
	u.Kick()
	waitFor(t, "lesson.json verified", func() bool {
		tr, ok, _ := b.cat.GetTransfer(m.ID, lesson.MetaName)
		return ok && tr.State == catalog.SegmentVerified
	})
	sameFiles(t, b, h, m.ID)
	order := h.verifiedOrder()
	if len(order) != 8 || order[6] != m.ID+"/"+lesson.PlaylistName || order[7] != m.ID+"/"+lesson.MetaName {
		t.Fatalf("verified in order %v; want 8 files, the playlist then lesson.json last", order)
	}
	if bl := u.Backlog(); bl.Files != 0 {
		// The backlog is computed at the start of a pass: wait for one more.
		u.Kick()
		waitFor(t, "an empty backlog", func() bool { return u.Backlog() == Backlog{} })
	}
	h.mu.Lock()
	if h.maxFlight > 2 {
		t.Errorf("%d transfers at once; the limit is 2", h.maxFlight)
	}
	h.mu.Unlock()
}

func TestBacklogAndWindowClosed(t *testing.T) {
	h, _ := newTestHub(t)
	b := newBox(t)
	m := newMeta(1)
	b.addSegments(t, &m, 4, 10<<10, lesson.StateComplete)
	ws, _ := pace.ParseWindows([]string{"15:30-23:00"})
	u := New(Config{Device: "room-101", Windows: ws}, b.cat, b.store, h, quiet())
	u.now = func() time.Time { return time.Date(2026, 3, 2, 10, 0, 0, 0, time.Local) }
	if err := u.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.wg.Wait()
	// init, 4 segments, playlist, lesson.json
	if bl := u.Backlog(); bl.Segments != 4 || bl.Files != 7 || bl.Bytes < 40<<10 {
		t.Fatalf("backlog %+v; want 4 segments, 7 files, at least 40 KiB", bl)
	}
	if len(h.verifiedOrder()) != 0 || h.maxFlight != 0 {
		t.Fatal("uploaded outside the upload windows")
	}
	if w := u.Backlog().Window; w != WindowClosed {
		t.Fatalf("window %q outside the window", w)
	}
	// The hub's configuration moves the window over the current time.
	ws, _ = pace.ParseWindows([]string{"09:00-11:00"})
	u.SetPolicy(Policy{Concurrency: 1, Windows: ws})
	if err := u.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.wg.Wait()
	if len(h.verifiedOrder()) == 0 {
		t.Fatal("nothing uploaded inside the window")
	}
	if w := u.Backlog().Window; w != WindowOpen {
		t.Fatalf("window %q inside the window", w)
	}
	if h.maxFlight > 1 {
		t.Errorf("%d transfers at once after the policy set 1", h.maxFlight)
	}
}

// TestWindowsIgnoredWithUnsyncedClock: a box whose clock is not set (a Pi
// boots at 1970) cannot tell the time of day; it uploads rather than wait
// for a window it cannot judge, and says so.
func TestWindowsIgnoredWithUnsyncedClock(t *testing.T) {
	h, _ := newTestHub(t)
	b := newBox(t)
	m := newMeta(1)
	b.addSegments(t, &m, 2, 10<<10, lesson.StateComplete)
	ws, _ := pace.ParseWindows([]string{"15:30-23:00"})
	synced := false
	u := New(Config{Device: "room-101", Windows: ws, ClockSynced: func() bool { return synced }}, b.cat, b.store, h, quiet())
	u.now = func() time.Time { return time.Date(1970, 1, 1, 0, 5, 0, 0, time.Local) }
	if err := u.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.wg.Wait()
	if len(h.verifiedOrder()) == 0 {
		t.Fatal("nothing uploaded with the clock unsynced")
	}
	if w := u.Backlog().Window; w != WindowUnsynced {
		t.Fatalf("window %q, want %q", w, WindowUnsynced)
	}
	synced = true
	if err := u.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.wg.Wait()
	if w := u.Backlog().Window; w != WindowClosed {
		t.Fatalf("window %q once synced at 00:05, want %q", w, WindowClosed)
	}
}

// TestRebootResumesMidSegment stops the uploader in the middle of a large
// segment (paced slowly), reopens the catalog as after a reboot, and checks
// that the transfer resumes from the hub's offset instead of starting over.
func TestRebootResumesMidSegment(t *testing.T) {
	h, srv := newTestHub(t)
	p, err := faultproxy.New(srv.Listener.Addr().String(), faultproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h.endpoint = "http://" + p.Addr() + "/tus/"
	b := newBox(t)
	m := newMeta(1)
	const size = 3 << 20
	b.addSegments(t, &m, 1, size, lesson.StateComplete)
	cfg := Config{Device: "room-101", Concurrency: 1, Rate: 4 << 20, ChunkSize: 256 << 10, Poll: 50 * time.Millisecond,
		MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}
	u := New(cfg, b.cat, b.store, h, quiet())
	stop := startUploader(t, u)
	waitFor(t, "a third of the segment on the hub", func() bool {
		tr, ok, _ := b.cat.GetTransfer(m.ID, "seg_000001.m4s")
		return ok && tr.URL != "" && p.Upstream() > size/3
	})
	stop()
	b.cat.Close()
	b.open(t)
	tr, ok, err := b.cat.GetTransfer(m.ID, "seg_000001.m4s")
	if err != nil || !ok || tr.URL == "" || tr.Offset <= 0 || tr.State == catalog.SegmentVerified {
		t.Fatalf("persisted transfer %+v %v %v; want an upload URL and an offset", tr, ok, err)
	}
	cfg.Rate = 0
	u = New(cfg, b.cat, b.store, h, quiet())
	stop = startUploader(t, u)
	defer stop()
	waitFor(t, "lesson.json verified", func() bool {
		tr, ok, _ := b.cat.GetTransfer(m.ID, lesson.MetaName)
		return ok && tr.State == catalog.SegmentVerified
	})
	sameFiles(t, b, h, m.ID)
	if up := p.Upstream(); up > size*3/2 {
		t.Fatalf("%d bytes went to the hub for a %d-byte segment: the transfer started over", up, size)
	}
}

func TestRetentionDeletesOnlyVerified(t *testing.T) {
	h, _ := newTestHub(t)
	b := newBox(t)
	done, pending := newMeta(1), newMeta(2)
	b.addSegments(t, &done, 2, 10<<10, lesson.StateComplete)
	b.addSegments(t, &pending, 2, 10<<10, lesson.StateComplete)
	u := New(Config{Device: "room-101", Concurrency: 1, Poll: 20 * time.Millisecond, RetentionFreeBytes: 1 << 60,
		MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}, b.cat, b.store, h, quiet())
	u.free = func(string) (int64, error) { return 0, nil } // always short of space
	// Only the first lesson may go to the hub.
	var once sync.Once
	hub := &gate{testHub: h, allow: done.ID, once: &once}
	u.hub = hub
	stop := startUploader(t, u)
	defer stop()
	waitFor(t, "the verified lesson deleted", func() bool {
		_, err := os.Stat(b.store.Dir(done.ID))
		ls, _ := b.cat.Lessons()
		return errors.Is(err, os.ErrNotExist) && len(ls) < 2
	})
	if _, err := os.Stat(b.store.Dir(pending.ID)); err != nil {
		t.Fatalf("the unverified lesson: %v; it must stay", err)
	}
	if segs := b.segmentStates(t, pending.ID); len(segs) != 2 {
		t.Fatalf("catalog of the unverified lesson: %v", segs)
	}
	ls, _ := b.cat.Lessons()
	if len(ls) != 1 || ls[0].ID != pending.ID {
		t.Fatalf("catalog lessons %+v; want only the unverified one", ls)
	}
}

// gate lets grants through for one lesson only.
type gate struct {
	*testHub
	allow string
	once  *sync.Once
}

func (g *gate) Grant(ctx context.Context, f File) (Grant, error) {
	if f.Lesson != g.allow {
		return Grant{}, errors.New("no grant")
	}
	return g.testHub.Grant(ctx, f)
}

// TestDamagedSegmentGoesAsItIsAndIsReported: a segment whose bytes changed
// on the box's storage after it was written (a failing SD card) is not
// retried for ever against the hub's checksum: it is reported, recorded as
// damaged in lesson.json, and its bytes as they are go to the hub, so the
// lesson still completes there. While its lesson records, it waits.
func TestDamagedSegmentGoesAsItIsAndIsReported(t *testing.T) {
	h, _ := newTestHub(t)
	b := newBox(t)
	m := newMeta(1)
	b.addSegments(t, &m, 3, 100<<10, lesson.StateRecording)
	bad := filepath.Join(b.store.Dir(m.ID), segment.Name(2))
	data, _ := os.ReadFile(bad)
	data[5000] ^= 0x40 // one bit flipped by the storage
	write(t, bad, data)
	sum := sha256.Sum256(data)
	badSum := hex.EncodeToString(sum[:])

	u := New(Config{Device: "room-101", Concurrency: 2, Poll: 50 * time.Millisecond, MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
		b.cat, b.store, h, quiet())
	stop := startUploader(t, u)
	defer stop()
	waitFor(t, "the damage reported", func() bool { return u.Backlog().Damaged == 1 })
	if p := u.Backlog().Problem; !bytes.Contains([]byte(p), []byte(segment.Name(2))) || !bytes.Contains([]byte(p), []byte(m.ID)) {
		t.Fatalf("problem %q does not name the segment and lesson", p)
	}
	waitFor(t, "the intact segments verified", func() bool {
		st := b.segmentStates(t, m.ID)
		return st[segment.Name(1)] == catalog.SegmentVerified && st[segment.Name(3)] == catalog.SegmentVerified
	})
	if st := b.segmentStates(t, m.ID); st[segment.Name(2)] == catalog.SegmentVerified {
		t.Fatal("the damaged segment went while its lesson was still recording")
	}
	b.addSegments(t, &m, 1, 100<<10, lesson.StateComplete)
	u.Kick()
	waitFor(t, "lesson.json verified", func() bool {
		tr, ok, _ := b.cat.GetTransfer(m.ID, lesson.MetaName)
		return ok && tr.State == catalog.SegmentVerified
	})
	sameFiles(t, b, h, m.ID)
	got, err := b.store.Load(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	sg := got.Segments[1]
	if !sg.Damaged || sg.SHA256 != badSum || sg.RecordedSHA256 != m.Segments[1].SHA256 {
		t.Fatalf("lesson.json segment 2: %+v; want damaged, sha256 %s, recorded %s", sg, badSum, m.Segments[1].SHA256)
	}
	st, err := h.in.Store().Status(m.ID)
	if err != nil || st.State != ingest.LessonComplete {
		t.Fatalf("hub lesson %+v %v; want complete", st, err)
	}
}

// Raw microphone files ([audio] keep_raw) are never uploaded: the lesson
// is complete on the hub without them, and retention deletes them with the
// lesson's folder.
func TestRawAudioStaysOnTheBoxAndGoesWithTheLesson(t *testing.T) {
	h, _ := newTestHub(t)
	b := newBox(t)
	m := newMeta(1)
	b.addSegments(t, &m, 2, 10<<10, lesson.StateRecording)
	for _, s := range m.Segments {
		data := make([]byte, 4096)
		rand.Read(data)
		name := rawaudio.Name(s.Number, 0)
		write(t, filepath.Join(b.store.Dir(m.ID), name), data)
		sum := sha256.Sum256(data)
		m.Raw = append(m.Raw, lesson.RawAudio{Name: name, Segment: s.Number, Start: s.Start, Duration: s.Duration,
			Channels: 4, Rate: 48000, Bits: 24, Bytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	b.addSegments(t, &m, 0, 0, lesson.StateComplete)
	u := New(Config{Device: "room-101", Concurrency: 1, Poll: 20 * time.Millisecond, RetentionFreeBytes: 1 << 60,
		MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}, b.cat, b.store, h, quiet())
	u.free = func(string) (int64, error) { return 0, nil } // always short of space
	stop := startUploader(t, u)
	defer stop()
	waitFor(t, "the verified lesson deleted", func() bool {
		_, err := os.Stat(b.store.Dir(m.ID))
		return errors.Is(err, os.ErrNotExist)
	})
	for _, f := range h.verifiedOrder() {
		if strings.HasSuffix(f, ".wav") {
			t.Errorf("%s was uploaded", f)
		}
	}
	if wavs, _ := filepath.Glob(filepath.Join(h.in.Store().Dir(m.ID), "*.wav*")); len(wavs) > 0 {
		t.Errorf("raw audio on the hub: %v", wavs)
	}
	if n := len(h.verifiedOrder()); n != 5 {
		t.Errorf("%d files verified, want 5 (init.mp4, 2 segments, the playlist, lesson.json): %v", n, h.verifiedOrder())
	}
}

// A pass lists the files to send, then starts them one by one; a transfer
// of the previous pass can finish in between. The file it finished is then
// on the list but must not go to the hub a second time.
func TestFileListedBeforeItsTransferFinishedIsNotSentAgain(t *testing.T) {
	h, _ := newTestHub(t)
	b := newBox(t)
	m := newMeta(1)
	b.addSegments(t, &m, 2, 64<<10, lesson.StateComplete)
	u := New(Config{Device: "room-101", Concurrency: 2}, b.cat, b.store, h, quiet())
	ctx := context.Background()

	stale, _, err := u.pending()
	if err != nil || len(stale) != 3 {
		t.Fatalf("pending: %d files, %v; want init.mp4 and two segments", len(stale), err)
	}
	for _, f := range stale {
		if err := u.transfer(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range stale { // the same, stale list again
		if err := u.transfer(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if order := h.verifiedOrder(); len(order) != 3 {
		t.Fatalf("the hub verified %v; want each of the three files once", order)
	}
}
