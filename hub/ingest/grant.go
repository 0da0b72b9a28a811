package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Grant is what an upload token allows: one file of one lesson of one
// device, with its size and SHA-256, until Expires.
type Grant struct {
	Device  string    `json:"d"`
	Lesson  string    `json:"l"`
	File    string    `json:"f"`
	Size    int64     `json:"s"`
	SHA256  string    `json:"h"`
	Expires time.Time `json:"e"`
}

// Token errors.
var (
	ErrTokenMalformed = errors.New("upload token malformed")
	ErrTokenSignature = errors.New("upload token signature invalid")
	ErrTokenExpired   = errors.New("upload token expired")
)

var b64 = base64.RawURLEncoding

// Sign returns the token for g: base64url(JSON) "." base64url(HMAC-SHA256).
func Sign(key []byte, g Grant) string {
	body, err := json.Marshal(g)
	if err != nil {
		panic(err) // Grant always marshals
	}
	p := b64.EncodeToString(body)
	return p + "." + b64.EncodeToString(mac(key, p))
}

func mac(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// ParseToken checks a token's signature and expiry at now and returns its
// grant.
func ParseToken(key []byte, token string, now time.Time) (Grant, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok || p == "" || sig == "" {
		return Grant{}, ErrTokenMalformed
	}
	want, err := b64.DecodeString(sig)
	if err != nil {
		return Grant{}, fmt.Errorf("%w: signature: %w", ErrTokenMalformed, err)
	}
	if !hmac.Equal(want, mac(key, p)) {
		return Grant{}, ErrTokenSignature
	}
	body, err := b64.DecodeString(p)
	if err != nil {
		return Grant{}, fmt.Errorf("%w: payload: %w", ErrTokenMalformed, err)
	}
	var g Grant
	if err := json.Unmarshal(body, &g); err != nil {
		return Grant{}, fmt.Errorf("%w: payload: %w", ErrTokenMalformed, err)
	}
	if g.Expires.IsZero() || !now.Before(g.Expires) {
		return Grant{}, fmt.Errorf("%w at %s", ErrTokenExpired, g.Expires.UTC().Format(time.RFC3339))
	}
	return g, nil
}

// ValidSHA256 reports whether s is a lower-case hex SHA-256.
func ValidSHA256(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
