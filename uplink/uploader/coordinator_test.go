package uploader

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/uplink/wire"
)

// loopback stands in for the broker and the hub's MQTT client: what the
// box publishes on upload is answered by the hub's ingest on grant. It
// drops every third message (both ways) and sends every answer twice, as
// QoS 1 across reconnects may.
type loopback struct {
	t        *testing.T
	hub      *testHub
	endpoint string
	coord    *Coordinator

	mu   sync.Mutex
	n    int
	msgs map[string]int // upload message type -> count
}

func (l *loopback) Publish(ctx context.Context, topic string, payload []byte) error {
	if topic != wire.UploadTopic("room-101") {
		l.t.Errorf("published on %s", topic)
	}
	m, err := wire.DecodeUpload(payload)
	if err != nil {
		l.t.Errorf("box sent a bad upload message: %v", err)
		return nil
	}
	l.mu.Lock()
	l.n++
	drop := l.n%3 == 0
	l.msgs[m.Type]++
	l.mu.Unlock()
	if drop {
		return nil
	}
	ans := l.hub.in.Answer("room-101", m, l.endpoint)
	go func() {
		b := mustJSON(ans)
		for range 2 {
			if err := l.coord.HandleGrant(b); err != nil {
				l.t.Errorf("HandleGrant: %v", err)
			}
		}
		if ans.Type == wire.GrantVerified && m.Type == wire.UploadComplete {
			l.hub.mu.Lock()
			l.hub.order = append(l.hub.order, m.Lesson+"/"+m.File)
			l.hub.mu.Unlock()
		}
	}()
	return nil
}

func TestOverMQTTMessages(t *testing.T) {
	h, _ := newTestHub(t)
	b := newBox(t)
	m := newMeta(1)
	b.addSegments(t, &m, 3, 50<<10, lesson.StateComplete)
	lb := &loopback{t: t, hub: h, endpoint: h.endpoint, msgs: map[string]int{}}
	coord := &Coordinator{Device: "room-101", Pub: lb, Resend: 50 * time.Millisecond}
	lb.coord = coord
	u := New(Config{Device: "room-101", Concurrency: 2, Poll: 50 * time.Millisecond, MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
		b.cat, b.store, coord, quiet())
	stop := startUploader(t, u)
	waitFor(t, "lesson.json verified", func() bool {
		tr, ok, _ := b.cat.GetTransfer(m.ID, lesson.MetaName)
		return ok && tr.State == catalog.SegmentVerified
	})
	stop()
	sameFiles(t, b, h, m.ID)
	if !allVerified(b.segmentStates(t, m.ID)) {
		t.Fatalf("segment states %v", b.segmentStates(t, m.ID))
	}
	lb.mu.Lock()
	t.Logf("messages: %v", lb.msgs)
	if lb.msgs[wire.UploadRequest] < 6 || lb.msgs[wire.UploadComplete] < 6 {
		t.Errorf("messages %v: want a request and a completion per file (6 files)", lb.msgs)
	}
	lb.mu.Unlock()

	// A box that lost its catalog asks again: the hub answers verified at
	// once and nothing is sent.
	b.cat.Close()
	b.dir2(t)
	u = New(Config{Device: "room-101", Poll: 50 * time.Millisecond}, b.cat, b.store, coord, quiet())
	stop = startUploader(t, u)
	defer stop()
	waitFor(t, "everything verified again from the hub's answers", func() bool {
		tr, ok, _ := b.cat.GetTransfer(m.ID, lesson.MetaName)
		return ok && tr.State == catalog.SegmentVerified
	})
}

// dir2 opens a fresh catalog (rebuilt from the lesson folders), as after a
// lost catalog file.
func (b *box) dir2(t *testing.T) {
	b.dir = t.TempDir()
	b.open(t)
}

func mustJSON(v any) []byte {
	b, err := jsonMarshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

var jsonMarshal = func(v any) ([]byte, error) { return json.Marshal(v) }
