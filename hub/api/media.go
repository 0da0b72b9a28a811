package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/segment"
)

// A <video> element cannot send an Authorization header, so playback in a
// browser goes through a media URL: a caller with a token asks
// POST /api/v1/lessons/{id}/media and gets a URL of the lesson as one
// fragmented MP4 (/lessons/{id}/lesson.mp4, init.mp4 and the segments one
// after the other) carrying a signed ticket for that one lesson, valid for
// MediaTTL. The ticket is signed with a key the hub makes at start and
// never stores: a restart ends every ticket (the page asks for a new one).

// MediaTTL is how long a media URL plays.
const MediaTTL = time.Hour

// MediaName is the lesson as one MP4 file, served beside its segments.
const MediaName = "lesson.mp4"

// Ticket errors (media and events tickets).
var (
	ErrTicketMalformed = errors.New("ticket malformed")
	ErrTicketSignature = errors.New("ticket signature invalid")
	ErrTicketExpired   = errors.New("ticket expired")
)

// Ticket is what a media URL allows: one lesson, until Expires, on behalf
// of By (role:name, for the log).
type Ticket struct {
	Lesson  string    `json:"l"`
	By      string    `json:"b"`
	Expires time.Time `json:"e"`
}

var ticketB64 = base64.RawURLEncoding

// SignTicket returns the ticket's text: base64url(JSON) "." base64url(HMAC-SHA256).
func SignTicket(key []byte, t Ticket) string { return signTicket(key, mediaTicketDomain, t) }

// Each kind of ticket is signed in its own domain: one is never taken for
// another.
const (
	mediaTicketDomain  = "classcap media ticket"
	eventsTicketDomain = "classcap events ticket"
)

func signTicket(key []byte, domain string, v any) string {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // tickets always marshal
	}
	p := ticketB64.EncodeToString(body)
	return p + "." + ticketB64.EncodeToString(ticketMAC(key, domain, p))
}

func ticketMAC(key []byte, domain, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain + "\x00"))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// openTicket checks a ticket's signature in domain and decodes it into v.
func openTicket(key []byte, domain, s string, v any) error {
	p, sig, ok := strings.Cut(s, ".")
	if !ok || p == "" || sig == "" {
		return ErrTicketMalformed
	}
	want, err := ticketB64.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: signature: %w", ErrTicketMalformed, err)
	}
	if !hmac.Equal(want, ticketMAC(key, domain, p)) {
		return ErrTicketSignature
	}
	body, err := ticketB64.DecodeString(p)
	if err != nil {
		return fmt.Errorf("%w: payload: %w", ErrTicketMalformed, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: payload: %w", ErrTicketMalformed, err)
	}
	return nil
}

// ParseTicket checks a media ticket's signature and expiry at now.
func ParseTicket(key []byte, s string, now time.Time) (Ticket, error) {
	var t Ticket
	if err := openTicket(key, mediaTicketDomain, s, &t); err != nil {
		return Ticket{}, err
	}
	if t.Lesson == "" {
		return Ticket{}, fmt.Errorf("%w: no lesson", ErrTicketMalformed)
	}
	if t.Expires.IsZero() || !now.Before(t.Expires) {
		return Ticket{}, fmt.Errorf("%w at %s", ErrTicketExpired, t.Expires.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// MediaURL is the answer of POST /api/v1/lessons/{id}/media.
type MediaURL struct {
	URL       string    `json:"url"` // absolute path on the hub, with the ticket
	ExpiresAt time.Time `json:"expires_at"`
}

func newMediaKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return k
}

// playable checks that lesson id may be shown and returns its segments'
// names in order; it writes the error response and returns false if not.
func (a *API) playable(w http.ResponseWriter, id string) ([]string, bool) {
	if !lesson.ValidID(id) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%q is not a lesson id", id))
		return nil, false
	}
	if !a.lessons.Has(id, lesson.MetaName) {
		writeError(w, http.StatusNotFound, "not_found", "lesson "+id+" is not on the hub yet")
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(a.lessons.Dir(id), lesson.MetaName))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "read lesson.json: "+err.Error())
		return nil, false
	}
	m, err := lesson.ParseMeta(b)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "lesson "+id+": "+err.Error())
		return nil, false
	}
	if m.Visibility != lesson.VisibilityCoaching && m.Visibility != lesson.VisibilityLibrary {
		writeError(w, http.StatusForbidden, "private", "lesson "+id+" is "+m.Visibility+": only its teacher may watch it")
		return nil, false
	}
	names := []string{segment.InitName}
	for _, s := range m.Segments {
		names = append(names, s.Name)
	}
	for _, n := range names {
		if !a.lessons.Has(id, n) {
			writeError(w, http.StatusConflict, "incomplete", "lesson "+id+" is still uploading ("+n+" is not on the hub yet)")
			return nil, false
		}
	}
	return names, true
}

