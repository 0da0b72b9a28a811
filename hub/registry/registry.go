// Package registry is the hub's record of its devices, their MQTT
// credentials, their last reported state and the lessons they reported, and
// of the bearer tokens of the HTTP API. It is one bbolt file.
//
// Secrets are never stored: a device's password is kept as a bcrypt hash
// (checked by the embedded broker) and as a PBKDF2-SHA512 hash in
// mosquitto's "$7$" format (written to mosquitto's password file); a token
// is kept as its SHA-256.
package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/classcap/classcap/hub/events"
	"github.com/classcap/classcap/uplink/wire"
	"golang.org/x/crypto/bcrypt"
)

// Errors the callers tell apart.
var (
	ErrUnknownDevice = errors.New("unknown device")
	ErrDeviceExists  = errors.New("device already registered")
	ErrUnknownToken  = errors.New("unknown token")
	ErrLocked        = errors.New("registry is locked by another process")
)

// Roles of API tokens.
const (
	RoleCoach = "coach" // list devices, device detail, start and stop recordings, lessons
	RoleAdmin = "admin" // everything, including adding devices and tokens
)

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return r == RoleCoach || r == RoleAdmin }

// BcryptCost is the bcrypt cost of device password hashes. A device's
// password is 24 random bytes (192 bits), so no guessing attack gains from a
// fast hash; the cost only bounds what each MQTT login and each registration
// spends, which matters when hundreds of boxes reconnect after an outage.
const BcryptCost = 8

var (
	bucketDevices = []byte("devices")
	bucketTokens  = []byte("tokens")
	bucketLessons = []byte("lessons")
	bucketViews   = []byte("views")
)

// Device is one registered box.
type Device struct {
	ID       string    `json:"id"`
	AddedAt  time.Time `json:"added_at"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen,omitzero"` // last message from the box (or about it: its will)
	// State is the box's last state message as it sent it (JSON), nil
	// until it sent one.
	State   json.RawMessage `json:"state,omitempty"`
	StateAt time.Time       `json:"state_at,omitzero"`

	BcryptHash    string `json:"bcrypt_hash"`
	MosquittoHash string `json:"mosquitto_hash"`
}

