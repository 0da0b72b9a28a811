package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classcap/classcap/uplink/faultproxy"
	"github.com/classcap/classcap/uplink/pace"
	"github.com/classcap/classcap/uplink/tus"
	"github.com/classcap/classcap/uplink/wire"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

const testLesson = "000001-abcdefghij"

type hub struct {
	in   *Ingest
	srv  *http.Server
	ln   net.Listener
	addr string
	done chan struct{}

	mu       sync.Mutex
	verified map[string]int // lesson/name -> count of Verified calls
}

// startHub serves an ingest over dir on addr ("127.0.0.1:0" for a new port).
func startHub(t *testing.T, dir, addr string) *hub {
	t.Helper()
	store, err := NewStore(filepath.Join(dir, "lessons"))
	if err != nil {
		t.Fatal(err)
	}
	h := &hub{verified: map[string]int{}, done: make(chan struct{})}
	in, err := New(Config{UploadDir: filepath.Join(dir, "uploads"), Store: store, Key: testKey, BasePath: "/tus/",
		Log: slog.New(slog.DiscardHandler),
		Verified: func(device, lessonID string, f File) {
			h.mu.Lock()
			h.verified[lessonID+"/"+f.Name]++
			h.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; ; i++ { // the port of a restarted hub may take a moment to free
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/tus/", in.Handler())
	h.in, h.ln, h.addr = in, ln, ln.Addr().String()
	h.srv = &http.Server{Handler: mux}
	go func() { h.srv.Serve(ln); close(h.done) }()
	t.Cleanup(h.stop)
	return h
}

func (h *hub) stop() {
	h.srv.Close()
	<-h.done
}

func (h *hub) endpoint() string { return "http://" + h.addr + "/tus/" }

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileFor(h *hub, endpoint, name string, body []byte) *tus.File {
	return &tus.File{
		Endpoint: endpoint,
		Token:    h.in.Grant(Grant{Device: "room-101", Lesson: testLesson, File: name, Size: int64(len(body)), SHA256: sum(body)}, time.Minute),
		Length:   int64(len(body)),
		Metadata: map[string]string{MetaFilename: name, MetaLesson: testLesson, MetaSHA256: sum(body), MetaSegment: "1"},
		Body:     bytes.NewReader(body),
	}
}

func testClient(chunk int64) *tus.Client {
	c := tus.New(slog.New(slog.DiscardHandler))
	c.ChunkSize = chunk
	c.MinDelay = time.Millisecond
	c.MaxDelay = 20 * time.Millisecond
	c.MaxFailures = 200
	return c
}

func checkStored(t *testing.T, h *hub, name string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(h.in.Store().Dir(testLesson), name))
	if err != nil {
		t.Fatalf("stored %s: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("stored %s: %d bytes, sha256 %s; want %d bytes, %s", name, len(got), sum(got), len(want), sum(want))
	}
	f, ok, err := h.in.Store().Lookup(testLesson, name)
	if err != nil || !ok || f.SHA256 != sum(want) || f.Size != int64(len(want)) {
		t.Fatalf("store record of %s = %+v, %v, %v", name, f, ok, err)
	}
}

func TestUploadStoredOnceAndIdempotent(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	body := randomBytes(t, 3<<20+123)
	c := testClient(1 << 20)
	var created []string
	var last int64
	res, err := c.Send(context.Background(), fileFor(h, h.endpoint(), "seg_000001.m4s", body), tus.Observer{
		Created:  func(u string) error { created = append(created, u); return nil },
		Progress: func(off int64) { last = off },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 || res.Created != 1 || res.Sent != int64(len(body)) || last != int64(len(body)) {
		t.Fatalf("created %v, result %+v, last offset %d; want one upload of %d bytes", created, res, last, len(body))
	}
	checkStored(t, h, "seg_000001.m4s", body)
	// The upload is gone from tusd's store: only the lesson store keeps it.
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(h.in.Store().Dir(testLesson)), "..", "uploads", "*")); len(left) != 0 {
		t.Fatalf("uploads left in the filestore: %v", left)
	}

	// Sending it again creates nothing and sends nothing.
	res, err = c.Send(context.Background(), fileFor(h, h.endpoint(), "seg_000001.m4s", body), tus.Observer{})
	if err != nil || !res.AlreadyStored || res.Sent != 0 {
		t.Fatalf("second send: %+v, %v; want already stored, nothing sent", res, err)
	}
	// The old upload URL is gone; resuming it finds the file stored.
	f := fileFor(h, h.endpoint(), "seg_000001.m4s", body)
	f.URL = created[0]
	res, err = c.Send(context.Background(), f, tus.Observer{})
	if err != nil || !res.AlreadyStored || res.Sent != 0 {
		t.Fatalf("resume of a finished upload: %+v, %v; want already stored", res, err)
	}
	// Other bytes under the same segment name are refused.
	other := randomBytes(t, 1000)
	_, err = c.Send(context.Background(), fileFor(h, h.endpoint(), "seg_000001.m4s", other), tus.Observer{})
	if !errors.Is(err, tus.ErrRejected) {
		t.Fatalf("other bytes under a stored segment name: %v; want a refusal", err)
	}
	checkStored(t, h, "seg_000001.m4s", body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.verified[testLesson+"/seg_000001.m4s"] < 1 {
		t.Fatalf("no verified notice: %v", h.verified)
	}
}

func TestPlaylistReplacedByNewerVersion(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	c := testClient(1 << 20)
	for _, body := range [][]byte{[]byte("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n"), []byte("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-ENDLIST\n")} {
		if _, err := c.Send(context.Background(), fileFor(h, h.endpoint(), "index.m3u8", body), tus.Observer{}); err != nil {
			t.Fatal(err)
		}
		checkStored(t, h, "index.m3u8", body)
	}
}

func TestCreationRefusedWithoutAMatchingGrant(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	body := randomBytes(t, 1000)
	c := testClient(1 << 20)
	good := Grant{Device: "room-101", Lesson: testLesson, File: "seg_000001.m4s", Size: 1000, SHA256: sum(body)}
	sign := func(g Grant, ttl time.Duration) string { return h.in.Grant(g, ttl) }
	cases := []struct {
		name  string
		token string
		meta  map[string]string
		size  int64
	}{
		{"no token", "", nil, 1000},
		{"forged", Sign([]byte("another key of 32 bytes........."), good), nil, 1000},
		{"expired", sign(good, -time.Second), nil, 1000},
		{"other size", sign(good, time.Minute), nil, 999},
		{"other file", sign(good, time.Minute), map[string]string{MetaFilename: "seg_000002.m4s"}, 1000},
		{"other lesson", sign(good, time.Minute), map[string]string{MetaLesson: "000002-abcdefghij"}, 1000},
		{"other sha256", sign(good, time.Minute), map[string]string{MetaSHA256: sum([]byte("x"))}, 1000},
		{"bad name", sign(Grant{Device: "d", Lesson: testLesson, File: "../x", Size: 1000, SHA256: sum(body)}, time.Minute),
			map[string]string{MetaFilename: "../x"}, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]string{MetaFilename: "seg_000001.m4s", MetaLesson: testLesson, MetaSHA256: sum(body)}
			for k, v := range tc.meta {
				meta[k] = v
			}
			_, _, err := c.Create(context.Background(), h.endpoint(), tc.token, tc.size, meta)
			if !errors.Is(err, tus.ErrRejected) {
				t.Fatalf("create: %v; want ErrRejected", err)
			}
		})
	}
	if ids, _ := h.in.Store().Lessons(); len(ids) != 0 {
		t.Fatalf("lessons stored after refusals: %v", ids)
	}
}

// flipOnce returns the body with one byte flipped the first time the byte
// at off is read.
type flipOnce struct {
	b       []byte
	off     int64
	flipped atomic.Bool
}

func (f *flipOnce) ReadAt(p []byte, at int64) (int, error) {
	n, err := bytes.NewReader(f.b).ReadAt(p, at)
	if at <= f.off && f.off < at+int64(n) && f.flipped.CompareAndSwap(false, true) {
		p[f.off-at] ^= 0x40
	}
	return n, err
}

func TestTamperedByteRejectedAndSentAgain(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	body := randomBytes(t, 600<<10)
	c := testClient(256 << 10)
	f := fileFor(h, h.endpoint(), "seg_000007.m4s", body)
	f.Body = &flipOnce{b: body, off: 300 << 10}
	res, err := c.Send(context.Background(), f, tus.Observer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 1 || res.Created != 2 || res.Sent != 2*int64(len(body)) {
		t.Fatalf("result %+v; want one rejection, two uploads, the file sent twice", res)
	}
	checkStored(t, h, "seg_000007.m4s", body)
}

// TestCutsAtRandomOffsets sends files through a proxy that cuts the
// connection at random byte offsets until at least 50 cuts happened: every
// file arrives whole, once, and each cut costs at most one chunk.
func TestCutsAtRandomOffsets(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	p, err := faultproxy.New(h.addr, faultproxy.Options{CutMin: 8 << 10, CutMax: 160 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const chunk = 64 << 10
	c := testClient(chunk)
	c.HTTP = &http.Client{Timeout: 10 * time.Second}
	endpoint := "http://" + p.Addr() + "/tus/"
	var sent, length int64
	files := map[string][]byte{}
	for i := 1; p.Cuts() < 50; i++ {
		if i > 200 {
			t.Fatalf("only %d cuts after %d files", p.Cuts(), i-1)
		}
		name := fmt.Sprintf("seg_%06d.m4s", i)
		body := randomBytes(t, 200<<10+i*997)
		files[name] = body
		res, err := c.Send(context.Background(), fileFor(h, endpoint, name, body), tus.Observer{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sent += res.Sent
		length += int64(len(body))
	}
	cuts := p.Cuts()
	for name, body := range files {
		checkStored(t, h, name, body)
	}
	stored, _ := h.in.Store().Files(testLesson)
	if len(stored) != len(files) {
		t.Fatalf("%d files stored, want %d", len(stored), len(files))
	}
	resent := sent - length
	t.Logf("%d files, %d bytes, %d cuts, %d bytes sent again (%.1f KiB per cut)", len(files), length, cuts, resent, float64(resent)/float64(cuts)/1024)
	if resent < 0 || resent > cuts*chunk {
		t.Fatalf("%d bytes sent again over %d cuts: more than one %d-byte chunk per cut", resent, cuts, chunk)
	}
}

// TestHubRestartMidTransfer stops the hub while a file is half sent and
// starts it again on the same address: the transfer resumes where the
// hub's filestore stands.
func TestHubRestartMidTransfer(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir, "127.0.0.1:0")
	body := randomBytes(t, 2<<20)
	c := testClient(128 << 10)
	c.MaxFailures = 0
	c.Limiter = pace.New(4 << 20) // about half a second for the file
	f := fileFor(h, h.endpoint(), "seg_000003.m4s", body)
	restarted := make(chan *hub, 1)
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.Send(ctx, f, tus.Observer{Progress: func(off int64) {
		if off >= int64(len(body))/3 {
			once.Do(func() {
				h.stop()
				restarted <- startHub(t, dir, h.addr)
			})
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	h2 := <-restarted
	if res.Created != 1 || res.Sent >= 2*int64(len(body)) {
		t.Fatalf("result %+v: the transfer started over instead of resuming", res)
	}
	checkStored(t, h2, "seg_000003.m4s", body)
}

// TestRecoverCompleteUnverifiedUpload: a hub that stopped between the last
// byte and the check finishes the upload when it starts.
func TestRecoverCompleteUnverifiedUpload(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir, "127.0.0.1:0")
	body := randomBytes(t, 100<<10)
	c := testClient(1 << 20)
	f := fileFor(h, h.endpoint(), "init.mp4", body)
	u, _, err := c.Create(context.Background(), f.Endpoint, f.Token, f.Length, f.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Patch(context.Background(), u, f.Token, 0, bytes.NewReader(body[:1000]), 1000); err != nil {
		t.Fatal(err)
	}
	h.stop()
	// Append the rest behind tusd's back, as if the hub died right after
	// writing the last byte.
	bins, _ := filepath.Glob(filepath.Join(dir, "uploads", "*.info"))
	if len(bins) != 1 {
		t.Fatalf("uploads: %v", bins)
	}
	fh, err := os.OpenFile(bins[0][:len(bins[0])-len(".info")], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write(body[1000:])
	fh.Close()
	h2 := startHub(t, dir, h.addr)
	checkStored(t, h2, "init.mp4", body)
	res, err := c.Send(context.Background(), f, tus.Observer{})
	if err != nil || !res.AlreadyStored {
		t.Fatalf("send after recovery: %+v, %v; want already stored", res, err)
	}
}

func TestAnswer(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	body := randomBytes(t, 5000)
	ref := wire.FileRef{Lesson: testLesson, File: "seg_000001.m4s", Segment: 1, Bytes: 5000, SHA256: sum(body)}
	req := wire.UploadMsg{V: 1, Type: wire.UploadRequest, FileRef: ref}
	done := wire.UploadMsg{V: 1, Type: wire.UploadComplete, FileRef: ref}

	if a := h.in.Answer("room-101", done, h.endpoint()); a.Type != wire.GrantRefused {
		t.Fatalf("complete before any byte: %+v; want refused", a)
	}
	a := h.in.Answer("room-101", req, h.endpoint())
	if a.Type != wire.GrantGranted || a.URL != h.endpoint() || a.FileRef != ref || a.Validate() != nil {
		t.Fatalf("request: %+v; want a grant for the file", a)
	}
	f := &tus.File{Endpoint: a.URL, Token: a.Token, Length: 5000, Body: bytes.NewReader(body),
		Metadata: map[string]string{MetaFilename: ref.File, MetaLesson: ref.Lesson, MetaSHA256: ref.SHA256}}
	if _, err := testClient(1<<20).Send(context.Background(), f, tus.Observer{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []wire.UploadMsg{done, done, req} {
		if a := h.in.Answer("room-101", m, h.endpoint()); a.Type != wire.GrantVerified || a.FileRef != ref {
			t.Fatalf("%s after the upload: %+v; want verified", m.Type, a)
		}
	}
	other := req
	other.SHA256 = sum([]byte("other"))
	if a := h.in.Answer("room-101", other, h.endpoint()); a.Type != wire.GrantRefused {
		t.Fatalf("request for other bytes under a stored name: %+v; want refused", a)
	}
	bad := req
	bad.File = "../../etc/passwd"
	if a := h.in.Answer("room-101", bad, h.endpoint()); a.Type != wire.GrantRefused {
		t.Fatalf("bad name: %+v; want refused", a)
	}
}
