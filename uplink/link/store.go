package link

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Buckets of the link's store.
var (
	bucketOutbox   = []byte("outbox")    // seq (8 bytes, big endian) -> outboxEntry
	bucketCommands = []byte("commands")  // command id -> commandRecord
	bucketMeta     = []byte("meta")      // "seq" -> last sequence number used
	keySeq         = []byte("seq")       // outbox keys and command order
	keyEventSeq    = []byte("event_seq") // the events' seq field
)

// maxCommands is how many command ids are remembered; older ones are
// forgotten (their commands expired long ago).
const maxCommands = 10000

// store keeps, across restarts and power loss, the messages waiting for
// the broker's acknowledgement (the outbox) and the commands already
// received with their replies (so none is acted on twice).
type store struct {
	db *bolt.DB
}

// outboxEntry is one message to publish.
type outboxEntry struct {
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
}

// Command record states.
const (
	cmdRunning = "running" // received and acknowledged; being acted on
	cmdDone    = "done"    // answered; Reply holds the answer
)

// commandRecord is what the store remembers of a command.
type commandRecord struct {
	State    string          `json:"state"`
	Run      string          `json:"run"` // the process run that received it
	Received time.Time       `json:"received"`
	Type     string          `json:"type"`
	Reply    json.RawMessage `json:"reply,omitempty"`
	Order    uint64          `json:"order"` // for forgetting the oldest
}

func openStore(path string) (*store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOutbox, bucketCommands, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) Close() error { return s.db.Close() }

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// nextSeq takes the next outbox key inside tx.
func nextSeq(tx *bolt.Tx) uint64 { return nextCounter(tx, keySeq) }

func nextCounter(tx *bolt.Tx, key []byte) uint64 {
	m := tx.Bucket(bucketMeta)
	var n uint64
	if v := m.Get(key); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n++
	m.Put(key, seqKey(n))
	return n
}

// enqueueEvent adds an event built by build (given its event sequence
// number: 1, 2, 3, ... never reused) to the outbox, durably.
func (s *store) enqueueEvent(topic string, build func(seq uint64) ([]byte, error)) (uint64, error) {
	var seq uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		seq = nextCounter(tx, keyEventSeq)
		payload, err := build(seq)
		if err != nil {
			return err
		}
		return putOutbox(tx, topic, payload)
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: add to %s: %w", topic, err)
	}
	return seq, nil
}

// oldest returns up to n messages from the front of the outbox.
func (s *store) oldest(n int) (seqs []uint64, entries []outboxEntry, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(seqs) < n; k, v = c.Next() {
			var e outboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %x: %w", k, err)
			}
			seqs = append(seqs, binary.BigEndian.Uint64(k))
			entries = append(entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: read: %w", err)
	}
	return seqs, entries, nil
}

// remove deletes acknowledged messages.
func (s *store) remove(seqs ...uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, n := range seqs {
			if err := b.Delete(seqKey(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: remove: %w", err)
	}
	return nil
}

// depth is the number of messages in the outbox.
func (s *store) depth() int {
	n := 0
	s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return n
}

// errSeen is returned by claim for a command id already received.
var errSeen = errors.New("command already received")

// claim records a newly received command as running, durably. For an id
// already known it returns the stored record and errSeen.
func (s *store) claim(id string, rec commandRecord) (commandRecord, error) {
	var old commandRecord
	seen := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		if v := b.Get([]byte(id)); v != nil {
			seen = true
			return json.Unmarshal(v, &old)
		}
		rec.Order = nextSeq(tx)
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(id), v); err != nil {
			return err
		}
		return forgetOldest(b)
	})
	if err != nil {
		return commandRecord{}, fmt.Errorf("commands: record %s: %w", id, err)
	}
	if seen {
		return old, errSeen
	}
	return rec, nil
}

// forgetOldest keeps the command bucket at maxCommands entries.
func forgetOldest(b *bolt.Bucket) error {
	n := b.Stats().KeyN
	if n <= maxCommands {
		return nil
	}
	type idOrder struct {
		id    []byte
		order uint64
	}
	var all []idOrder
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var r commandRecord
		json.Unmarshal(v, &r)
		all = append(all, idOrder{append([]byte(nil), k...), r.Order})
	}
	// Remove the oldest tenth at once, so this runs rarely.
	drop := n - maxCommands + maxCommands/10
	for ; drop > 0; drop-- {
		oldest := 0
		for i := range all {
			if all[i].order < all[oldest].order {
				oldest = i
			}
		}
		if err := b.Delete(all[oldest].id); err != nil {
			return err
		}
		all[oldest] = all[len(all)-1]
		all = all[:len(all)-1]
	}
	return nil
}

// answer stores a command's reply and queues it for publishing, in one
// transaction: a reply is never stored without being sent, nor sent twice
// as two different answers.
func (s *store) answer(id, replyTopic string, reply []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		var rec commandRecord
		if v := b.Get([]byte(id)); v != nil {
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
		} else {
			rec.Order = nextSeq(tx)
		}
		rec.State, rec.Reply = cmdDone, reply
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(id), v); err != nil {
			return err
		}
		return putOutbox(tx, replyTopic, reply)
	})
	if err != nil {
		return fmt.Errorf("commands: answer %s: %w", id, err)
	}
	return nil
}

func putOutbox(tx *bolt.Tx, topic string, payload []byte) error {
	seq := nextSeq(tx)
	b, err := json.Marshal(outboxEntry{Topic: topic, Payload: payload})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketOutbox).Put(seqKey(seq), b)
}

// queue puts a message in the outbox without a command record (replies to
// payloads that carried no readable id).
func (s *store) queue(topic string, payload []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return putOutbox(tx, topic, payload) })
	if err != nil {
		return fmt.Errorf("outbox: add to %s: %w", topic, err)
	}
	return nil
}
