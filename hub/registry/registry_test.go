package registry

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/events"
)

func open(t *testing.T, path string) *Registry {
	t.Helper()
	r, err := Open(path, Options{BcryptCost: bcrypt.MinCost, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDevicesAndPasswords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	r := open(t, path)
	pw, err := r.AddDevice("room-101")
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 32 {
		t.Fatalf("password %q is short", pw)
	}
	if _, err := r.AddDevice("room-101"); !errors.Is(err, ErrDeviceExists) {
		t.Fatalf("second add: %v, want ErrDeviceExists", err)
	}
	for _, id := range []string{"", "room/1", "a+b", "#", "classcap-hub", "Classcap-Hub-2", "classcap"} {
		if _, err := r.AddDevice(id); err == nil {
			t.Errorf("AddDevice(%q) accepted", id)
		}
	}
	if !r.CheckPassword("room-101", pw) || r.CheckPassword("room-101", pw+"x") || r.CheckPassword("room-102", pw) {
		t.Fatal("CheckPassword is wrong")
	}
	d, err := r.Device("room-101")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mustJSON(t, d)), pw) {
		t.Fatal("the registry stores the password")
	}
	if ok, err := CheckMosquittoHash(d.MosquittoHash, pw); !ok || err != nil {
		t.Fatalf("mosquitto hash does not match the password: %v", err)
	}
	if _, err := r.Device("room-102"); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("unknown device: %v", err)
	}

	// State and lessons, then reopen: all of it is on disk.
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	err = r.Write(func(tx *Tx) error {
		if err := tx.SetState("room-101", json.RawMessage(`{"v":1,"online":true}`), true, at); err != nil {
			return err
		}
		return tx.UpdateLesson("room-101", "000001-a", func(l *Lesson) { l.Recording = true; l.StartedBy = "coach:a" })
	})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Write(func(tx *Tx) error { return tx.SetState("room-404", nil, false, at) })
	if !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("state of an unknown device: %v", err)
	}
	// The will: offline, the last state kept.
	if err := r.Write(func(tx *Tx) error { return tx.SetState("room-101", nil, false, at.Add(time.Second)) }); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r = open(t, path)
	defer r.Close()
	d, err = r.Device("room-101")
	if err != nil {
		t.Fatal(err)
	}
	if d.Online || string(d.State) != `{"v":1,"online":true}` || !d.LastSeen.Equal(at.Add(time.Second)) || !d.StateAt.Equal(at) {
		t.Fatalf("device after reopen: %+v", d)
	}
	if err := r.Write(func(tx *Tx) error { return tx.SetState("room-101", nil, true, at.Add(2*time.Second)) }); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkAllOffline(); err != nil {
		t.Fatal(err)
	}
	if d, _ := r.Device("room-101"); d.Online || string(d.State) != `{"v":1,"online":true}` {
		t.Fatalf("after MarkAllOffline: %+v", d)
	}
	ls, err := r.Lessons("room-101")
	if err != nil || len(ls) != 1 || !ls[0].Recording || ls[0].StartedBy != "coach:a" {
		t.Fatalf("lessons: %+v, %v", ls, err)
	}
	if ls, _ := r.Lessons("room-10"); len(ls) != 0 {
		t.Fatalf("lessons of room-10 include another device's: %+v", ls)
	}
}

func TestTokens(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "registry.db"))
	defer r.Close()
	tok, err := r.CreateToken(RoleCoach, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) {
		t.Fatalf("token %q", tok)
	}
	got, err := r.LookupToken(tok)
	if err != nil || got.Role != RoleCoach || got.Name != "alice" {
		t.Fatalf("lookup: %+v, %v", got, err)
	}
	if _, err := r.LookupToken(tok + "x"); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("lookup of a wrong token: %v", err)
	}
	if _, err := r.CreateToken("root", "x"); err == nil {
		t.Fatal("role root accepted")
	}
	if _, err := r.CreateToken(RoleAdmin, " "); err == nil {
		t.Fatal("empty name accepted")
	}
	ts, err := r.Tokens()
	if err != nil || len(ts) != 1 || strings.Contains(string(mustJSON(t, ts)), tok) {
		t.Fatalf("tokens: %+v, %v", ts, err)
	}
}

func TestOpenLockedFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	r := open(t, path)
	defer r.Close()
	// bbolt's flock is per open file description, so a second Open in the
	// same process waits for it as another process would.
	_, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: %v, want ErrLocked naming the file", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// published records what the registry publishes.
type published struct {
	mu  sync.Mutex
	evs []events.Event
}

func (p *published) Publish(e events.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, e)
}

func (p *published) take() []events.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	evs := p.evs
	p.evs = nil
	return evs
}

// TestWritesArePublished: what a committed write changed is published,
// after the commit; a device's last_seen alone and a failed write are not.
func TestWritesArePublished(t *testing.T) {
	pub := &published{}
	r, err := Open(filepath.Join(t.TempDir(), "r.db"), Options{BcryptCost: bcrypt.MinCost, Events: pub})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.AddDevice("room-1"); err != nil {
		t.Fatal(err)
	}
	dev := events.Event{Kind: events.KindDevice, Device: "room-1"}
	if got := pub.take(); len(got) != 1 || got[0] != dev {
		t.Fatalf("add: %v", got)
	}
	err = r.Write(func(tx *Tx) error {
		if err := tx.Seen("room-1", time.Now()); err != nil {
			return err
		}
		if err := tx.SetState("room-1", json.RawMessage(`{"v":1}`), true, time.Now()); err != nil {
			return err
		}
		if len(pub.take()) != 0 {
			t.Error("published before the commit")
		}
		return tx.UpdateLesson("room-1", "l1", func(l *Lesson) {})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pub.take(); len(got) != 2 || got[0] != dev || got[1] != (events.Event{Kind: events.KindLesson, Device: "room-1", Lesson: "l1"}) {
		t.Fatalf("write: %v", got)
	}
	_ = r.Write(func(tx *Tx) error { return tx.Seen("room-1", time.Now()) })
	_ = r.Write(func(tx *Tx) error {
		_ = tx.SetState("room-1", nil, false, time.Now())
		return errors.New("abort")
	})
	if got := pub.take(); len(got) != 0 {
		t.Fatalf("last_seen alone or an aborted write published %v", got)
	}
	if err := r.MarkAllOffline(); err != nil {
		t.Fatal(err)
	}
	if got := pub.take(); len(got) != 1 || got[0] != dev {
		t.Fatalf("mark offline: %v", got)
	}
}