// Lesson is a lesson a device reported through its events.
type Lesson struct {
	Device     string    `json:"device"`
	ID         string    `json:"id"`
	Visibility string    `json:"visibility,omitempty"`
	StartedBy  string    `json:"started_by,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"` // wall time on the box, when its clock was synced
	StoppedAt  time.Time `json:"stopped_at,omitzero"`
	StoppedBy  string    `json:"stopped_by,omitempty"`
	Seconds    float64   `json:"seconds,omitempty"`
	Segments   int       `json:"segments,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	Recording  bool      `json:"recording"` // started and not yet reported stopped
	Stopped    bool      `json:"stopped"`   // reported stopped
	UpdatedAt  time.Time `json:"updated_at"`
}

// Token is an API token's record (the token itself is not kept).
type Token struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Registry is the open registry file. Its methods are safe for concurrent use.
type Registry struct {
	db         *bolt.DB
	now        func() time.Time
	mosqIter   int // PBKDF2 iterations of new mosquitto hashes
	bcryptCost int
	events     Publisher
}

// Publisher is told what a committed write changed.
type Publisher interface {
	Publish(events.Event)
}

// Options tune Open.
type Options struct {
	// Timeout bounds the wait for the file lock another process holds
	// (default 1 s); then Open fails with ErrLocked.
	Timeout time.Duration
	// BcryptCost of new device password hashes (default BcryptCost).
	BcryptCost int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Events, when set, is told of every device and lesson a committed
	// write changed (not of a device's last_seen alone).
	Events Publisher
}

// Open opens or creates the registry file at path.
func Open(path string, opt Options) (*Registry, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open registry %s: %w (is classcap-hub running with this data_dir?)", path, ErrLocked)
		}
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketDevices, bucketTokens, bucketLessons, bucketViews} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: create buckets: %w", path, err)
	}
	if opt.BcryptCost == 0 {
		opt.BcryptCost = BcryptCost
	}
	return &Registry{db: db, now: opt.Now, mosqIter: MosquittoIterations, bcryptCost: opt.BcryptCost, events: opt.Events}, nil
}

// Close closes the file.
func (r *Registry) Close() error { return r.db.Close() }

// NewSecret returns n random bytes, base64url without padding.
func NewSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrReservedID is returned by AddDevice for ids the hub keeps for itself.
var ErrReservedID = errors.New("device id is reserved for the hub (classcap, classcap-hub...)")

// ValidateDeviceID checks id as wire.ValidateDeviceID does and refuses the
// ids that could pass for the hub's own MQTT client.
func ValidateDeviceID(id string) error {
	if err := wire.ValidateDeviceID(id); err != nil {
		return err
	}
	if l := strings.ToLower(id); l == "classcap" || strings.HasPrefix(l, "classcap-hub") {
		return fmt.Errorf("device id %q: %w", id, ErrReservedID)
	}
	return nil
}

// AddDevice registers id and returns its new MQTT password, which is not
// stored.
func (r *Registry) AddDevice(id string) (string, error) {
	if err := ValidateDeviceID(id); err != nil {
		return "", fmt.Errorf("add device: %w", err)
	}
	if _, err := r.Device(id); err == nil {
		return "", fmt.Errorf("add device %s: %w", id, ErrDeviceExists) // before the slow hashing
	}
	password := NewSecret(24)
	bh, err := bcrypt.GenerateFromPassword([]byte(password), r.bcryptCost)
	if err != nil {
		return "", fmt.Errorf("add device %s: hash password: %w", id, err)
	}
	mh, err := MosquittoHash(password, r.mosqIter)
	if err != nil {
		return "", fmt.Errorf("add device %s: %w", id, err)
	}
	d := Device{ID: id, AddedAt: r.now().UTC(), BcryptHash: string(bh), MosquittoHash: mh}
	err = r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		if b.Get([]byte(id)) != nil {
			return fmt.Errorf("add device %s: %w", id, ErrDeviceExists)
		}
		return putJSON(b, id, d)
	})
	if err != nil {
		return "", err
	}
	r.publish([]events.Event{{Kind: events.KindDevice, Device: id}})
	return password, nil
}

// Device returns the device id.
func (r *Registry) Device(id string) (Device, error) {
	var d Device
	err := r.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDevices).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("device %q: %w", id, ErrUnknownDevice)
		}
		return json.Unmarshal(v, &d)
	})
	return d, err
}

// Devices returns every device, ordered by id.
func (r *Registry) Devices() ([]Device, error) {
	var out []Device
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			var d Device
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("device %s: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// CheckPassword reports whether password is device id's MQTT password.
func (r *Registry) CheckPassword(id, password string) bool {
	d, err := r.Device(id)
	if err != nil || d.BcryptHash == "" {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(d.BcryptHash), []byte(password)) == nil
}

// lessonKey orders lessons by device, then lesson id.
func lessonKey(device, id string) string { return device + "\x00" + id }

// Lessons returns the lessons of device (all devices when device is ""),
// ordered by device, then lesson id.
func (r *Registry) Lessons(device string) ([]Lesson, error) {
	var out []Lesson
	err := r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLessons).Cursor()
		prefix := []byte(nil)
		if device != "" {
			prefix = []byte(device + "\x00")
		}
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var l Lesson
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("lesson %q: %w", strings.ReplaceAll(string(k), "\x00", "/"), err)
			}
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// Lesson returns lesson id of device; ok is false when there is none.
func (r *Registry) Lesson(device, id string) (l Lesson, ok bool, err error) {
	err = r.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLessons).Get([]byte(lessonKey(device, id)))
		if v == nil {
			return nil
		}
		ok = true
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("lesson %s/%s: %w", device, id, err)
		}
		return nil
	})
	return l, ok, err
}

func tokenKey(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return []byte(hex.EncodeToString(h[:]))
}

// TokenPrefix starts every API token, so one is recognised in a leak scan.
const TokenPrefix = "cct_"

// CreateToken makes a new API token for role, named name (who or what
// holds it), and returns it; only its hash is stored.
func (r *Registry) CreateToken(role, name string) (string, error) {
	if !ValidRole(role) {
		return "", fmt.Errorf("create token: role %q: want %s or %s", role, RoleCoach, RoleAdmin)
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", errors.New("create token: the name is empty (say who holds the token)")
	}
	token := TokenPrefix + NewSecret(32)
	t := Token{Name: name, Role: role, CreatedAt: r.now().UTC()}
	err := r.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketTokens), string(tokenKey(token)), t)
	})
	if err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return token, nil
}

// LookupToken returns the record of token.
func (r *Registry) LookupToken(token string) (Token, error) {
	var t Token
	err := r.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get(tokenKey(token))
		if v == nil {
			return ErrUnknownToken
		}
		return json.Unmarshal(v, &t)
	})
	return t, err
}

// Tokens returns every token's record, ordered by name.
func (r *Registry) Tokens() ([]Token, error) {
	var out []Token
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// Tx is one write transaction: what the hub learned from a batch of MQTT
// messages, written with one commit.
type Tx struct {
	tx      *bolt.Tx
	now     time.Time
	changed []events.Event // published once the transaction commits
}

// Write runs f in one write transaction and commits it when f returns nil;
// then what it changed is published.
func (r *Registry) Write(f func(*Tx) error) error {
	var t *Tx
	err := r.db.Update(func(tx *bolt.Tx) error {
		t = &Tx{tx: tx, now: r.now().UTC()}
		return f(t)
	})
	if err == nil {
		r.publish(t.changed)
	}
	return err
}

func (r *Registry) publish(evs []events.Event) {
	if r.events == nil {
		return
	}
	for _, e := range evs {
		r.events.Publish(e)
	}
}

// SetState records a state message of device id: its payload (nil keeps
// the previous one), whether the device is online, and when it arrived.
func (t *Tx) SetState(id string, payload json.RawMessage, online bool, at time.Time) error {
	return t.updateDevice(id, func(d *Device) {
		if payload != nil {
			d.State = append(json.RawMessage(nil), payload...)
			d.StateAt = at.UTC()
		}
		d.Online = online
		if at.After(d.LastSeen) {
			d.LastSeen = at.UTC()
		}
	})
}

// Seen records that device id sent something at at.
func (t *Tx) Seen(id string, at time.Time) error {
	return t.putDevice(id, func(d *Device) {
		if at.After(d.LastSeen) {
			d.LastSeen = at.UTC()
		}
	})
}

// updateDevice changes device id's record, which is published.
func (t *Tx) updateDevice(id string, f func(*Device)) error {
	if err := t.putDevice(id, f); err != nil {
		return err
	}
	t.changed = append(t.changed, events.Event{Kind: events.KindDevice, Device: id})
	return nil
}

func (t *Tx) putDevice(id string, f func(*Device)) error {
	b := t.tx.Bucket(bucketDevices)
	v := b.Get([]byte(id))
	if v == nil {
		return fmt.Errorf("device %q: %w", id, ErrUnknownDevice)
	}
	var d Device
	if err := json.Unmarshal(v, &d); err != nil {
		return fmt.Errorf("device %s: %w", id, err)
	}
	f(&d)
	return putJSON(b, id, d)
}

// UpdateLesson merges what an event says about a lesson into its record:
// f gets the stored lesson, or a new one carrying device and id.
func (t *Tx) UpdateLesson(device, id string, f func(*Lesson)) error {
	b := t.tx.Bucket(bucketLessons)
	k := lessonKey(device, id)
	l := Lesson{Device: device, ID: id}
	if v := b.Get([]byte(k)); v != nil {
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("lesson %s/%s: %w", device, id, err)
		}
	}
	f(&l)
	l.Device, l.ID = device, id
	l.UpdatedAt = t.now
	if err := putJSON(b, k, l); err != nil {
		return err
	}
	t.changed = append(t.changed, events.Event{Kind: events.KindLesson, Device: device, Lesson: id})
	return nil
}

// MarkAllOffline records every device as offline, keeping its last state.
// The hub calls it when its embedded broker starts: no box is connected to
// a broker that has just started, and each says it is online again when it
// reconnects.
func (r *Registry) MarkAllOffline() error {
	var t *Tx
	err := r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		var ids []string
		err := b.ForEach(func(k, v []byte) error {
			var d Device
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("device %s: %w", k, err)
			}
			if d.Online {
				ids = append(ids, d.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		t = &Tx{tx: tx, now: r.now().UTC()}
		for _, id := range ids {
			if err := t.updateDevice(id, func(d *Device) { d.Online = false }); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		r.publish(t.changed)
	}
	return err
}
