package claim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "claims.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

func reason(err error) Reason {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

func TestClaimLifecycle(t *testing.T) {
	s, path := newStore(t)
	token, c, err := s.Create("school-12", 2, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, TokenPrefix) || c.Group != "school-12" || c.UsesLeft != 2 {
		t.Fatalf("created %q %+v", token, c)
	}
	if _, err := s.Check(token); err != nil {
		t.Fatal(err)
	}
	got, err := s.Redeem(token)
	if err != nil || got.UsesLeft != 1 {
		t.Fatalf("first use: %+v %v", got, err)
	}
	if err := s.Release(token); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.Redeem(token); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if _, err := s.Redeem(token); reason(err) != Exhausted {
		t.Errorf("third use: %v", err)
	}
	if _, err := s.Redeem(token + "x"); reason(err) != Unknown {
		t.Errorf("other token: %v", err)
	}
	if _, err := s.Redeem("hello"); reason(err) != Unknown {
		t.Errorf("not a token: %v", err)
	}

	t2, c2, _ := s.Create("school-13", 5, time.Hour)
	s.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	if _, err := s.Redeem(t2); reason(err) != Expired || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
	s.SetClock(time.Now)
	if err := s.Revoke(c2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Redeem(t2); reason(err) != Revoked {
		t.Errorf("revoked: %v", err)
	}
	if err := s.Revoke("nope"); err == nil {
		t.Error("revoking an unknown claim succeeded")
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].ID != c.ID || !list[1].Revoked {
		t.Errorf("list %+v %v", list, err)
	}

	// Only hashes are stored.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{token, t2} {
		if bytes.Contains(b, []byte(tok)) || bytes.Contains(b, []byte(strings.TrimPrefix(tok, TokenPrefix))) {
			t.Errorf("the database holds the token %s...", tok[:12])
		}
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	s, _ := newStore(t)
	for _, tc := range []struct {
		group string
		uses  int
		ttl   time.Duration
	}{{"", 1, time.Hour}, {"g", 0, time.Hour}, {"g", 1, 0}, {"a/b", 1, time.Hour}, {"-a", 1, time.Hour}, {strings.Repeat("a", 56), 1, time.Hour}} {
		if _, _, err := s.Create(tc.group, tc.uses, tc.ttl); err == nil {
			t.Errorf("Create(%q, %d, %v) succeeded", tc.group, tc.uses, tc.ttl)
		}
	}
}
