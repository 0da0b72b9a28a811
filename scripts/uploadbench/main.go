// Command uploadbench measures uploads for make bench (scripts/bench-upload.sh
// runs it): the goodput of our tus client against curl sending the same
// bytes to the same tusd (the hub's ingest, in this process, on loopback),
// directly and through a rate-limited proxy, and the time from the stop of
// a synthesised lesson, uploaded progressively while it was "recorded", to
// the hub's verified ack of its last file. It prints one "bench ..." line
// per figure.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/segment"
	"github.com/classcap/classcap/hub/ingest"
	"github.com/classcap/classcap/uplink/faultproxy"
	"github.com/classcap/classcap/uplink/tus"
	"github.com/classcap/classcap/uplink/uploader"
	"github.com/classcap/classcap/uplink/wire"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "uploadbench: %v\n", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...) }

func run() error {
	work := flag.String("work", "", "work `dir` (required)")
	sizeMB := flag.Int("size-mb", 64, "bytes per goodput run, MiB")
	shapedMbps := flag.Float64("shaped-mbps", 80, "rate of the shaping proxy, Mbit/s")
	shapedMB := flag.Int("shaped-size-mb", 16, "bytes per shaped run, MiB")
	runs := flag.Int("runs", 3, "runs per figure (median)")
	lessonMin := flag.Float64("lesson-minutes", 10, "length of the synthesised lesson")
	pace := flag.Float64("pace", 20, "how much faster than real time the lesson's segments appear")
	segKbps := flag.Int("segment-kbps", 2600, "media bitrate of the synthesised segments")
	flag.Parse()
	if *work == "" {
		return fmt.Errorf("-work is required")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		return fmt.Errorf("curl is not installed")
	}
	log := slog.New(slog.DiscardHandler)
	hub, err := startHub(filepath.Join(*work, "hub"), log)
	if err != nil {
		return err
	}
	defer hub.close()

	// Goodput on loopback, ours vs curl, same file, same server.
	file := filepath.Join(*work, "payload.bin")
	if err := writeRandom(file, *sizeMB<<20); err != nil {
		return err
	}
	ours, peer, err := goodput(hub, hub.endpoint, file, *runs)
	if err != nil {
		return err
	}
	line("upload_goodput_loopback_mbps", ours, peer, "Mbit/s")

	// Through a proxy paced to shapedMbps.
	small := filepath.Join(*work, "payload-shaped.bin")
	if err := writeRandom(small, *shapedMB<<20); err != nil {
		return err
	}
	p, err := faultproxy.New(hub.addr, faultproxy.Options{Rate: int64(*shapedMbps * 1e6 / 8)})
	if err != nil {
		return err
	}
	defer p.Close()
	ours, peer, err = goodput(hub, "http://"+p.Addr()+"/tus/", small, *runs)
	if err != nil {
		return err
	}
	line("upload_goodput_shaped_mbps", ours, peer, "Mbit/s")

	// Stop to verified.
	s, err := stopToVerified(hub, filepath.Join(*work, "box"), *lessonMin, *pace, *segKbps, log)
	if err != nil {
		return err
	}
	fmt.Printf("bench stop_to_verified_s ours=%.3f unit=s\n", s)
	return nil
}

func line(name string, ours, peer float64, unit string) {
	fmt.Printf("bench %s ours=%.1f peer=%.1f ratio=%.3f unit=%s\n", name, ours, peer, ours/peer, unit)
}

func writeRandom(path string, n int) error {
	b := make([]byte, n)
	rand.Read(b)
	return os.WriteFile(path, b, 0o644)
}

type hub struct {
	in       *ingest.Ingest
	srv      *http.Server
	addr     string
	endpoint string
	n        int
}

