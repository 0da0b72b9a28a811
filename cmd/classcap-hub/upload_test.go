package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/segment"
	"github.com/classcap/classcap/uplink/uploader"
	"github.com/classcap/classcap/uplink/wire"
)

// pahoPublisher publishes with QoS 1 and waits for the broker's ack.
type pahoPublisher struct{ c paho.Client }

func (p pahoPublisher) Publish(ctx context.Context, topic string, payload []byte) error {
	tok := p.c.Publish(topic, wire.QoS, false, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestUploadsThroughTheHub: a box's uploader asks the running hub for
// grants over its embedded broker, sends the files to its tus endpoint,
// gets verified acks; the API lists the lesson complete and serves its
// files to token holders only.
func TestUploadsThroughTheHub(t *testing.T) {
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	pw := h.verb(t, "device", "add", "room-7")
	box := newFakeBox(t, h.broker, "room-7", pw, func(wire.Command) *wire.Reply { return nil })

	// A stopped lesson on the box: init.mp4, three segments, playlist, lesson.json.
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	store, err := lesson.NewStore(filepath.Join(dir, "lessons"), log)
	if err != nil {
		t.Fatal(err)
	}
	m := lesson.Meta{V: 1, ID: lesson.NewID(1), Number: 1, Device: "room-7", Visibility: lesson.VisibilityCoaching,
		StartedBy: "button", SegmentDuration: 4, State: lesson.StateComplete}
	ldir := store.Dir(m.ID)
	if err := durable.MkdirAll(ldir, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(name string, data []byte) {
		if err := durable.WriteFile(filepath.Join(ldir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rnd := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	put(segment.InitName, rnd(900))
	for i := 1; i <= 3; i++ {
		data := rnd(64<<10 + i)
		put(segment.Name(i), data)
		s := sha256.Sum256(data)
		m.Segments = append(m.Segments, lesson.Segment{Number: i, Name: segment.Name(i), Duration: 4, Bytes: int64(len(data)), SHA256: hex.EncodeToString(s[:])})
	}
	put(lesson.PlaylistName, m.Playlist())
	put(lesson.MetaName, m.Encode())
	cat, err := catalog.Open(filepath.Join(dir, "catalog.db"), store, log)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	box.publish(t, wire.KindEvent, wire.Event{V: 1, ID: "e1", Seq: 1, Type: wire.EventLessonStarted,
		Lesson: &wire.LessonEvent{ID: m.ID, Visibility: m.Visibility, StartedBy: m.StartedBy}})

	coord := &uploader.Coordinator{Device: "room-7", Pub: pahoPublisher{box.client}, Resend: time.Second}
	if tok := box.client.Subscribe(wire.GrantTopic("room-7"), wire.QoS, func(_ paho.Client, msg paho.Message) {
		if err := coord.HandleGrant(msg.Payload()); err != nil {
			t.Errorf("grant message: %v", err)
		}
	}); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe grant: %v", tok.Error())
	}
	u := uploader.New(uploader.Config{Device: "room-7", Poll: 100 * time.Millisecond}, cat, store, coord, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "lesson.json verified on the box", func() bool {
		tr, ok, _ := cat.GetTransfer(m.ID, lesson.MetaName)
		return ok && tr.State == catalog.SegmentVerified
	})

	status, body := h.call(t, "GET", "/api/v1/lessons", coach, "")
	ls, _ := body["lessons"].([]any)
	if status != 200 || len(ls) != 1 {
		t.Fatalf("lessons: %d %v", status, body)
	}
	up, _ := ls[0].(map[string]any)["upload"].(map[string]any)
	if up["state"] != "complete" || up["files"] != float64(6) {
		t.Fatalf("lesson upload state %v; want complete with 6 files", up)
	}
	for _, name := range []string{lesson.PlaylistName, segment.InitName, segment.Name(2), lesson.MetaName} {
		want, _ := os.ReadFile(filepath.Join(ldir, name))
		got, code := get(t, h.http+"/lessons/"+m.ID+"/"+name, coach)
		if code != 200 || !bytes.Equal(got, want) {
			t.Fatalf("GET %s: %d, %d bytes; want 200 and the box's %d bytes", name, code, len(got), len(want))
		}
	}
	if _, code := get(t, h.http+"/lessons/"+m.ID+"/"+lesson.PlaylistName, ""); code != http.StatusUnauthorized {
		t.Fatalf("playlist without a token: %d, want 401", code)
	}
	if _, code := get(t, h.http+"/lessons/"+m.ID+"/"+segment.Name(9), coach); code != http.StatusNotFound {
		t.Fatalf("missing segment: %d, want 404", code)
	}
	// The teacher makes it private (a newer lesson.json): it is no longer served.
	m.Visibility = lesson.VisibilityPrivate
	put(lesson.MetaName, m.Encode())
	u.Kick()
	waitUntil(t, "the private lesson refused", func() bool {
		_, code := get(t, h.http+"/lessons/"+m.ID+"/"+lesson.PlaylistName, coach)
		return code == http.StatusForbidden
	})
}

func get(t *testing.T, url, token string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}