func (a *API) mintMedia(w http.ResponseWriter, r *http.Request, c caller) {
	id := r.PathValue("id")
	if _, ok := a.playable(w, id); !ok {
		return
	}
	exp := time.Now().Add(MediaTTL).Truncate(time.Second)
	t := SignTicket(a.mediaKey, Ticket{Lesson: id, By: c.by(), Expires: exp})
	writeJSON(w, http.StatusOK, MediaURL{
		URL:       "/lessons/" + url.PathEscape(id) + "/" + MediaName + "?t=" + url.QueryEscape(t),
		ExpiresAt: exp,
	})
}

// lessonMedia serves the lesson as one MP4 (with Range requests) to a
// caller with a bearer token or the ticket of a media URL.
func (a *API) lessonMedia(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if t := r.URL.Query().Get("t"); t != "" {
		tk, err := ParseTicket(a.mediaKey, t, time.Now())
		if err != nil {
			writeError(w, http.StatusUnauthorized, "bad_ticket", err.Error()+" (ask POST /api/v1/lessons/"+id+"/media for a new URL)")
			return
		}
		if tk.Lesson != id {
			writeError(w, http.StatusForbidden, "bad_ticket", "the media ticket is for lesson "+tk.Lesson+", not "+id)
			return
		}
	} else if _, local := r.Context().Value(callerKey{}).(caller); local {
		// the local socket: an administrator
	} else if _, status, code, msg := a.authenticate(r); status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="classcap-hub"`)
		}
		writeError(w, status, code, msg)
		return
	}
	names, ok := a.playable(w, id)
	if !ok {
		return
	}
	f, err := openConcat(a.lessons.Dir(id), names)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "open lesson "+id+": "+err.Error())
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Cache-Control", "private, no-cache")
	http.ServeContent(w, r, MediaName, f.modTime, f)
}

// concat reads files one after the other as one, with Seek (for
// http.ServeContent's Range requests).
type concat struct {
	files   []*os.File
	starts  []int64 // offset of each file in the whole
	ends    []int64 // offset after each file
	size    int64
	off     int64
	modTime time.Time
}

func openConcat(dir string, names []string) (*concat, error) {
	c := &concat{}
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			c.Close()
			return nil, err
		}
		c.files = append(c.files, f)
		st, err := f.Stat()
		if err != nil {
			c.Close()
			return nil, err
		}
		c.starts = append(c.starts, c.size)
		c.size += st.Size()
		c.ends = append(c.ends, c.size)
		if st.ModTime().After(c.modTime) {
			c.modTime = st.ModTime()
		}
	}
	return c, nil
}

func (c *concat) Read(p []byte) (int, error) {
	if c.off >= c.size {
		return 0, io.EOF
	}
	// The file holding off: the first one ending after it.
	i := 0
	for i < len(c.ends)-1 && c.ends[i] <= c.off {
		i++
	}
	if int64(len(p)) > c.ends[i]-c.off {
		p = p[:c.ends[i]-c.off]
	}
	n, err := c.files[i].ReadAt(p, c.off-c.starts[i])
	c.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // the next file follows
	}
	if err == io.EOF && c.off < c.size {
		return 0, fmt.Errorf("%s shrank while being served", c.files[i].Name())
	}
	return n, err
}

func (c *concat) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.off
	case io.SeekEnd:
		offset += c.size
	default:
		return 0, errors.New("concat: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("concat: negative position")
	}
	c.off = offset
	return offset, nil
}

func (c *concat) Close() error {
	for _, f := range c.files {
		f.Close()
	}
	return nil
}