func startHub(dir string, log *slog.Logger) (*hub, error) {
	store, err := ingest.NewStore(filepath.Join(dir, "lessons"))
	if err != nil {
		return nil, err
	}
	in, err := ingest.New(ingest.Config{UploadDir: filepath.Join(dir, "uploads"), Store: store,
		Key: []byte("bench key, at least 16 bytes long"), Log: log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/tus/", in.Handler())
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return &hub{in: in, srv: srv, addr: ln.Addr().String(), endpoint: "http://" + ln.Addr().String() + "/tus/"}, nil
}

func (h *hub) close() { h.srv.Close() }

// grant returns a fresh lesson id (so no run finds the file stored) and a
// token for file.
func (h *hub) grant(size int64, sum string) (lessonID, token string) {
	h.n++
	lessonID = lesson.NewID(h.n)
	return lessonID, h.in.Grant(ingest.Grant{Device: "bench", Lesson: lessonID, File: "seg_000001.m4s", Size: size, SHA256: sum}, time.Hour)
}

func meta(lessonID, sum string) map[string]string {
	return map[string]string{"filename": "seg_000001.m4s", "lesson": lessonID, "segment": "1", "sha256": sum}
}

// goodput sends file runs times with our client and with curl, alternating,
// and returns the median Mbit/s of each (creation included).
func goodput(h *hub, endpoint, file string, runs int) (ours, peer float64, err error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return 0, 0, err
	}
	s := sha256.Sum256(body)
	sum := hex.EncodeToString(s[:])
	size := int64(len(body))
	var o, c []float64
	for i := 0; i < runs; i++ {
		lessonID, token := h.grant(size, sum)
		client := tus.New(nil)
		client.HTTP = &http.Client{}
		t0 := time.Now()
		res, err := client.Send(context.Background(), &tus.File{Endpoint: endpoint, Token: token, Length: size,
			Metadata: meta(lessonID, sum), Body: bytes.NewReader(body)}, tus.Observer{})
		if err != nil {
			return 0, 0, fmt.Errorf("ours: %w", err)
		}
		if res.Sent != size {
			return 0, 0, fmt.Errorf("ours sent %d bytes of %d", res.Sent, size)
		}
		o = append(o, mbps(size, time.Since(t0)))

		lessonID, token = h.grant(size, sum)
		t0 = time.Now()
		if err := curlUpload(endpoint, token, file, size, meta(lessonID, sum)); err != nil {
			return 0, 0, fmt.Errorf("curl: %w", err)
		}
		c = append(c, mbps(size, time.Since(t0)))
		if _, ok, _ := h.in.Store().Lookup(lessonID, "seg_000001.m4s"); !ok {
			return 0, 0, fmt.Errorf("curl's upload was not verified by the hub")
		}
		logf("upload %s: ours %.1f Mbit/s, curl %.1f Mbit/s", endpoint, o[len(o)-1], c[len(c)-1])
	}
	return median(o), median(c), nil
}

var locRE = regexp.MustCompile(`(?im)^location:\s*(\S+)`)

// curlUpload is the same tus exchange done by curl: POST to create, one
// PATCH with the whole file.
func curlUpload(endpoint, token, file string, size int64, md map[string]string) error {
	out, err := exec.Command("curl", "-sS", "-i", "-X", "POST", endpoint,
		"-H", "Tus-Resumable: 1.0.0", "-H", "Authorization: Bearer "+token,
		"-H", fmt.Sprintf("Upload-Length: %d", size), "-H", "Upload-Metadata: "+tus.EncodeMetadata(md)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("create: %v: %s", err, out)
	}
	m := locRE.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("create: no Location in %s", out)
	}
	loc := strings.TrimSpace(string(m[1]))
	out, err = exec.Command("curl", "-sS", "-f", "-X", "PATCH", loc,
		"-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0", "-H", "Content-Type: application/offset+octet-stream",
		"-H", "Expect:", "-T", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("patch: %v: %s", err, out)
	}
	return nil
}

