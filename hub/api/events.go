package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/hub/events"
	"github.com/classcap/classcap/hub/registry"
)

// The event stream: GET /api/v1/events is text/event-stream (server-sent
// events) telling a caller, as soon as the hub learns of it, what changed in
// the lists it may read:
//
//	event: device          data: a device as in GET /api/v1/devices?state=1
//	event: lesson          data: a lesson as in GET /api/v1/lessons
//	event: lesson-removed  data: {"device", "id"}: a lesson this caller was
//	                       shown may no longer be (its teacher made it private)
//	event: resync          data: {}: changes were dropped (the caller read too
//	                       slowly): fetch the lists again
//
// and a comment line every EventsHeartbeat so proxies keep the stream open.
// A caller sends its bearer token, or, as a browser's EventSource cannot,
// the ticket of POST /api/v1/events/ticket in the query (t): valid
// EventsTicketTTL, for opening this stream only. The hub ends a stream after
// EventsMaxAge; the caller opens a new one (with a new ticket), so a stream
// lives no longer than its token.

// Event stream bounds.
const (
	EventsTicketTTL = time.Minute
	EventsHeartbeat = 15 * time.Second
	EventsMaxAge    = time.Hour
	// eventsWriteWait bounds one write to a stream: a client that reads
	// nothing for this long is dropped.
	eventsWriteWait = 30 * time.Second
)

// EventsTicket is what an events URL allows: opening the event stream as
// Name with Role, until Expires.
type EventsTicket struct {
	Role    string    `json:"r"`
	Name    string    `json:"n"`
	Expires time.Time `json:"e"`
}

