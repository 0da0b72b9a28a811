package main

// The hub's event stream against a real hub and a real classcapd with
// simulated hardware: a coach's stream tells a remote start as it happens,
// and never a private lesson; the web page follows the stream.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/classcap/classcap/hub/events/ssetest"
)

// openEvents opens the hub's event stream with an events ticket of token
// and reads it until the test ends.
func (h *testHub) openEvents(t *testing.T, token string) *ssetest.Stream {
	t.Helper()
	status, m := h.call(t, "POST", "/api/v1/events/ticket", token, "")
	url, _ := m["url"].(string)
	if status != 200 || !strings.HasPrefix(url, "/api/v1/events?t=") {
		t.Fatalf("events ticket: %d %v", status, m)
	}
	return ssetest.Open(t, h.http+url, "")
}

// TestHubStopsWithOpenEventStreams: a hub stopping ends the event streams
// open on it (the HTTP server waits for the requests under way), and stops
// without error.
func TestHubStopsWithOpenEventStreams(t *testing.T) {
	var stream *ssetest.Stream
	t.Cleanup(func() { // after the hub's own clean-up: it has stopped
		if _, err := stream.Until(10*time.Second, func(ssetest.Event) bool { return false }); err == nil || !strings.Contains(err.Error(), "ended") {
			t.Errorf("the stream outlived the hub: %v", err)
		}
	})
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	// Not h.openEvents: its clean-up, run before the hub's, would close the
	// stream before the hub stops.
	req, _ := http.NewRequest("GET", h.http+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+coach)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("open a stream: %v", err)
	}
	stream = ssetest.Read(resp.Body)
	if _, err := stream.Comment(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// remoteStart asks the hub to start a recording on id as token would, in
// the background (the box waits out its veto window): the answer's status
// and lesson arrive on the channel.
func (h *testHub) remoteStart(id, token, visibility string) <-chan string {
	out := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("POST", h.http+"/api/v1/devices/"+id+"/record/start", strings.NewReader(`{"visibility":"`+visibility+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
		if err != nil {
			out <- err.Error()
			return
		}
		defer resp.Body.Close()
		var m struct {
			Result struct {
				Lesson string `json:"lesson"`
			} `json:"result"`
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != 200 {
			out <- resp.Status + " " + m.Error
			return
		}
		out <- "ok " + m.Result.Lesson
	}()
	return out
}

// acceptRemoteStart waits until the box shows a remote start to the
// teacher, taps the button to accept it and returns the lesson started and
// when the tap was asked for.
func acceptRemoteStart(t *testing.T, h *testHub, box *simBox, token string, answer <-chan string) (string, time.Time) {
	t.Helper()
	waitLong(t, "the box shows the remote start", 30*time.Second, func() bool {
		_, d := h.call(t, "GET", "/api/v1/devices/"+box.id, token, "")
		st, _ := d["state"].(map[string]any)
		rec, _ := st["recorder"].(map[string]any)
		return rec["remote_start"] != nil
	})
	pressed := time.Now()
	box.ctlLocal(t, "sim", "press")
	select {
	case a := <-answer:
		lesson, ok := strings.CutPrefix(a, "ok ")
		if !ok {
			t.Fatalf("remote start: %s", a)
		}
		return lesson, pressed
	case <-time.After(60 * time.Second):
		t.Fatal("no answer to the remote start")
	}
	return "", pressed
}

// deviceEvent reports whether e tells device id with the recorder state.
func deviceEvent(e ssetest.Event, id, recorder string) bool {
	if e.Name != "device" {
		return false
	}
	var d struct{ ID, Recorder string }
	return json.Unmarshal([]byte(e.Data), &d) == nil && d.ID == id && d.Recorder == recorder
}

// lessonEvent reports whether e is about lesson id (told or removed).
func lessonEvent(e ssetest.Event, id string) bool {
	if !strings.HasPrefix(e.Name, "lesson") {
		return false
	}
	var l struct{ ID string }
	return json.Unmarshal([]byte(e.Data), &l) == nil && l.ID == id
}

func TestEventStreamRemoteStartAndPrivateLessons(t *testing.T) {
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	admin := h.verb(t, "token", "create", "-role", "admin", "-name", "it")
	box := startWebBox(t, h, "room-ev", webBoxConfig{})
	coachEvents := h.openEvents(t, coach)
	adminEvents := h.openEvents(t, admin)
	var coachSaw []ssetest.Event
	until := func(what string, d time.Duration, match func(ssetest.Event) bool) {
		t.Helper()
		got, err := coachEvents.Until(d, match)
		coachSaw = append(coachSaw, got...)
		if err != nil {
			t.Fatalf("coach's stream: %s: %v (after %d events)", what, err, len(coachSaw))
		}
	}
	until("the box idle", 60*time.Second, func(e ssetest.Event) bool { return deviceEvent(e, "room-ev", "idle") })

	// A private lesson, started remotely by IT: the coach's stream tells
	// the box recording as soon as the hub hears it, not the lesson.
	answer := h.remoteStart("room-ev", admin, "private")
	private, pressed := acceptRemoteStart(t, h, box, admin, answer)
	until("the box recording", 30*time.Second, func(e ssetest.Event) bool { return deviceEvent(e, "room-ev", "recording") })
	t.Logf("the coach's stream told the box recording %v after the tap was asked for (classcapctl included)",
		coachSaw[len(coachSaw)-1].At.Sub(pressed).Round(time.Millisecond))
	if _, err := adminEvents.Until(30*time.Second, func(e ssetest.Event) bool { return e.Name == "lesson" && lessonEvent(e, private) }); err != nil {
		t.Fatalf("the admin's stream does not tell the private lesson: %v", err)
	}
	if status, _ := h.call(t, "POST", "/api/v1/devices/room-ev/record/stop", admin, ""); status != 200 {
		t.Fatalf("stop: %d", status)
	}
	until("the box idle again", 30*time.Second, func(e ssetest.Event) bool { return deviceEvent(e, "room-ev", "idle") })

	// A coaching lesson: the coach's stream tells it, stopped.
	answer = h.remoteStart("room-ev", coach, "coaching")
	shown, _ := acceptRemoteStart(t, h, box, coach, answer)
	if status, _ := h.call(t, "POST", "/api/v1/devices/room-ev/record/stop", coach, ""); status != 200 {
		t.Fatalf("stop: %d", status)
	}
	until("the coaching lesson stopped", 60*time.Second, func(e ssetest.Event) bool {
		return e.Name == "lesson" && lessonEvent(e, shown) && strings.Contains(e.Data, `"stopped":true`)
	})
	// The private lesson has been uploaded meanwhile, its lesson.json too:
	// the lesson list of the coach still lacks it, and its stream never
	// told it.
	waitLong(t, "the private lesson uploaded", 120*time.Second, func() bool {
		_, m := h.call(t, "GET", "/api/v1/lessons", admin, "")
		ls, _ := m["lessons"].([]any)
		for _, l := range ls {
			l, _ := l.(map[string]any)
			up, _ := l["upload"].(map[string]any)
			if l["id"] == private && l["visibility"] == "private" && up["state"] == "complete" {
				return true
			}
		}
		return false
	})
	if _, m := h.call(t, "GET", "/api/v1/lessons", coach, ""); strings.Contains(jsonString(t, m), private) {
		t.Fatalf("the coach's lesson list has the private lesson: %v", m)
	}
	// Whatever the stream told until now has arrived once the box's
	// latest state has.
	_, d := h.call(t, "GET", "/api/v1/devices/room-ev", admin, "")
	stateAt, _ := d["state_at"].(string)
	until("the box's latest state", 30*time.Second, func(e ssetest.Event) bool {
		return e.Name == "device" && strings.Contains(e.Data, `"state_at":"`+stateAt+`"`)
	})
	for _, e := range coachSaw {
		if lessonEvent(e, private) {
			t.Fatalf("the coach's stream told the private lesson: %s %s", e.Name, e.Data)
		}
	}
	t.Logf("the coach's stream carried %d events", len(coachSaw))
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWebPageFollowsEvents: the page opens the hub's event stream and shows
// a recording started elsewhere from an event, without fetching the list
// of boxes again (no poll).
func TestWebPageFollowsEvents(t *testing.T) {
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := startWebBox(t, h, "room-sse", webBoxConfig{})
	b := newBrowser(t)
	b.signIn(t, h, coach)
	row := `document.querySelector('tr[data-device="room-sse"]')`
	app := `document.getElementById('app').dataset`
	b.waitJS(t, "the stream is open, the box listed online and idle",
		app+`.events === 'open' && `+row+`?.dataset.online === 'yes' && `+row+`.dataset.recorder === 'idle'`, 60*time.Second)
	fetches := eval[string](t, b, app+`.deviceFetches`)
	opens := eval[string](t, b, app+`.streamOpens`)
	b.do(t, "keep the row", 10*time.Second, chromedp.Evaluate[chromedp.Void](`window.firstRow = `+row))

	// Another coach starts a recording through the API.
	answer := h.remoteStart("room-sse", coach, "coaching")
	acceptRemoteStart(t, h, box, coach, answer)
	b.waitJS(t, "the page shows the box recording", row+`.dataset.recorder === 'recording'`, 60*time.Second)
	if got := eval[string](t, b, app+`.deviceFetches`); got != fetches {
		t.Fatalf("the page fetched the boxes %s times, before %s: it polled", got, fetches)
	}
	if got := eval[string](t, b, app+`.streamOpens`); got != opens {
		t.Fatalf("the stream was opened %s times, before %s", got, opens)
	}
	if !eval[bool](t, b, `window.firstRow === `+row+` && +`+app+`.deviceEvents > 0 && `+app+`.events === 'open'`) {
		t.Fatal("the page replaced the box's row, or took no device event")
	}
	if txt := eval[string](t, b, `document.getElementById('refreshed').textContent`); !strings.Contains(txt, "(live)") {
		t.Fatalf("the page says %q; want it live", txt)
	}
}

// refuseEventSource makes the page's EventSource fail to open, as behind a
// proxy that refuses the stream, until the page is told
// window.EventSource = window.RealEventSource; window.esAttempts counts
// the streams the page tried.
const refuseEventSource = `window.RealEventSource = window.EventSource;
window.esAttempts = 0;
window.EventSource = class extends EventTarget {
  constructor(url) {
    super();
    window.esAttempts++;
    setTimeout(() => this.dispatchEvent(new Event('error')), 0);
  }
  close() {}
};`

// TestWebPagePollsWithoutStream: a page whose event stream cannot be
// opened polls the lists, keeps trying the stream, and stops polling once
// it opens.
func TestWebPagePollsWithoutStream(t *testing.T) {
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := startWebBox(t, h, "room-poll", webBoxConfig{})
	b := newBrowser(t)
	b.do(t, "refuse the event stream", 10*time.Second, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: refuseEventSource})
		return chromedp.Void{}, err
	})
	b.signIn(t, h, coach)
	row := `document.querySelector('tr[data-device="room-poll"]')`
	app := `document.getElementById('app').dataset`
	b.waitJS(t, "the page polls, tries the stream again, and lists the box idle",
		app+`.events === 'polling' && window.esAttempts >= 2 && +`+app+`.deviceFetches >= 3 && `+
			row+`?.dataset.online === 'yes' && `+row+`.dataset.recorder === 'idle'`, 60*time.Second)

	// A remote start shows through the polls.
	answer := h.remoteStart("room-poll", coach, "coaching")
	acceptRemoteStart(t, h, box, coach, answer)
	b.waitJS(t, "the polled page shows the box recording", row+`.dataset.recorder === 'recording'`, 60*time.Second)
	if txt := eval[string](t, b, `document.getElementById('refreshed').textContent`); !strings.Contains(txt, "(every 2 s)") {
		t.Fatalf("the page says %q; want it polling", txt)
	}

	// The stream can be opened again: the page opens it at its next try
	// and stops polling.
	b.do(t, "let the stream open", 10*time.Second, chromedp.Evaluate[chromedp.Void](`window.EventSource = window.RealEventSource`))
	b.waitJS(t, "the stream open", app+`.events === 'open'`, 60*time.Second)
	fetches := eval[string](t, b, app+`.deviceFetches`)
	if status, _ := h.call(t, "POST", "/api/v1/devices/room-poll/record/stop", coach, ""); status != 200 {
		t.Fatalf("stop: %d", status)
	}
	b.waitJS(t, "the page shows the box idle", row+`.dataset.recorder === 'idle'`, 60*time.Second)
	if got := eval[string](t, b, app+`.deviceFetches`); got != fetches {
		t.Fatalf("the page fetched the boxes %s times, before %s: it still polls", got, fetches)
	}
}
