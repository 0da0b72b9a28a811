package link

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/classcap/classcap/uplink/wire"
)

// message is an MQTT message as paho hands it to the link.
type message struct {
	topic   string
	payload []byte
	acked   bool
}

func (m *message) Duplicate() bool   { return false }
func (m *message) Qos() byte         { return 1 }
func (m *message) Retained() bool    { return false }
func (m *message) Topic() string     { return m.topic }
func (m *message) MessageID() uint16 { return 1 }
func (m *message) Payload() []byte   { return m.payload }
func (m *message) Ack()              { m.acked = true }

// Whatever arrives on the cmd topic, the link does not panic, acknowledges
// the message and queues exactly one reply.
func FuzzCommandPayload(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":"c1","type":"record.start","ttl_ms":30000,"args":{"by":"coach:alice","visibility":"coaching"}}`,
		`{"v":1,"id":"c2","type":"record.stop","ttl_ms":30000}`,
		`{"v":1,"id":"c3","type":"identify","expires_at":"2000-01-01T00:00:00Z","args":{"seconds":3}}`,
		`{"v":1,"id":"c4","type":"state.get","ttl_ms":1}`,
		`{"v":1,"id":"c1","type":"record.start","ttl_ms":30000,"args":{"by":"again"}}`,
		`{"v":1,"id":"c5","type":"nope","ttl_ms":5}`,
		`{"v":3,"id":"c6"}`,
		`{"id":17}`,
		`[]`,
		`{"v":1,"id":"c7","type":"record.start","ttl_ms":5,"args":[1,2]}`,
	} {
		f.Add([]byte(s))
	}
	fb := newFakeBox()
	l, err := New(Config{Device: dev, Broker: "tcp://127.0.0.1:1", StorePath: filepath.Join(f.TempDir(), "uplink.db"), Log: quiet()}, fb)
	if err != nil {
		f.Fatal(err)
	}
	l.store.db.NoSync = true // speed; durability is tested elsewhere
	l.ctx = context.Background()
	f.Cleanup(func() { l.Close() })

	f.Fuzz(func(t *testing.T, payload []byte) {
		before := l.store.depth()
		m := &message{topic: wire.CmdTopic(dev), payload: payload}
		l.onMessage(nil, m)
		l.commands.Wait()
		if !m.acked {
			t.Fatalf("payload %q was not acknowledged", payload)
		}
		if d := l.store.depth(); d != before+1 {
			t.Fatalf("payload %q left %d replies in the outbox, want 1", payload, d-before)
		}
		var last outboxEntry
		l.store.db.View(func(tx *bolt.Tx) error {
			_, v := tx.Bucket(bucketOutbox).Cursor().Last()
			return json.Unmarshal(v, &last)
		})
		if last.Topic != wire.ReplyTopic(dev) {
			t.Fatalf("queued on %s", last.Topic)
		}
		if _, err := wire.DecodeReply(last.Payload); err != nil {
			t.Fatalf("payload %q got an invalid reply %s: %v", payload, last.Payload, err)
		}
	})
}
