package api

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/segment"
	"github.com/classcap/classcap/hub/ingest"
	"github.com/classcap/classcap/hub/registry"
)

func TestTicketRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	tk := Ticket{Lesson: "L000001-abc", By: "coach:alice", Expires: now.Add(time.Hour)}
	s := SignTicket(key, tk)
	got, err := ParseTicket(key, s, now)
	if err != nil || got.Lesson != tk.Lesson || got.By != tk.By || !got.Expires.Equal(tk.Expires) {
		t.Fatalf("ParseTicket: %+v %v", got, err)
	}
	p, sig, _ := strings.Cut(s, ".")
	for _, tt := range []struct {
		name string
		s    string
		key  []byte
		at   time.Time
		want error
	}{
		{"expired", s, key, now.Add(time.Hour), ErrTicketExpired},
		{"other key", s, []byte("another key"), now, ErrTicketSignature},
		{"no dot", p, key, now, ErrTicketMalformed},
		{"bad signature text", p + ".!!", key, now, ErrTicketMalformed},
		{"changed payload", ticketB64.EncodeToString([]byte(`{"l":"L2","e":"2030-01-01T00:00:00Z"}`)) + "." + sig, key, now, ErrTicketSignature},
		{"empty", "", key, now, ErrTicketMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseTicket(tt.key, tt.s, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzParseTicket(f *testing.F) {
	key := []byte("fuzz key")
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	f.Add(SignTicket(key, Ticket{Lesson: "L000001-abc", By: "coach:a", Expires: now.Add(time.Minute)}))
	f.Add("e30.AAAA")
	f.Add(".")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := ParseTicket(key, s, now)
		if err != nil {
			return
		}
		// Whatever parses was signed with the key, names a lesson and is in date.
		if tk.Lesson == "" || !now.Before(tk.Expires) {
			t.Fatalf("accepted %q as %+v", s, tk)
		}
		if again, err := ParseTicket(key, SignTicket(key, tk), now); err != nil || again.Lesson != tk.Lesson {
			t.Fatalf("re-signed ticket: %+v %v", again, err)
		}
	})
}

// dirStore is a LessonStore over a folder: every file in it is "verified".
type dirStore struct{ root string }

func (s dirStore) Dir(id string) string { return filepath.Join(s.root, id) }
func (s dirStore) Has(id, name string) bool {
	_, err := os.Stat(filepath.Join(s.root, id, name))
	return err == nil
}
func (s dirStore) Status(string) (ingest.Status, error) { return ingest.Status{}, nil }
func (s dirStore) Visibility(id string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.root, id, lesson.MetaName))
	if err != nil {
		return "", err
	}
	m, err := lesson.ParseMeta(b)
	return m.Visibility, err
}

// tokenRegistry knows one coach token.
type tokenRegistry struct{ Registry }

func (tokenRegistry) LookupToken(tok string) (registry.Token, error) {
	if tok == "coach-token" {
		return registry.Token{Name: "alice", Role: registry.RoleCoach}, nil
	}
	return registry.Token{}, registry.ErrUnknownToken
}

func TestLessonMediaURL(t *testing.T) {
	root := t.TempDir()
	put := func(id, name string, data []byte) {
		if err := os.MkdirAll(filepath.Join(root, id), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, id, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rnd := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	mk := func(id, vis string, segs int, present int) []byte {
		m := lesson.Meta{V: 1, ID: id, Number: 1, Device: "room-1", Visibility: vis, StartedBy: "button",
			SegmentDuration: 4, State: lesson.StateComplete}
		whole := rnd(700)
		put(id, segment.InitName, whole)
		for i := 1; i <= segs; i++ {
			m.Segments = append(m.Segments, lesson.Segment{Number: i, Name: segment.Name(i), Duration: 4, Bytes: 1})
			if i <= present {
				b := rnd(1000 * i)
				whole = append(whole, b...)
				put(id, segment.Name(i), b)
			}
		}
		put(id, lesson.MetaName, m.Encode())
		return whole
	}
	shown, private, partial := lesson.NewID(1), lesson.NewID(2), lesson.NewID(3)
	want := mk(shown, lesson.VisibilityCoaching, 3, 3)
	mk(private, lesson.VisibilityPrivate, 1, 1)
	mk(partial, lesson.VisibilityLibrary, 3, 2)

	a := New(tokenRegistry{}, nil, slog.New(slog.DiscardHandler))
	a.ServeLessons(dirStore{root})
	srv := httptest.NewServer(a)
	defer srv.Close()

	do := func(method, path, token string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		return send(t, srv.URL, token, method, path, "", hdr...)
	}
	mint := func(id string) (int, MediaURL) {
		resp, b := do("POST", "/api/v1/lessons/"+id+"/media", "coach-token")
		var m MediaURL
		json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}

	code, m := mint(shown)
	if code != 200 || !strings.HasPrefix(m.URL, "/lessons/"+shown+"/lesson.mp4?t=") || time.Until(m.ExpiresAt) < MediaTTL-time.Minute {
		t.Fatalf("mint: %d %+v", code, m)
	}
	// The URL plays without a token: the whole lesson, then a range across
	// the end of init.mp4 and into the second segment.
	resp, b := do("GET", m.URL, "")
	if resp.StatusCode != 200 || !bytes.Equal(b, want) || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("GET media URL: %d %s, %d bytes; want 200 video/mp4 and %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b), len(want))
	}
	resp, b = do("GET", m.URL, "", "Range", "bytes=600-2999")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, want[600:3000]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, b = do("GET", m.URL, "", "Range", "bytes=-10")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, want[len(want)-10:]) {
		t.Fatalf("suffix range: %d, %d bytes", resp.StatusCode, len(b))
	}
	// A bearer token works too; nothing else does.
	if resp, b := do("GET", "/lessons/"+shown+"/lesson.mp4", "coach-token"); resp.StatusCode != 200 || !bytes.Equal(b, want) {
		t.Fatalf("with a bearer token: %d", resp.StatusCode)
	}
	if resp, _ := do("GET", "/lessons/"+shown+"/lesson.mp4", ""); resp.StatusCode != 401 {
		t.Fatalf("without token or ticket: %d", resp.StatusCode)
	}
	u, _ := url.Parse(m.URL)
	tk := u.Query().Get("t")
	if resp, _ := do("GET", "/lessons/"+partial+"/lesson.mp4?t="+url.QueryEscape(tk), ""); resp.StatusCode != 403 {
		t.Fatalf("another lesson's ticket: %d", resp.StatusCode)
	}
	if resp, _ := do("GET", "/lessons/"+shown+"/lesson.mp4?t="+url.QueryEscape(tk[:len(tk)-2]), ""); resp.StatusCode != 401 {
		t.Fatalf("a damaged ticket: %d", resp.StatusCode)
	}
	// Private lessons get no URL; an incomplete upload neither.
	if code, _ := mint(private); code != 403 {
		t.Fatalf("mint for a private lesson: %d", code)
	}
	if code, _ := mint(partial); code != 409 {
		t.Fatalf("mint for a lesson still uploading: %d", code)
	}
	if code, _ := mint("nope"); code != 404 {
		t.Fatalf("mint for no lesson: %d", code)
	}
	if resp, _ := do("POST", "/api/v1/lessons/"+shown+"/media", ""); resp.StatusCode != 401 {
		t.Fatalf("mint without a token: %d", resp.StatusCode)
	}
}