// ParseEventsTicket checks an events ticket's signature and expiry at now.
func ParseEventsTicket(key []byte, s string, now time.Time) (EventsTicket, error) {
	var t EventsTicket
	if err := openTicket(key, eventsTicketDomain, s, &t); err != nil {
		return EventsTicket{}, err
	}
	if !registry.ValidRole(t.Role) || t.Name == "" {
		return EventsTicket{}, fmt.Errorf("%w: no role or name", ErrTicketMalformed)
	}
	if t.Expires.IsZero() || !now.Before(t.Expires) {
		return EventsTicket{}, fmt.Errorf("%w at %s", ErrTicketExpired, t.Expires.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// EventsURL is the answer of POST /api/v1/events/ticket.
type EventsURL struct {
	URL       string    `json:"url"` // absolute path on the hub, with the ticket
	ExpiresAt time.Time `json:"expires_at"`
}

// SetEvents serves the event stream from b (where the registry and the
// ingest publish). Call it before serving.
func (a *API) SetEvents(b *events.Broker) { a.events = b }

func (a *API) routeEvents() {
	a.route("POST /api/v1/events/ticket", registry.RoleCoach, a.mintEventsTicket)
	a.mux.HandleFunc("GET /api/v1/events", a.streamEvents)
}

func (a *API) mintEventsTicket(w http.ResponseWriter, _ *http.Request, c caller) {
	exp := time.Now().Add(EventsTicketTTL).Truncate(time.Second)
	t := signTicket(a.ticketKey, eventsTicketDomain, EventsTicket{Role: c.Role, Name: c.Name, Expires: exp})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, EventsURL{URL: "/api/v1/events?t=" + url.QueryEscape(t), ExpiresAt: exp})
}

// eventsCaller authenticates a stream: the local socket, a ticket, or a
// bearer token. It writes the error response and returns false on failure.
func (a *API) eventsCaller(w http.ResponseWriter, r *http.Request) (caller, bool) {
	if c, ok := r.Context().Value(callerKey{}).(caller); ok {
		return c, true
	}
	if t := r.URL.Query().Get("t"); t != "" {
		tk, err := ParseEventsTicket(a.ticketKey, t, time.Now())
		if err != nil {
			writeError(w, http.StatusUnauthorized, "bad_ticket", err.Error()+" (ask POST /api/v1/events/ticket for a new URL)")
			return caller{}, false
		}
		return caller{Name: tk.Name, Role: tk.Role}, true
	}
	c, status, code, msg := a.authenticate(r)
	if status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="classcap-hub"`)
		}
		writeError(w, status, code, msg)
		return caller{}, false
	}
	return c, true
}

// shownLesson returns lesson l as the lesson list shows it to c, and
// whether c may learn of it at all. Administrators see every lesson;
// coaches only those whose teacher made them coaching or library: as the
// hub's copy of the lesson's lesson.json says once it is here (a teacher
// may change it), else as the box reported when the lesson started. The
// lesson list and the event stream both decide with it.
func (a *API) shownLesson(c caller, l registry.Lesson) (LessonView, bool) {
	if !a.lessonShown(c, l) {
		return LessonView{}, false
	}
	v := LessonView{Lesson: l}
	if a.lessons != nil {
		if st, err := a.lessons.Status(l.ID); err == nil && st.Files > 0 {
			v.Upload = &st
		}
	}
	return v, true
}

// lessonShown is shownLesson's decision alone.
func (a *API) lessonShown(c caller, l registry.Lesson) bool {
	if c.Role == registry.RoleAdmin {
		return true
	}
	vis := l.Visibility
	if a.lessons != nil {
		if v, err := a.lessons.Visibility(l.ID); err == nil {
			vis = v
		}
	}
	return vis == lesson.VisibilityCoaching || vis == lesson.VisibilityLibrary
}

// lessonRef names a lesson.
type lessonRef struct {
	Device string `json:"device"`
	ID     string `json:"id"`
}

// shownLessons returns the lessons c may see now.
func (a *API) shownLessons(c caller) (map[lessonRef]bool, error) {
	ls, err := a.reg.Lessons("")
	if err != nil {
		return nil, err
	}
	shown := map[lessonRef]bool{}
	for _, l := range ls {
		if a.lessonShown(c, l) {
			shown[lessonRef{l.Device, l.ID}] = true
		}
	}
	return shown, nil
}

func (a *API) streamEvents(w http.ResponseWriter, r *http.Request) {
	c, ok := a.eventsCaller(w, r)
	if !ok {
		return
	}
	if a.events == nil {
		writeError(w, http.StatusServiceUnavailable, "no_events", "this hub serves no event stream")
		return
	}
	sub := a.events.Subscribe(a.eventsQueue)
	defer sub.Close()
	// What this caller was shown of the lessons: a lesson it may no longer
	// see is removed from its list, one it never saw is never named.
	shown, err := a.shownLessons(c)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "list lessons: "+err.Error())
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)
	send := func(chunk string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteWait))
		if _, err := w.Write([]byte(chunk)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": classcap-hub events\n\n") {
		return
	}
	a.log.Debug("event stream opened", "by", c.by())
	heartbeat := time.NewTicker(a.eventsHeartbeat)
	defer heartbeat.Stop()
	maxAge := time.NewTimer(EventsMaxAge)
	defer maxAge.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.Done(): // the hub is stopping
			return
		case <-maxAge.C:
			return
		case <-heartbeat.C:
			if !send(": keep-alive\n\n") {
				return
			}
			continue
		case <-sub.Ready():
		}
		evs, resync := sub.Take()
		if resync {
			if shown, err = a.shownLessons(c); err != nil {
				a.log.Error("event stream: list lessons", "err", err)
				return
			}
			if !send("event: resync\ndata: {}\n\n") {
				return
			}
			continue
		}
		for _, e := range evs {
			chunk, err := a.eventChunk(c, e, shown)
			if err != nil {
				a.log.Warn("event stream", "event", e, "err", err)
				continue
			}
			if chunk != "" && !send(chunk) {
				return
			}
		}
	}
}

// eventChunk returns the event telling c of e ("" when c is not to learn
// of it), updating shown.
func (a *API) eventChunk(c caller, e events.Event, shown map[lessonRef]bool) (string, error) {
	switch e.Kind {
	case events.KindDevice:
		d, err := a.reg.Device(e.Device)
		if errors.Is(err, registry.ErrUnknownDevice) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return sse("device", DeviceDetail{DeviceSummary: summarize(d), StateAt: d.StateAt, State: d.State})
	case events.KindLesson:
		l, ok, err := a.reg.Lesson(e.Device, e.Lesson)
		if err != nil || !ok {
			return "", err
		}
		ref := lessonRef{l.Device, l.ID}
		v, ok := a.shownLesson(c, l)
		if !ok {
			if !shown[ref] {
				return "", nil
			}
			delete(shown, ref)
			return sse("lesson-removed", ref)
		}
		shown[ref] = true
		return sse("lesson", v)
	}
	return "", nil
}

// sse formats one event; its JSON is one line.
func sse(name string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s event: %w", name, err)
	}
	return "event: " + name + "\ndata: " + string(data) + "\n\n", nil
}
