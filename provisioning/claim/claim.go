// Package claim keeps the hub's claim tokens: the shared secrets district IT
// writes onto boxes so they can enroll themselves. A claim belongs to a
// group, may be used a number of times, expires, and can be revoked. Only
// the SHA-256 of a token is stored (in bbolt, bucket "claims"), so a copy of
// the hub's database does not leak usable tokens.
//
// Redeem is the one operation enrollment needs: it checks a token and takes
// one use atomically, or returns a *Refusal saying why not (unknown, expired,
// exhausted, revoked).
package claim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TokenPrefix starts every claim token, so a token is recognisable in a file
// or a log line (which must never print one).
const TokenPrefix = "ccclaim_"

var bucket = []byte("claims")

// Reason is why a claim was refused.
type Reason string

// The reasons a claim is refused; the enrollment endpoint returns them to
// the box, which logs them and shows them on its LED.
const (
	Unknown   Reason = "unknown"   // no such claim (mistyped, or from another hub)
	Expired   Reason = "expired"   // past its expiry
	Exhausted Reason = "exhausted" // every use taken
	Revoked   Reason = "revoked"   // revoked by an operator
)

// Refusal is returned by Redeem for a claim that cannot be used.
type Refusal struct {
	Reason Reason
	Detail string // e.g. "expired 2026-11-02T10:00:00Z"
}

func (r *Refusal) Error() string {
	if r.Detail == "" {
		return "claim refused: " + string(r.Reason)
	}
	return "claim refused: " + string(r.Reason) + ": " + r.Detail
}

// Claim is a stored claim, without its token.
type Claim struct {
	ID        string    `json:"id"` // first 12 hex digits of the token's hash: what the CLI names
	Group     string    `json:"group"`
	Uses      int       `json:"uses"`      // uses allowed in total
	UsesLeft  int       `json:"uses_left"` // uses still allowed
	Created   time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires_at"`
	Revoked   bool      `json:"revoked"`
}

// DB runs bbolt transactions: a *bolt.DB, or a database opened for each
// transaction so that the CLI and a running hub can share the file.
type DB interface {
	Update(func(*bolt.Tx) error) error
	View(func(*bolt.Tx) error) error
}

// Store keeps claims in a bbolt database shared with the rest of the hub.
type Store struct {
	db  DB
	now func() time.Time
}

// NewStore creates the claims bucket in db if needed.
func NewStore(db DB) (*Store, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("claim: create bucket: %w", err)
	}
	return &Store{db: db, now: time.Now}, nil
}

// SetClock replaces the clock used for expiry (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Create makes a claim for group, usable uses times until ttl from now, and
// returns the token (shown once, never stored) and the stored claim.
func (s *Store) Create(group string, uses int, ttl time.Duration) (string, Claim, error) {
	if err := ValidateGroup(group); err != nil {
		return "", Claim{}, fmt.Errorf("claim: create: %w", err)
	}
	if uses < 1 {
		return "", Claim{}, fmt.Errorf("claim: create: uses %d, want at least 1", uses)
	}
	if ttl <= 0 {
		return "", Claim{}, fmt.Errorf("claim: create: expiry %v is not in the future", ttl)
	}
	secret := make([]byte, 20)
	if _, err := rand.Read(secret); err != nil {
		return "", Claim{}, fmt.Errorf("claim: create: %w", err)
	}
	token := TokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret))
	key := hash(token)
	now := s.now().UTC()
	c := Claim{
		ID:        hex.EncodeToString(key[:6]),
		Group:     group,
		Uses:      uses,
		UsesLeft:  uses,
		Created:   now,
		ExpiresAt: now.Add(ttl),
	}
	err := s.db.Update(func(tx *bolt.Tx) error { return put(tx, key[:], c) })
	if err != nil {
		return "", Claim{}, fmt.Errorf("claim: create: %w", err)
	}
	return token, c, nil
}

// Redeem takes one use of token and returns its claim (with the uses left
// after this one), or a *Refusal. Use Check to look without taking a use.
func (s *Store) Redeem(token string) (Claim, error) { return s.redeem(token, true) }