func mbps(n int64, d time.Duration) float64 { return float64(n) * 8 / d.Seconds() / 1e6 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// direct is the uploader's Hub answered in-process by the ingest (what
// the MQTT round trip carries in production).
type direct struct {
	h *hub
}

func (d direct) Grant(_ context.Context, f uploader.File) (uploader.Grant, error) {
	a := d.h.in.Answer("bench", wire.UploadMsg{V: 1, Type: wire.UploadRequest, FileRef: ref(f)}, d.h.endpoint)
	switch a.Type {
	case wire.GrantGranted:
		return uploader.Grant{Endpoint: a.URL, Token: a.Token}, nil
	case wire.GrantVerified:
		return uploader.Grant{}, uploader.ErrVerified
	}
	return uploader.Grant{}, fmt.Errorf("%w: %s", uploader.ErrRefused, a.Error)
}

func (d direct) Complete(_ context.Context, f uploader.File) error {
	a := d.h.in.Answer("bench", wire.UploadMsg{V: 1, Type: wire.UploadComplete, FileRef: ref(f)}, d.h.endpoint)
	if a.Type != wire.GrantVerified {
		return fmt.Errorf("%w: %s", uploader.ErrRefused, a.Error)
	}
	return nil
}

func ref(f uploader.File) wire.FileRef {
	return wire.FileRef{Lesson: f.Lesson, File: f.Name, Segment: f.Segment, Bytes: f.Bytes, SHA256: f.SHA256}
}

// stopToVerified "records" a lesson of minutes length, a 4 s segment every
// 4 s / pace, with the uploader running, then stops it and returns the
// seconds until lesson.json is verified by the hub.
func stopToVerified(h *hub, dir string, minutes, pace float64, kbps int, log *slog.Logger) (float64, error) {
	store, err := lesson.NewStore(filepath.Join(dir, "lessons"), log)
	if err != nil {
		return 0, err
	}
	cat, err := catalog.Open(filepath.Join(dir, "catalog.db"), store, log)
	if err != nil {
		return 0, err
	}
	defer cat.Close()
	m := lesson.Meta{V: 1, ID: lesson.NewID(1), Number: 1, Device: "bench", Visibility: lesson.VisibilityPrivate,
		StartedBy: "button", SegmentDuration: 4, State: lesson.StateRecording}
	ldir := store.Dir(m.ID)
	if err := durable.MkdirAll(ldir, 0o755); err != nil {
		return 0, err
	}
	init := make([]byte, 1200)
	rand.Read(init)
	if err := durable.WriteFile(filepath.Join(ldir, segment.InitName), init, 0o644); err != nil {
		return 0, err
	}
	u := uploader.New(uploader.Config{Device: "bench", Concurrency: 2, Poll: time.Second}, cat, store, direct{h}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() { cancel(); <-done }()
	segs := int(minutes * 60 / 4)
	size := kbps * 1000 / 8 * 4
	every := time.Duration(float64(4*time.Second) / pace)
	save := func() error {
		if err := durable.WriteFile(filepath.Join(ldir, lesson.MetaName), m.Encode(), 0o644); err != nil {
			return err
		}
		if err := durable.WriteFile(filepath.Join(ldir, lesson.PlaylistName), m.Playlist(), 0o644); err != nil {
			return err
		}
		return cat.PutLesson(m)
	}
	logf("stop to verified: %d segments of %d KiB, one every %v, uploading while they appear", segs, size>>10, every)
	next := time.Now()
	for i := 1; i <= segs; i++ {
		next = next.Add(every)
		time.Sleep(time.Until(next))
		data := make([]byte, size)
		rand.Read(data)
		name := segment.Name(i)
		if err := durable.WriteFile(filepath.Join(ldir, name), data, 0o644); err != nil {
			return 0, err
		}
		s := sha256.Sum256(data)
		m.Segments = append(m.Segments, lesson.Segment{Number: i, Name: name, Start: float64(4 * (i - 1)), Duration: 4,
			Bytes: int64(size), SHA256: hex.EncodeToString(s[:])})
		m.Duration += 4
		m.Bytes += int64(size)
		if err := save(); err != nil {
			return 0, err
		}
		u.Kick()
	}
	bl := u.Backlog()
	m.State = lesson.StateComplete
	stop := time.Now()
	if err := save(); err != nil {
		return 0, err
	}
	u.Kick()
	for {
		t, ok, err := cat.GetTransfer(m.ID, lesson.MetaName)
		if err != nil {
			return 0, err
		}
		if ok && t.State == catalog.SegmentVerified {
			break
		}
		if time.Since(stop) > 10*time.Minute {
			return 0, fmt.Errorf("lesson.json not verified 10 minutes after the stop")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := time.Since(stop).Seconds()
	st, err := h.in.Store().Status(m.ID)
	if err != nil || st.State != ingest.LessonComplete {
		return 0, fmt.Errorf("the hub's lesson is %+v (%v), want complete", st, err)
	}
	logf("stop to verified: %.3f s (backlog at the stop: %d segments, %d bytes; %d files, %d bytes on the hub)",
		d, bl.Segments, bl.Bytes, st.Files, st.Bytes)
	return d, nil
}
