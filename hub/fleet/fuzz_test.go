package fleet

import (
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// FuzzBoxMessage feeds arbitrary topics and payloads through what the hub
// does with a box's message: replies to a waiting command, state and events
// into the registry. Nothing may panic, a refused message changes nothing,
// and the registry stays readable.
func FuzzBoxMessage(f *testing.F) {
	for _, s := range []struct{ topic, payload string }{
		{"classcap/v1/room-1/state", `{"v":1,"online":false}`},
		{"classcap/v1/room-1/state", `{"v":1,"online":true,"recorder":{"state":"idle","recorded_s":0,"segments":0},"disk":{"free_mb":1,"total_mb":2},"camera":{"ok":true,"frames":1},"microphone":{"ok":true,"packets":1,"levels":[{"peak_dbfs":-1,"rms_dbfs":-2}]},"upload":{"backlog_segments":0,"backlog_bytes":0,"outbox_events":0},"clock":{"synced":false},"uptime_s":1}`},
		{"classcap/v1/room-1/event", `{"v":1,"id":"e1","seq":1,"type":"lesson.started","boot_s":1,"lesson":{"id":"000001-a","visibility":"coaching","started_by":"coach:a"}}`},
		{"classcap/v1/room-1/event", `{"v":1,"id":"e2","seq":2,"type":"lesson.stopped","at":"2026-03-02T09:00:00Z","boot_s":2,"lesson":{"id":"000001-a","segments":3,"seconds":12.5,"bytes":100}}`},
		{"classcap/v1/room-1/event", `{"v":1,"id":"e3","seq":3,"type":"alarm","boot_s":3,"alarm":{"name":"disk_low","active":true}}`},
		{"classcap/v1/room-1/reply", `{"v":1,"id":"c-1","ok":true,"result":{"lesson":"000001-a"}}`},
		{"classcap/v1/room-1/reply", `{"v":1,"id":"c-1","ok":false,"code":"busy","error":"busy"}`},
		{"classcap/v1/room-2/state", `{"v":1,"online":false}`},
		{"classcap/v1/room-1/cmd", `{}`},
		{"other/topic", `x`},
		{"classcap/v1/room-1/state", ``},
		{"classcap/v1/room-1/state", `{"v":2}`},
	} {
		f.Add(s.topic, []byte(s.payload))
	}
	reg, err := registry.Open(filepath.Join(f.TempDir(), "registry.db"), registry.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		f.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.AddDevice("room-1"); err != nil {
		f.Fatal(err)
	}
	fl := New(Config{Broker: "tcp://127.0.0.1:1", Username: "classcap-hub"}, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		waiter := pendingCmd{device: "room-1", reply: make(chan wire.Reply, 1)}
		fl.mu.Lock()
		fl.pending["c-1"] = waiter
		fl.mu.Unlock()
		before, err := reg.Device("room-1")
		if err != nil {
			t.Fatal(err)
		}
		in, ok := fl.route(topic, payload)
		if ok {
			if err := fl.record([]inMsg{in}); err != nil {
				t.Fatalf("record %s %q: %v", topic, payload, err)
			}
		}
		after, err := reg.Device("room-1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Lessons(""); err != nil {
			t.Fatal(err)
		}
		dev, kind, topicErr := wire.ParseTopic(topic)
		if topicErr == nil && dev == "room-1" && kind == wire.KindState {
			if _, err := wire.DecodeState(payload); err != nil && len(payload) > 0 &&
				(string(after.State) != string(before.State) || after.Online != before.Online) {
				t.Fatalf("a refused state (%v) changed the device: %+v -> %+v", err, before, after)
			}
			if after.State != nil && !json.Valid(after.State) {
				t.Fatalf("stored state is not JSON: %q", after.State)
			}
		}
		select {
		case r := <-waiter.reply:
			if topicErr != nil || dev != "room-1" || kind != wire.KindReply || r.ID != "c-1" {
				t.Fatalf("waiter got %+v from %q", r, topic)
			}
		default:
		}
	})
}