// Check returns the claim of token if Redeem would accept it now, or a
// *Refusal, without taking a use.
func (s *Store) Check(token string) (Claim, error) { return s.redeem(token, false) }

// Release gives back one use taken by Redeem whose enrollment then failed
// on the hub's side (not the box's fault).
func (s *Store) Release(token string) error {
	key := hash(token)
	return s.db.Update(func(tx *bolt.Tx) error {
		c, ok, err := get(tx, key[:])
		if err != nil || !ok {
			return err
		}
		if c.UsesLeft < c.Uses {
			c.UsesLeft++
		}
		return put(tx, key[:], c)
	})
}

func (s *Store) redeem(token string, take bool) (Claim, error) {
	token = strings.TrimSpace(token)
	if !strings.HasPrefix(token, TokenPrefix) {
		return Claim{}, &Refusal{Reason: Unknown, Detail: "not a claim token (want " + TokenPrefix + "...)"}
	}
	key := hash(token)
	var out Claim
	f := func(tx *bolt.Tx) error {
		c, ok, err := get(tx, key[:])
		if err != nil {
			return err
		}
		switch {
		case !ok:
			return &Refusal{Reason: Unknown, Detail: "no such claim on this hub"}
		case c.Revoked:
			return &Refusal{Reason: Revoked, Detail: "claim " + c.ID + " was revoked"}
		case !s.now().Before(c.ExpiresAt):
			return &Refusal{Reason: Expired, Detail: "claim " + c.ID + " expired " + c.ExpiresAt.UTC().Format(time.RFC3339)}
		case c.UsesLeft <= 0:
			return &Refusal{Reason: Exhausted, Detail: fmt.Sprintf("claim %s: all %d uses taken", c.ID, c.Uses)}
		}
		if take {
			c.UsesLeft--
			if err := put(tx, key[:], c); err != nil {
				return err
			}
		}
		out = c
		return nil
	}
	var err error
	if take {
		err = s.db.Update(f)
	} else {
		err = s.db.View(f)
	}
	var r *Refusal
	if errors.As(err, &r) {
		return Claim{}, r
	}
	if err != nil {
		return Claim{}, fmt.Errorf("claim: redeem: %w", err)
	}
	return out, nil
}

// Revoke revokes the claim with id (as List shows it). A revoked claim is
// refused; boxes already enrolled with it are not affected.
func (s *Store) Revoke(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var key []byte
		var c Claim
		err := b.ForEach(func(k, v []byte) error {
			var x Claim
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("claim %x: %w", k, err)
			}
			if x.ID == id {
				key, c = append([]byte(nil), k...), x
			}
			return nil
		})
		if err != nil {
			return err
		}
		if key == nil {
			return fmt.Errorf("claim: revoke: no claim %q", id)
		}
		c.Revoked = true
		return put(tx, key, c)
	})
}

// List returns every claim, oldest first.
func (s *Store) List() ([]Claim, error) {
	var out []Claim
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var c Claim
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("claim %x: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("claim: list: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// MaxGroupLen keeps a device id (group, "-", 8 hex digits) within the 64
// characters a device id may have.
const MaxGroupLen = 55

// ValidateGroup checks a group name: letters, digits, '.', '_', '-',
// starting with a letter or digit, at most MaxGroupLen characters (a group
// is the start of its devices' ids and MQTT topics).
func ValidateGroup(g string) error {
	if g == "" {
		return errors.New("a group is required")
	}
	if len(g) > MaxGroupLen {
		return fmt.Errorf("group %q is longer than %d characters", g, MaxGroupLen)
	}
	for i, r := range g {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '.' && r != '_' && r != '-')) {
			return fmt.Errorf("group %q: only letters, digits, '.', '_' and '-', starting with a letter or digit", g)
		}
	}
	return nil
}

func hash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func get(tx *bolt.Tx, key []byte) (Claim, bool, error) {
	v := tx.Bucket(bucket).Get(key)
	if v == nil {
		return Claim{}, false, nil
	}
	var c Claim
	if err := json.Unmarshal(v, &c); err != nil {
		return Claim{}, false, fmt.Errorf("claim %x: %w", key[:6], err)
	}
	return c, true, nil
}

func put(tx *bolt.Tx, key []byte, c Claim) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, v)
}
