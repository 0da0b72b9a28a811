package ingest

import (
	"errors"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 15, 30, 0, 0, time.UTC)
	g := Grant{Device: "room-101", Lesson: "000001-abcdefghij", File: "seg_000001.m4s", Size: 12345,
		SHA256: "ab", Expires: now.Add(time.Minute)}
	tok := Sign(testKey, g)
	got, err := ParseToken(testKey, tok, now)
	if err != nil || got != g {
		t.Fatalf("ParseToken = %+v, %v; want %+v", got, err, g)
	}
	if _, err := ParseToken(testKey, tok, now.Add(time.Minute)); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("at expiry: %v, want ErrTokenExpired", err)
	}
	if _, err := ParseToken([]byte("another key......"), tok, now); !errors.Is(err, ErrTokenSignature) {
		t.Fatalf("other key: %v, want ErrTokenSignature", err)
	}
	// A grant for another file under the same signature is refused.
	other := Sign(testKey, Grant{Device: "room-101", Lesson: g.Lesson, File: "seg_000002.m4s", Size: 1, SHA256: "ab", Expires: g.Expires})
	p, _, _ := cut(other)
	_, s, _ := cut(tok)
	if _, err := ParseToken(testKey, p+"."+s, now); !errors.Is(err, ErrTokenSignature) {
		t.Fatalf("swapped payload: %v, want ErrTokenSignature", err)
	}
	for _, bad := range []string{"", ".", "abc", "abc.", ".abc", "a.b.c", "!!.!!"} {
		if _, err := ParseToken(testKey, bad, now); err == nil {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
}

func cut(tok string) (string, string, bool) {
	for i := range len(tok) {
		if tok[i] == '.' {
			return tok[:i], tok[i+1:], true
		}
	}
	return tok, "", false
}

func FuzzParseToken(f *testing.F) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Add(Sign(testKey, Grant{Device: "d", Lesson: "000001-abcdefghij", File: "init.mp4", Size: 1, SHA256: "x", Expires: now.Add(time.Hour)}))
	f.Add("eyJkIjoiZCJ9.c2ln")
	f.Add("...")
	f.Fuzz(func(t *testing.T, tok string) {
		g, err := ParseToken(testKey, tok, now)
		if err != nil {
			return
		}
		// Only a token we signed can parse: signing its grant again gives a
		// token that parses to the same grant.
		again, err := ParseToken(testKey, Sign(testKey, g), now)
		if err != nil || again != g {
			t.Fatalf("re-signed %+v: %+v, %v", g, again, err)
		}
	})
}
