package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/events"
	"github.com/classcap/classcap/hub/events/ssetest"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// eventsRig is an API with its event stream over a real registry.
type eventsRig struct {
	reg          *registry.Registry
	api          *API
	srv          *httptest.Server
	coach, admin string
}

func newEventsRig(t *testing.T, devices ...string) *eventsRig {
	t.Helper()
	b := events.NewBroker()
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{BcryptCost: bcrypt.MinCost, Events: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	for _, id := range devices {
		if _, err := reg.AddDevice(id); err != nil {
			t.Fatal(err)
		}
	}
	r := &eventsRig{reg: reg}
	r.coach, _ = reg.CreateToken(registry.RoleCoach, "alice")
	r.admin, _ = reg.CreateToken(registry.RoleAdmin, "it")
	r.api = New(reg, &liveBoxes{}, slog.New(slog.DiscardHandler))
	r.api.SetEvents(b)
	r.srv = httptest.NewServer(r.api)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *eventsRig) do(t *testing.T, token, method, path string) (*http.Response, []byte) {
	t.Helper()
	return send(t, r.srv.URL, token, method, path, "")
}

// open opens the event stream at path (a ticket URL, or with token) and
// reads it until the test ends.
func (r *eventsRig) open(t *testing.T, token, path string) *ssetest.Stream {
	t.Helper()
	return ssetest.Open(t, r.srv.URL+path, token)
}

// ticketURL asks for an events URL with token.
func (r *eventsRig) ticketURL(t *testing.T, token string) string {
	t.Helper()
	resp, body := r.do(t, token, "POST", "/api/v1/events/ticket")
	var u EventsURL
	if resp.StatusCode != 200 || json.Unmarshal(body, &u) != nil || !strings.HasPrefix(u.URL, "/api/v1/events?t=") {
		t.Fatalf("events ticket: %d %s", resp.StatusCode, body)
	}
	return u.URL
}

func (r *eventsRig) lesson(t *testing.T, device, id, vis string) {
	t.Helper()
	err := r.reg.Write(func(tx *registry.Tx) error {
		return tx.UpdateLesson(device, id, func(l *registry.Lesson) { l.Visibility, l.Recording = vis, true })
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *eventsRig) state(t *testing.T, device, recorder string) {
	t.Helper()
	st, _ := json.Marshal(wire.State{V: 1, Online: true, Recorder: &wire.Recorder{State: recorder}})
	if err := r.reg.Write(func(tx *registry.Tx) error { return tx.SetState(device, st, true, time.Now()) }); err != nil {
		t.Fatal(err)
	}
}

// TestEventStreamShowsWhatTheListsShow: a coach's stream carries the
// devices and the lessons its lesson list shows, never a private lesson;
// a lesson made private is removed from its list; an administrator sees
// every lesson.
func TestEventStreamShowsWhatTheListsShow(t *testing.T) {
	r := newEventsRig(t, "room-1", "room-end")
	r.lesson(t, "room-1", "000001-shown", wire.VisibilityCoaching)
	coach := r.open(t, "", r.ticketURL(t, r.coach))
	admin := r.open(t, r.admin, "/api/v1/events")

	r.lesson(t, "room-1", "000002-private", wire.VisibilityPrivate)
	r.lesson(t, "room-1", "000003-library", wire.VisibilityLibrary)
	r.state(t, "room-1", "recording")
	r.lesson(t, "room-1", "000001-shown", wire.VisibilityPrivate) // the teacher changed her mind
	r.lesson(t, "room-1", "000002-private", wire.VisibilityPrivate)
	r.state(t, "room-1", "idle")
	// A stream tells each box or lesson once per write it missed, with its
	// latest record, in the order of their first change: a box changed last
	// ends what the streams tell.
	r.state(t, "room-end", "idle")

	end := func(e ssetest.Event) bool { return e.Name == "device" && strings.Contains(e.Data, `"id":"room-end"`) }
	got, err := coach.Until(10*time.Second, end)
	if err != nil {
		t.Fatalf("coach stream: %v (got %v)", err, got)
	}
	told := map[string]string{}
	for _, e := range got {
		if strings.Contains(e.Data, "000002-private") {
			t.Fatalf("the coach's stream names the private lesson: %v", e)
		}
		var v struct {
			ID       string `json:"id"`
			Recorder string `json:"recorder"`
		}
		if err := json.Unmarshal([]byte(e.Data), &v); err != nil {
			t.Fatalf("event %v: %v", e, err)
		}
		told[v.ID] = e.Name + " " + v.Recorder
	}
	want := map[string]string{"000003-library": "lesson ", "000001-shown": "lesson-removed ", "room-1": "device idle", "room-end": "device idle"}
	if fmt.Sprint(told) != fmt.Sprint(want) {
		t.Fatalf("the coach's stream told last:\n got %v\nwant %v", told, want)
	}
	got, err = admin.Until(10*time.Second, end)
	if err != nil {
		t.Fatalf("admin stream: %v", err)
	}
	private := false
	for _, e := range got {
		private = private || e.Name == "lesson" && strings.Contains(e.Data, "000002-private")
	}
	if !private {
		t.Fatalf("the admin's stream did not tell the private lesson: %v", got)
	}

	// The lists decide alike.
	_, body := r.do(t, r.coach, "GET", "/api/v1/lessons")
	if strings.Contains(string(body), "000002-private") || strings.Contains(string(body), "000001-shown") || !strings.Contains(string(body), "000003-library") {
		t.Fatalf("coach's lessons: %s", body)
	}
	_, body = r.do(t, r.admin, "GET", "/api/v1/lessons")
	if !strings.Contains(string(body), "000002-private") || !strings.Contains(string(body), "000001-shown") {
		t.Fatalf("admin's lessons: %s", body)
	}
}

func TestEventStreamAuth(t *testing.T) {
	r := newEventsRig(t)
	media := SignTicket(r.api.ticketKey, Ticket{Lesson: "x", By: "coach:alice", Expires: time.Now().Add(time.Hour)})
	expired := signTicket(r.api.ticketKey, eventsTicketDomain, EventsTicket{Role: "coach", Name: "alice", Expires: time.Now().Add(-time.Second)})
	forged := signTicket([]byte("another key of at least 32 bytes!"), eventsTicketDomain, EventsTicket{Role: "admin", Name: "eve", Expires: time.Now().Add(time.Hour)})
	for _, tt := range []struct {
		name, token, path string
		status            int
		code              string
	}{
		{"no token", "", "/api/v1/events", 401, "missing_token"},
		{"bad token", "cct_nope", "/api/v1/events", 401, "bad_token"},
		{"media ticket", "", "/api/v1/events?t=" + media, 401, "bad_ticket"},
		{"expired ticket", "", "/api/v1/events?t=" + expired, 401, "bad_ticket"},
		{"forged ticket", "", "/api/v1/events?t=" + forged, 401, "bad_ticket"},
		{"ticket without token", "", "/api/v1/events/ticket", 401, "missing_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := "GET"
			if strings.HasSuffix(tt.path, "/ticket") {
				method = "POST"
			}
			resp, body := r.do(t, tt.token, method, tt.path)
			var e Error
			if resp.StatusCode != tt.status || json.Unmarshal(body, &e) != nil || e.Code != tt.code {
				t.Fatalf("%d %s; want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
		})
	}
	// An events ticket opens nothing else.
	u := r.ticketURL(t, r.coach)
	if resp, _ := r.do(t, "", "GET", "/api/v1/devices?"+strings.SplitN(u, "?", 2)[1]); resp.StatusCode != 401 {
		t.Fatalf("an events ticket listed the devices: %d", resp.StatusCode)
	}
}

// TestEventStreamHeartbeat: an idle stream carries a comment line now and
// then, which keeps proxies from closing it.
func TestEventStreamHeartbeat(t *testing.T) {
	r := newEventsRig(t)
	r.api.eventsHeartbeat = 50 * time.Millisecond
	s := r.open(t, r.coach, "/api/v1/events")
	for range 3 {
		c, err := s.Comment(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if c != "classcap-hub events" && c != "keep-alive" {
			t.Fatalf("comment %q", c)
		}
	}
}

// TestStalledStreamBlocksNoOne: a client that opened the stream and reads
// nothing holds up neither the registry's writes nor another client's
// stream; it is told to fetch everything again.
func TestStalledStreamBlocksNoOne(t *testing.T) {
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("room-%02d", i))
	}
	r := newEventsRig(t, ids...)
	r.api.eventsQueue = 8
	// The stalled client: a request, then not a byte read.
	conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer %s\r\n\r\n", r.coach)
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("stalled client: %q %v", status, err)
	}
	waitFor(t, "both streams subscribed", func() bool { return r.api.events.Subscribers() == 1 })
	reader := r.open(t, r.coach, "/api/v1/events")
	waitFor(t, "both streams subscribed", func() bool { return r.api.events.Subscribers() == 2 })

	// Big states for every box, round after round: far more than the
	// stalled client's socket and queue hold.
	big := strings.Repeat("x", 16<<10)
	for round := range 20 {
		st, _ := json.Marshal(wire.State{V: 1, Online: true, Version: fmt.Sprintf("%d-%s", round, big)})
		err := r.reg.Write(func(tx *registry.Tx) error {
			for _, id := range ids {
				if err := tx.SetState(id, st, true, time.Now()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		last := ids[len(ids)-1]
		want := fmt.Sprintf(`"version":"%d-`, round)
		if _, err := reader.Until(30*time.Second, func(e ssetest.Event) bool {
			return e.Name == "resync" || e.Name == "device" && strings.Contains(e.Data, `"id":"`+last+`"`) && strings.Contains(e.Data, want)
		}); err != nil {
			t.Fatalf("round %d: the reading client did not get the last box's state: %v", round, err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func FuzzParseEventsTicket(f *testing.F) {
	key := []byte("fuzz key")
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	f.Add(signTicket(key, eventsTicketDomain, EventsTicket{Role: "coach", Name: "alice", Expires: now.Add(time.Minute)}))
	f.Add(SignTicket(key, Ticket{Lesson: "L000001-abc", By: "coach:a", Expires: now.Add(time.Minute)}))
	f.Add("e30.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := ParseEventsTicket(key, s, now)
		if err != nil {
			return
		}
		// Whatever parses was signed with the key as an events ticket,
		// names a role and a name, and is in date; never a media ticket.
		if !registry.ValidRole(tk.Role) || tk.Name == "" || !now.Before(tk.Expires) {
			t.Fatalf("accepted %q as %+v", s, tk)
		}
		if _, err := ParseTicket(key, s, now); err == nil {
			t.Fatalf("%q is both an events and a media ticket", s)
		}
	})
}
